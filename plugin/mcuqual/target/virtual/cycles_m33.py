"""Cortex-M33 cycle model (STM32U5: flash behind the ICACHE), applied once per block.

Sources, and how far each one goes:

* Arm Cortex-M33 Processor Technical Reference Manual (ARM 100230), chapter 2
  "Functional description": an in-order three-stage pipeline (fetch, decode, execute)
  with a Harvard pair of AHB5 buses, C-AHB for the code region 0x0000_0000-0x1FFF_FFFF
  (instruction fetches *and* data reads there) and S-AHB for SRAM and peripherals. Unlike
  the Cortex-M4 TRM (section 3.3.1, Table 3-1), the M33 TRM publishes no per-instruction
  cycle table.
* Where the M33 TRM is silent, the classes and base counts of the Cortex-M4 TRM Table 3-1
  (see `cycles`) apply, changed where measurements on a Cortex-M33 r1p0 show otherwise.
  Those are published micro-benchmarks (jnk0le, "pipeline cycle test", doc/cortex_m33.md,
  DWT.CYCCNT on an RP2350, zero-wait-state SRAM) and agree with the published description
  of the new pipeline (elektroniknet.de, "Cortex-M23 und -M33 sind erste ARMv8-M-CPUs",
  page 3: address generation in the second stage, so a load takes one cycle; dual issue
  of 16-bit instructions and branches). They are assumptions as far as the TRM goes, and
  the uncertainty band says so.
* RM0456 (STM32U575/585 reference manual): section 8 "Instruction cache (ICACHE)" - an
  8-Kbyte, 2-way set-associative (1-way selectable) cache on the C-AHB bus with 16-byte
  lines filled by WRAP4 bursts, critical word first, 0 wait states on a hit, caching both
  instruction fetches and data reads of the code region (weights and literal pools);
  section 7 (FLASH) "Read access latency", table "Number of wait states according to CPU
  clock (HCLK) frequency": 4 wait states up to 160 MHz in voltage range 1; one 128-bit
  flash read serves a line. The flash prefetch (FLASH_ACR.PRFTEN, which the firmware sets)
  is not modelled: it can hide part of a sequential miss, inside the band.

| class                                   | cycles (M33 model)            | Cortex-M4 (TRM 3-1)    |
|-----------------------------------------|-------------------------------|------------------------|
| data processing, MOV, shifts, compares  | 1                             | 1                      |
| MUL, MLA, SMLAD, SMLAL, SMULxy ...      | 1; result ready one cycle later (stall 1 if the next instruction reads it, except as a MAC accumulator or store data) | 1 |
| MULS (16-bit, flags)                    | 2                             | 1                      |
| operand2 shifted register, SXTAB/UXTAB  | 1; result one cycle later (as above) | 1               |
| SDIV, UDIV                              | 7 (data dependent; as the M4 model, assumed) | 2-12    |
| LDR/STR single (any width), VLDR/VSTR   | 1; a loaded register read by the next instruction stalls 1 (MAC accumulators and store data excepted) | 2, or 1 pipelined |
| LDRD/STRD                               | 2                             | 3                      |
| LDM/STM/PUSH/POP of N registers         | N (+1 when PC is loaded)      | 1 + N                  |
| branch not taken                        | 1; 0 when a 16-bit branch pairs with the 16-bit instruction before it | 1 |
| branch taken                            | 2; 1 when a 16-bit branch pairs with a 16-bit instruction that sets no flags | 1 + P (P = 1..3) |
| IT                                      | 0 (dual-issued with the instruction before) | 0        |
| 16-bit NOP after a 16-bit instruction   | 0 (dual-issued)               | 1                      |
| VFP: VMLA/VFMA 3; VDIV/VSQRT 14; others 1 | as M4                       |                        |

Memory: every instruction fetch from flash and every data read of the flash range goes
through one ICACHE (`icache_kb` x `icache_ways` ways x `icache_line_bytes`-byte lines,
LRU); a miss costs the flash wait states the firmware programmed (FLASH_ACR.LATENCY, read
live) plus `icache_miss_overhead` cycles for the ICACHE master port and the bus matrix
(an assumption: RM0456 gives no figure). SRAM (S-AHB) has no wait states and is not
hooked. Stalls never carry across a block boundary.

Board knobs (`[cycle_model]` in board.toml), all optional: icache_kb (8), icache_ways (2),
icache_line_bytes (16), icache_miss_overhead (1), branch_refill (1), divide_cycles (7).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import capstone
from capstone import arm

from mcuqual.target.virtual.cycles_common import (
    ACCUMULATE_LAST,
    ACCUMULATE_LONG,
    BITFIELD,
    EXTEND_ACCUMULATE,
    MULTIPLE_TRANSFERS,
    MULTIPLIES,
    VFP_MAC,
    VFP_SLOW,
    DIVIDES,
    LruCache,
    accesses,
    forget_blocks,
    base_name,
    board_params,
    flash_range,
    has_shifted_register,
    is_it,
    is_shifted_constant,
    memory_operand,
    register_operands,
    thumb_disassembler,
    transfer_count,
    writes_pc,
)
from mcuqual.target.virtual.cycles_native import CompiledTotals, SetAssociativeAccumulator

DEFAULTS = {"icache_kb": 8, "icache_ways": 2, "icache_line_bytes": 16,
            "icache_miss_overhead": 1, "branch_refill": 1, "divide_cycles": 7}


# The ends of the ranges the sources leave open, costed beside the nominal rules (the
# model's `cycles_low` / `cycles_high`): divide 2-12 (the M4 TRM's range; data dependent),
# the taken-branch refill 1-2 (1 measured on an r1p0, 2 the M4's common case), and the
# ICACHE miss cost beyond the wait states 0-3 (RM0456 gives no figure). A board's knob
# outside a range widens it.
DIVIDE_RANGE = (2, 12)
REFILL_RANGE = (1, 2)
MISS_OVERHEAD_RANGE = (0, 3)


@dataclass(frozen=True)
class M33Block:
    cycles: int                  # the block's cost when its final branch falls through
    taken_extra: int             # added when the final branch is taken
    ends_in_branch: bool
    fallthrough: int             # address after the block
    lines: tuple[int, ...]       # ICACHE lines its code spans (flash code only)
    low: int = 0                 # `cycles` and `taken_extra` with every ranged rule at
    taken_low: int = 0           # its low end ...
    high: int = 0                # ... and at its high end
    taken_high: int = 0


@dataclass
class _Previous:
    """What the next instruction's cost depends on: the one before it."""
    size: int
    sets_flags: bool
    late: frozenset              # registers whose value is ready one cycle late


def _normal_reads(insn: capstone.CsInsn, name: str) -> set[int]:
    """Registers the instruction needs at the start of execute: all it reads except a
    multiply-accumulate's accumulator and a store's data (both read later)."""
    reads = set(accesses(insn)[0])
    registers = register_operands(insn)
    if name in ACCUMULATE_LAST and len(registers) == 4:
        reads.discard(registers[3])
    elif name in ACCUMULATE_LONG and len(registers) == 4:
        reads.difference_update(registers[:2])
    elif name.startswith(("str", "vstr")) or name in ("stm", "stmia", "stmdb", "push", "vpush"):
        mem = memory_operand(insn)
        keep = {mem.base, mem.index} if mem is not None else set()
        reads = {reg for reg in reads if reg in keep or insn.reg_name(reg) == "sp"}
    return reads


def m33_costs(insns: list[capstone.CsInsn], divide_cycles: int = 7,
              refill: int = 1) -> tuple[int, int, bool]:
    """(cycles if the final branch falls through, extra cycles if it is taken, whether the
    block ends in a branch) for a block's detail-mode instructions, by the table above."""
    total, previous = 0, None
    taken_extra, branch = 0, False
    for insn in insns:
        name = base_name(insn)
        size = insn.size
        registers = register_operands(insn)
        written = set(accesses(insn)[1])
        if is_it(name):                       # dual-issued with the instruction before
            continue
        stall = 0
        if previous is not None and previous.late and _normal_reads(insn, name) & previous.late:
            stall = 1
        late: set[int] = set()
        to_pc = writes_pc(insn)
        if to_pc or name in ("b", "bl", "bx", "blx", "cbz", "cbnz", "tbb", "tbh"):
            branch = True
            if name in MULTIPLE_TRANSFERS or name.startswith("ldm"):
                cycles = transfer_count(insn) + 1          # the load of PC, then refill
                taken_extra = refill
            elif name in ("tbb", "tbh"):
                cycles, taken_extra = 3, refill            # table load, add, then refill
            elif name.startswith("ldr"):
                cycles, taken_extra = 2, refill
            else:
                paired = (size == 2 and previous is not None and previous.size == 2)
                cycles = 0 if paired else 1
                taken_total = 1 if paired and not previous.sets_flags else 1 + refill
                taken_extra = taken_total - cycles
            total += stall + cycles
            previous = None
            continue
        if name == "nop":
            cycles = 0 if size == 2 and previous is not None and previous.size == 2 else 1
        elif name in MULTIPLIES:
            cycles = 2 if name == "mul" and insn.update_flags and size == 2 else 1
            late = written
        elif name in DIVIDES:
            cycles = divide_cycles
        elif name in ("ldrd", "strd"):
            cycles = 2
            if name == "ldrd":
                late = set(registers[:2])
        elif name in MULTIPLE_TRANSFERS or name.startswith(("ldm", "stm")):
            cycles = transfer_count(insn)
            if name in ("pop", "vpop"):
                late = set(registers)
            elif name.startswith(("ldm", "vldm")):
                late = set(registers[1:])                 # not the base register
        elif name.startswith(("ldr", "str")) or name in ("vldr", "vstr"):
            cycles = 1
            if name.startswith("ldr") or name == "vldr":
                late = {registers[0]} if registers else set()
        elif name in VFP_SLOW:
            cycles = 14
        elif name in VFP_MAC:
            cycles = 3
        else:
            cycles = 1
            shifted_imm = any(op.type == arm.ARM_OP_IMM and is_shifted_constant(op.imm)
                              for op in insn.operands) and not name.startswith("mov") \
                and name not in ("addw", "subw")
            shifted_reg = has_shifted_register(insn) and name not in BITFIELD
            if shifted_reg or name in EXTEND_ACCUMULATE or shifted_imm:
                late = written
            if shifted_imm and insn.update_flags:
                cycles = 2
        total += stall + cycles
        sets_flags = bool(insn.update_flags) or name in ("cmp", "cmn", "tst", "teq")
        previous = _Previous(size, sets_flags, frozenset(late))
    return total, taken_extra, branch


class CortexM33Model:
    """Costs blocks once (see the module docstring), then adds up per executed block and
    per flash data read; shares one ICACHE between code and flash data, as the U5 does."""

    CORE = "cortex-m33"
    SUMMARY = ("Cortex-M33: three-stage pipeline, single-cycle loads with a one-cycle load-use "
               "stall, two-cycle result latency of multiplies and shifted operands, 16-bit "
               "branch pairing; flash behind an 8 KB 2-way ICACHE of 16-byte lines shared by "
               "code and flash data, a miss costing the programmed wait states + 1.")
    # the fixed band, used only where an inference's own range is not known (no DWT reads)
    UNCERTAINTY = (0.10, 0.15)
    UNCERTAINTY_WHY = (
        "The M33 TRM gives no instruction timings: the rules are the M4 TRM's Table 3-1 changed "
        "where published M33 r1p0 measurements differ, and the ICACHE miss cost and line size "
        "are assumptions. Every inference is costed at both ends of the open ranges (divide "
        "2-12, taken-branch refill 1-2, ICACHE miss overhead 0-3 cycles beyond the wait "
        "states), and its figure carries that band widened by 8 % each way for what no rule "
        "covers: rules taken from measurement rather than the manual, the ICACHE geometry "
        "(32-byte lines or 1-way move a recorded ds_cnn_lite inference by a few %) and the "
        "flash prefetch.")
    # added to the computed band on each side for what no rule covers
    UNMODELLED = (0.08, 0.08)

    def __init__(self, flash_start: int, flash_end: int, wait_states: Callable[[], int],
                 params: dict | None = None) -> None:
        knobs = {**DEFAULTS, **(params or {})}
        self.flash_start, self.flash_end = flash_start, flash_end
        self.wait_states = wait_states
        self.params = knobs
        self.cycles = 0
        self.cycles_low = 0
        self.cycles_high = 0
        self.icache = LruCache(int(knobs["icache_kb"]) * 1024, int(knobs["icache_ways"]),
                               int(knobs["icache_line_bytes"]))
        self._miss_overhead = int(knobs["icache_miss_overhead"])
        self._refill = int(knobs["branch_refill"])
        self._divide = int(knobs["divide_cycles"])
        self._blocks: dict[tuple[int, int], M33Block] = {}
        self._previous: M33Block | None = None
        self._disassembler = thumb_disassembler(detail=True)

    @classmethod
    def for_board(cls, board, wait_states: Callable[[], int]) -> "CortexM33Model":
        start, end = flash_range(board)
        return cls(start, end, wait_states, board_params(board))

    @property
    def data_ranges(self) -> list[tuple[int, int]]:
        """Flash only: data reads of the code region go through the ICACHE; SRAM has no
        wait states, so its reads need no report (each report is a Python call)."""
        return [(self.flash_start, self.flash_end)]

    def cost(self, address: int, code: bytes) -> M33Block:
        key = (address, len(code))
        block = self._blocks.get(key)
        if block is None:
            insns = list(self._disassembler.disasm(bytes(code), address))
            cycles, taken_extra, branch = m33_costs(insns, self._divide, self._refill)
            low, taken_low, _ = m33_costs(insns, min(DIVIDE_RANGE[0], self._divide),
                                          min(REFILL_RANGE[0], self._refill))
            high, taken_high, _ = m33_costs(insns, max(DIVIDE_RANGE[1], self._divide),
                                            max(REFILL_RANGE[1], self._refill))
            shift = self.icache.shift
            in_flash = self.flash_start <= address < self.flash_end
            lines = tuple(range(address >> shift, ((address + max(1, len(code)) - 1) >> shift) + 1))
            block = M33Block(cycles, taken_extra, branch, address + len(code),
                             lines if in_flash else (), low, taken_low, high, taken_high)
            self._blocks[key] = block
        return block

    def _miss(self) -> None:
        wait = self.wait_states()
        self.cycles += wait + self._miss_overhead
        self.cycles_low += wait + min(MISS_OVERHEAD_RANGE[0], self._miss_overhead)
        self.cycles_high += wait + max(MISS_OVERHEAD_RANGE[1], self._miss_overhead)

    def on_block(self, address: int, size: int, fetch: Callable[[int, int], bytes]) -> None:
        block = self._blocks.get((address, size)) or self.cost(address, fetch(address, size))
        previous = self._previous
        if previous is not None and previous.ends_in_branch and address != previous.fallthrough:
            self.cycles += previous.taken_extra
            self.cycles_low += previous.taken_low
            self.cycles_high += previous.taken_high
        touch = self.icache.touch
        for line in block.lines:
            if not touch(line):
                self._miss()
        self.cycles += block.cycles
        self.cycles_low += block.low
        self.cycles_high += block.high
        self._previous = block

    def on_data_read(self, address: int) -> None:
        if not self.icache.touch_address(address):
            self._miss()

    def band_counters(self) -> tuple[int, int, int]:
        """(nominal, low, high) cycles so far: the low and high totals cost every ranged
        rule at that end of its range."""
        return self.cycles, self.cycles_low, self.cycles_high

    def forget_code(self, start: int, end: int) -> None:
        """Code in [start, end) changed (flash programmed): cost its blocks afresh."""
        forget_blocks(self._blocks, start, end)


class CompiledCortexM33Model(CompiledTotals, CortexM33Model):
    """`CortexM33Model` with its per-block accumulation compiled
    (`native/set_assoc_cycles.c`): the same rules and totals, the ICACHE (which flash data
    reads share) and the taken-branch extras kept inside unicorn's hook calls."""

    def __init__(self, flash_start: int, flash_end: int, wait_states: Callable[[], int],
                 params: dict | None = None) -> None:
        self._start_native(SetAssociativeAccumulator())
        super().__init__(flash_start, flash_end, wait_states, params)
        state, cache = self._native.state, self.icache
        self._native.cache_geometry(0, cache.sets, cache.ways, cache.line_bytes)
        state.data_cache = 0
        state.flash_start, state.flash_end = flash_start, flash_end
        state.miss_multiplier = 1                  # _miss: the wait states plus an overhead
        overhead = self._miss_overhead
        state.miss_add[:] = [overhead, min(MISS_OVERHEAD_RANGE[0], overhead),
                             max(MISS_OVERHEAD_RANGE[1], overhead)]

    def _store(self, address: int, size: int, block: M33Block) -> None:
        native = self._native
        native.put(address, size, block.cycles, block.low, block.high, block.taken_extra,
                   block.taken_low, block.taken_high,
                   native.TAKEN_EXTRA if block.ends_in_branch else native.NONE,
                   block.fallthrough, block.lines[0] if block.lines else 0, len(block.lines))
