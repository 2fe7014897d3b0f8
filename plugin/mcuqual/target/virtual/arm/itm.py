"""ITM instrumentation packets as the ARMv7-M architecture defines them (Appendix D4).

A stimulus-port write of 1, 2 or 4 bytes becomes one source packet: a header
(port number in bits 7:3, bit 2 clear for software source, size code in bits
1:0) then the payload, little-endian. A synchronization packet (five 0x00
bytes then 0x80) lets a decoder find packet boundaries.
"""
from __future__ import annotations

from typing import Callable

from mcuqual.target.virtual.arm.coresight import M4_IDS, Peripheral

SIZE_CODE = {1: 0b01, 2: 0b10, 4: 0b11}
SYNC = bytes([0, 0, 0, 0, 0, 0x80])


def source_packet(port: int, value: int, size: int) -> bytes:
    if size not in SIZE_CODE or not 0 <= port < 32:
        raise ValueError(f"bad ITM write: port {port}, {size} bytes")
    return bytes([(port << 3) | SIZE_CODE[size]]) + (value & ((1 << (8 * size)) - 1)).to_bytes(
        size, "little")


def local_timestamp(delta: int) -> bytes:
    """A local timestamp packet for `delta` timestamp ticks (ARMv7-M D4.2.4): format 2 for
    1..6, else format 1 with the value in 7-bit groups, least significant first."""
    if 1 <= delta <= 6:
        return bytes([delta << 4])
    groups = []
    while True:
        groups.append(delta & 0x7F)
        delta >>= 7
        if not delta:
            break
    return bytes([0xC0] + [g | 0x80 for g in groups[:-1]] + [groups[-1]])


class Itm(Peripheral):
    """ITM: stimulus writes become instrumentation packets on the SWO stream while
    the unit and the port are enabled, each followed by a local timestamp packet when
    TCR.TSENA is set (a decoder such as pyOCD's flushes its events on timestamps); a
    read of a port says the FIFO is ready."""

    name = "ITM"
    TER, TCR, LAR = 0xE00, 0xE80, 0xFB0
    TCR_TSENA = 1 << 1

    def __init__(self, base: int, sink: Callable[[bytes], None], trace_enabled: Callable[[], bool],
                 cycles: Callable[[], int] = lambda: 0,
                 ids: tuple[int, ...] = M4_IDS["itm"]) -> None:
        super().__init__(base, 0x1000, ids)
        self.sink = sink
        self.trace_enabled = trace_enabled
        self.cycles = cycles
        self._last_timestamp = 0
        self._synced = False

    def _enabled(self, port: int) -> bool:
        return (self.trace_enabled() and self.regs.get(self.TCR, 0) & 1
                and self.regs.get(self.TER, 0) & (1 << port)) != 0

    def read(self, offset: int, size: int) -> int:
        if offset < 0x80:
            return 1 if self.regs.get(self.TCR, 0) & 1 else 0
        return super().read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset < 0x80:
            port = offset // 4
            if self._enabled(port):
                if not self._synced:
                    self.sink(SYNC)
                    self._synced = True
                self.sink(source_packet(port, value, size))
                if self.regs.get(self.TCR, 0) & self.TCR_TSENA:
                    now = self.cycles()
                    self.sink(local_timestamp(max(0, now - self._last_timestamp)))
                    self._last_timestamp = now
            return
        super().write(offset, size, value)
