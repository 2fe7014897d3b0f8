"""Halting debug of an Armv7-M core (ARMv7-M ARM C1.6): DHCSR (enable, halt, step, the status
bits), DCRSR/DCRDR core register transfer, DFSR, and DEMCR's vector catch.

A mixin of the virtual board: it keeps the debug state (`halted`, `lockup`,
`debug_enabled`, the sticky bits) and reads and writes the core through the machine's
`uc` registers, `scs`, and `_execute`.
"""
from __future__ import annotations

from unicorn import arm_const as arm

DEMCR_OFFSET_IN_SCS = 0xDFC
DEMCR_VC_CORERESET, DEMCR_VC_HARDERR = 1 << 0, 1 << 10
DHCSR_C_DEBUGEN, DHCSR_C_HALT, DHCSR_C_STEP = 1 << 0, 1 << 1, 1 << 2
DHCSR_S_REGRDY, DHCSR_S_HALT, DHCSR_S_LOCKUP = 1 << 16, 1 << 17, 1 << 19
DHCSR_S_RETIRE_ST, DHCSR_S_RESET_ST = 1 << 24, 1 << 25
DFSR_HALTED, DFSR_BKPT, DFSR_VCATCH = 1 << 0, 1 << 1, 1 << 3

# core register names -> the emulator's register ids
REGISTERS = {"r0": arm.UC_ARM_REG_R0, "r1": arm.UC_ARM_REG_R1, "r2": arm.UC_ARM_REG_R2,
             "r3": arm.UC_ARM_REG_R3, "r4": arm.UC_ARM_REG_R4, "r5": arm.UC_ARM_REG_R5,
             "r6": arm.UC_ARM_REG_R6, "r7": arm.UC_ARM_REG_R7, "r8": arm.UC_ARM_REG_R8,
             "r9": arm.UC_ARM_REG_R9, "r10": arm.UC_ARM_REG_R10, "r11": arm.UC_ARM_REG_R11,
             "r12": arm.UC_ARM_REG_R12, "sp": arm.UC_ARM_REG_SP, "lr": arm.UC_ARM_REG_LR,
             "pc": arm.UC_ARM_REG_PC, "xpsr": arm.UC_ARM_REG_XPSR, "msp": arm.UC_ARM_REG_MSP,
             "psp": arm.UC_ARM_REG_PSP, "control": arm.UC_ARM_REG_CONTROL}


class HaltingDebug:
    """DHCSR, DCRSR/DCRDR, DFSR and vector catch, for the virtual board."""

    # DCRSR register selectors (ARMv7-M ARM, C1.6.3); 0x14 packs CONTROL, FAULTMASK,
    # BASEPRI and PRIMASK into one word, 0x21 is FPSCR, 0x40.. are S0..S31
    _SELECTORS = {**{n: f"r{n}" for n in range(13)}, 13: "sp", 14: "lr", 15: "pc", 16: "xpsr",
                  17: "msp", 18: "psp"}
    _SPECIAL = (("control", 24), ("faultmask", 16), ("basepri", 8), ("primask", 0))

    def core_register(self, selector: int, value: int | None) -> int:
        """DCRSR/DCRDR access: read (value None) or write one core register."""
        if selector == 0x14:
            uc_ids = [getattr(arm, f"UC_ARM_REG_{name.upper()}") for name, _ in self._SPECIAL]
            if value is not None:
                for uc_id, (_, shift) in zip(uc_ids, self._SPECIAL):
                    self.uc.reg_write(uc_id, (value >> shift) & 0xFF)
                return value
            return sum((self.uc.reg_read(uc_id) & 0xFF) << shift
                       for uc_id, (_, shift) in zip(uc_ids, self._SPECIAL))
        if selector == 0x21:
            uc_id = arm.UC_ARM_REG_FPSCR
        elif 0x40 <= selector < 0x60:
            uc_id = getattr(arm, f"UC_ARM_REG_S{selector - 0x40}")
        elif selector in self._SELECTORS:
            uc_id = REGISTERS[self._SELECTORS[selector]]
        else:
            return 0
        if value is not None:
            self.uc.reg_write(uc_id, value & 0xFFFFFFFF)
            return value
        return self.uc.reg_read(uc_id) & 0xFFFFFFFF

    # ---- debug state: DHCSR, DFSR, vector catch ----------------------------------
    def debug_status(self) -> int:
        """DHCSR as read: control bits and S_REGRDY, S_HALT, S_LOCKUP, sticky S_RETIRE/S_RESET."""
        value = DHCSR_S_REGRDY | (DHCSR_C_DEBUGEN if self.debug_enabled else 0)
        if self.halted:
            value |= DHCSR_C_HALT | DHCSR_S_HALT
        if self.lockup:
            value |= DHCSR_S_LOCKUP
        if self._retire_sticky:
            value |= DHCSR_S_RETIRE_ST
        if self._reset_sticky:
            value |= DHCSR_S_RESET_ST
        self._retire_sticky = self._reset_sticky = False
        return value

    def debug_control(self, bits: int) -> None:
        """A keyed DHCSR write: enable debug, halt, step or resume."""
        self.debug_enabled = bool(bits & DHCSR_C_DEBUGEN)
        if not self.debug_enabled:
            self.halted = False                    # the core leaves debug state
        elif bits & DHCSR_C_HALT:
            self.halt()
        elif self.halted and bits & DHCSR_C_STEP:
            self.step()
            self.scs.dfsr |= DFSR_HALTED
        elif self.halted:
            self.halted = False

    def halt(self, reason: int = DFSR_HALTED) -> None:
        if not self.halted:
            self.halted, self.lockup = True, False
            self.scs.dfsr |= reason

    def resume(self) -> None:
        self.halted = False

    def _vector_catch(self, bit: int) -> bool:
        return self.debug_enabled and bool(self.scs.read(DEMCR_OFFSET_IN_SCS, 4) & bit)

    def step(self) -> None:
        """Execute one instruction (a fault leaves the core as a fault would)."""
        self._execute(1)
