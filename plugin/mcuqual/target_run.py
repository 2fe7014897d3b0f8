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

from .boards import Board
from .codegen import GeneratedModel
from .debug_session import BoardSession, FlashReport
from .errors import McuqualError
from .firmware_build import FirmwareImage
from .mailbox_runner import MailboxRunner
from .probes import ProbeChoice
from .power import PowerTrace
from .power.choice import open_power_monitor
from .progress import progress_bar
from .twin_check import BitExactnessError

TIMED_RUNS = 3


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


def run_on_target(probe: ProbeChoice, board: Board, image: FirmwareImage,
                  generated: GeneratedModel, inputs: np.ndarray, golden: np.ndarray, label: str,
                  timed_runs: int = TIMED_RUNS, timeout_s: float = 600.0,
                  power_monitor: str = "auto") -> OnTargetRun:
    """Flash (if needed), boot and run `inputs` through the firmware mailbox."""
    cycles: list[int] = []
    per_layer: list[list[int]] = []
    outputs: list[np.ndarray] = []
    stack_hw = arena_hw = 0
    timed = min(timed_runs, len(inputs))
    timed_seconds, fast_seconds, interrupted = 0.0, None, None
    with BoardSession(board, probe) as session:
        flash = session.flash(image.elf)
        session.set_cycle_model(True)
        session.start()
        runner = MailboxRunner(session, image.elf, timeout_s=timeout_s)
        runner.boot()
        monitor = open_power_monitor(power_monitor, probe, board, session.pin_edges)
        if monitor is not None:
            monitor.start()
        power_trace = None
        started = time.monotonic()
        bar = progress_bar(len(inputs), f"{label} on {probe.unique_id}", unit="img")
        try:
            for index, item in enumerate(inputs):
                if index == timed:
                    timed_seconds = (time.monotonic() - started) / max(1, timed)
                    power_trace = _stop(monitor)
                    session.set_cycle_model(False)
                    started = time.monotonic()
                result = runner.infer(item)
                outputs.append(result.output)
                stack_hw = max(stack_hw, result.stack_high_water_bytes)
                arena_hw = max(arena_hw, result.arena_high_water_bytes)
                if index < timed:
                    cycles.append(result.cycles_total)
                    per_layer.append(result.layer_cycles)
                bar.update(1)
            log_lines = runner.finish()
        except McuqualError as exc:
            if not outputs:
                raise
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
        probe.unique_id, flash, len(inputs), interrupted, power_trace, log_lines, unmodelled)


def _stop(monitor) -> PowerTrace | None:
    if monitor is None:
        return None
    monitor.stop()
    return monitor.trace()
