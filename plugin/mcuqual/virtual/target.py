"""The emulated MCU behind one probe-shaped interface.

Lifecycle, as for any debug probe: create -> load (or flash) -> reset -> run /
halt / step, read and write memory and core registers, read the SWO stream ->
close. A pyOCD probe plugin can sit on this class without knowing the
emulator (unicorn, Cortex-M4, Thumb, M-profile) underneath.
"""
from __future__ import annotations

import ctypes
import logging
import struct
import time
from pathlib import Path
from typing import Callable

from elftools.elf.elffile import ELFFile
from unicorn import (
    UC_ARCH_ARM,
    UC_ERR_EXCEPTION,
    UC_ERR_FETCH_PROT,
    UC_ERR_FETCH_UNMAPPED,
    UC_ERR_INSN_INVALID,
    UC_ERR_READ_PROT,
    UC_ERR_READ_UNMAPPED,
    UC_ERR_WRITE_PROT,
    UC_ERR_WRITE_UNMAPPED,
    UC_HOOK_BLOCK,
    UC_HOOK_MEM_INVALID,
    UC_HOOK_MEM_READ,
    UC_HOOK_MEM_WRITE,
    UC_MODE_MCLASS,
    UC_MODE_THUMB,
    UC_PROT_EXEC,
    UC_PROT_READ,
    UC_PROT_WRITE,
    Uc,
    UcError,
)
from unicorn import arm_const as arm

from ..boards import Board
from ..errors import McuqualError
from .cycles import CycleModel
from .flash_controller import FlashController
from .peripherals import (
    M4_IDS,
    Dbgmcu,
    Dwt,
    Itm,
    Peripheral,
    Pwr,
    Rcc,
    RomTable,
    SystemControlSpace,
)

log = logging.getLogger("mcuqual.virtual")

REGISTERS = {"r0": arm.UC_ARM_REG_R0, "r1": arm.UC_ARM_REG_R1, "r2": arm.UC_ARM_REG_R2,
             "r3": arm.UC_ARM_REG_R3, "r4": arm.UC_ARM_REG_R4, "r5": arm.UC_ARM_REG_R5,
             "r6": arm.UC_ARM_REG_R6, "r7": arm.UC_ARM_REG_R7, "r8": arm.UC_ARM_REG_R8,
             "r9": arm.UC_ARM_REG_R9, "r10": arm.UC_ARM_REG_R10, "r11": arm.UC_ARM_REG_R11,
             "r12": arm.UC_ARM_REG_R12, "sp": arm.UC_ARM_REG_SP, "lr": arm.UC_ARM_REG_LR,
             "pc": arm.UC_ARM_REG_PC, "xpsr": arm.UC_ARM_REG_XPSR, "msp": arm.UC_ARM_REG_MSP,
             "psp": arm.UC_ARM_REG_PSP, "control": arm.UC_ARM_REG_CONTROL}

PERIPHERAL_BASE, PERIPHERAL_SIZE = 0x4000_0000, 0x2000_0000
PPB_BASE, PPB_SIZE = 0xE000_0000, 0x0010_0000
DEMCR_OFFSET_IN_SCS = 0xDFC
SLICE_INSTRUCTIONS = 2_000_000
STM32L4R9_IDCODE = 0x1001_0470


class TargetFaultError(McuqualError):
    """The firmware did something real hardware would fault on."""

    def __init__(self, message: str, registers: dict[str, int], address: int | None) -> None:
        super().__init__(message)
        self.registers, self.address = registers, address


class TargetTimeoutError(McuqualError):
    """The firmware did not reach the expected state within its budget."""


def _page_round(size: int) -> int:
    return (size + 0xFFF) & ~0xFFF


class VirtualTarget:
    def __init__(self, board: Board, cycle_accurate: bool = True) -> None:
        self.board = board
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(arm.UC_CPU_ARM_CORTEX_M4)
        self.swo = bytearray()
        self._swo_enabled = False
        self.unmodelled: set[int] = set()
        self._invalid: tuple[int, int, int] | None = None
        self._buffers: list[ctypes.Array] = []
        self._map_memories()
        flash = self._flash_region()
        self.flash_interface = FlashController(0x4002_2000, flash.start, flash.size,
                                               flash.page_size or 0x1000, flash.banks,
                                               self._buffers[0], self._flash_changed)
        self._fixups: list[tuple[int, bytes]] = []
        self._flash_fault: int | None = None
        self.scs = SystemControlSpace(0xE000_E000, self._reset_request, self._debug_register,
                                      lambda: self.halted)
        self._peripherals: list[Peripheral] = [
            Rcc(0x4002_1000), Pwr(0x4000_7000), self.flash_interface,
            Itm(0xE000_0000, self._swo_sink, self._trace_enabled),
            Dwt(0xE000_1000, lambda: self.cycle_model.cycles),
            self.scs, Dbgmcu(0xE004_2000, STM32L4R9_IDCODE),
            Peripheral(0xE004_0000, 0x1000, M4_IDS["tpiu"]),   # the debugger configures it
            Peripheral(0xE004_1000, 0x1000, M4_IDS["etm"]),
            Peripheral(0xE000_2000, 0x1000, M4_IDS["fpb"]),
            RomTable(),
        ]
        self.uc.mmio_map(PERIPHERAL_BASE, PERIPHERAL_SIZE, self._mmio_read, PERIPHERAL_BASE,
                         self._mmio_write, PERIPHERAL_BASE)
        self.uc.mmio_map(PPB_BASE, PPB_SIZE, self._mmio_read, PPB_BASE, self._mmio_write, PPB_BASE)
        self.cycle_model = CycleModel(flash.start, flash.end,
                                      lambda: self.flash_interface.wait_states)
        self.uc.hook_add(UC_HOOK_MEM_INVALID, self._on_invalid)
        self.uc.hook_add(UC_HOOK_MEM_WRITE, self._on_flash_write, begin=flash.start,
                         end=flash.end - 1)
        # a store's fix-up lands once its block is done: flash is programmed by code in RAM
        self.uc.hook_add(UC_HOOK_BLOCK, self._apply_fixups, begin=self.ram_start,
                         end=self.ram_end - 1)
        self._cycle_hooks: list[int] = []
        self._stop_hook: int | None = None
        self._stop_armed = False
        self._pending_reset = False
        self.halted = True
        if cycle_accurate:
            self.set_cycle_accounting(True)

    # ---- memory map ------------------------------------------------------------
    def _flash_region(self):
        return next(r for r in self.board.memory if r.kind == "flash")

    def _map_memories(self) -> None:
        flash = self._flash_region()
        flash_buffer = ctypes.create_string_buffer(b"\xff" * flash.size, flash.size)
        self._buffers.append(flash_buffer)
        # writable to the emulator so the flash controller can see stores; a write hook
        # decides what each store really does (program, or fault as on the part)
        self.uc.mem_map_ptr(flash.start, flash.size, UC_PROT_READ | UC_PROT_WRITE | UC_PROT_EXEC,
                            ctypes.addressof(flash_buffer))
        # boot alias at 0: what a NULL read sees on the real part
        self.uc.mem_map_ptr(0, flash.size, UC_PROT_READ | UC_PROT_EXEC,
                            ctypes.addressof(flash_buffer))
        rams = sorted((r for r in self.board.memory if r.kind == "ram"), key=lambda r: r.start)
        start, end = rams[0].start, rams[-1].end
        ram_buffer = ctypes.create_string_buffer(end - start)
        self._buffers.append(ram_buffer)
        self.uc.mem_map_ptr(start, _page_round(end - start), UC_PROT_READ | UC_PROT_WRITE |
                            UC_PROT_EXEC, ctypes.addressof(ram_buffer))
        for region in rams:
            if region.alias:
                self.uc.mem_map_ptr(region.alias, region.size, UC_PROT_READ | UC_PROT_WRITE | UC_PROT_EXEC,
                                    ctypes.addressof(ram_buffer) + region.start - start)
        self.ram_start, self.ram_end = start, end

    def _peripheral(self, address: int) -> Peripheral | None:
        for peripheral in self._peripherals:
            if peripheral.base <= address < peripheral.base + peripheral.size:
                return peripheral
        return None

    def _mmio_read(self, uc, offset: int, size: int, base: int) -> int:
        address = base + offset
        peripheral = self._peripheral(address)
        if peripheral is None:
            self._note_unmodelled(address, "read")
            return 0
        return peripheral.read(address - peripheral.base, size) & ((1 << (8 * size)) - 1)

    def _mmio_write(self, uc, offset: int, size: int, value: int, base: int) -> None:
        address = base + offset
        peripheral = self._peripheral(address)
        if peripheral is None:
            self._note_unmodelled(address, "write")
            return
        peripheral.write(address - peripheral.base, size, value)

    def _note_unmodelled(self, address: int, access: str) -> None:
        if address not in self.unmodelled:
            self.unmodelled.add(address)
            log.warning("virtual %s: unmodelled peripheral %s at 0x%08x", self.board.name, access,
                        address)

    # ---- trace -------------------------------------------------------------------
    def _trace_enabled(self) -> bool:
        return bool(self.scs.read(DEMCR_OFFSET_IN_SCS, 4) & (1 << 24))

    def _swo_sink(self, packet: bytes) -> None:
        if self._swo_enabled:
            self.swo.extend(packet)

    def swo_start(self) -> None:
        self._swo_enabled = True

    def swo_read(self) -> bytes:
        data = bytes(self.swo)
        self.swo.clear()
        return data

    def swo_stop(self) -> None:
        self._swo_enabled = False

    # ---- cycles ------------------------------------------------------------------
    def set_cycle_accounting(self, enabled: bool) -> None:
        """Per-block cycle costs (slow) or plain emulation (fast; DWT stands still)."""
        if enabled and not self._cycle_hooks:
            flash = self._flash_region()
            model = self.cycle_model
            fetch = self.uc.mem_read
            self._cycle_hooks = [
                self.uc.hook_add(UC_HOOK_BLOCK,
                                 lambda uc, address, size, data: model.on_block(address, size, fetch)),
                self.uc.hook_add(UC_HOOK_MEM_READ,
                                 lambda uc, access, address, size, value, data:
                                 model.on_flash_read(address), begin=flash.start, end=flash.end - 1),
            ]
        elif not enabled:
            for hook in self._cycle_hooks:
                self.uc.hook_del(hook)
            self._cycle_hooks = []

    @property
    def cycle_accurate(self) -> bool:
        return bool(self._cycle_hooks)

    # ---- memory and registers ---------------------------------------------------
    def read_memory(self, address: int, size: int) -> bytes:
        return bytes(self.uc.mem_read(address, size))

    def write_memory(self, address: int, data: bytes) -> None:
        self.uc.mem_write(address, bytes(data))

    def read_u32(self, address: int) -> int:
        return struct.unpack("<I", self.read_memory(address, 4))[0]

    def write_u32(self, address: int, value: int) -> None:
        self.write_memory(address, struct.pack("<I", value & 0xFFFFFFFF))

    def read_core_register(self, name: str) -> int:
        return self.uc.reg_read(REGISTERS[name])

    def write_core_register(self, name: str, value: int) -> None:
        self.uc.reg_write(REGISTERS[name], value)

    # DCRSR register selectors (ARMv7-M ARM, C1.6.3)
    _SELECTORS = {**{n: f"r{n}" for n in range(13)}, 13: "sp", 14: "lr", 15: "pc", 16: "xpsr",
                  17: "msp", 18: "psp", 20: "control"}

    def _debug_register(self, selector: int, value: int | None) -> int:
        name = self._SELECTORS.get(selector)
        if name is None:
            return 0
        if value is not None:
            self.write_core_register(name, value)
            return value
        return self.read_core_register(name)

    def step(self) -> None:
        """Execute one instruction."""
        pc = self.read_core_register("pc")
        try:
            self.uc.emu_start(pc | 1, 0, count=1)
        except UcError as error:
            raise self._fault(error) from None
        finally:
            self._apply_fixups()

    def registers(self) -> dict[str, int]:
        return {name: self.read_core_register(name) for name in ("pc", "lr", "sp", "xpsr")}

    # ---- program, reset, run --------------------------------------------------------
    def load_elf(self, path: Path) -> None:
        """Write the ELF's loadable segments at their load addresses (what flashing produces)."""
        with open(path, "rb") as handle:
            for segment in ELFFile(handle).iter_segments():
                if segment["p_type"] == "PT_LOAD" and segment["p_filesz"]:
                    self.write_memory(segment["p_paddr"], segment.data())

    def _reset_request(self) -> None:
        self._pending_reset = True
        self.uc.emu_stop()

    def reset(self, halt: bool = True) -> None:
        """Core reset: SP and PC from the vector table at the start of flash."""
        flash = self._flash_region()
        sp, pc = struct.unpack("<II", self.read_memory(flash.start, 8))
        self.write_core_register("sp", sp)
        self.write_core_register("msp", sp)
        self.write_core_register("pc", pc & ~1)
        self.write_core_register("xpsr", 1 << 24)     # Thumb bit
        self._pending_reset = False
        self.flash_interface.reset()
        self.halted = halt

    def stop_on_write(self, address: int) -> None:
        """Stop emulation once, as soon as the firmware next writes `address` (a mailbox field)."""
        if self._stop_hook is not None:
            self.uc.hook_del(self._stop_hook)
        self._stop_armed = True

        def on_write(uc, access, addr, size, value, data):
            if self._stop_armed:              # one shot: a restarted store must not stop again
                self._stop_armed = False
                uc.emu_stop()
        self._stop_hook = self.uc.hook_add(UC_HOOK_MEM_WRITE, on_write, begin=address,
                                           end=address + 3)

    def _on_invalid(self, uc, access, address, size, value, data) -> bool:
        self._invalid = (access, address, size)
        return False

    def _flash_changed(self, offset: int, size: int) -> None:
        start = self._flash_region().start + offset
        self.uc.ctl_remove_cache(start, start + size)     # no stale translated code

    def _on_flash_write(self, uc, access, address, size, value, data) -> None:
        """Runs before the store lands: remember what the flash must hold afterwards."""
        base = ctypes.addressof(self._buffers[0])
        offset = (address - self._flash_region().start) & ~7
        # what the flash holds: a fix-up not yet applied knows better than the raw bytes
        pending = [content for where, content in self._fixups if where == offset]
        before = pending[-1] if pending else ctypes.string_at(base + offset, 8)
        if self.flash_interface.store(address, size, value):
            self._fixups.append((offset, self.flash_interface.expected(offset, before)))
        else:
            self._fixups.append((offset, before))
            self._flash_fault = address
            uc.emu_stop()

    def _apply_fixups(self, *unused) -> None:
        if not self._fixups:
            return
        base = ctypes.addressof(self._buffers[0])
        start = self._flash_region().start
        for offset, content in self._fixups:
            ctypes.memmove(base + offset, content, 8)
            self.uc.ctl_remove_cache(start + offset, start + offset + 8)
        self._fixups.clear()

    def _fault(self, error: UcError) -> TargetFaultError:
        registers = self.registers()
        access = self._invalid[1] if self._invalid else None
        where = f"pc=0x{registers['pc']:08x} lr=0x{registers['lr']:08x} sp=0x{registers['sp']:08x}"
        code = error.errno
        if code in (UC_ERR_READ_UNMAPPED, UC_ERR_WRITE_UNMAPPED) and access is not None and \
                self.ram_start - 0x10000 <= access < self.ram_start and \
                registers["sp"] < self.ram_start + 0x100:
            kind = f"stack overflow: write below the start of SRAM at 0x{access:08x}"
        elif code in (UC_ERR_READ_UNMAPPED, UC_ERR_READ_PROT):
            kind = f"bus fault: read of unmapped address 0x{access or 0:08x}"
        elif code == UC_ERR_WRITE_UNMAPPED:
            kind = f"bus fault: write to unmapped address 0x{access or 0:08x}"
        elif code == UC_ERR_WRITE_PROT:
            kind = f"bus fault: store to read-only memory (flash) at 0x{access or 0:08x}"
        elif code in (UC_ERR_FETCH_UNMAPPED, UC_ERR_FETCH_PROT):
            kind = f"bus fault: instruction fetch from 0x{access or registers['pc']:08x}"
        elif code == UC_ERR_INSN_INVALID:
            kind = "usage fault: undefined instruction"
        elif code == UC_ERR_EXCEPTION:
            kind = "unhandled exception (SVC, BKPT or UDF)"
        else:
            kind = f"emulation error: {error}"
        return TargetFaultError(f"target fault on the virtual {self.board.name}: {kind} ({where})",
                                registers, access)

    def run(self, until: Callable[[], bool], max_cycles: int, timeout_s: float) -> None:
        """Run until `until()` holds; fault and budget overruns raise."""
        deadline = time.monotonic() + timeout_s
        start_cycles = self.cycle_model.cycles
        executed = 0
        self.halted = False
        while not until():
            pc = self.read_core_register("pc")
            self._invalid = None
            try:
                self.uc.emu_start(pc | 1, 0, count=SLICE_INSTRUCTIONS)
            except UcError as error:
                self._apply_fixups()
                self.halted = True
                raise self._fault(error) from None
            self._apply_fixups()
            if self._flash_fault is not None:
                address, self._flash_fault = self._flash_fault, None
                self.halted = True
                registers = self.registers()
                raise TargetFaultError(
                    f"target fault on the virtual {self.board.name}: bus fault: store to "
                    f"read-only memory (flash) at 0x{address:08x} (pc=0x{registers['pc']:08x} "
                    f"lr=0x{registers['lr']:08x} sp=0x{registers['sp']:08x})", registers, address)
            if self._pending_reset:
                self.reset(halt=False)
            executed += SLICE_INSTRUCTIONS
            budget = self.cycle_model.cycles - start_cycles if self.cycle_accurate else executed
            if budget > max_cycles or time.monotonic() > deadline:
                self.halted = True
                what = "cycles" if self.cycle_accurate else "instructions"
                raise TargetTimeoutError(
                    f"the virtual {self.board.name} did not finish within its budget "
                    f"({budget:,} {what} of {max_cycles:,}, {timeout_s:.0f} s wall clock); "
                    f"pc=0x{self.read_core_register('pc'):08x}. The firmware hangs or the "
                    "budget is too small.")
        self.halted = True

    def close(self) -> None:
        self.uc = None
