"""A static arena plan from tensor lifetimes: greedy by size, first fit in address.

Two tensors may share bytes only if their lifetimes (first write to last read,
in operator order) do not overlap. This is the same idea as TFLM's greedy
planner, so the two arena figures are comparable. A buffer may be made of parts
with lifetimes of their own at fixed places inside it (a pointwise convolution's
output laid over its dying input, see codegen.emit): each part then only has to
avoid what is alive during its own lifetime.

    plan([Buffer(0, 64, 0, 1), Buffer(1, 64, 1, 2)])      # both alive at op 1
    -> ({0: 0, 1: 64}, 128)
    plan([Buffer(0, 64, 0, 1), Buffer(1, 64, 2, 3)])      # never at once
    -> ({0: 0, 1: 0}, 64)
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

ALIGNMENT = 16


@dataclass(frozen=True)
class Buffer:
    key: int            # representative tensor index
    size: int           # bytes
    first: int          # first op that writes it (-1: written before the first op)
    last: int           # last op that reads it (len(ops): read after the last op)
    # (start, end, first, last) byte ranges of the buffer alive over their own op ranges;
    # empty: the whole buffer over [first, last]
    parts: tuple[tuple[int, int, int, int], ...] = ()

    def lifetimes(self) -> tuple[tuple[int, int, int, int], ...]:
        return self.parts or ((0, self.size, self.first, self.last),)


def align(value: int) -> int:
    """`value` rounded up to the arena's ALIGNMENT."""
    return (value + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


# the largest buffers whose placement order is searched (all their permutations)
SEARCHED = 4


def plan(buffers: list[Buffer]) -> tuple[dict[int, int], int]:
    """Offsets by buffer key, and the arena size in bytes (see `place`): largest first,
    as TFLM's greedy planner does, and the same with the SEARCHED largest in every other
    order, and in order of first use; the smallest arena wins, the first of equals. Only
    buffers of several parts make the order matter much: which part gets the low bytes."""
    by_size = sorted(buffers, key=lambda b: (-b.size, b.first, b.key))
    head, tail = by_size[:SEARCHED], by_size[SEARCHED:]
    orders = [list(order) + tail for order in itertools.permutations(head)]
    orders.append(sorted(buffers, key=lambda b: (b.first, -b.size, b.key)))
    return min((place(order) for order in orders), key=lambda result: result[1])


def place(buffers: list[Buffer]) -> tuple[dict[int, int], int]:
    """Offsets by buffer key, and the arena size in bytes: in the given order, each
    buffer at the lowest aligned offset where none of its parts meets a placed part
    alive with it."""
    placed: list[tuple[int, int, int, int]] = []   # absolute (start, end, first, last)
    offsets: dict[int, int] = {}
    for buffer in buffers:
        parts = buffer.lifetimes()
        # per part, the byte ranges it must avoid: placed parts alive at the same time
        avoid = [(start, end, [(a, b) for a, b, f, l in placed
                               if not (l < first or last < f)])
                 for start, end, first, last in parts]
        candidates = sorted({0} | {align(b - start) for start, _, ranges in avoid
                                   for _, b in ranges if b - start > 0})
        offset = next(c for c in candidates
                      if all(not (c + start < b and a < c + end)
                             for start, end, ranges in avoid for a, b in ranges))
        offsets[buffer.key] = offset
        placed += [(offset + start, offset + end, first, last)
                   for start, end, first, last in parts]
    total = max((end for _, end, _, _ in placed), default=0)
    return offsets, align(total)
