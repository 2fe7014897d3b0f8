"""The virtual board: the firmware ELF for a board, run unmodified on an emulated MCU."""
from mcuqual.target.virtual.board import TargetFaultError, TargetTimeoutError, VirtualBoard

__all__ = ["TargetFaultError", "TargetTimeoutError", "VirtualBoard"]
