"""A static arena plan from tensor lifetimes: greedy by size, first fit in address.

Two tensors may share bytes only if their lifetimes (first write to last read,
in operator order) do not overlap. This is the same idea as TFLM's greedy
planner, so the two arena figures are comparable.
"""
from __future__ import annotations

from dataclasses import dataclass

ALIGNMENT = 16


@dataclass(frozen=True)
class Buffer:
    key: int            # representative tensor index
    size: int           # bytes
    first: int          # first op that writes it (-1: written before the first op)
    last: int           # last op that reads it (len(ops): read after the last op)


def _align(value: int) -> int:
    return (value + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def plan(buffers: list[Buffer]) -> tuple[dict[int, int], int]:
    """Offsets by buffer key, and the arena size in bytes."""
    placed: list[tuple[int, int, Buffer]] = []     # (offset, end, buffer)
    offsets: dict[int, int] = {}
    for buffer in sorted(buffers, key=lambda b: (-b.size, b.first, b.key)):
        conflicts = sorted((start, end) for start, end, other in placed
                           if not (other.last < buffer.first or buffer.last < other.first))
        offset = 0
        for start, end in conflicts:
            if offset + buffer.size <= start:
                break
            offset = max(offset, _align(end))
        offsets[buffer.key] = offset
        placed.append((offset, offset + buffer.size, buffer))
    total = max((end for _, end, _ in placed), default=0)
    return offsets, _align(total)
