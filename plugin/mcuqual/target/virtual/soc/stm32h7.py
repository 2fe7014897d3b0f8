"""The STM32H742/743/753/750 parts (RM0433 Rev 8) that the firmware, pyOCD's built-in
`stm32h743xx` target and its flash algorithm touch: RCC and PWR ready bits that follow
their requests, SYSCFG's overdrive enable (VOS0), the flash interface
(stm32h7_flash), GPIO ports with the marker pin's edges, the watchdogs the flash
algorithm refreshes, DBGMCU and the D3 debug domain's SWO and SWO trace funnel.

Addresses are those of the AHB view (the CPU's, and the debugger's through AP0): the
debug components at 0x5C00_xxxx appear at 0xE00E_xxxx through the APB-AP (AP2), RM0433
60.4.2 and 60.5."""
from __future__ import annotations

import ctypes
from typing import Callable

from mcuqual.boards.profile import MemoryRegion
from mcuqual.target.virtual.arm.coresight import CLASS_CORESIGHT, Peripheral
from mcuqual.target.virtual.soc.stm32h7_flash import FlashController
from mcuqual.target.virtual.soc.stm32l4 import Gpio as _Stm32l4Gpio

# DBGMCU_IDC of the STM32H742/743/750/753: DEV_ID 0x450, REV_ID 0x2003 for revision V
# (0x1003 is revision Y), RM0433 60.5.8 "DBGMCU identity code register".
IDCODE_STM32H743_REV_V = 0x2003_0450
RCC_BASE, PWR_BASE, SYSCFG_BASE = 0x5802_4400, 0x5802_4800, 0x5800_0400
FLASH_INTERFACE_BASE = 0x5200_2000
GPIO_BASE, GPIO_STRIDE, GPIO_PORTS = 0x5802_0000, 0x400, "ABCDEFGHIJK"
IWDG1_BASE = 0x5800_4800
# IWDG2 (D3 APB) and WWDG2 (D2 APB1) exist on the dual-core STM32H745/755/747/757; on
# the H743 their addresses are reserved. pyOCD's STM32H7 flash algorithm refreshes them
# anyway (it is shared by the whole family), so the model answers them as reserved
# space that reads 0 and ignores writes.
RESERVED_WATCHDOGS = (0x5800_4C00, 0x4000_2C00)
DBGMCU_BASE, SWO_BASE, SWTF_BASE = 0x5C00_1000, 0x5C00_3000, 0x5C00_4000


class Rcc(Peripheral):
    """RM0433 8.7 RCC: oscillator and PLL ready flags follow their enables (RCC_CR), the
    system clock switch status follows the switch (RCC_CFGR.SWS = SW), the D1/D2 domain
    clocks read ready; dividers and enables are plain registers with their reset values."""

    name = "RCC"
    CR, CFGR = 0x000, 0x010
    # RCC_CR: (enable, ready) bit pairs: HSI, CSI, HSI48, HSE, PLL1, PLL2, PLL3 (8.7.2)
    READY = ((0, 2), (7, 8), (12, 13), (16, 17), (24, 25), (26, 27), (28, 29))
    D1CKRDY, D2CKRDY = 1 << 14, 1 << 15
    RESET_VALUES = {
        CR: 0x0000_0025,            # HSI on and ready, HSIDIVF (8.7.2)
        0x028: 0x0202_0200,         # PLLCKSELR: DIVM1..3 = 32 (8.7.11)
        0x02C: 0x01FF_0000,         # PLLCFGR: all PLL outputs enabled (8.7.12)
        0x030: 0x0101_0280,         # PLL1DIVR (8.7.13)
        0x038: 0x0101_0280,         # PLL2DIVR
        0x040: 0x0101_0280,         # PLL3DIVR
    }

    def __init__(self, base: int) -> None:
        super().__init__(base, 0x400)

    def read(self, offset: int, size: int) -> int:
        aligned = offset & ~3
        value = self.regs.get(aligned, 0)
        if aligned == self.CR:
            for enable, ready in self.READY:
                value = value | (1 << ready) if value & (1 << enable) else value & ~(1 << ready)
            value |= self.D1CKRDY | self.D2CKRDY
        elif aligned == self.CFGR:
            value = (value & ~(0x7 << 3)) | ((value & 0x7) << 3)
        return value >> (8 * (offset & 3))


class Pwr(Peripheral):
    """RM0433 6.8 PWR: the supply configuration (CR3) is taken at once, so CSR1.ACTVOSRDY
    reads 1 and CSR1.ACTVOS follows the requested scale; a voltage scale change
    (D3CR.VOS, and VOS0 through SYSCFG_PWRCR.ODEN, 6.6.2) completes at once: D3CR.VOSRDY
    reads 1."""

    name = "PWR"
    CR1, CSR1, CR3, D3CR = 0x00, 0x04, 0x0C, 0x18
    CSR1_ACTVOSRDY, VOSRDY = 1 << 13, 1 << 13
    VOS_SHIFT = 14
    RESET_VALUES = {CR1: 0xF000_C000,
                    CR3: 0x0000_0006,         # SCUEN, LDOEN: LDO supply at reset (6.8.4)
                    D3CR: 0x0000_4000}        # VOS = 01: scale 3 (6.8.6)

    def __init__(self, base: int) -> None:
        super().__init__(base, 0x400)

    def read(self, offset: int, size: int) -> int:
        aligned = offset & ~3
        value = self.regs.get(aligned, 0)
        if aligned == self.CSR1:
            vos = (self.regs.get(self.D3CR, 0) >> self.VOS_SHIFT) & 0x3
            value = (value & ~(0x3 << self.VOS_SHIFT)) | (vos << self.VOS_SHIFT) | \
                self.CSR1_ACTVOSRDY
        elif aligned == self.D3CR:
            value |= self.VOSRDY
        return value >> (8 * (offset & 3))


class Syscfg(Peripheral):
    """RM0433 12.3 SYSCFG: PWRCR.ODEN (12.3.10), the overdrive that takes VOS1 to VOS0."""

    name = "SYSCFG"
    PWRCR = 0x2C

    def __init__(self, base: int) -> None:
        super().__init__(base, 0x400)

    @property
    def overdrive(self) -> bool:
        return bool(self.regs.get(self.PWRCR, 0) & 1)


class Gpio(_Stm32l4Gpio):
    """RM0433 11.4 GPIO port: the L4's model (ODR and BSRR drive the outputs, edges are
    logged), without BRR, which the H7's ports do not have (offset 0x28 is reserved);
    MODER resets to analog except the debug pins of ports A and B (11.4.1)."""

    BRR = -1
    MODER_RESET = {"A": 0xABFF_FFFF, "B": 0xFFFF_FEBF}

    def __init__(self, base: int, port: str, cycles: Callable[[], int],
                 edges: list[tuple[int, str, int]]) -> None:
        self.RESET_VALUES = {0x00: self.MODER_RESET.get(port, 0xFFFF_FFFF)}
        super().__init__(base, port, cycles, edges)


class Iwdg(Peripheral):
    """RM0433 45 IWDG1: the key, prescaler and reload registers are accepted (the flash
    algorithm refreshes the watchdog and sets its prescaler); the countdown is not
    modelled, so a started watchdog never resets the virtual board."""

    name = "IWDG"
    RESET_VALUES = {0x08: 0x0000_0FFF, 0x10: 0x0000_0FFF}   # RLR, WINR

    def __init__(self, base: int) -> None:
        super().__init__(base, 0x400)


class Reserved(Peripheral):
    """Address space with nothing behind it on this part: reads 0, writes are dropped."""

    name = "reserved"

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        pass


class Dbgmcu(Peripheral):
    """RM0433 60.5.8 DBGMCU: the identity code (read-only) and the debug control and
    freeze registers. In the debug domain: a system reset keeps it."""

    name = "DBGMCU"
    IDC, CR = 0x00, 0x04
    CR_TRACECLKEN, CR_D1DBGCKEN, CR_D3DBGCKEN = 1 << 20, 1 << 21, 1 << 22

    def __init__(self, base: int, idcode: int) -> None:
        super().__init__(base, 0x1000)
        self.idcode = idcode

    def read(self, offset: int, size: int) -> int:
        if offset & ~3 == self.IDC:
            return self.idcode >> (8 * (offset & 3))
        return super().read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset & ~3 != self.IDC:
            super().write(offset, size, value)

    @property
    def trace_clock(self) -> bool:
        return bool(self.regs.get(self.CR, 0) & self.CR_TRACECLKEN)


# CoreSight identification of the D3 debug domain's trace components (ARM IHI 0029 and
# the CoreSight SoC-400 parts they are, RM0433 60.5.7): PIDR0..PIDR4 and the class.
# pyOCD knows part 0x914 as the CS-400 "SWO" and drives it as a TPIU (component_ids.py).
SWO_IDS = (0x14, 0xB9, 0x0B, 0x00, 0x04, CLASS_CORESIGHT)
SWTF_IDS = (0x08, 0xB9, 0x0B, 0x00, 0x04, CLASS_CORESIGHT)
CORESIGHT_LAR, CORESIGHT_DEVID, CORESIGHT_DEVTYPE = 0xFB0, 0xFC8, 0xFCC


class Swo(Peripheral):
    """RM0433 60.5.7 SWO: the serial wire output, programmed like a TPIU's SWO port
    (CODR, the prescaler, at 0x010; SPPR, the protocol, at 0x0F0; DEVID bits 11 and 10:
    NRZ (UART) and Manchester supported, bit 11 being what pyOCD checks before it starts
    SWV). Its bit rate does not slow the model. The ID registers' part numbers are those
    pyOCD's component table knows; their revision fields are not taken from the part."""

    name = "SWO"
    CODR, SPPR = 0x010, 0x0F0

    def __init__(self, base: int) -> None:
        super().__init__(base, 0x1000, SWO_IDS,
                         {CORESIGHT_DEVID: 0x0000_0C00, CORESIGHT_DEVTYPE: 0x11})
        self.regs[self.SPPR] = 0x1                  # Manchester until the debugger says NRZ


class Swtf(Peripheral):
    """RM0433 60.5.7 SWTF: the funnel in front of the SWO. CTRL.ENS0 lets the Cortex-M7's
    ITM/ETM trace through (the reset value keeps it closed); LAR unlocks its registers."""

    name = "SWTF"
    CTRL = 0x000
    CTRL_ENS0 = 1 << 0

    def __init__(self, base: int) -> None:
        super().__init__(base, 0x1000, SWTF_IDS, {CORESIGHT_DEVID: 0x0000_0002,
                                                   CORESIGHT_DEVTYPE: 0x12})
        self.regs[self.CTRL] = 0x0000_0300           # HT = 3, no input enabled

    @property
    def m7_enabled(self) -> bool:
        return bool(self.regs.get(self.CTRL, 0) & self.CTRL_ENS0)


class Stm32h7Soc:
    """The STM32H743's parts on one virtual board: what it maps, resets and asks for wait
    states (`flash_interface`), and the GPIO edges its modelled power monitor reads."""

    def __init__(self, flash: MemoryRegion, flash_buffer: ctypes.Array,
                 on_flash_changed: Callable[[int, int], None], cycles: Callable[[], int],
                 pin_edges: list) -> None:
        self.flash_interface = FlashController(FLASH_INTERFACE_BASE, flash.start, flash.size,
                                               flash.banks, flash_buffer, on_flash_changed)
        self.rcc, self.pwr, self.syscfg = Rcc(RCC_BASE), Pwr(PWR_BASE), Syscfg(SYSCFG_BASE)
        self.gpio = [Gpio(GPIO_BASE + GPIO_STRIDE * index, port, cycles, pin_edges)
                     for index, port in enumerate(GPIO_PORTS)]
        self.iwdg = Iwdg(IWDG1_BASE)
        self.reserved = [Reserved(base, 0x400) for base in RESERVED_WATCHDOGS]
        self.dbgmcu = Dbgmcu(DBGMCU_BASE, IDCODE_STM32H743_REV_V)
        self.swo, self.swtf = Swo(SWO_BASE), Swtf(SWTF_BASE)

    @property
    def peripherals(self) -> list[Peripheral]:
        return [self.flash_interface, self.rcc, self.pwr, self.syscfg, *self.gpio, self.iwdg,
                *self.reserved, self.dbgmcu, self.swo, self.swtf]

    @property
    def swo_routed(self) -> bool:
        """Whether the M7's ITM output reaches the SWO pin: the trace clock is on
        (DBGMCU_CR.TRACECLKEN) and the SWO funnel passes the M7 (SWTF_CTRL.ENS0)."""
        return self.dbgmcu.trace_clock and self.swtf.m7_enabled

    def system_reset(self) -> None:
        """What a system reset returns to its reset values (DBGMCU, SWO and SWTF are in
        the debug domain and keep theirs)."""
        for peripheral in (self.rcc, self.pwr, self.syscfg, self.flash_interface, *self.gpio,
                           self.iwdg):
            peripheral.reset()
