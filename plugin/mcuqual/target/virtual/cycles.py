"""Cortex-M4 cycle model, applied once per translated block.

Instruction costs follow the Cortex-M4 Technical Reference Manual (ARM DDI 0439B):
section 3.3.1, Table 3-1 "Cortex-M4 instruction set summary", and section 3.3.2
"Load/store timings". Memory timing follows the STM32L4+ flash interface (RM0432,
section 3.3: wait states and the ART accelerator). P is the pipeline refill after a taken
branch, 1 to 3 cycles by Table 3-1 (the target's alignment and width, and whether the
core speculated the address early). Its nominal value comes from published DWT
measurements on a Cortex-M4 (compendium.i-0.nl, "Branch timing" and "Instruction
alignment / rules": a taken branch 2 cycles, 3 to a 32-bit instruction on an odd halfword),
an assumption as far as the TRM goes, inside the range it gives.

| class                                   | cycles (nominal; low-high where the manual gives a range) |
|-----------------------------------------|-----------------------------------------------------|
| data processing, MOV, shifts, compares, bit-field, SIMD | 1                                   |
| MUL/MLA/MLS, SMLAD, SMULL, SMLAL and the other multiplies | 1 (Table 3-1: all single cycle)   |
| SDIV, UDIV                              | 7; 2-12 by the operands (Table 3-1)                 |
| LDR/LDRB/LDRH/LDRSB/LDRSH, LDREX, STREX | 2; 1 when it follows a single load whose loaded register it does not use as an address (3.3.2: "LDR [any] are pipelined when possible"; STREX "is treated more like an LDR"); a pipelined 32-bit one on an odd halfword +0-1 (Table 3-1 footnote b: it may not pipeline) |
| LDR Rt, [PC, #imm] (literal)            | as a load; +0-1 (3.3.2: "might add a cycle because of contention with the fetch unit") |
| STR/STRB/STRH, immediate or no offset   | 1 (3.3.2: "always one cycle", the data phase overlaps the next instruction) |
| STR/STRB/STRH, register offset          | 2; 1 right after a single load (3.3.2)              |
| a load or store right after any store   | not pipelined (3.3.2: "nothing can be pipelined after the store") |
| LDRD/STRD                               | 3, never pipelined with a neighbour (3.3.2)          |
| LDM/STM/PUSH/POP of N registers (base left out) | 1 + N, never pipelined (3.3.2)              |
| a load/store whose address register the previous data-processing instruction wrote | +1 (3.3.2: no forwarding path to the address generation) |
| B, BL, BX, BLX, CBZ/CBNZ, MOV/ADD to PC | 1 + P taken, 1 not taken (condition failed)          |
| POP/LDM including PC                    | 1 + N + P; 1 when its condition fails                |
| LDR PC, [..]                            | 2 + 3 = 5; 1 when its condition fails (3.3.2: "at least two cycles for the load, and three cycles for the pipeline reload") |
| TBB/TBH                                 | 2 + 1 + 3 = 6 (3.3.2: load, add, three-cycle reload)  |
| P (taken branch refill)                 | 1; 2 when the target is a 32-bit instruction at an address that is 2 mod 4; range 1-3 (Table 3-1) |
| IT                                      | 0 when it follows a 16-bit instruction in the same block (folded); 1 otherwise, range 0-1 |
| VFP add/sub/mul/move                    | 1; VMLA/VFMA 3; VDIV/VSQRT 14; VLDR/VSTR 2; VPUSH/VPOP/VLDM/VSTM 1 + N |

The model keeps three totals: `cycles` (nominal, what DWT_CYCCNT reads), `cycles_low` and
`cycles_high` (every ranged rule at its low and its high end), so each inference carries
the band its own instruction mix implies (`band_counters`).

Flash at 120 MHz needs 5 wait states (FLASH_ACR.LATENCY, read live; ST's STM32CubeL4
LL driver gives 5 WS for 100-120 MHz in range 1 on the L4R/L4S). The ART accelerator's
instruction cache (32 lines of 32 bytes, LRU) hides them on a hit; a miss costs the wait
states. Data reads from flash (weights) go through its data cache (8 lines of 32 bytes,
LRU) the same way. FLASH_ACR.ICEN/DCEN are followed: a cache that is off misses every
time. SRAM accesses have no wait states. The figure this produces is an emulation,
labelled `emulated` wherever it is reported.

RM0432's own ART text was not available to this project; the geometry above is the one
RM0440 (STM32G4, section 3.3.4) gives for the same ART: 32 instruction lines and 8 data
lines of 4 x 64 bits with dual-bank 64-bit flash reads, LRU replacement. How a 4 x 64-bit
line is filled on a miss is not stated there, so the data cache carries a range: the
nominal and low totals charge one miss per 32-byte line, the high total one per 64-bit
flash word (each word of a line read on its first use). The prefetch buffer (PRFTEN) is
not modelled: it can only hide part of a sequential instruction miss.

This module also holds the registry of the cores' models (`CYCLE_MODELS`, keyed by a core
description's `cycle_model`): the Cortex-M33 model is in `cycles_m33`, the Cortex-M7
model in `cycles_m7`, what they share in `cycles_common`. Every model has the same face:
`for_board(board, wait_states)`, `cycles`, `data_ranges` (the [start, end) ranges whose
data reads the board reports), `on_block(address, size, fetch)`, `on_data_read(address)`,
`band_counters()` ((nominal, low, high) cycles so far, or None when the model keeps no
ranged totals), and the class attributes `UNCERTAINTY` (low, high) - the real core's
cycles are expected within [emulated x (1 - low), emulated x (1 + high)] for this suite's
int8 kernels - and `UNCERTAINTY_WHY`. `describe(model)` says in a paragraph what a model
models.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import capstone
from capstone import arm

from mcuqual.target.virtual.cycles_common import (
    MULTIPLE_TRANSFERS,
    MULTIPLIES,
    DIVIDES,
    VFP_MAC,
    VFP_SLOW,
    UNCONDITIONAL,
    accesses,
    address_registers,
    base_name,
    forget_blocks,
    is_it,
    memory_operand,
    register_operands,
    thumb_disassembler,
    transfer_count,
    writes_pc,
)
from mcuqual.target.virtual.cycles_m33 import CompiledCortexM33Model
from mcuqual.target.virtual.cycles_m7 import CompiledCortexM7Model
from mcuqual.target.virtual.cycles_native import CompiledTotals, M4Accumulator

# (nominal, low, high) where Table 3-1 gives a range
DIVIDE_CYCLES = (7, 2, 12)
BRANCH_REFILL = 1                 # P for an aligned or 16-bit target (nominal, measured)
REFILL_RANGE = (1, 3)             # P's range (Table 3-1)
LOAD_PC_RELOAD = 3                # 3.3.2: LDR PC and TBB/TBH reload the pipeline in three cycles
DIRECT = frozenset({"b", "bl", "bx", "blx", "cbz", "cbnz"})
SINGLE_LOADS = frozenset({"ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrex", "ldrexb", "ldrexh",
                          "ldrt", "ldrbt", "ldrht", "ldrsbt", "ldrsht", "strex", "strexb",
                          "strexh"})
SINGLE_STORES = frozenset({"str", "strb", "strh", "strt", "strbt", "strht"})
_SP = arm.ARM_REG_SP
_PC = arm.ARM_REG_PC


@dataclass(frozen=True)
class BlockCost:
    cycles: int                  # nominal cost when the final branch falls through
    low: int                     # ... every ranged rule at its low end
    high: int                    # ... and at its high end
    taken_extra: int             # added (to all three) when the final branch is taken
    refill: bool                 # a taken final branch also pays P (charged at the target)
    ends_in_branch: bool
    fallthrough: int             # address after the block
    lines: tuple[int, ...]       # 32-byte flash lines the block's code spans (I-cache)
    wide_unaligned: bool         # its first instruction is 32-bit at an address 2 mod 4


# what the previous instruction leaves behind for the next one's cost
_LOAD, _STORE, _BLOCKING, _ALU, _OTHER = range(5)


def m4_costs(insns: list[capstone.CsInsn]) -> tuple[int, int, int, int, bool, bool]:
    """(nominal, low, high, taken_extra, refill, ends_in_branch) for a block's detail-mode
    instructions, by the table in the module docstring."""
    nominal = low = high = 0
    taken_extra, refill, branch = 0, False, False
    previous, previous_loaded, previous_written, previous_size = _OTHER, set(), set(), 0
    for insn in insns:
        name = base_name(insn)
        size = insn.size
        conditional = insn.cc not in UNCONDITIONAL
        if is_it(name):
            folded = previous_size == 2
            nominal += 0 if folded else 1
            high += 0 if folded else 1
            previous_size = size                 # an IT is 16-bit: the next one may fold too
            continue
        cost, lo_add, hi_add = 0, 0, 0
        kind, loaded, written = _OTHER, set(), set()
        mem = memory_operand(insn)
        address = set(address_registers(insn))
        if name in ("push", "pop", "vpush", "vpop"):
            address = {_SP}
        elif name.startswith(("ldm", "stm", "vldm", "vstm")):
            registers = register_operands(insn)
            address = {registers[0]} if registers else set()
        stall = 1 if address & previous_written else 0
        if writes_pc(insn) or name in DIRECT or name in ("tbb", "tbh"):
            branch = True
            if name in ("tbb", "tbh") or name in SINGLE_LOADS:
                whole = (2 + 1 if name in ("tbb", "tbh") else 2) + LOAD_PC_RELOAD
                if conditional:               # taken is told apart at the next block
                    cost, taken_extra, refill = 1, whole - 1, False
                else:
                    cost, taken_extra, refill = whole, 0, False
            elif name in MULTIPLE_TRANSFERS or name.startswith("ldm"):
                whole = 1 + transfer_count(insn)
                cost, taken_extra = (1, whole - 1) if conditional else (whole, 0)
                refill = True
            else:                             # B, BL, BX, BLX, CBZ/CBNZ, MOV/ADD to PC
                cost, taken_extra, refill = 1, 0, True
            cost += stall
            nominal += cost
            low += cost
            high += cost
            previous, previous_loaded, previous_written, previous_size = _OTHER, set(), set(), size
            continue
        # behind a single load that did not produce its address; a 32-bit one on an odd
        # halfword may not pipeline (footnote b): the high end charges it the full 2
        pipelined = previous == _LOAD and not (address & previous_loaded)
        odd_wide = size == 4 and insn.address % 4 == 2
        if name in SINGLE_LOADS or (name in SINGLE_STORES and mem is not None and mem.index):
            cost = 1 if pipelined else 2
            if pipelined and odd_wide:
                hi_add = 1
            if name in SINGLE_LOADS:
                if mem is not None and mem.base == _PC:
                    hi_add = 1                # literal load: fetch-unit contention
                kind, loaded = _LOAD, set(register_operands(insn)[:1])
            else:
                kind = _STORE                 # register offset
        elif name in SINGLE_STORES:           # immediate or no offset: always one cycle
            cost, kind = 1, _STORE
        elif name in ("ldrd", "strd"):
            cost, kind = 3, _BLOCKING
        elif name in MULTIPLE_TRANSFERS or name.startswith(("ldm", "stm")):
            cost, kind = 1 + transfer_count(insn), _BLOCKING
        elif name in ("vldr", "vstr"):
            cost, kind = 2, _BLOCKING
        elif name in DIVIDES:
            cost, lo_add, hi_add = DIVIDE_CYCLES[0], DIVIDE_CYCLES[1] - DIVIDE_CYCLES[0], \
                DIVIDE_CYCLES[2] - DIVIDE_CYCLES[0]
            kind = _ALU
        elif name in VFP_SLOW:
            cost = 14
        elif name in VFP_MAC:
            cost = 3
        else:                                  # data processing, multiplies, bit-field, SIMD
            cost = 1
            kind = _ALU if not name.startswith("v") else _OTHER
        if kind in (_LOAD, _STORE, _BLOCKING):
            cost += stall
        nominal += cost
        low += cost + lo_add
        high += cost + hi_add
        if kind == _ALU:
            written = set(accesses(insn)[1])
        previous, previous_loaded, previous_written, previous_size = kind, loaded, written, size
    return nominal, low, high, taken_extra, refill, branch


class CycleModel:
    """Costs blocks once, then accumulates cycles per executed block and flash access."""

    CORE = "cortex-m4"
    SUMMARY = ("Cortex-M4: TRM Table 3-1 and section 3.3.2 per instruction (loads 2, or 1 "
               "pipelined behind a single load; immediate-offset stores 1; no pipelining after "
               "a store or around LDRD/LDM; +1 when an address comes from the previous "
               "instruction's result; taken branches 1 + P, P = 1, 2 for an unaligned 32-bit "
               "target; LDR PC 5, TBB 6; divides 7), the STM32L4+ ART accelerator as 32 + 8 "
               "lines of 32 bytes in front of the flash wait states.")
    # the fixed band, used only where an inference's own range is not known (no DWT reads)
    UNCERTAINTY = (0.03, 0.30)
    UNCERTAINTY_WHY = (
        "Where the manuals leave a range - the refill P 1-3, divide 2-12, a literal load's "
        "extra cycle, a 32-bit load on an odd halfword that may not pipeline, IT folding, and "
        "how the ART fills a 4 x 64-bit data line (RM0432's ART text was not available; "
        "RM0440's G4 ART is the reference) - every inference is costed at both ends, and its "
        "figure carries that band widened by 2 % each way for what no rule covers "
        "(write-buffer stalls, the ART prefetch, bus effects).")
    # added to the computed band on each side for what no rule covers
    UNMODELLED = (0.02, 0.02)

    LINE_BYTES = 32

    def __init__(self, flash_start: int, flash_end: int, wait_states: callable) -> None:
        self.flash_start, self.flash_end = flash_start, flash_end
        self.wait_states = wait_states
        self.cycles = 0
        self.cycles_low = 0
        self.cycles_high = 0
        self._blocks: dict[tuple[int, int], BlockCost] = {}
        self._previous: BlockCost | None = None
        self._icache: OrderedDict[int, None] = OrderedDict()
        self._dcache: OrderedDict[int, int] = OrderedDict()    # line -> 64-bit words read
        self.icache_enabled = self.dcache_enabled = True
        self._disassembler = thumb_disassembler(detail=True)

    def set_flash_caches(self, icache: bool, dcache: bool) -> None:
        """Follow FLASH_ACR.ICEN/DCEN: a disabled cache neither hits nor fills."""
        self.icache_enabled, self.dcache_enabled = icache, dcache
        if not icache:
            self._icache.clear()
        if not dcache:
            self._dcache.clear()

    def cost(self, address: int, code: bytes) -> BlockCost:
        key = (address, len(code))
        cost = self._blocks.get(key)
        if cost is None:
            insns = list(self._disassembler.disasm(bytes(code), address))
            nominal, low, high, taken_extra, refill, branch = m4_costs(insns)
            first = address // self.LINE_BYTES
            last = (address + max(1, len(code)) - 1) // self.LINE_BYTES
            in_flash = self.flash_start <= address < self.flash_end
            wide_unaligned = bool(insns) and insns[0].size == 4 and address % 4 == 2
            cost = BlockCost(nominal, low, high, taken_extra, refill, branch,
                             address + len(code),
                             tuple(range(first, last + 1)) if in_flash else (), wide_unaligned)
            self._blocks[key] = cost
        return cost

    @staticmethod
    def _touch(cache: OrderedDict, line: int, capacity: int) -> bool:
        if line in cache:
            cache.move_to_end(line)
            return True
        cache[line] = None
        if len(cache) > capacity:
            cache.popitem(last=False)
        return False

    def on_block(self, address: int, size: int, fetch: callable) -> None:
        cost = self._blocks.get((address, size)) or self.cost(address, fetch(address, size))
        previous = self._previous
        extra = 0
        low = high = 0
        if previous is not None and previous.ends_in_branch and address != previous.fallthrough:
            extra = previous.taken_extra
            low = high = extra
            if previous.refill:
                extra += BRANCH_REFILL + cost.wide_unaligned
                low += REFILL_RANGE[0]
                high += REFILL_RANGE[1]
        wait = 0
        for line in cost.lines:
            if not (self.icache_enabled and self._touch(self._icache, line, 32)):
                wait += self.wait_states()
        self.cycles += cost.cycles + extra + wait
        self.cycles_low += cost.low + low + wait
        self.cycles_high += cost.high + high + wait
        self._previous = cost

    @classmethod
    def for_board(cls, board, wait_states: Callable[[], int]) -> "CycleModel":
        """The model for `board`: its flash window, timed with the live wait states."""
        flash_start, flash_bytes = board.flash_window()
        return cls(flash_start, flash_start + flash_bytes, wait_states)

    @property
    def data_ranges(self) -> list[tuple[int, int]]:
        """[start, end) ranges whose data reads the board reports (`on_data_read`)."""
        return [(self.flash_start, self.flash_end)]

    def on_data_read(self, address: int) -> None:
        line, word = address >> 5, 1 << ((address >> 3) & 3)
        cache = self._dcache
        words = cache.get(line)
        if words is not None and self.dcache_enabled:
            cache.move_to_end(line)
            if not words & word:                  # high end: each 64-bit word on first use
                cache[line] = words | word
                self.cycles_high += self.wait_states()
            return
        wait = self.wait_states()
        self.cycles += wait
        self.cycles_low += wait
        self.cycles_high += wait
        if self.dcache_enabled:
            cache[line] = word
            if len(cache) > 8:
                cache.popitem(last=False)

    on_flash_read = on_data_read

    def band_counters(self) -> tuple[int, int, int]:
        """(nominal, low, high) cycles so far: the low and high totals cost every ranged
        rule at that end of its range."""
        return self.cycles, self.cycles_low, self.cycles_high

    def forget_code(self, start: int, end: int) -> None:
        """Code in [start, end) changed (flash programmed): cost its blocks afresh."""
        forget_blocks(self._blocks, start, end)


class CompiledCycleModel(CompiledTotals, CycleModel):
    """The Cortex-M4 model with the per-block accumulation compiled (`native/m4_cycles.c`):
    the same rules and totals as `CycleModel` (blocks costed here, once), added up inside
    unicorn's hook calls instead of a Python call per block and per flash read."""

    def __init__(self, flash_start: int, flash_end: int, wait_states: callable) -> None:
        self._start_native(M4Accumulator())
        state = self._native.state
        state.refill_nominal, (state.refill_low, state.refill_high) = BRANCH_REFILL, REFILL_RANGE
        super().__init__(flash_start, flash_end, wait_states)

    def set_flash_caches(self, icache: bool, dcache: bool) -> None:
        self.icache_enabled, self.dcache_enabled = icache, dcache
        state = self._native.state
        state.icache_enabled, state.dcache_enabled = int(icache), int(dcache)
        state.wait_states = self.wait_states()     # FLASH_ACR was written (or reset)
        if not icache:
            self._native.call("clear_icache")
        if not dcache:
            self._native.call("clear_dcache")

    def _store(self, address: int, size: int, cost: BlockCost) -> None:
        self._native.put(address, size, cost.cycles, cost.low, cost.high, cost.taken_extra,
                         int(cost.refill), int(cost.ends_in_branch), cost.fallthrough,
                         cost.lines[0] if cost.lines else 0, len(cost.lines),
                         int(cost.wide_unaligned))


CortexM4Model = CycleModel

# Cycle models by the name a core description gives (firmware/cores/<core>.toml).
CYCLE_MODELS: dict[str, type] = {"cortex-m4": CompiledCycleModel,
                                 "cortex-m33": CompiledCortexM33Model,
                                 "cortex-m7": CompiledCortexM7Model}


def describe(model: type) -> str:
    """What a cycle model models and how far to trust it, in one paragraph (for the
    README and reports): its summary, then its uncertainty band and why."""
    low, high = model.UNCERTAINTY
    return (f"{model.SUMMARY} Real cycles expected within -{100 * low:.0f} % / "
            f"+{100 * high:.0f} % of the emulated count: {model.UNCERTAINTY_WHY}")


def cycle_model_class(board) -> type:
    """The cycle model class of `board`'s core (its UNCERTAINTY band, for reports)."""
    return CYCLE_MODELS[board.core_description.cycle_model]
