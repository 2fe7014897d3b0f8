"""The host's view of the firmware mailbox (firmware/runtime/mq_mailbox.h).

The header is a run of little-endian 32-bit words in this order; a test checks
the order against the DWARF description of the struct in a built ELF, so the
two sides cannot drift apart silently.
"""
from __future__ import annotations

import struct

MAGIC = 0x424D514D
VERSION = 1
MAX_LAYERS = 64

HEADER_FIELDS = (
    "magic", "version", "state", "command", "sequence", "error_code",
    "input_bytes", "output_bytes", "layers", "arena_bytes", "cycles_total",
    "arena_high_water_bytes", "stack_high_water_bytes", "stack_bytes", "core_clock_hz",
    "input_offset", "output_offset", "layer_cycles_offset",
    "fault_pc", "fault_lr", "fault_sp", "fault_xpsr",
    "fault_cfsr", "fault_hfsr", "fault_mmfar", "fault_bfar",
)
HEADER_BYTES = 4 * len(HEADER_FIELDS)
LAYER_CYCLES_OFFSET = HEADER_BYTES

STATES = {0: "boot", 1: "idle", 2: "busy", 3: "done", 4: "fault", 5: "error"}
COMMAND_RUN = 1


def offset_of(field: str) -> int:
    return 4 * HEADER_FIELDS.index(field)


def decode_header(raw: bytes) -> dict[str, int]:
    if len(raw) < HEADER_BYTES:
        raise ValueError(f"mailbox header needs {HEADER_BYTES} bytes, got {len(raw)}")
    return dict(zip(HEADER_FIELDS, struct.unpack_from(f"<{len(HEADER_FIELDS)}I", raw)))
