"""Inferences on a board through pyOCD: a few timed for latency, the rest fast.

Cycles are taken from the first runs (on the virtual board the cycle model is
slow and is switched off afterwards), their spread across inputs is reported,
and every output the target produced is compared byte for byte with the
tflite_micro reference. A run cut short (a probe lost mid-sweep) keeps what it
measured and says where it stopped.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from mcuqual.boards.profile import Board
from mcuqual.firmware.codegen import GeneratedModel
from mcuqual.target.connection import BoardConnection, FlashReport
from mcuqual.firmware.elf import function_at, symbol_address
from mcuqual.common.errors import McuqualError
from mcuqual.firmware.build import FirmwareImage
from mcuqual.target.mailbox_runner import MailboxRunner
from mcuqual.target.probes import ProbeChoice
from mcuqual.power import PowerTrace
from mcuqual.power.choice import open_power_monitor
from mcuqual.common.progress import progress_bar
from mcuqual.common.workers import default_workers, run_jobs
from mcuqual.firmware.twin_check import BitExactnessError
from mcuqual.target.virtual import TargetFaultError

TIMED_RUNS = 3
# Many fast inferences on the virtual board (`--samples all`) run on several virtual boards
# at once: worker processes, each with its own pyOCD session on the board (the same flash
# image), take chunks of CHUNK_IMAGES; below PARALLEL_MIN_IMAGES one board is quicker than
# starting them. A physical board is one board.
PARALLEL_MIN_IMAGES = 400
CHUNK_IMAGES = 250
CHUNK_START_S = 60.0              # budget to start a worker, open its session and boot

# A target is declared hung once an inference has taken longer than the slowest plausible
# one: UPPER_CYCLES_PER_MAC (4x the slowest layer type our kernels run, depthwise at ~10
# cycles/MAC, and 15x their end-to-end average) plus UPPER_CYCLES_PER_BYTE for every
# activation byte and a fixed start-up, executed at the slowest rate the probe runs code:
# the virtual board with its cycle model (EMULATED_FLOOR_CYCLES_PER_S, ~5x below what it
# runs on this project's machines) or the core clock of a physical board.
UPPER_CYCLES_PER_MAC = 40
UPPER_CYCLES_PER_BYTE = 200
UPPER_FIXED_CYCLES = 5_000_000
EMULATED_FLOOR_CYCLES_PER_S = 1_000_000
BUDGET_FLOOR_S = 20.0


def inference_budget_s(macs: int, activation_bytes: int, virtual: bool, clock_hz: int) -> float:
    """Wall-clock seconds after which one inference (or the boot) counts as hung."""
    cycles = UPPER_CYCLES_PER_MAC * macs + UPPER_CYCLES_PER_BYTE * activation_bytes \
        + UPPER_FIXED_CYCLES
    rate = EMULATED_FLOOR_CYCLES_PER_S if virtual else clock_hz
    return BUDGET_FLOOR_S + cycles / rate


def locate_fault(error: TargetFaultError, elf, layer_names: list[str],
                 read_u32) -> TargetFaultError:
    """The same fault, its message naming the function (from the ELF's symbols) and the
    layer that was running (the firmware's mq_current_layer, read through the probe)."""
    where = getattr(error, "where", None) or {}
    parts = []
    if "pc" in where:
        function = function_at(elf, where["pc"])
        parts.append(f"in {function}" if function else "at a pc outside every function")
        linked = function_at(elf, where["lr"]) if "lr" in where else None
        if linked and linked.split("+")[0] != (function or "").split("+")[0]:
            parts.append(f"lr in {linked}")       # the caller, unless the function called out
    address = symbol_address(elf, "mq_current_layer")
    if address is not None:
        try:
            current = read_u32(address)
        except McuqualError:
            current = None
        if current:
            index = current - 1
            name = layer_names[index] if index < len(layer_names) else "?"
            parts.append(f"during layer {index} ({name})")
        elif current == 0:
            parts.append("outside any layer")
    if not parts:
        return error
    return TargetFaultError(f"{error} {', '.join(parts)}", error.registers, error.address, where)


@dataclass
class OnTargetRun:
    model: str
    images: int
    cycles: list[int]
    layer_names: list[str]
    layer_cycles: list[int]
    mismatched_images: int
    first_mismatch: int | None
    stack_high_water_bytes: int
    arena_high_water_bytes: int
    seconds_per_timed_inference: float
    seconds_per_fast_inference: float | None
    probe: str = ""
    flash: FlashReport | None = None
    planned_images: int = 0
    interrupted: str | None = None
    power_trace: PowerTrace | None = None
    log_lines: list[str] = field(default_factory=list)
    unmodelled_accesses: list[str] = field(default_factory=list)
    # (low, high) relative range of the timed inferences' cycles with every ranged rule of
    # the virtual board's cycle model at its low / high end; None where none is kept
    cycle_range: tuple[float, float] | None = None
    boards: int = 1                 # virtual boards the fast inferences were spread over

    @property
    def median_cycles(self) -> int:
        return int(statistics.median(self.cycles))

    @property
    def cycle_spread(self) -> float:
        """(max - min) / median over the timed inputs: how much cycles depend on the data."""
        return (max(self.cycles) - min(self.cycles)) / self.median_cycles if self.cycles else 0.0

    def require_timed(self) -> None:
        if not self.cycles:
            raise McuqualError(f"model {self.model}: no timed inference completed on "
                               f"{self.probe}: {self.interrupted}")

    def require_bit_exact(self) -> None:
        if self.interrupted:
            raise McuqualError(f"model {self.model}: the run on {self.probe} stopped after "
                               f"{self.images} of {self.planned_images} images: {self.interrupted}")
        if self.mismatched_images:
            raise BitExactnessError(
                f"model {self.model}: the target's output differs from tflite_micro on "
                f"{self.mismatched_images} of {self.images} images (first: image "
                f"{self.first_mismatch}).")


def _fast_chunk(probe: ProbeChoice, board: Board, elf, inputs: np.ndarray,
                timeout_s: float) -> tuple[list[np.ndarray], int, int, str | None]:
    """In a worker process: a session of its own on the virtual board, `inputs` without
    cycle accounting. (outputs, stack and arena high water, the error that stopped it)."""
    outputs: list[np.ndarray] = []
    stack_hw = arena_hw = 0
    try:
        with BoardConnection(board, probe) as session:
            session.flash(elf)
            session.set_cycle_model(False)
            session.start()
            runner = MailboxRunner(session, elf, timeout_s=timeout_s)
            runner.boot()
            for item in inputs:
                result = runner.infer(item)
                outputs.append(result.output)
                stack_hw = max(stack_hw, result.stack_high_water_bytes)
                arena_hw = max(arena_hw, result.arena_high_water_bytes)
    except McuqualError as exc:               # returned, not raised: its outputs count
        return outputs, stack_hw, arena_hw, f"{type(exc).__name__}: {exc}"
    return outputs, stack_hw, arena_hw, None


def _fast_in_parallel(probe: ProbeChoice, board: Board, elf, inputs: np.ndarray, label: str,
                      timeout_s: float, workers: int, bar) -> tuple[list[np.ndarray], int, int,
                                                                     str | None]:
    """`inputs` in chunks on `workers` virtual boards; the outputs of the chunks done in
    order before the first one that stopped, and why it stopped."""
    chunks = [inputs[start:start + CHUNK_IMAGES] for start in range(0, len(inputs), CHUNK_IMAGES)]
    results = run_jobs(_fast_chunk, [(probe, board, elf, chunk, timeout_s) for chunk in chunks],
                       label=label, stage=f"virtual board ({probe.unique_id})",
                       describe=lambda i: f"images {i * CHUNK_IMAGES} and after (fast runs)",
                       budget_s=lambda i: CHUNK_START_S + len(chunks[i]) * timeout_s,
                       workers=workers, on_result=lambda i, result: bar.update(len(result[0])))
    outputs: list[np.ndarray] = []
    stack_hw = arena_hw = 0
    for index, (chunk_outputs, stack, arena, error) in enumerate(results):
        outputs.extend(chunk_outputs)
        stack_hw, arena_hw = max(stack_hw, stack), max(arena_hw, arena)
        if error is not None:
            start = index * CHUNK_IMAGES + len(chunk_outputs)
            return outputs, stack_hw, arena_hw, f"on a parallel virtual board at image {start}: {error}"
    return outputs, stack_hw, arena_hw, None


def run_on_target(probe: ProbeChoice, board: Board, image: FirmwareImage,
                  generated: GeneratedModel, inputs: np.ndarray, golden: np.ndarray, label: str,
                  timed_runs: int = TIMED_RUNS, timeout_s: float = 600.0,
                  power_monitor: str = "auto", parallel_min_images: int = PARALLEL_MIN_IMAGES,
                  ) -> OnTargetRun:
    """Flash (if needed), boot and run `inputs` through the firmware mailbox.

    `timeout_s`: how long one inference (or the boot) may take before the target counts as
    hung; `inference_budget_s` derives it from the model's size. On the virtual board, at
    least `parallel_min_images` fast inferences are spread over several virtual boards."""
    cycles: list[int] = []
    per_layer: list[list[int]] = []
    outputs: list[np.ndarray] = []
    stack_hw = arena_hw = 0
    timed = min(timed_runs, len(inputs))
    timed_seconds, fast_seconds, interrupted = 0.0, None, None
    ranged = [0, 0, 0]                  # nominal, low, high cycles of the timed inferences
    workers = default_workers()
    spread = probe.is_virtual and workers > 1 and len(inputs) - timed >= parallel_min_images
    boards = workers if spread else 1
    with BoardConnection(board, probe) as session:
        flash = session.flash(image.elf)
        session.set_cycle_model(True)
        session.start()
        runner = MailboxRunner(session, image.elf, timeout_s=timeout_s)
        try:
            runner.boot()
        except TargetFaultError as exc:
            raise locate_fault(exc, image.elf, generated.layers, session.read_u32) from exc
        monitor = open_power_monitor(power_monitor, probe, board, session.pin_edges)
        if monitor is not None:
            monitor.start()
        power_trace = None
        started = time.monotonic()
        bar = progress_bar(len(inputs), f"{label} on {probe.unique_id}", unit="img")
        try:
            for index, item in enumerate(inputs[:timed] if spread else inputs):
                if index == timed:
                    timed_seconds = (time.monotonic() - started) / max(1, timed)
                    power_trace = _stop(monitor)
                    session.set_cycle_model(False)
                    started = time.monotonic()
                if index < timed:
                    session.clear_cycle_band()
                result = runner.infer(item)
                band = session.cycle_band() if index < timed else None
                if band is not None:
                    for slot in range(3):
                        ranged[slot] += band[slot]
                outputs.append(result.output)
                stack_hw = max(stack_hw, result.stack_high_water_bytes)
                arena_hw = max(arena_hw, result.arena_high_water_bytes)
                if index < timed:
                    cycles.append(result.cycles_total)
                    per_layer.append(result.layer_cycles)
                bar.update(1)
            if spread:
                timed_seconds = (time.monotonic() - started) / max(1, timed)
                power_trace = _stop(monitor)
                session.set_cycle_model(False)        # this board idles meanwhile
                started = time.monotonic()
                fast, stack, arena, interrupted = _fast_in_parallel(
                    probe, board, image.elf, inputs[timed:], label, timeout_s, workers, bar)
                outputs.extend(fast)
                stack_hw, arena_hw = max(stack_hw, stack), max(arena_hw, arena)
            log_lines = runner.finish()
        except McuqualError as exc:
            if isinstance(exc, TargetFaultError):
                exc = locate_fault(exc, image.elf, generated.layers, session.read_u32)
            if not outputs:
                raise exc
            interrupted = str(exc)              # keep what was measured before the loss
            log_lines = runner.log_lines()
        finally:
            bar.close()
            if power_trace is None:            # fewer images than timed runs, or stopped early
                power_trace = _stop(monitor)
        done = len(outputs)
        if done <= timed:
            timed_seconds = timed_seconds or (time.monotonic() - started) / max(1, done)
        else:
            fast_seconds = (time.monotonic() - started) / (done - timed)
        unmodelled = session.unmodelled_accesses if interrupted is None else []
    matched = golden[:done]
    mismatched = (np.flatnonzero((np.stack(outputs) != matched).any(axis=1)) if outputs
                  else np.array([], dtype=int))
    median_layers = per_layer[int(np.argsort(cycles)[len(cycles) // 2])] if cycles else []
    return OnTargetRun(
        label, done, cycles, list(generated.layers), median_layers,
        int(mismatched.size), int(mismatched[0]) if mismatched.size else None, stack_hw, arena_hw,
        round(timed_seconds, 2), round(fast_seconds, 3) if fast_seconds else None,
        probe.unique_id, flash, len(inputs), interrupted, power_trace, log_lines, unmodelled,
        (1 - ranged[1] / ranged[0], ranged[2] / ranged[0] - 1) if ranged[0] else None,
        boards)


def _stop(monitor) -> PowerTrace | None:
    if monitor is None:
        return None
    monitor.stop()
    return monitor.trace()
