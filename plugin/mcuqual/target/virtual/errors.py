"""What the virtual board reports when the firmware misbehaves."""
from __future__ import annotations

from mcuqual.common.errors import McuqualError


class TargetFaultError(McuqualError):
    """The firmware did something real hardware would fault on."""

    def __init__(self, message: str, registers: dict[str, int], address: int | None,
                 where: dict[str, int] | None = None) -> None:
        super().__init__(message)
        self.registers, self.address = registers, address
        self.where = where if where is not None else registers   # pc/lr of the faulting code


class TargetTimeoutError(McuqualError):
    """The firmware did not reach the expected state within its budget."""
