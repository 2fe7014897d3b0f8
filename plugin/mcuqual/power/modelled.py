"""The virtual board's power monitor: the trace a current probe would show, from a model.

The virtual core logs every edge of its GPIO pins with the cycle count, so the
firmware's marker is real; the current is the board profile's run current (the
core never sleeps in the qualification firmware: it polls its mailbox), so the
figure is `modelled` and says whose datasheet it came from.
"""
from __future__ import annotations

import numpy as np

from mcuqual.boards.profile import Board
from mcuqual.common.evidence import Evidence
from mcuqual.power.monitor import PowerTrace

SAMPLE_RATE_HZ = 100_000                # what a PPK2 delivers, for comparable plots


class ModelledMonitor:
    evidence = Evidence.MODELLED

    def __init__(self, board: Board, pin_edges: list[tuple[int, str, int]], marker_pin: str) -> None:
        self.board, self.pin_edges, self.marker_pin = board, pin_edges, marker_pin
        self._first = 0
        self._last: int | None = None

    def start(self) -> None:
        self._first, self._last = len(self.pin_edges), None

    def stop(self) -> None:
        self._last = len(self.pin_edges)

    def trace(self) -> PowerTrace:
        edges = [(cycle, level) for cycle, pin, level in self.pin_edges[self._first:self._last]
                 if pin == self.marker_pin]
        current_a = self.board.power.run_power_mw(self.board.clock_hz) / 1000.0 / \
            self.board.power.supply_v
        if not edges:
            return PowerTrace(1.0 / SAMPLE_RATE_HZ, np.zeros(0), np.zeros(0, dtype=bool),
                              self.board.power.supply_v, self.evidence, self.board.power.source)
        origin = edges[0][0] - self.board.clock_hz // 1000          # 1 ms before the first edge
        end = edges[-1][0] + self.board.clock_hz // 1000
        samples = int((end - origin) * SAMPLE_RATE_HZ / self.board.clock_hz) + 1
        marker = np.zeros(samples, dtype=bool)
        level, position = 0, 0
        for cycle, new_level in edges:
            index = int(round((cycle - origin) * SAMPLE_RATE_HZ / self.board.clock_hz))
            marker[position:index] = bool(level)
            level, position = new_level, index
        marker[position:] = bool(level)
        return PowerTrace(1.0 / SAMPLE_RATE_HZ, np.full(samples, current_a), marker,
                          self.board.power.supply_v, self.evidence,
                          f"modelled: {self.board.power.source}")
