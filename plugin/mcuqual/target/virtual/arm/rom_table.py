"""The CoreSight ROM table pyOCD walks to find the core's debug components."""
from __future__ import annotations

from mcuqual.target.virtual.arm.coresight import M4_IDS, Peripheral


class RomTable(Peripheral):
    """The Cortex-M4 ROM table at 0xE00FF000: where a debugger finds SCS, DWT, FPB, ITM,
    TPIU and ETM (entries are signed offsets from the table, bit 0 = present)."""

    name = "ROM table"
    COMPONENTS = (0xE000_E000, 0xE000_1000, 0xE000_2000, 0xE000_0000, 0xE004_0000, 0xE004_1000)

    def __init__(self, base: int = 0xE00F_F000, ids: tuple[int, ...] = M4_IDS["rom"]) -> None:
        super().__init__(base, 0x1000, ids)
        for index, component in enumerate(self.COMPONENTS):
            self.regs[4 * index] = ((component - base) & 0xFFFFF000) | 0x3
        self.regs[4 * len(self.COMPONENTS)] = 0               # end of table
        self.regs[0xFCC] = 0x1                                  # MEMTYPE: system memory present
