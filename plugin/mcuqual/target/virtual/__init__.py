"""The virtual board: the firmware ELF for a board, run unmodified on an emulated MCU."""
from __future__ import annotations

from pathlib import Path

from mcuqual.target.virtual.board import VirtualBoard
from mcuqual.target.virtual.errors import TargetFaultError, TargetTimeoutError

__all__ = ["TargetFaultError", "TargetTimeoutError", "VirtualBoard", "booted_runner"]


def booted_runner(board, elf: Path, cycle_accurate: bool = True):
    """A virtual `board` with `elf` loaded straight into its memories (no probe), out of
    reset and booted: a MailboxRunner ready for `infer` (tests and benchmarks; a
    qualification flashes through pyOCD instead)."""
    from mcuqual.target.mailbox_runner import MailboxRunner

    target = VirtualBoard(board, cycle_accurate=cycle_accurate)
    target.load_elf(elf)
    target.reset(halt=False)
    runner = MailboxRunner(target, elf)
    runner.boot()
    return runner
