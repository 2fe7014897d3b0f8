"""ITM instrumentation packets as the ARMv7-M architecture defines them (Appendix D4).

A stimulus-port write of 1, 2 or 4 bytes becomes one source packet: a header
(port number in bits 7:3, bit 2 clear for software source, size code in bits
1:0) then the payload, little-endian. A synchronization packet (five 0x00
bytes then 0x80) lets a decoder find packet boundaries.
"""
from __future__ import annotations

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
