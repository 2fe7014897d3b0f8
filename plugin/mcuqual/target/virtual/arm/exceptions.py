"""Faults and exception entry of an Armv7-M core: the fault status registers set, the basic
frame stacked and the vector taken (ARMv7-M ARM B1.5.6), a HardFault vector catch halting
the core, lockup when stacking fails or a fault hits the HardFault handler.

A mixin of the virtual board, which decides what faulted (`_fault_status`).
"""
from __future__ import annotations

import struct

from mcuqual.target.fault_status import BFARVALID, HFSR_DEBUGEVT, STKERR, FaultStatus
from mcuqual.target.virtual.arm.debug import DEMCR_VC_HARDERR, DFSR_BKPT, DFSR_VCATCH
from mcuqual.target.virtual.errors import TargetFaultError

HARDFAULT_EXCEPTION = 3


class ExceptionEntry:
    """Fault reporting and exception entry, for the virtual board."""

    def _enter_fault(self, status: FaultStatus) -> None:
        """Fault like the core: status registers set, then halt on a HardFault vector catch,
        or lock up (the firmware's own handler is not entered on the virtual board)."""
        self._flash_fault, self._exception, self._invalid = None, None, None
        regs = self.scs.regs
        regs[0xD28] = regs.get(0xD28, 0) | status.cfsr
        regs[0xD2C] = regs.get(0xD2C, 0) | status.hfsr
        if status.cfsr & BFARVALID:
            regs[0xD38] = status.bfar
        registers = self.registers()
        message = status.describe(self.ram_start, registers["sp"])
        where = f"pc=0x{registers['pc']:08x} lr=0x{registers['lr']:08x} sp=0x{registers['sp']:08x}"
        self.fault = TargetFaultError(f"target fault on the virtual {self.board.name}: {message} "
                                      f"({where})", registers, status.bfar or None)
        if status.hfsr & HFSR_DEBUGEVT and self.debug_enabled:
            self.fault = None                          # a breakpoint under a debugger
            regs[0xD2C] &= ~HFSR_DEBUGEVT
            self.halted = True
            self.scs.dfsr |= DFSR_BKPT
        elif self.read_core_register("xpsr") & 0x1FF == HARDFAULT_EXCEPTION:
            self.lockup = True                         # a fault in the HardFault handler
        elif not self._enter_exception(HARDFAULT_EXCEPTION):
            regs[0xD28] |= STKERR                      # stacking failed: the core locks up
            self.lockup = True
        elif self._vector_catch(DEMCR_VC_HARDERR):
            self.halted = True
            self.scs.dfsr |= DFSR_VCATCH

    def _enter_exception(self, number: int) -> bool:
        """Exception entry (ARMv7-M ARM B1.5.6): stack the basic frame, take the vector.
        False when the frame cannot be stacked (the stack pointer is off the RAM)."""
        sp = self.read_core_register("sp")
        aligned = (sp - 32) & ~7
        if not (self.ram_start <= aligned and aligned + 32 <= self.ram_end):
            return False
        xpsr = self.read_core_register("xpsr") | ((1 << 9) if (sp - 32) & 4 else 0)
        frame = [self.read_core_register(name) for name in ("r0", "r1", "r2", "r3", "r12", "lr")]
        frame += [self.read_core_register("pc"), xpsr]
        self.write_memory(aligned, struct.pack("<8I", *frame))
        handler = self.read_u32(self._flash_region().start + 4 * number)
        self.write_core_register("sp", aligned)
        self.write_core_register("lr", 0xFFFF_FFF9)       # return to Thread mode on MSP
        self.write_core_register("pc", handler & ~1)
        self.write_core_register("xpsr", (1 << 24) | number)
        return True
