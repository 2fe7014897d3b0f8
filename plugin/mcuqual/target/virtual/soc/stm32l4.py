"""The STM32L4/L4+ SoC parts the firmware and a debugger touch (RM0432): RCC and PWR
ready bits that follow their enables, the flash access control register, GPIO (with the
marker pin's edges for the modelled power monitor) and DBGMCU."""
from __future__ import annotations

import ctypes
from typing import Callable

from mcuqual.boards.profile import MemoryRegion
from mcuqual.target.virtual.arm.coresight import Peripheral
from mcuqual.target.virtual.soc.stm32l4_flash import FlashController

# DBGMCU_IDCODE of the STM32L4R/L4S line: DEV_ID 0x470, REV_ID 0x1001 (RM0432, DBGMCU).
IDCODE_STM32L4R9 = 0x1001_0470
RCC_BASE, PWR_BASE, FLASH_INTERFACE_BASE = 0x4002_1000, 0x4000_7000, 0x4002_2000
GPIO_BASE, GPIO_STRIDE, GPIO_PORTS = 0x4800_0000, 0x400, "ABCDEFGHI"
DBGMCU_BASE = 0xE004_2000


class Rcc(Peripheral):
    """RM0432 RCC: oscillator and PLL ready flags follow their enables; SWS follows SW."""

    name = "RCC"
    CR, CFGR = 0x00, 0x08
    RESET_VALUES = {CR: 0x63}                    # MSI on and ready at reset

    def __init__(self, base: int) -> None:
        super().__init__(base, 0x400)

    def read(self, offset: int, size: int) -> int:
        value = super().read(offset, size)
        if offset == self.CR:
            for enable, ready in ((0, 1), (8, 10), (16, 17), (24, 25), (26, 27), (28, 29)):
                value = value | (1 << ready) if value & (1 << enable) else value & ~(1 << ready)
        elif offset == self.CFGR:
            value = (value & ~0xC) | ((value & 0x3) << 2)
        return value


class Pwr(Peripheral):
    """RM0432 PWR: voltage scaling completes at once (VOSF reads 0)."""

    name = "PWR"
    RESET_VALUES = {0x00: 1 << 9,                # range 1
                    0x80: 1 << 8}                # range 1 normal mode

    def __init__(self, base: int) -> None:
        super().__init__(base, 0x400)


class Gpio(Peripheral):
    """RM0432 GPIO port: ODR, BSRR (set wins over reset) and BRR drive the outputs, and
    every change of an output level is logged with the cycle count, as a logic analyser
    or a power monitor's logic input would see it."""

    name = "GPIO"
    ODR, BSRR, BRR = 0x14, 0x18, 0x28
    RESET_VALUES = {0x00: 0xFFFF_FFFF}            # MODER: analog mode

    def __init__(self, base: int, port: str, cycles: Callable[[], int],
                 edges: list[tuple[int, str, int]]) -> None:
        super().__init__(base, 0x400)
        self.port, self.cycles, self.edges = port, cycles, edges

    def write(self, offset: int, size: int, value: int) -> None:
        old = self.regs.get(self.ODR, 0)
        if offset == self.BSRR:
            new = (old & ~(value >> 16)) | (value & 0xFFFF)
        elif offset == self.BRR:
            new = old & ~(value & 0xFFFF)
        elif offset == self.ODR:
            new = value & 0xFFFF
        else:
            super().write(offset, size, value)
            return
        self.regs[self.ODR] = new
        changed = old ^ new
        for pin in range(16):
            if changed & (1 << pin):
                self.edges.append((self.cycles(), f"P{self.port}{pin}", (new >> pin) & 1))


class Dbgmcu(Peripheral):
    name = "DBGMCU"

    def __init__(self, base: int, idcode: int) -> None:
        super().__init__(base, 0x100)
        self.regs[0x00] = idcode


class Stm32l4Soc:
    """The STM32L4/L4+ parts of one virtual board: what it maps, resets and asks for wait
    states (`flash_interface`), and the GPIO edges its modelled power monitor reads."""

    def __init__(self, flash: MemoryRegion, flash_buffer: ctypes.Array,
                 on_flash_changed: Callable[[int, int], None], cycles: Callable[[], int],
                 pin_edges: list) -> None:
        self.flash_interface = FlashController(FLASH_INTERFACE_BASE, flash.start, flash.size,
                                               flash.page_size or 0x1000, flash.banks,
                                               flash_buffer, on_flash_changed)
        self.rcc, self.pwr = Rcc(RCC_BASE), Pwr(PWR_BASE)
        self.gpio = [Gpio(GPIO_BASE + GPIO_STRIDE * index, port, cycles, pin_edges)
                     for index, port in enumerate(GPIO_PORTS)]
        self.dbgmcu = Dbgmcu(DBGMCU_BASE, IDCODE_STM32L4R9)

    @property
    def peripherals(self) -> list[Peripheral]:
        return [self.rcc, self.pwr, self.flash_interface, *self.gpio, self.dbgmcu]

    def system_reset(self) -> None:
        """What a system reset returns to its reset values (DBGMCU is in the debug domain)."""
        for peripheral in (self.rcc, self.pwr, self.flash_interface, *self.gpio):
            peripheral.reset()
