"""The power-monitor protocol and what every monitor returns: a sampled trace.

A trace is current samples at a fixed period, the supply voltage, and the level of
the firmware's marker pin at each sample (high while an inference runs). Energy
is integrated over each marked window, so what the instrument saw between
inferences never counts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mcuqual.common.evidence import Evidence


@dataclass(frozen=True)
class PowerTrace:
    sample_period_s: float
    current_a: np.ndarray          # one value per sample
    marker: np.ndarray             # bool per sample: the firmware's window pin
    supply_v: float
    evidence: Evidence
    source: str                    # the instrument, or the model and its citation


@dataclass(frozen=True)
class EnergyWindow:
    start_s: float
    duration_s: float
    energy_mj: float
    mean_current_ma: float


def energy_windows(trace: PowerTrace) -> list[EnergyWindow]:
    """Energy of every complete marked window (one cut off at either end is not complete)."""
    marker = trace.marker.astype(np.int8)
    edges = np.diff(marker)
    rises = np.flatnonzero(edges == 1) + 1
    falls = np.flatnonzero(edges == -1) + 1
    windows = []
    for rise in rises:
        later = falls[falls > rise]
        if not later.size:
            break
        fall = int(later[0])
        current = trace.current_a[rise:fall]
        duration = (fall - rise) * trace.sample_period_s
        energy_j = float(current.sum()) * trace.sample_period_s * trace.supply_v
        windows.append(EnergyWindow(rise * trace.sample_period_s, duration, 1000.0 * energy_j,
                                    1000.0 * float(current.mean())))
    return windows


class PowerMonitor(Protocol):
    """What the suite asks of an instrument, physical or modelled."""

    evidence: Evidence

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def trace(self) -> PowerTrace: ...
