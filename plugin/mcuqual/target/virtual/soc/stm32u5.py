"""The STM32U575/585 parts the firmware and a debugger touch (RM0456, non-secure addresses:
the part ships with TrustZone disabled): RCC and PWR ready bits that follow their
enables, the flash interface (stm32u5_flash), the instruction cache's control and status,
GPIO (with the marker pin's edges for the modelled power monitor, the same port model as
the STM32L4's) and DBGMCU."""
from __future__ import annotations

import ctypes
from typing import Callable

from mcuqual.boards.profile import MemoryRegion
from mcuqual.target.virtual.arm.coresight import Peripheral
from mcuqual.target.virtual.soc.stm32l4 import Dbgmcu, Gpio
from mcuqual.target.virtual.soc.stm32u5_flash import FlashController

# DBGMCU_IDCODE of the STM32U575/585 (RM0456 "Debug support (DBG)", DBGMCU_IDCODE):
# DEV_ID 0x482, REV_ID 0x2000 (silicon revision B, REV_ID_B of ST's STM32U5 HAL; the
# ids OpenOCD's stm32l4x flash driver knows this line by).
IDCODE_STM32U585 = 0x2000_0482
# RM0456 section 2, memory map (non-secure): AHB1 0x4002_0000, AHB2 0x4202_0000, AHB3
# 0x4602_0000; the DBGMCU on the external PPB.
FLASH_INTERFACE_BASE, ICACHE_BASE = 0x4002_2000, 0x4003_0400
GPIO_BASE, GPIO_STRIDE, GPIO_PORTS = 0x4202_0000, 0x400, "ABCDEFGHI"
PWR_BASE, RCC_BASE = 0x4602_0800, 0x4602_0C00
DBGMCU_BASE = 0xE004_4000


class Rcc(Peripheral):
    """RM0456 section 11 RCC: each oscillator's and PLL's ready flag in RCC_CR follows its
    enable (the model's clocks start at once); CFGR1.SWS follows SW."""

    name = "RCC"
    CR, CFGR1 = 0x00, 0x1C
    # (enable, ready) in RCC_CR: MSIS, MSIK, HSI16, HSI48, SHSI, HSE, PLL1, PLL2, PLL3
    READY = ((0, 2), (4, 5), (8, 10), (12, 13), (14, 15), (16, 17), (24, 25), (26, 27),
             (28, 29))
    RESET_VALUES = {CR: 0x35,                    # MSIS and MSIK (4 MHz) on and ready
                    0x8C: 0xC000_0000}           # AHB2ENR1: SRAM2 and SRAM3 clocked

    def __init__(self, base: int) -> None:
        super().__init__(base, 0x400)

    def read(self, offset: int, size: int) -> int:
        value = super().read(offset, size)
        if offset == self.CR:
            for enable, ready in self.READY:
                value = value | (1 << ready) if value & (1 << enable) else value & ~(1 << ready)
        elif offset == self.CFGR1:
            value = (value & ~0xC) | ((value & 0x3) << 2)
        return value


class Pwr(Peripheral):
    """RM0456 section 10 PWR: a voltage range is reached at once (VOSR.VOSRDY reads 1, and
    SVMSR.ACTVOS follows VOSR.VOS), the EPOD booster is ready as soon as it is enabled
    (BOOSTRDY follows BOOSTEN), and the regulator follows its selection (SVMSR.REGS
    follows CR3.REGSEL: LDO or SMPS)."""

    name = "PWR"
    CR3, VOSR, SVMSR = 0x08, 0x0C, 0x3C
    REGSEL, REGS = 1 << 1, 1 << 1
    BOOSTRDY, VOSRDY, VOS_SHIFT, BOOSTEN = 1 << 14, 1 << 15, 16, 1 << 18
    ACTVOSRDY, ACTVOS_SHIFT = 1 << 15, 16
    RESET_VALUES = {VOSR: VOSRDY}                # range 4, booster off, LDO

    def __init__(self, base: int) -> None:
        super().__init__(base, 0x400)

    def read(self, offset: int, size: int) -> int:
        vosr = self.regs.get(self.VOSR, 0)
        if offset == self.VOSR:
            return (vosr & ~self.BOOSTRDY) | self.VOSRDY | (
                self.BOOSTRDY if vosr & self.BOOSTEN else 0)
        if offset == self.SVMSR:
            regs = self.REGS if self.regs.get(self.CR3, 0) & self.REGSEL else 0
            vos = (vosr >> self.VOS_SHIFT) & 3
            return regs | self.ACTVOSRDY | (vos << self.ACTVOS_SHIFT)
        return super().read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == self.VOSR:                  # VOS and BOOSTEN are the writable bits
            value &= (3 << self.VOS_SHIFT) | self.BOOSTEN
        elif offset == self.SVMSR:
            return                               # read-only status
        super().write(offset, size, value)


class Icache(Peripheral):
    """RM0456 section 8 ICACHE: enable (CR.EN) and invalidation. An invalidation, the one
    after reset included, ends at once: SR.BUSYF reads 0 and BSYENDF is set (cleared by
    FCR.CBSYENDF). Disabling the cache starts an invalidation, as on the part."""

    name = "ICACHE"
    CR, SR, FCR = 0x00, 0x04, 0x0C
    EN, CACHEINV = 1 << 0, 1 << 1
    BSYENDF, CBSYENDF, CERRF, ERRF = 1 << 1, 1 << 1, 1 << 2, 1 << 2
    RESET_VALUES = {CR: 1 << 2,                  # WAYSEL = 1: 2-way set associative
                    SR: BSYENDF}                 # the invalidation after reset has ended

    def __init__(self, base: int) -> None:
        super().__init__(base, 0x400)

    @property
    def enabled(self) -> bool:
        return bool(self.regs.get(self.CR, 0) & self.EN)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == self.CR:
            was_enabled = self.enabled
            super().write(offset, size, value & ~self.CACHEINV)    # CACHEINV self-clears
            if value & self.CACHEINV or (was_enabled and not value & self.EN):
                self.regs[self.SR] = self.regs.get(self.SR, 0) | self.BSYENDF
        elif offset == self.FCR:
            self.regs[self.SR] = self.regs.get(self.SR, 0) & ~(
                value & (self.CBSYENDF | self.CERRF))
        elif offset == self.SR:
            return                               # read-only status
        else:
            super().write(offset, size, value)


class Stm32u5Soc:
    """The STM32U5 parts of one virtual board: what it maps, resets and asks for wait
    states (`flash_interface`), and the GPIO edges its modelled power monitor reads."""

    def __init__(self, flash: MemoryRegion, flash_buffer: ctypes.Array,
                 on_flash_changed: Callable[[int, int], None], cycles: Callable[[], int],
                 pin_edges: list) -> None:
        self.flash_interface = FlashController(FLASH_INTERFACE_BASE, flash.start, flash.size,
                                               flash.page_size or 0x2000, flash.banks,
                                               flash_buffer, on_flash_changed)
        self.rcc, self.pwr, self.icache = Rcc(RCC_BASE), Pwr(PWR_BASE), Icache(ICACHE_BASE)
        self.gpio = [Gpio(GPIO_BASE + GPIO_STRIDE * index, port, cycles, pin_edges)
                     for index, port in enumerate(GPIO_PORTS)]
        self.dbgmcu = Dbgmcu(DBGMCU_BASE, IDCODE_STM32U585)

    @property
    def icache_enabled(self) -> bool:
        """Whether the firmware turned the instruction cache on (for a cycle model)."""
        return self.icache.enabled

    @property
    def peripherals(self) -> list[Peripheral]:
        return [self.rcc, self.pwr, self.flash_interface, self.icache, *self.gpio, self.dbgmcu]

    def system_reset(self) -> None:
        """What a system reset returns to its reset values (DBGMCU is in the debug domain)."""
        for peripheral in (self.rcc, self.pwr, self.flash_interface, self.icache, *self.gpio):
            peripheral.reset()
