"""TPIU: the trace port the debugger configures for SWO (ARM IHI 0029)."""
from __future__ import annotations

from mcuqual.target.virtual.arm.coresight import M4_IDS, Peripheral


class Tpiu(Peripheral):
    """The Cortex-M4 TPIU: identifies as a trace port (DEVTYPE 0x11) that can drive SWO in
    NRZ/UART mode (DEVID.NRZVALID); the SWO bit rate it is given does not slow the model."""

    name = "TPIU"
    DEVID, DEVTYPE = 0xFC8, 0xFCC

    def __init__(self, base: int, ids: tuple[int, ...] = M4_IDS["tpiu"]) -> None:
        super().__init__(base, 0x1000, ids, {self.DEVID: 0xCA1, self.DEVTYPE: 0x11})
