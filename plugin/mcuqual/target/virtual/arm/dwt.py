"""DWT: the cycle counter, driven by the cycle model (ARMv7-M ARM C1.8)."""
from __future__ import annotations

from typing import Callable

from mcuqual.target.virtual.arm.coresight import M4_IDS, Peripheral


class Dwt(Peripheral):
    """DWT: CYCCNT counts the cycle model's cycles while CTRL.CYCCNTENA is set."""

    name = "DWT"
    CTRL, CYCCNT = 0x00, 0x04

    def __init__(self, base: int, cycles: Callable[[], int],
                 ids: tuple[int, ...] = M4_IDS["dwt"]) -> None:
        super().__init__(base, 0x1000, ids)
        self.cycles = cycles
        self.regs[self.CTRL] = 0x40000000        # four comparators, as on the M4
        self._origin = 0
        self._frozen = 0

    def read(self, offset: int, size: int) -> int:
        if offset == self.CYCCNT:
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
