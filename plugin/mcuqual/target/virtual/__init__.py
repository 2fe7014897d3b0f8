"""The virtual board: the firmware ELF for a board, run unmodified on an emulated MCU."""
from mcuqual.target.virtual.board import VirtualBoard
from mcuqual.target.virtual.errors import TargetFaultError, TargetTimeoutError

__all__ = ["TargetFaultError", "TargetTimeoutError", "VirtualBoard"]
