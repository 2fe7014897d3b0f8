"""CoreSight identification and the register-file base every peripheral model builds on.

Each model holds 32-bit registers by offset and implements the behaviour that matters;
registers no model claims read as zero, are remembered when written, and are reported
once each so nothing is silently ignored.
"""
from __future__ import annotations

import logging

log = logging.getLogger("mcuqual.virtual")


# CoreSight identification (ARM IHI 0029, and the Cortex-M4 TRM's ROM table and component
# tables): PIDR4, PIDR0..3 and the component class in CIDR1 for each debug component.
CIDR_PREAMBLE = (0x0D, None, 0x05, 0xB1)
CLASS_ROM_TABLE, CLASS_GENERIC_IP, CLASS_CORESIGHT = 0x10, 0xE0, 0x90
M4_IDS = {                      # component: (PIDR0, PIDR1, PIDR2, PIDR3, PIDR4, class)
    "rom": (0xC4, 0xB4, 0x0B, 0x00, 0x04, CLASS_ROM_TABLE),
    "scs": (0x0C, 0xB0, 0x0B, 0x00, 0x04, CLASS_GENERIC_IP),
    "itm": (0x01, 0xB0, 0x3B, 0x00, 0x04, CLASS_GENERIC_IP),
    "dwt": (0x02, 0xB0, 0x3B, 0x00, 0x04, CLASS_GENERIC_IP),
    "fpb": (0x03, 0xB0, 0x2B, 0x00, 0x04, CLASS_GENERIC_IP),
    "tpiu": (0xA1, 0xB9, 0x0B, 0x00, 0x04, CLASS_CORESIGHT),
    "etm": (0x25, 0xB9, 0x4B, 0x00, 0x04, CLASS_CORESIGHT),
}


def coresight_ids(pidr0: int, pidr1: int, pidr2: int, pidr3: int, pidr4: int,
                  component_class: int, devarch: int | None = None,
                  devtype: int | None = None) -> dict[int, int]:
    """The ID registers at 0xFD0..0xFFC of a 4 KB CoreSight component, and for a class 0x9
    (CoreSight) component, as an Armv8-M core's are, DEVARCH (0xFBC) and DEVTYPE (0xFCC),
    which tell a debugger what it is (CoreSight Architecture Specification v3.0, B2)."""
    registers = {0xFD0: pidr4, 0xFE0: pidr0, 0xFE4: pidr1, 0xFE8: pidr2, 0xFEC: pidr3}
    if devarch is not None:
        registers[0xFBC] = devarch
    if devtype is not None:
        registers[0xFCC] = devtype
    for index, value in enumerate(CIDR_PREAMBLE):
        registers[0xFF0 + 4 * index] = component_class if value is None else value
    return registers


class Peripheral:
    name = "peripheral"
    RESET_VALUES: dict[int, int] = {}

    def __init__(self, base: int, size: int, ids: tuple[int, ...] | None = None,
                 fixed: dict[int, int] | None = None) -> None:
        self.base, self.size = base, size
        self._ids = {**(coresight_ids(*ids) if ids is not None else {}), **(fixed or {})}
        self.regs: dict[int, int] = {**self._ids, **self.RESET_VALUES}

    def reset(self) -> None:
        self.regs = {**self._ids, **self.RESET_VALUES}

    def read(self, offset: int, size: int) -> int:
        return self.regs.get(offset & ~3, 0) >> (8 * (offset & 3))

    def write(self, offset: int, size: int, value: int) -> None:
        aligned = offset & ~3
        if size == 4:
            self.regs[aligned] = value & 0xFFFFFFFF
        else:
            shift = 8 * (offset & 3)
            mask = ((1 << (8 * size)) - 1) << shift
            self.regs[aligned] = (self.regs.get(aligned, 0) & ~mask) | ((value << shift) & mask)
