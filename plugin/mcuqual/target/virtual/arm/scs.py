"""The System Control Space: SCB (reset, VTOR, fault status) and CoreDebug (halt, step,
register transfer, vector catch), as ARMv7-M ARM B3.2 and C1.6 define them."""
from __future__ import annotations

from typing import Protocol

from mcuqual.target.virtual.arm.coresight import M4_IDS, Peripheral


class DebugCore(Protocol):
    """What the SCS needs from the core it belongs to."""

    def debug_status(self) -> int: ...
    def debug_control(self, value: int) -> None: ...
    def reset_request(self) -> None: ...
    def core_register(self, selector: int, value: int | None) -> int: ...


class SystemControlSpace(Peripheral):
    """SCS (0xE000E000): SysTick, SCB and CoreDebug. CPUID and the feature registers read
    as a Cortex-M4F r0p1; AIRCR's reset request resets the system; DHCSR halts, steps
    and resumes the core; DCRSR/DCRDR move core registers; DFSR says why the core
    halted (write 1 to clear) (ARMv7-M ARM, B3.2 and C1.6)."""

    name = "SCS"
    CPUID, AIRCR, DFSR = 0xD00, 0xD0C, 0xD30
    DHCSR, DCRSR, DCRDR, DEMCR = 0xDF0, 0xDF4, 0xDF8, 0xDFC
    DHCSR_KEY = 0xA05F
    M4F_FEATURES = {0xD00: 0x410FC241, 0xD40: 0x00000030, 0xD44: 0x00000200,
                    0xD48: 0x00100000, 0xD50: 0x00100030, 0xD54: 0x00000000,
                    0xD58: 0x00000000, 0xD5C: 0x00000000, 0xD60: 0x01101110,
                    0xD64: 0x02111000, 0xD68: 0x21112231, 0xD6C: 0x01111130,
                    0xD70: 0x01310132, 0xD90: 0x00000800, 0xF40: 0x10110021,
                    0xF44: 0x11000011, 0xF48: 0x00000000}

    def __init__(self, base: int, core: DebugCore, ids: tuple[int, ...] = M4_IDS["scs"],
                 features: dict[int, int] | None = None) -> None:
        # identification of another core (CPUID, ID_PFR.., MVFR.., cache IDs) overrides the M4F's
        self.features = {**self.M4F_FEATURES, **(features or {})}
        self.RESET_VALUES = self.features
        super().__init__(base, 0x1000, ids)
        self.core = core
        self.dfsr = 0

    def read(self, offset: int, size: int) -> int:
        if offset == self.DHCSR:
            return self.core.debug_status()
        if offset == self.DFSR:
            return self.dfsr
        return super().read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset in self.features:
            return                                       # read-only identification
        if offset == self.AIRCR and (value >> 16) == 0x05FA and value & (1 << 2):
            self.core.reset_request()
            return
        if offset == self.DHCSR:
            if (value >> 16) == self.DHCSR_KEY:      # writes without the key are ignored
                self.core.debug_control(value & 0xF)
            return
        if offset == self.DFSR:
            self.dfsr &= ~value
            return
        if offset == self.DCRSR:
            selector = value & 0x7F
            if value & (1 << 16):                     # REGWnR: write DCRDR to the register
                self.core.core_register(selector, self.regs.get(self.DCRDR, 0))
            else:
                self.regs[self.DCRDR] = self.core.core_register(selector, None) & 0xFFFFFFFF
            return
        super().write(offset, size, value)

    def system_reset(self) -> None:
        """What a system reset clears here; the debug registers (DHCSR, DEMCR) survive it."""
        kept = {k: v for k, v in self.regs.items() if k in (self.DCRDR, self.DEMCR)}
        self.reset()
        self.regs.update(kept)
