"""The virtual board as a pyOCD debug probe (`pyocd.probe` entry point "mcuqual-virtual").

Shaped like pyOCD's ST-LINK driver, which also hands pyOCD memory-level access:
DP and AP registers are answered by a small SW-DP / AHB-AP model, memory goes
through a memory interface straight into the emulator, SWO bytes come from the
emulated ITM. Everything above — target, cores, flash programming, SWV — is
pyOCD's own code, the same that drives a physical ST-LINK.

Time on the virtual board passes while the debugger talks to it: every probe
transaction lets a running core catch up on the host time that passed since the
previous one (paced at ten times a 120 MHz core, at most one slice), so polling
loops see the firmware progress, a sequence of quick accesses costs little, and
an idle board costs nothing. The board's flash persists across sessions in the cache,
as a real board's flash does across power cycles.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from pyocd.core import exceptions
from pyocd.core.memory_interface import MemoryInterface
from pyocd.probe.debug_probe import DebugProbe
from unicorn import UcError

from mcuqual.boards.profile import Board, available_boards, load_board
from mcuqual.common.cache import CACHE_ENV
from mcuqual.common.errors import McuqualError
from mcuqual.target.probes import VIRTUAL_UNIT_ENV

log = logging.getLogger("mcuqual.virtual")
PREFIX = "virtual-"
BOARDS_ENV = "MCUQUAL_BOARDS_DIR"
VIRTUAL_BOARDS_ENV = "MCUQUAL_VIRTUAL_BOARDS_DIR"
PACING_INSTRUCTIONS_PER_SECOND = 1_200_000_000   # per second of host time between transactions
MAX_SLICE_INSTRUCTIONS = 2_000_000
MIN_SLICE_INSTRUCTIONS = 1_000

# The SW-DP and AHB-AP identification registers come from the board's core description
# (firmware/cores/<core>.toml; ARM IHI 0031, the core's TRM).
DP_IDR, DP_CTRL_STAT, DP_SELECT, DP_RDBUFF = 0x0, 0x4, 0x8, 0xC
CSYSPWRUPREQ, CDBGPWRUPREQ = 1 << 30, 1 << 28
AP_CSW, AP_TAR, AP_DRW, AP_CFG, AP_BASE, AP_IDR = 0x00, 0x04, 0x0C, 0xF4, 0xF8, 0xFC
CSW_SIZE_MASK, CSW_ADDRINC_SINGLE, CSW_DEVICEEN = 0x7, 0x10, 0x40
ROM_TABLE_BASE = 0xE00FF000

_registered_boards: dict[str, Board] = {}


def register_board(board: Board) -> str:
    """Make `board` available as a virtual probe in this process; returns its unique id."""
    _registered_boards[board.name] = board
    return PREFIX + board.name


def _boards_dirs() -> list[Path]:
    """$MCUQUAL_BOARDS_DIR, then ./firmware/boards of the current project (the built-in
    boards are added by available_boards)."""
    dirs = [Path(os.environ[BOARDS_ENV])] if os.environ.get(BOARDS_ENV) else []
    return dirs + [Path.cwd() / "firmware" / "boards"]


def virtual_boards() -> dict[str, Board]:
    """Boards registered in-process, then board folders on disk (see _boards_dirs)."""
    found: dict[str, Board] = {}
    for name, path in available_boards(*_boards_dirs()).items():
        try:
            found[name] = load_board(path)
        except McuqualError as exc:        # one broken board folder hides no other board
            log.warning("board folder %s: %s", path, exc)
    found.update(_registered_boards)
    return found


def flash_store_path(board: Board) -> Path:
    """Where the board keeps its flash: $MCUQUAL_VIRTUAL_BOARDS_DIR, else the cache; one
    file per unit ($MCUQUAL_VIRTUAL_BOARD_UNIT)."""
    from mcuqual.common.paths import find_repo_root
    if os.environ.get(VIRTUAL_BOARDS_ENV):
        root = Path(os.environ[VIRTUAL_BOARDS_ENV])
    else:
        root = Path(os.environ.get(CACHE_ENV,
                                   find_repo_root(Path.cwd()) / ".cache" / "mcuqual")) / \
            "virtual-boards"
    unit = os.environ.get(VIRTUAL_UNIT_ENV, "")
    return root / board.name / (f"flash-{unit}.bin" if unit else "flash.bin")


class VirtualMemoryInterface(MemoryInterface):
    """Memory accesses of the AHB-AP, served by the emulator's bus."""

    def __init__(self, probe: "VirtualProbe") -> None:
        self._probe = probe

    def _read(self, address: int, size: int) -> bytes:
        target = self._probe.transaction()
        try:
            return target.read_memory(address & 0xFFFFFFFF, size)
        except UcError:
            raise exceptions.TransferFaultError("bus fault reading the virtual board",
                                                fault_address=address, length=size) from None

    def _write(self, address: int, data: bytes) -> None:
        target = self._probe.transaction()
        try:
            target.write_memory(address & 0xFFFFFFFF, data)
        except UcError:
            raise exceptions.TransferFaultError("bus fault writing the virtual board",
                                                fault_address=address, length=len(data)) from None

    def write_memory(self, addr: int, data: int, transfer_size: int = 32, **attrs: Any) -> None:
        self._write(addr, (data & ((1 << transfer_size) - 1)).to_bytes(transfer_size // 8, "little"))

    def read_memory(self, addr: int, transfer_size: int = 32, now: bool = True, **attrs: Any):
        value = int.from_bytes(self._read(addr, transfer_size // 8), "little")
        return value if now else (lambda: value)

    def write_memory_block32(self, addr: int, data: Sequence[int], **attrs: Any) -> None:
        self._write(addr, b"".join(int(word).to_bytes(4, "little") for word in data))

    def read_memory_block32(self, addr: int, size: int, **attrs: Any) -> Sequence[int]:
        raw = self._read(addr, 4 * size)
        return [int.from_bytes(raw[i:i + 4], "little") for i in range(0, len(raw), 4)]

    def write_memory_block8(self, addr: int, data: Sequence[int], **attrs: Any) -> None:
        self._write(addr, bytes(data))

    def read_memory_block8(self, addr: int, size: int, **attrs: Any) -> Sequence[int]:
        return list(self._read(addr, size))


class VirtualProbe(DebugProbe):
    """A debug probe wired to a virtual board instead of a USB device."""

    @classmethod
    def get_all_connected_probes(cls, unique_id: str | None = None,
                                 is_explicit: bool = False) -> list["VirtualProbe"]:
        return [cls(board) for board in virtual_boards().values()]

    @classmethod
    def get_probe_with_id(cls, unique_id: str, is_explicit: bool = False) -> "VirtualProbe | None":
        if not unique_id.startswith(PREFIX):
            return None
        board = virtual_boards().get(unique_id[len(PREFIX):])
        return cls(board) if board else None

    def __init__(self, board: Board) -> None:
        super().__init__()
        self.board = board
        self._core = board.core_description        # its debug port's identification
        self.target = None
        self._is_open = self._is_connected = False
        self._unplugged = False
        self._reset_asserted = False
        self._memory = VirtualMemoryInterface(self)
        self._ctrl_stat = 0
        self._csw = 0x23000052
        self._tar = 0
        self._last_tick = time.perf_counter()
        self._swo_lock = threading.Lock()
        self._flash_digest = b""

    # ---- identity ------------------------------------------------------------------
    @property
    def description(self) -> str:
        return f"mcuqual virtual {self.board.title} ({self.board.mcu})"

    @property
    def vendor_name(self) -> str:
        return "mcuqual"

    @property
    def product_name(self) -> str:
        return f"virtual {self.board.title}"

    @property
    def supported_wire_protocols(self):
        return [DebugProbe.Protocol.DEFAULT, DebugProbe.Protocol.SWD]

    @property
    def unique_id(self) -> str:
        return PREFIX + self.board.name

    @property
    def wire_protocol(self):
        return DebugProbe.Protocol.SWD if self._is_connected else None

    @property
    def is_open(self) -> bool:
        return self._is_open

    @property
    def capabilities(self):
        return {DebugProbe.Capability.SWO, DebugProbe.Capability.MANAGED_AP_SELECTION,
                DebugProbe.Capability.MANAGED_DPBANKSEL}

    # ---- lifecycle -----------------------------------------------------------------
    def open(self) -> None:
        from mcuqual.target.virtual import VirtualBoard
        cycle_model = False
        if self.session is not None:
            cycle_model = bool(self.session.options.get("virtual.cycle_model"))
        self.target = VirtualBoard(self.board, cycle_accurate=cycle_model)
        self._load_flash()
        self.target.reset(halt=False)                  # power-on: the board runs its flash
        self._last_tick = time.perf_counter()
        self._is_open = True

    def close(self) -> None:
        if self.target is not None:
            self._save_flash()
            self.target.close()
            self.target = None
        self._is_open = False

    def connect(self, protocol=None) -> None:
        self._is_connected = True

    def disconnect(self) -> None:
        self._is_connected = False

    def unplug(self) -> None:
        """Fault injection: the probe vanishes; every later transaction fails as a USB probe's would."""
        self._unplugged = True

    def _load_flash(self) -> None:
        path = flash_store_path(self.board)
        flash = next(r for r in self.board.memory if r.kind == "flash")
        if path.is_file() and path.stat().st_size == flash.size:
            self.target.write_memory(flash.start, path.read_bytes())
        self._flash_digest = self._digest_flash()

    def _digest_flash(self) -> bytes:
        flash = next(r for r in self.board.memory if r.kind == "flash")
        return hashlib.sha256(self.target.read_memory(flash.start, flash.size)).digest()

    def _save_flash(self) -> None:
        if self._digest_flash() == self._flash_digest:
            return
        flash = next(r for r in self.board.memory if r.kind == "flash")
        path = flash_store_path(self.board)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        tmp.write_bytes(self.target.read_memory(flash.start, flash.size))
        tmp.replace(path)

    # ---- time ------------------------------------------------------------------------
    def transaction(self):
        """Every debugger access: check the link, then let a running core catch up."""
        if self._unplugged:
            raise exceptions.ProbeDisconnected(f"probe {self.unique_id} disconnected")
        if self.target is None:
            raise exceptions.ProbeError(f"probe {self.unique_id} is not open")
        instructions = min(MAX_SLICE_INSTRUCTIONS, int((time.perf_counter() - self._last_tick)
                                                       * PACING_INSTRUCTIONS_PER_SECOND))
        if instructions >= MIN_SLICE_INSTRUCTIONS and not self._reset_asserted:
            self.target.advance(instructions)
            self._last_tick = time.perf_counter()     # emulation time is not think time
        return self.target

    def set_cycle_model(self, enabled: bool) -> None:
        """Cycle accounting (slow, DWT counts) or plain emulation (fast, DWT stands still)."""
        self.transaction().set_cycle_accounting(enabled)

    # ---- reset -------------------------------------------------------------------------
    def set_clock(self, frequency: float) -> None:
        pass

    def reset(self) -> None:
        self.assert_reset(True)
        self.assert_reset(False)

    def assert_reset(self, asserted: bool) -> None:
        target = self.transaction()
        if self._reset_asserted and not asserted:
            target.system_reset()
        self._reset_asserted = asserted

    def is_reset_asserted(self) -> bool:
        return self._reset_asserted

    def flush(self) -> None:
        self.transaction()

    # ---- DP and AP registers -------------------------------------------------------------
    def read_dp(self, addr: int, now: bool = True):
        self.transaction()
        if addr == DP_IDR:
            value = self._core.dpidr
        elif addr == DP_CTRL_STAT:
            # each power-up request is acknowledged at once (ACK bits sit one above REQ)
            value = self._ctrl_stat | ((self._ctrl_stat & (CSYSPWRUPREQ | CDBGPWRUPREQ)) << 1)
        else:
            value = 0
        return value if now else (lambda: value)

    def write_dp(self, addr: int, data: int) -> None:
        self.transaction()
        if addr == DP_CTRL_STAT:
            self._ctrl_stat = data & 0xFFFFFFFF

    def read_ap(self, addr: int, now: bool = True):
        apsel, register = (addr >> 24) & 0xFF, addr & 0xFC
        target = self.transaction()
        value = 0
        if apsel == 0:
            if register == AP_IDR:
                value = self._core.ahb_ap_idr
            elif register == AP_BASE:
                value = ROM_TABLE_BASE | 0x3
            elif register == AP_CSW:
                value = self._csw | CSW_DEVICEEN
            elif register == AP_TAR:
                value = self._tar
            elif register == AP_DRW:
                value = self._drw(target, None)
        return value if now else (lambda: value)

    def write_ap(self, addr: int, data: int) -> None:
        apsel, register = (addr >> 24) & 0xFF, addr & 0xFC
        target = self.transaction()
        if apsel != 0:
            return
        if register == AP_CSW:
            self._csw = data & 0xFFFFFFFF
        elif register == AP_TAR:
            self._tar = data & 0xFFFFFFFF
        elif register == AP_DRW:
            self._drw(target, data)

    def _drw(self, target, data: int | None) -> int:
        """A DRW access at TAR with CSW's size; lanes as the AHB-AP places them."""
        size = 1 << min(self._csw & CSW_SIZE_MASK, 2)
        lane = 8 * (self._tar & 3)
        address = self._tar & ~(size - 1)
        try:
            if data is None:
                value = int.from_bytes(target.read_memory(address, size), "little") << lane
            else:
                target.write_memory(address, ((data >> lane) & ((1 << 8 * size) - 1))
                                    .to_bytes(size, "little"))
                value = 0
        except UcError:
            raise exceptions.TransferFaultError("bus fault on the virtual board",
                                                fault_address=address, length=size) from None
        if self._csw & CSW_ADDRINC_SINGLE:
            self._tar = (self._tar + size) & 0xFFFFFFFF
        return value & 0xFFFFFFFF

    def read_ap_multiple(self, addr: int, count: int = 1, now: bool = True):
        values = [self.read_ap(addr) for _ in range(count)]
        return values if now else (lambda: values)

    def write_ap_multiple(self, addr: int, values) -> None:
        for value in values:
            self.write_ap(addr, value)

    def get_memory_interface_for_ap(self, ap_address) -> MemoryInterface | None:
        return self._memory if getattr(ap_address, "apsel", None) == 0 else None

    # ---- SWO -----------------------------------------------------------------------------
    def swo_start(self, baudrate: float) -> None:
        with self._swo_lock:
            self.transaction().swo_start()

    def swo_stop(self) -> None:
        with self._swo_lock:
            if self.target is not None:
                self.target.swo_stop()

    def swo_read(self) -> bytearray:
        # called from pyOCD's SWV thread: no emulation here, only the bytes so far; a lost
        # probe is reported by the main thread's next transaction
        if self._unplugged:
            return bytearray()
        with self._swo_lock:
            return bytearray(self.target.swo_read()) if self.target is not None else bytearray()
