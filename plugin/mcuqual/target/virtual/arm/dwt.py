"""DWT: the cycle counter, driven by the cycle model (ARMv7-M ARM C1.8)."""
from __future__ import annotations

from typing import Callable

from mcuqual.target.virtual.arm.coresight import M4_IDS, Peripheral


class Dwt(Peripheral):
    """DWT: CYCCNT counts the cycle model's cycles while CTRL.CYCCNTENA is set."""

    name = "DWT"
    CTRL, CYCCNT = 0x00, 0x04

    def __init__(self, base: int, cycles: Callable[[], int],
                 ids: tuple[int, ...] = M4_IDS["dwt"],
                 band: Callable[[], tuple[int, int, int] | None] | None = None) -> None:
        super().__init__(base, 0x1000, ids)
        self.cycles = cycles
        self.regs[self.CTRL] = 0x40000000        # four comparators, as on the M4
        self._origin = 0
        self._frozen = 0
        # the emulator's side channel, not a register: the cycle model's (nominal, low,
        # high) totals at the first and the last CYCCNT read since `clear_band_marks`
        self._band = band
        self.band_marks: list[tuple[int, int, int]] = []

    def clear_band_marks(self) -> None:
        self.band_marks = []

    def read(self, offset: int, size: int) -> int:
        if offset == self.CYCCNT:
            if self._band is not None:
                mark = self._band()
                if mark is not None:
                    if self.band_marks:
                        self.band_marks[1] = mark
                    else:
                        self.band_marks = [mark, mark]
            if self.regs[self.CTRL] & 1:
                return (self.cycles() - self._origin) & 0xFFFFFFFF
            return self._frozen
        return super().read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == self.CYCCNT:
            self._origin = self.cycles() - value
            self._frozen = value & 0xFFFFFFFF
            return
        if offset == self.CTRL and not value & 1 and self.regs[self.CTRL] & 1:
            self._frozen = self.read(self.CYCCNT, 4)
        if offset == self.CTRL and value & 1 and not self.regs[self.CTRL] & 1:
            self._origin = self.cycles() - self._frozen
        super().write(offset, size, value)
