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
import threading
import time
from pathlib import Path
from typing import Callable

from elftools.elf.elffile import ELFFile
from unicorn import (
    UC_ARCH_ARM,
    UC_HOOK_INTR,
    UC_ERR_FETCH_PROT,
    UC_ERR_FETCH_UNMAPPED,
    UC_ERR_INSN_INVALID,
    UC_ERR_READ_PROT,
    UC_ERR_READ_UNMAPPED,
    UC_ERR_WRITE_PROT,
    UC_ERR_WRITE_UNMAPPED,
    UC_HOOK_BLOCK,
    UC_HOOK_CODE,
    UC_HOOK_MEM_INVALID,
    UC_HOOK_MEM_READ,
    UC_HOOK_MEM_WRITE,
    UC_MEM_WRITE_PROT,
    UC_MODE_MCLASS,
    UC_MODE_THUMB,
    UC_PROT_EXEC,
    UC_PROT_READ,
    UC_PROT_WRITE,
    Uc,
    UcError,
)
from unicorn import arm_const as arm

from mcuqual.boards.profile import Board
from mcuqual.common.errors import McuqualError
from mcuqual.target.fault_status import (
    BFARVALID,
    HFSR_DEBUGEVT,
    HFSR_FORCED,
    IBUSERR,
    PRECISERR,
    UNDEFINSTR,
    FaultStatus,
)
from mcuqual.target.virtual.cycles import CYCLE_MODELS
from mcuqual.target.virtual.cycles_common import thumb_disassembler
from mcuqual.target.virtual.arm.coresight import M4_IDS, Peripheral
from mcuqual.target.virtual.arm.debug import (
    DEMCR_OFFSET_IN_SCS,
    DEMCR_VC_CORERESET,
    DFSR_VCATCH,
    REGISTERS,
    HaltingDebug,
)
from mcuqual.target.virtual.arm.dwt import Dwt
from mcuqual.target.virtual.arm.itm import Itm
from mcuqual.target.virtual.arm.rom_table import RomTable
from mcuqual.target.virtual.arm.scs import SystemControlSpace
from mcuqual.target.virtual.arm.exceptions import ExceptionEntry
from mcuqual.target.virtual.arm.tpiu import Tpiu
from mcuqual.target.virtual.errors import TargetFaultError, TargetTimeoutError
from mcuqual.target.virtual.soc import SOCS, soc_class
from mcuqual.target.virtual.watchdog import SliceWatchdog

log = logging.getLogger("mcuqual.virtual")


PERIPHERAL_BASE, PERIPHERAL_SIZE = 0x4000_0000, 0x2000_0000
PPB_BASE, PPB_SIZE = 0xE000_0000, 0x0010_0000
EXCP_UDEF, EXCP_SWI, EXCP_BKPT = 1, 2, 7      # unicorn's interrupt numbers
SLICE_INSTRUCTIONS = 2_000_000
# Plain emulation (no cycle model) never asks unicorn to count instructions - counting puts
# a helper call on every instruction - but slices by wall time: N instructions become
# N / PLAIN_INSTRUCTIONS_PER_S seconds (watchdog.py). Such a stop can land inside a
# peripheral access, which unicorn then runs again on resume; `_mmio_write` drops that
# replay. While flash is being programmed slices stay counted (a replayed store into flash
# would program twice).
PLAIN_INSTRUCTIONS_PER_S = 100_000_000
MIN_SLICE_S = 0.0002


def _page_round(size: int) -> int:
    return (size + 0xFFF) & ~0xFFF


class VirtualBoard(HaltingDebug, ExceptionEntry):
    """The emulated MCU of one board: the CPU and its memories (unicorn), the Arm parts
    (arm/: SCS, DWT, ITM, TPIU, ROM table, halting debug, exception entry) and the SoC
    family's parts (soc/), behind a probe-shaped interface (see the module docstring)."""

    def __init__(self, board: Board, cycle_accurate: bool = True) -> None:
        self.board = board
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        core = board.core_description
        self.uc.ctl_set_cpu_model(getattr(arm, f"UC_CPU_ARM_{core.unicorn_cpu}"))
        self.swo = bytearray()
        self._swo_lock = threading.Lock()
        self._swo_enabled = False
        self.unmodelled: set[int] = set()
        self._invalid: tuple[int, int, int] | None = None
        self._buffers: list[ctypes.Array] = []
        self._map_memories()
        flash = self._flash_region()
        self._fixups: list[tuple[int, bytes]] = []
        self._flash_fault: int | None = None
        ids = {**M4_IDS, **core.coresight}
        self.scs = SystemControlSpace(0xE000_E000, self, ids["scs"],
                                      {SystemControlSpace.CPUID: core.cpuid, **core.scs_features})
        self.pin_edges: list[tuple[int, str, int]] = []      # (cycle, pin, level)
        if board.virtual_soc not in SOCS:
            raise McuqualError(f"board {board.name}: no virtual SoC model "
                               f"{board.virtual_soc!r} (known: {', '.join(SOCS)}).")
        self.soc = soc_class(board.virtual_soc)(flash, self._buffers[0], self._flash_changed,
                                           lambda: self.cycle_model.cycles, self.pin_edges)
        self.flash_interface = self.soc.flash_interface
        self.dwt = Dwt(0xE000_1000, lambda: self.cycle_model.cycles, ids["dwt"],
                       band=lambda: getattr(self.cycle_model, "band_counters", lambda: None)())
        self._peripheral_at: dict[int, Peripheral | None] = {}
        self._peripherals: list[Peripheral] = [
            *self.soc.peripherals,
            Itm(0xE000_0000, self._swo_sink, self._trace_enabled, lambda: self.cycle_model.cycles,
                ids["itm"]),
            self.dwt,
            self.scs,
            Tpiu(0xE004_0000, ids["tpiu"]),                      # the debugger configures it
            Peripheral(0xE004_1000, 0x1000, ids["etm"], {0xFCC: 0x13}),
            Peripheral(0xE000_2000, 0x1000, ids["fpb"]),
            RomTable(ids=ids["rom"]),
        ]
        self.uc.mmio_map(PERIPHERAL_BASE, PERIPHERAL_SIZE, self._mmio_read, PERIPHERAL_BASE,
                         self._mmio_write, PERIPHERAL_BASE)
        self.uc.mmio_map(PPB_BASE, PPB_SIZE, self._mmio_read, PPB_BASE, self._mmio_write, PPB_BASE)
        if core.cycle_model not in CYCLE_MODELS:
            raise McuqualError(f"core {core.name}: no cycle model {core.cycle_model!r} "
                               f"(known: {', '.join(CYCLE_MODELS)}).")
        self.cycle_model = CYCLE_MODELS[core.cycle_model].for_board(
            board, lambda: self.flash_interface.wait_states)
        if hasattr(self.flash_interface, "cache_enables") and \
                hasattr(self.cycle_model, "set_flash_caches"):
            def follow_acr() -> None:
                self.cycle_model.set_flash_caches(*self.flash_interface.cache_enables)
            self.flash_interface.on_control = follow_acr
            follow_acr()
        self.uc.hook_add(UC_HOOK_MEM_INVALID, self._on_invalid)
        self._flash_write_hook: int | None = None
        self._flash_sync_due = False
        # a store's fix-up lands once its block is done: flash is programmed by code in RAM
        for start, end in self._ram_runs:
            self.uc.hook_add(UC_HOOK_BLOCK, self._apply_fixups, begin=start, end=end - 1)
        self.uc.hook_add(UC_HOOK_INTR, self._on_exception)
        self._cycle_hooks: list[int] = []
        self._stop_hook: int | None = None
        self._stop_armed = False
        self._stop_skip = False
        self._watchdog: SliceWatchdog | None = None     # started by the first plain slice
        # (address, value) of a peripheral write not yet followed by another peripheral
        # access in this slice, and one to drop as a replay (see _execute)
        self._last_mmio: tuple[int, int] | None = None
        self._replay: tuple[int, int] | None = None
        self._stores = thumb_disassembler(detail=False)
        self._pending_reset = False
        self._exception: int | None = None
        self._emulating = False
        self.cycle_model.stop_at_cycles = 1 << 62
        # debug state (ARMv7-M ARM C1.6); like the real debug domain it survives system reset
        self.halted = True
        self.lockup = False
        self.debug_enabled = False
        self.fault: TargetFaultError | None = None
        self._reset_sticky = True
        self._retire_sticky = False
        if cycle_accurate:
            self.set_cycle_accounting(True)

    # ---- memory map ------------------------------------------------------------
    def _flash_region(self):
        return next(r for r in self.board.memory if r.kind == "flash")

    def _map_memories(self) -> None:
        flash = self._flash_region()
        flash_buffer = ctypes.create_string_buffer(b"\xff" * flash.size, flash.size)
        self._buffers.append(flash_buffer)
        # read-only to the core while the flash controller is locked, so a store faults as
        # on the part; writable, with a write hook that decides what each store really does,
        # only while it is unlocked (`_sync_flash_writes`): a memory write hook, even on a
        # range, sends every store of the core through unicorn's slow path
        self.uc.mem_map_ptr(flash.start, flash.size, UC_PROT_READ | UC_PROT_EXEC,
                            ctypes.addressof(flash_buffer))
        if self.board.boot_alias:
            # boot alias at 0: what a NULL read sees on the real part
            self.uc.mem_map_ptr(0, flash.size, UC_PROT_READ | UC_PROT_EXEC,
                                ctypes.addressof(flash_buffer))
        # RAM regions that follow each other without a gap share one mapping (a run);
        # scattered RAMs (TCM, AXI SRAM, D2/D3 SRAM on an STM32H7) get one each
        rams = sorted((r for r in self.board.memory if r.kind == "ram"), key=lambda r: r.start)
        runs: list[list] = []
        for region in rams:
            if runs and runs[-1][-1].end == region.start:
                runs[-1].append(region)
            else:
                runs.append([region])
        rwx = UC_PROT_READ | UC_PROT_WRITE | UC_PROT_EXEC
        self._ram_runs = []
        for run in runs:
            start, end = run[0].start, run[-1].end
            buffer = ctypes.create_string_buffer(_page_round(end - start))
            self._buffers.append(buffer)
            self.uc.mem_map_ptr(start, _page_round(end - start), rwx, ctypes.addressof(buffer))
            for region in run:
                if region.alias:
                    self.uc.mem_map_ptr(region.alias, region.size, rwx,
                                        ctypes.addressof(buffer) + region.start - start)
            self._ram_runs.append((start, end))
        # the RAM the stack lives in, for fault diagnosis (a stack overflow runs off its start)
        self.ram_start, window_bytes = self.board.ram_window()
        self.ram_end = self.ram_start + window_bytes

    def _peripheral(self, address: int) -> Peripheral | None:
        # the firmware touches few distinct peripheral addresses, each thousands of times
        # (ITM stimulus, DWT_CYCCNT): remember where each one landed
        found = self._peripheral_at.get(address, self)
        if found is self:
            found = next((peripheral for peripheral in self._peripherals
                          if peripheral.base <= address < peripheral.base + peripheral.size),
                         None)
            self._peripheral_at[address] = found
        return found

    def _mmio_read(self, uc, offset: int, size: int, base: int) -> int:
        address = base + offset
        self._last_mmio = None                  # the write before it has retired
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
        access = (address, value)
        replay, self._replay = self._replay, None
        self._last_mmio = access
        if access == replay:
            return                              # the slice stopped on it: done already
        peripheral.write(address - peripheral.base, size, value)
        if peripheral is self.flash_interface and \
                self.flash_interface.accepts_stores != (self._flash_write_hook is not None):
            # never stop from here: a stop inside a peripheral access runs that access again
            # on resume (a second KEYR write would lock the flash). Unlocked, a store into flash
            # faults until the slice ends (`_on_invalid` then remaps and the store runs again);
            # locked, the hook refuses stores until the slice ends.
            if self._emulating:
                self._flash_sync_due = True
            else:
                self._sync_flash_writes()

    def _sync_flash_writes(self) -> None:
        """Flash writable with the store hook while the controller is unlocked, read-only
        while it is locked. Between slices only; translated code is dropped, so every store
        is translated again with (or without) the hook."""
        self._flash_sync_due = False
        flash = self._flash_region()
        wanted = self.flash_interface.accepts_stores
        if wanted and self._flash_write_hook is None:
            self.uc.mem_protect(flash.start, flash.size,
                                UC_PROT_READ | UC_PROT_WRITE | UC_PROT_EXEC)
            self._flash_write_hook = self.uc.hook_add(UC_HOOK_MEM_WRITE, self._on_flash_write,
                                                      begin=flash.start, end=flash.end - 1)
        elif not wanted and self._flash_write_hook is not None:
            self.uc.hook_del(self._flash_write_hook)
            self._flash_write_hook = None
            self.uc.mem_protect(flash.start, flash.size, UC_PROT_READ | UC_PROT_EXEC)
        else:
            return
        self.uc.ctl_flush_tb()

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
            with self._swo_lock:
                self.swo.extend(packet)

    def swo_start(self) -> None:
        self._swo_enabled = True

    def swo_read(self) -> bytes:
        """The SWO bytes since the last read (safe to call from a reader thread)."""
        with self._swo_lock:
            data = bytes(self.swo)
            self.swo.clear()
        return data

    def swo_stop(self) -> None:
        self._swo_enabled = False

    # ---- cycles ------------------------------------------------------------------
    def set_cycle_accounting(self, enabled: bool) -> None:
        """Per-block cycle costs (slow) or plain emulation (fast; DWT stands still)."""
        if enabled and not self._cycle_hooks:
            model = self.cycle_model
            fetch = self.uc.mem_read
            def on_block(uc, address, size, data):
                # slices end on block boundaries, so no block is ever charged twice
                if model.cycles >= model.stop_at_cycles:
                    uc.emu_stop()
                else:
                    model.on_block(address, size, fetch)
            def on_read(uc, access, address, size, value, data):
                model.on_data_read(address)
            if hasattr(model, "install_hooks"):      # accumulates in compiled hooks
                self._cycle_hooks = [model.install_hooks(self.uc)]
            else:
                # data reads the model times (flash through a cache, e.g.), range by range
                self._cycle_hooks = [self.uc.hook_add(UC_HOOK_BLOCK, on_block)] + [
                    self.uc.hook_add(UC_HOOK_MEM_READ, on_read, begin=start, end=end - 1)
                    for start, end in model.data_ranges]
            self.uc.ctl_flush_tb()      # unicorn keeps code translated before a hook: drop it
        elif not enabled and self._cycle_hooks:
            for hook in self._cycle_hooks:
                if callable(hook):
                    hook()
                else:
                    self.uc.hook_del(hook)
            self._cycle_hooks = []
            self.uc.ctl_flush_tb()      # and code translated with the hooks' calls

    def cycle_band(self) -> tuple[int, int, int] | None:
        """(nominal, low, high) cycles between the first and the last DWT_CYCCNT read
        since `clear_cycle_band` - the firmware reads it at an inference's start and end -
        with the cycle model's ranged rules at either end; None when the core's model keeps
        no ranged totals or CYCCNT was not read."""
        marks = self.dwt.band_marks
        if len(marks) != 2:
            return None
        return tuple(end - start for start, end in zip(*marks))

    def clear_cycle_band(self) -> None:
        self.dwt.clear_band_marks()

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

    def registers(self) -> dict[str, int]:
        return {name: self.read_core_register(name) for name in ("pc", "lr", "sp", "xpsr")}

    # ---- program, reset, run --------------------------------------------------------
    def load_elf(self, path: Path) -> None:
        """Write the ELF's loadable segments at their load addresses (what flashing produces)."""
        with open(path, "rb") as handle:
            for segment in ELFFile(handle).iter_segments():
                if segment["p_type"] == "PT_LOAD" and segment["p_filesz"]:
                    self.write_memory(segment["p_paddr"], segment.data())

    def reset_request(self) -> None:
        """AIRCR.SYSRESETREQ: from the core, the reset lands after the current instruction."""
        if self._emulating:
            self._pending_reset = True
            self.uc.emu_stop()
        else:
            self.system_reset()

    def system_reset(self) -> None:
        """nRST or SYSRESETREQ: the system resets, the debug domain keeps its settings, and
        with DEMCR.VC_CORERESET the core halts on the first instruction."""
        self.soc.system_reset()
        self.scs.system_reset()
        self.reset(halt=self._vector_catch(DEMCR_VC_CORERESET))
        if self.halted:
            self.scs.dfsr |= DFSR_VCATCH

    def reset(self, halt: bool = True) -> None:
        """Core reset: SP and PC from the vector table at the start of flash."""
        flash = self._flash_region()
        sp, pc = struct.unpack("<II", self.read_memory(flash.start, 8))
        for name in ("r0", "r1", "r2", "r3", "r12", "lr"):
            self.write_core_register(name, 0)
        self.write_core_register("sp", sp)
        self.write_core_register("msp", sp)
        self.write_core_register("pc", pc & ~1)
        self.write_core_register("xpsr", 1 << 24)     # Thumb bit
        self._pending_reset = False
        self._replay = None                      # a reset leaves no store to run again
        self.flash_interface.reset()
        self._sync_flash_writes()
        self.halted, self.lockup, self.fault = halt, False, None
        self._reset_sticky = True

    @property
    def stop_armed(self) -> bool:
        """A `stop_at` or `stop_on_write` is armed and has not fired yet."""
        return self._stop_armed

    def stop_at(self, address: int) -> None:
        """Stop emulation once, when the core next reaches `address` (e.g. the firmware's
        mq_inference_done), before executing it. A code hook on that one instruction: unlike
        a write hook it costs nothing elsewhere."""
        if self._stop_hook is not None:
            self.uc.hook_del(self._stop_hook)
        self._stop_armed = True
        self._stop_skip = self.read_core_register("pc") == address   # resting on it now

        def on_code(uc, pc, size, data):
            if self._stop_skip:
                self._stop_skip = False
            elif self._stop_armed:
                self._stop_armed = False
                uc.emu_stop()
        self._stop_hook = self.uc.hook_add(UC_HOOK_CODE, on_code, begin=address, end=address)

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
        flash = self._flash_region()
        if access == UC_MEM_WRITE_PROT and flash.start <= address < flash.end:
            if self.flash_interface.accepts_stores:
                self._flash_sync_due = True     # unlocked in this slice: remap, run it again
            else:
                self.flash_interface.store(address, size, value)   # its error flag (PGSERR)
                self._flash_fault = address
        return False

    def _on_exception(self, uc, number: int, data) -> None:
        self._exception = number
        uc.emu_stop()

    def _flash_changed(self, offset: int, size: int) -> None:
        start = self._flash_region().start + offset
        self.uc.ctl_remove_cache(start, start + size)     # no stale translated code
        self.cycle_model.forget_code(start, start + size)  # nor stale block costs

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

    def _fault_status(self, error: UcError | None) -> FaultStatus:
        """The fault status registers the core would have set for what stopped emulation."""
        access = self._invalid[1] if self._invalid else None
        pc = self.read_core_register("pc")
        if self._flash_fault is not None:
            return FaultStatus(PRECISERR | BFARVALID, HFSR_FORCED, self._flash_fault, 0,
                               "store to read-only memory (flash) at")
        if self._exception == EXCP_BKPT:
            return FaultStatus(0, HFSR_DEBUGEVT, 0, 0)
        if self._exception in (EXCP_UDEF, EXCP_SWI):
            return FaultStatus(UNDEFINSTR, HFSR_FORCED, 0, 0,
                               "usage fault: unhandled exception (SVC or UDF)")
        if self._exception is not None:           # a branch into the execute-never region
            return FaultStatus(IBUSERR | BFARVALID, HFSR_FORCED, pc, 0)
        code = error.errno if error is not None else None
        if code in (UC_ERR_FETCH_UNMAPPED, UC_ERR_FETCH_PROT):
            return FaultStatus(IBUSERR | BFARVALID, HFSR_FORCED,
                               access if access is not None else pc, 0)
        if code in (UC_ERR_READ_UNMAPPED, UC_ERR_READ_PROT):
            return FaultStatus(PRECISERR | BFARVALID, HFSR_FORCED, access or 0, 0,
                               "read of unmapped address")
        if code == UC_ERR_WRITE_UNMAPPED:
            return FaultStatus(PRECISERR | BFARVALID, HFSR_FORCED, access or 0, 0,
                               "write to unmapped address")
        if code == UC_ERR_WRITE_PROT:
            return FaultStatus(PRECISERR | BFARVALID, HFSR_FORCED, access or 0, 0,
                               "store to read-only memory (flash) at")
        if code == UC_ERR_INSN_INVALID:
            return FaultStatus(UNDEFINSTR, HFSR_FORCED, 0, 0)
        return FaultStatus(0, HFSR_FORCED, 0, 0, f"emulation error: {error}")

    def _on_store(self, pc: int) -> bool:
        try:
            code = bytes(self.uc.mem_read(pc, 4))
        except UcError:
            return False
        insn = next(self._stores.disasm(code, pc, 1), None)
        return insn is not None and insn.mnemonic.startswith(("str", "stm", "push"))

    def _execute(self, count: int) -> int:
        """Run up to `count` instructions from PC; returns how many were asked for (a plain
        slice bounded by wall time stands for that many)."""
        asked = count
        pc = self.read_core_register("pc")
        self._invalid, self._exception = None, None
        self._emulating = True
        wall_s = 0.0
        if self.cycle_accurate and count > 1:       # the block hook ends the slice
            self.cycle_model.stop_at_cycles, count = self.cycle_model.cycles + count, 0
        else:
            self.cycle_model.stop_at_cycles = 1 << 62
            if count > 1 and self._flash_write_hook is None:
                wall_s = max(MIN_SLICE_S, count / PLAIN_INSTRUCTIONS_PER_S)
                count = 0
        self._last_mmio = None
        if wall_s:
            if self._watchdog is None:
                self._watchdog = SliceWatchdog(self.uc)
            self._watchdog.arm(wall_s)
        try:
            self.uc.emu_start(pc | 1, 0, count=count)
            error = None
        except UcError as exc:
            error = exc
        finally:
            if wall_s:
                self._watchdog.disarm()
            self._emulating = False
            # A stop that lands on a peripheral write leaves the PC on that store, and unicorn
            # runs it (and its callback) again on resume; the PC a callback reads is not
            # exact, the PC after the stop is. The slice's last peripheral access was a write
            # and the core stands on a store: that write is dropped once when it comes again.
            # (A loop whose block starts with a store that rewrites the same value, with no
            # other peripheral access between, loses one identical write: harmless.)
            if self._last_mmio is not None and \
                    self._on_store(self.uc.reg_read(arm.UC_ARM_REG_PC)):
                self._replay = self._last_mmio
            self._apply_fixups()
            if self._flash_sync_due:
                self._sync_flash_writes()
                if error is not None and error.errno == UC_ERR_WRITE_PROT and \
                        self._flash_fault is None:
                    error, self._invalid = None, None     # the store runs again, now hooked
        self._retire_sticky = True
        if self.cycle_accurate and hasattr(self.cycle_model, "raise_pending"):
            self.cycle_model.raise_pending()      # an error inside a compiled hook's call
        if error is not None or self._flash_fault is not None or self._exception is not None:
            self._enter_fault(self._fault_status(error))
        elif self._pending_reset:
            self.system_reset()
        return count if self.cycle_accurate else asked

    def advance(self, instructions: int) -> int:
        """Let a running core execute up to `instructions`; a halted or locked-up core stays.
        The debugger-facing clock: a probe calls this while it polls the target."""
        if self.halted or self.lockup:
            return 0
        return self._execute(instructions)

    def run(self, until: Callable[[], bool], max_cycles: int, timeout_s: float) -> None:
        """Run until `until()` holds; a fault, an unexpected halt or a budget overrun raises."""
        deadline = time.monotonic() + timeout_s
        start_cycles = self.cycle_model.cycles
        executed = 0
        self.halted = False
        while not until():
            executed += self.advance(SLICE_INSTRUCTIONS)
            if self.fault is not None:
                self.halted = True
                raise self.fault
            if self.halted or self.lockup:
                raise TargetFaultError(f"the virtual {self.board.name} halted unexpectedly "
                                       f"(DFSR=0x{self.scs.dfsr:x})", self.registers(), None)
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
        if self._watchdog is not None:
            self._watchdog.close()
            self._watchdog = None
        self.uc = None
