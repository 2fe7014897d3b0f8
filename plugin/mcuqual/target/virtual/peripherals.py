"""Register models of the peripherals the firmware and a debugger touch.

Each model holds 32-bit registers by offset and implements the behaviour that
matters: ready bits that follow enables (RCC, PWR), the flash access control
register, the Cortex-M system control block, DWT's cycle counter driven by the
cycle model, and the ITM, whose stimulus-port writes become SWO packets.
Registers no model claims read as zero, are remembered when written, and are
reported once each so nothing is silently ignored.
"""
from __future__ import annotations

import logging
from typing import Callable, Protocol

from mcuqual.target.virtual.itm import SYNC, local_timestamp, source_packet

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
                  component_class: int) -> dict[int, int]:
    """The ID registers at 0xFD0..0xFFC of a 4 KB CoreSight component."""
    registers = {0xFD0: pidr4, 0xFE0: pidr0, 0xFE4: pidr1, 0xFE8: pidr2, 0xFEC: pidr3}
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


class FlashInterface(Peripheral):
    """RM0432 FLASH: the access control register (wait states, ART enables)."""

    name = "FLASH"

    @property
    def wait_states(self) -> int:
        return self.regs.get(0x00, 0) & 0xF


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

    def __init__(self, base: int, core: DebugCore) -> None:
        self.RESET_VALUES = self.M4F_FEATURES
        super().__init__(base, 0x1000, M4_IDS["scs"])
        self.core = core
        self.dfsr = 0

    def read(self, offset: int, size: int) -> int:
        if offset == self.DHCSR:
            return self.core.debug_status()
        if offset == self.DFSR:
            return self.dfsr
        return super().read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset in self.M4F_FEATURES:
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


class Dwt(Peripheral):
    """DWT: CYCCNT counts the cycle model's cycles while CTRL.CYCCNTENA is set."""

    name = "DWT"
    CTRL, CYCCNT = 0x00, 0x04

    def __init__(self, base: int, cycles: Callable[[], int]) -> None:
        super().__init__(base, 0x1000, M4_IDS["dwt"])
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


class Itm(Peripheral):
    """ITM: stimulus writes become instrumentation packets on the SWO stream while
    the unit and the port are enabled, each followed by a local timestamp packet when
    TCR.TSENA is set (a decoder such as pyOCD's flushes its events on timestamps); a
    read of a port says the FIFO is ready."""

    name = "ITM"
    TER, TCR, LAR = 0xE00, 0xE80, 0xFB0
    TCR_TSENA = 1 << 1

    def __init__(self, base: int, sink: Callable[[bytes], None], trace_enabled: Callable[[], bool],
                 cycles: Callable[[], int] = lambda: 0) -> None:
        super().__init__(base, 0x1000, M4_IDS["itm"])
        self.sink = sink
        self.trace_enabled = trace_enabled
        self.cycles = cycles
        self._last_timestamp = 0
        self._synced = False

    def _enabled(self, port: int) -> bool:
        return (self.trace_enabled() and self.regs.get(self.TCR, 0) & 1
                and self.regs.get(self.TER, 0) & (1 << port)) != 0

    def read(self, offset: int, size: int) -> int:
        if offset < 0x80:
            return 1 if self.regs.get(self.TCR, 0) & 1 else 0
        return super().read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset < 0x80:
            port = offset // 4
            if self._enabled(port):
                if not self._synced:
                    self.sink(SYNC)
                    self._synced = True
                self.sink(source_packet(port, value, size))
                if self.regs.get(self.TCR, 0) & self.TCR_TSENA:
                    now = self.cycles()
                    self.sink(local_timestamp(max(0, now - self._last_timestamp)))
                    self._last_timestamp = now
            return
        super().write(offset, size, value)


class Tpiu(Peripheral):
    """The Cortex-M4 TPIU: identifies as a trace port (DEVTYPE 0x11) that can drive SWO in
    NRZ/UART mode (DEVID.NRZVALID); the SWO bit rate it is given does not slow the model."""

    name = "TPIU"
    DEVID, DEVTYPE = 0xFC8, 0xFCC

    def __init__(self, base: int) -> None:
        super().__init__(base, 0x1000, M4_IDS["tpiu"], {self.DEVID: 0xCA1, self.DEVTYPE: 0x11})


class RomTable(Peripheral):
    """The Cortex-M4 ROM table at 0xE00FF000: where a debugger finds SCS, DWT, FPB, ITM,
    TPIU and ETM (entries are signed offsets from the table, bit 0 = present)."""

    name = "ROM table"
    COMPONENTS = (0xE000_E000, 0xE000_1000, 0xE000_2000, 0xE000_0000, 0xE004_0000, 0xE004_1000)

    def __init__(self, base: int = 0xE00F_F000) -> None:
        super().__init__(base, 0x1000, M4_IDS["rom"])
        for index, component in enumerate(self.COMPONENTS):
            self.regs[4 * index] = ((component - base) & 0xFFFFF000) | 0x3
        self.regs[4 * len(self.COMPONENTS)] = 0               # end of table
        self.regs[0xFCC] = 0x1                                  # MEMTYPE: system memory present
