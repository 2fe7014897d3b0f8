"""The suite's connection to a board, virtual or physical, through pyOCD.

One code path for both: pyOCD's ConnectHelper opens the probe by unique id
(never waiting for one to appear), FileProgrammer flashes the ELF through the
target's flash algorithm when the flash does not already hold it, SWVReader
receives the ITM log over SWO, and the mailbox runner reads and writes memory
through the session. A HardFault vector catch turns a firmware fault into a
halted core whose fault registers are read and explained.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from elftools.elf.elffile import ELFFile

from mcuqual.boards.profile import Board
from mcuqual.common.errors import McuqualError
from mcuqual.target.fault_status import SCB_BFAR, SCB_CFSR, SCB_HFSR, SCB_MMFAR, FaultStatus
from mcuqual.target.probes import ProbeChoice
from mcuqual.target.virtual import TargetFaultError, TargetTimeoutError

log = logging.getLogger("mcuqual.debug")

DFSR, DFSR_VCATCH = 0xE000_ED30, 1 << 3
POLL_INTERVAL_S = 0.001


class ProbeLostError(McuqualError):
    """The debug probe stopped answering (unplugged, USB reset, board powered off)."""


class TraceLog:
    """The SWV console pyOCD writes the ITM port-0 text to (from its reader thread)."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            self._parts.append(text)

    def flush(self) -> None:
        pass

    def text(self) -> str:
        with self._lock:
            return "".join(self._parts)


def elf_segments(elf: Path) -> list[tuple[int, bytes]]:
    """(load address, bytes) of every loadable segment: what flashing must leave in flash."""
    with open(elf, "rb") as handle:
        return [(seg["p_paddr"], seg.data()) for seg in ELFFile(handle).iter_segments()
                if seg["p_type"] == "PT_LOAD" and seg["p_filesz"]]


@dataclass
class FlashReport:
    programmed: bool
    seconds: float


@dataclass
class BoardConnection:
    """An open pyOCD session on one board, with the Target protocol the mailbox runner uses."""

    board: Board
    probe: ProbeChoice
    session: object = None
    trace: TraceLog = field(default_factory=TraceLog)
    poll_interval_s: float = POLL_INTERVAL_S
    _swv: object = None

    # ---- lifecycle -----------------------------------------------------------------
    def open(self) -> "BoardConnection":
        from pyocd.core.helpers import ConnectHelper
        from mcuqual.target.pyocd.targets import register_target
        register_target(self.board)
        if self.probe.is_virtual:
            from mcuqual.target.pyocd.probe_plugin import register_board
            register_board(self.board)
        # The ITM log is read through the SWV console below; pyOCD's raw-SWV TCP server
        # (port 3443 by default) would only keep two suites on one machine from running.
        options = {"target_override": self.board.pyocd_target, "connect_mode": "halt",
                   "resume_on_disconnect": False, "swv_raw_enable": False}
        try:
            self.session = ConnectHelper.session_with_chosen_probe(
                unique_id=self.probe.unique_id, blocking=False, return_first=True,
                options=options)
            if self.session is None:
                raise ProbeLostError(f"debug probe {self.probe.unique_id} is not connected.")
            self.session.open()
        except McuqualError:
            raise
        except Exception as exc:
            raise self._probe_error("connecting", exc) from exc
        return self

    def close(self) -> None:
        if self._swv is not None:
            try:
                self._swv.stop()
            except Exception:              # the probe may already be gone
                pass
            self._swv = None
        if self.session is not None:
            try:
                self.session.close()
            except Exception as exc:
                log.warning("closing the pyOCD session: %s", exc)
            self.session = None

    def __enter__(self) -> "BoardConnection":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def target(self):
        return self.session.target

    def _probe_error(self, doing: str, exc: Exception) -> McuqualError:
        from pyocd.core import exceptions
        if isinstance(exc, (exceptions.ProbeDisconnected, exceptions.ProbeError)):
            return ProbeLostError(f"debug probe {self.probe.unique_id} lost while {doing}: {exc}")
        return McuqualError(f"pyOCD failed while {doing} on {self.probe.description}: {exc}")

    def _guarded(self, doing: str, action: Callable):
        from pyocd.core import exceptions
        try:
            return action()
        except exceptions.Error as exc:
            raise self._probe_error(doing, exc) from exc

    # ---- flashing ------------------------------------------------------------------
    def flash_holds(self, elf: Path) -> bool:
        """Read back: does the flash already hold every loadable byte of `elf`?"""
        for address, data in elf_segments(elf):
            if self.read_memory(address, len(data)) != data:
                return False
        return True

    def flash(self, elf: Path) -> FlashReport:
        """Program `elf` unless the flash holds it already; verify by reading back."""
        from pyocd.flash.file_programmer import FileProgrammer
        started = time.monotonic()
        if self.flash_holds(elf):
            return FlashReport(False, time.monotonic() - started)
        self._guarded("flashing", lambda: FileProgrammer(self.session).program(str(elf),
                                                                                 file_format="elf"))
        if not self.flash_holds(elf):
            # Smart flashing skips sectors whose content is unchanged; a flash algorithm that
            # erases more than the sector it is asked for (pyOCD's built-in STM32H743 one
            # erases the next sector too) wipes such a skipped sector. Program every sector.
            log.warning("%s: flash read-back differs after smart flashing; programming every "
                        "sector of %s", self.probe.description, elf.name)
            self._guarded("flashing", lambda: FileProgrammer(self.session, smart_flash=False)
                          .program(str(elf), file_format="elf"))
        if not self.flash_holds(elf):
            raise McuqualError(f"flash verification failed on {self.probe.description}: the "
                               f"flash does not hold {elf.name} after programming.")
        return FlashReport(True, time.monotonic() - started)

    # ---- running -------------------------------------------------------------------
    def start(self) -> None:
        """Reset with a HardFault vector catch armed and SWV receiving, then let the firmware run."""
        from pyocd.core.target import Target
        from pyocd.trace.swv import SWVReader

        def start() -> None:
            self.target.set_vector_catch(Target.VectorCatch.HARD_FAULT)
            self.target.reset_and_halt()
            if self.board.swo_clock_hz and self._swv is None:
                self._swv = SWVReader(self.session)
                if not self._swv.init(self.board.clock_hz, self.board.swo_clock_hz, self.trace):
                    log.warning("SWV could not be started on %s: no ITM log", self.probe.description)
                    self._swv = None
            self.target.resume()
        self._guarded("starting the firmware", start)

    def set_cycle_model(self, enabled: bool) -> None:
        """Cycle accounting on the virtual board (a physical core always counts)."""
        if self.probe.is_virtual:
            self._guarded("switching the cycle model",
                          lambda: self.session.probe.set_cycle_model(enabled))

    def clear_cycle_band(self) -> None:
        """Start a new window for `cycle_band` (virtual board only)."""
        if self.probe.is_virtual:
            self.session.probe.target.clear_cycle_band()

    def cycle_band(self) -> tuple[int, int, int] | None:
        """The virtual board's (nominal, low, high) cycles between the first and last
        DWT_CYCCNT reads since `clear_cycle_band` - every ranged rule of its cycle model at
        either end - or None (a physical core, or a model that keeps no ranged totals)."""
        return self.session.probe.target.cycle_band() if self.probe.is_virtual else None

    @property
    def pin_edges(self) -> list | None:
        """The virtual board's GPIO edge log (what its modelled power monitor reads)."""
        return self.session.probe.target.pin_edges if self.probe.is_virtual else None

    @property
    def unmodelled_accesses(self) -> list[str]:
        if not self.probe.is_virtual:
            return []
        return sorted(f"0x{a:08x}" for a in self.session.probe.target.unmodelled)

    # ---- the mailbox runner's Target protocol ------------------------------------------
    def read_memory(self, address: int, size: int) -> bytes:
        return bytes(self._guarded("reading memory",
                                   lambda: self.target.read_memory_block8(address, size)))

    def write_memory(self, address: int, data: bytes) -> None:
        self._guarded("writing memory", lambda: self.target.write_memory_block8(address, list(data)))

    def read_u32(self, address: int) -> int:
        return self._guarded("reading memory", lambda: self.target.read32(address))

    def write_u32(self, address: int, value: int) -> None:
        self._guarded("writing memory", lambda: self.target.write32(address, value & 0xFFFFFFFF))

    def stop_on_write(self, address: int) -> None:
        pass                                      # polling suffices through a probe

    def stop_at(self, address: int) -> None:
        """The virtual board runs each inference to `address` in one go (its probe lets an
        armed stop run uncounted); a physical core is simply polled."""
        if self.probe.is_virtual:
            self._guarded("arming the stop", lambda: self.session.probe.target.stop_at(address))

    def trace_text(self) -> str:
        if self._swv is not None:
            time.sleep(0.01)                      # let the reader thread drain the probe
        return self.trace.text()

    def run(self, until: Callable[[], bool], max_cycles: int, timeout_s: float) -> None:
        """Let the core run until `until()` holds; a fault or the wall-clock budget raises."""
        from pyocd.core.target import Target
        deadline = time.monotonic() + timeout_s
        state = self._guarded("reading the core state", self.target.get_state)
        if state == Target.State.HALTED and not self._fault_halt():
            self._guarded("resuming the core", self.target.resume)
        while not until():
            state = self._guarded("reading the core state", self.target.get_state)
            if state == Target.State.LOCKUP or (state == Target.State.HALTED and self._fault_halt()):
                raise self.fault_error()
            if state == Target.State.HALTED:
                raise TargetFaultError(f"the core on {self.probe.description} halted unexpectedly",
                                       self._registers(), None)
            if time.monotonic() > deadline:
                pc = self._registers()["pc"] if self._halt_for_inspection() else 0
                raise TargetTimeoutError(
                    f"{self.probe.description} did not finish within its budget "
                    f"({timeout_s:.0f} s wall clock); pc=0x{pc:08x}. The firmware hangs or the "
                    "budget is too small.")
            time.sleep(self.poll_interval_s)

    # ---- faults ----------------------------------------------------------------------
    def _fault_halt(self) -> bool:
        return bool(self.read_u32(DFSR) & DFSR_VCATCH)

    def _halt_for_inspection(self) -> bool:
        try:
            self.target.halt()
            return True
        except Exception:
            return False

    def _registers(self) -> dict[str, int]:
        names = ("pc", "lr", "sp", "xpsr")
        values = self._guarded("reading registers", lambda: self.target.read_core_registers_raw(
            list(names)))
        return dict(zip(names, values))

    def fault_error(self) -> TargetFaultError:
        """Explain the fault from CFSR/HFSR/BFAR and, after a vector catch, the stacked frame."""
        self._halt_for_inspection()              # a locked-up core can be halted and read
        registers = self._registers()
        status = FaultStatus(self.read_u32(SCB_CFSR), self.read_u32(SCB_HFSR),
                             self.read_u32(SCB_BFAR), self.read_u32(SCB_MMFAR))
        where = registers
        if registers["xpsr"] & 0x1FF == 3:        # in the HardFault handler: the frame tells
            frame = self.read_memory(registers["sp"], 32)
            words = [int.from_bytes(frame[i:i + 4], "little") for i in range(0, 32, 4)]
            where = {"pc": words[6], "lr": words[5], "sp": registers["sp"] + 32}
        ram_start = min(r.start for r in self.board.memory if r.kind == "ram")
        message = status.describe(ram_start, where["sp"])
        return TargetFaultError(
            f"target fault on {self.probe.description}: {message} (pc=0x{where['pc']:08x} "
            f"lr=0x{where['lr']:08x} sp=0x{where['sp']:08x})", registers,
            status.bfar if status.cfsr & (1 << 15) else None, where)
