"""Inferences on the virtual board: a few with cycle accounting for latency, the rest fast.

Cycles are taken from the first runs (the cycle model is slow), their spread
across inputs is reported, and every output the target produced is compared
byte for byte with the tflite_micro reference.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from .boards import Board
from .codegen import GeneratedModel
from .firmware_build import FirmwareImage
from .mailbox_runner import MailboxRunner
from .twin_check import BitExactnessError
from .virtual import VirtualTarget

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
    log_lines: list[str] = field(default_factory=list)
    unmodelled_accesses: list[str] = field(default_factory=list)

    @property
    def median_cycles(self) -> int:
        return int(statistics.median(self.cycles))

    @property
    def cycle_spread(self) -> float:
        """(max - min) / median over the timed inputs: how much cycles depend on the data."""
        return (max(self.cycles) - min(self.cycles)) / self.median_cycles if self.cycles else 0.0

    def require_bit_exact(self) -> None:
        if self.mismatched_images:
            raise BitExactnessError(
                f"model {self.model}: the target's output differs from tflite_micro on "
                f"{self.mismatched_images} of {self.images} images (first: image "
                f"{self.first_mismatch}).")


def run_on_virtual_board(board: Board, image: FirmwareImage, generated: GeneratedModel,
                         inputs: np.ndarray, golden: np.ndarray, label: str,
                         timed_runs: int = TIMED_RUNS) -> OnTargetRun:
    target = VirtualTarget(board, cycle_accurate=True)
    target.load_elf(image.elf)
    target.reset(halt=False)
    target.swo_start()
    runner = MailboxRunner(target, image.elf)
    runner.boot()
    cycles, per_layer, outputs = [], [], []
    stack_hw = arena_hw = 0
    started = time.monotonic()
    timed = min(timed_runs, len(inputs))
    for index, item in enumerate(inputs):
        if index == timed:
            timed_seconds = (time.monotonic() - started) / max(1, timed)
            target.set_cycle_accounting(False)
            started = time.monotonic()
        result = runner.infer(item)
        outputs.append(result.output)
        stack_hw = max(stack_hw, result.stack_high_water_bytes)
        arena_hw = max(arena_hw, result.arena_high_water_bytes)
        if index < timed:
            cycles.append(result.cycles_total)
            per_layer.append(result.layer_cycles)
    if len(inputs) <= timed:
        timed_seconds = (time.monotonic() - started) / max(1, timed)
        fast_seconds = None
    else:
        fast_seconds = (time.monotonic() - started) / (len(inputs) - timed)
    log_lines = runner.finish()
    mismatched = np.flatnonzero((np.stack(outputs) != golden).any(axis=1))
    median_layers = per_layer[int(np.argsort(cycles)[len(cycles) // 2])] if cycles else []
    return OnTargetRun(
        label, len(inputs), cycles, list(generated.layers), median_layers,
        int(mismatched.size), int(mismatched[0]) if mismatched.size else None, stack_hw, arena_hw,
        round(timed_seconds, 2), round(fast_seconds, 3) if fast_seconds else None, log_lines,
        sorted(f"0x{a:08x}" for a in target.unmodelled))
