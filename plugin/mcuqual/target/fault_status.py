"""What a Cortex-M fault was, told from the registers a debugger can read.

The virtual board sets CFSR, HFSR, BFAR and MMFAR the way the core would, and a
physical core sets them itself; both are explained to the user by this one
decoder (ARMv7-M ARM B3.2.15-B3.2.18), so a fault reads the same on either.
"""
from __future__ import annotations

from dataclasses import dataclass

SCB_CFSR, SCB_HFSR, SCB_MMFAR, SCB_BFAR = 0xE000_ED28, 0xE000_ED2C, 0xE000_ED34, 0xE000_ED38

# CFSR bits: MemManage (7:0), BusFault (15:8), UsageFault (31:16)
IACCVIOL, DACCVIOL, MSTKERR, MMARVALID = 1 << 0, 1 << 1, 1 << 4, 1 << 7
IBUSERR, PRECISERR, IMPRECISERR, STKERR, BFARVALID = 1 << 8, 1 << 9, 1 << 10, 1 << 12, 1 << 15
UNDEFINSTR, INVSTATE, INVPC, NOCP, UNALIGNED, DIVBYZERO = (1 << 16, 1 << 17, 1 << 18, 1 << 19,
                                                          1 << 24, 1 << 25)
HFSR_FORCED, HFSR_DEBUGEVT = 1 << 30, 1 << 31

_CAUSES = (
    (IACCVIOL, "memory manage fault: instruction fetch from a protected region"),
    (DACCVIOL, "memory manage fault: data access violation"),
    (MSTKERR, "memory manage fault: exception stacking"),
    (IBUSERR, "bus fault: instruction fetch from {bfar}"),
    (STKERR, "bus fault: exception stacking"),
    (IMPRECISERR, "bus fault: imprecise data bus error"),
    (UNDEFINSTR, "usage fault: undefined instruction"),
    (INVSTATE, "usage fault: invalid state (Thumb bit clear)"),
    (INVPC, "usage fault: invalid EXC_RETURN"),
    (NOCP, "usage fault: coprocessor disabled (FPU off?)"),
    (UNALIGNED, "usage fault: unaligned access"),
    (DIVBYZERO, "usage fault: division by zero"),
)


@dataclass(frozen=True)
class FaultStatus:
    cfsr: int
    hfsr: int
    bfar: int
    mmfar: int
    detail: str = ""        # what only the reporter knows, e.g. "read" or "write to flash"

    def describe(self, ram_start: int, sp: int) -> str:
        if self.cfsr & PRECISERR:
            address = self.bfar if self.cfsr & BFARVALID else None
            where = f"0x{address:08x}" if address is not None else "an unknown address"
            if (address is not None and ram_start - 0x10000 <= address < ram_start
                    and sp < ram_start + 0x100):
                return f"stack overflow: write below the start of SRAM at {where}"
            return f"bus fault: {self.detail or 'data access at'} {where}"
        for bit, text in _CAUSES:
            if self.cfsr & bit:
                bfar = f"0x{self.bfar:08x}" if self.cfsr & BFARVALID else "an unknown address"
                return text.format(bfar=bfar)
        if self.hfsr & HFSR_DEBUGEVT:
            return "unhandled breakpoint (BKPT without a debugger)"
        return self.detail or f"fault (CFSR=0x{self.cfsr:08x}, HFSR=0x{self.hfsr:08x})"
