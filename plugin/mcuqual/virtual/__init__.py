"""The virtual board: the firmware ELF for a board, run unmodified on an emulated MCU."""
from .target import TargetFaultError, TargetTimeoutError, VirtualTarget

__all__ = ["TargetFaultError", "TargetTimeoutError", "VirtualTarget"]
