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


def decode(stream: bytes) -> dict[int, bytes]:
    """Payload bytes per stimulus port; skips sync, overflow and hardware-source packets."""
    ports: dict[int, bytearray] = {}
    i = 0
    while i < len(stream):
        header = stream[i]
        if header == 0:                          # part of a synchronization packet
            i += 1
            while i < len(stream) and stream[i] == 0:
                i += 1
            i += 1                               # the terminating 0x80
            continue
        if header == 0x70:                       # overflow
            i += 1
            continue
        size_code = header & 0b11
        if size_code == 0:                       # protocol packets (timestamps, extension)
            i += 1
            while i < len(stream) and stream[i - 1] & 0x80:
                i += 1
            continue
        size = {1: 1, 2: 2, 3: 4}[size_code]
        payload = stream[i + 1:i + 1 + size]
        if not header & 0b100:                   # software source: a stimulus port
            ports.setdefault(header >> 3, bytearray()).extend(payload)
        i += 1 + size
    return {port: bytes(data) for port, data in ports.items()}
