"""Cortex-M7 cycle model (STM32H743: caches on, DTCM data, flash on the AXI bus), applied
once per block. It is an approximation, and says so in its band.

Sources, and how far each one goes:

* Arm Cortex-M7 Processor Technical Reference Manual (ARM DDI 0489F), section 1.1/2.1
  "About the processor" and "Features": an in-order, six-stage, dual-issue superscalar
  pipeline with branch prediction (a branch target address cache in the prefetch unit),
  64-bit instruction fetch, a 64-bit AXIM master, zero-wait-state TCMs; section 5.9
  "L1 caches": instruction cache 2-way and
  data cache 4-way set-associative, 32-byte lines, read-allocate, linefills critical word
  first and non-blocking. The TRM publishes no instruction timings and no dual-issue
  table (Arm documents them for the Cortex-M4, not the M7).
* The pairing rules and latencies below therefore come from the LLVM Cortex-M7 machine
  model (llvm/lib/Target/ARM/ARMScheduleM7.td: two ALU, two load, one store, one MAC,
  one branch and one VFP pipe; single-issue load/store multiple and double; divide
  latency 7) and from
  published DWT measurements on an STM32H743 (jnk0le "pipeline cycle test",
  doc/cortex_m7.md) and an STM32H730 (quinapalus.com "Cortex-M7 instruction cycle counts,
  timings, and dual-issue combinations"). Everything taken from them is an assumption
  as far as the TRM goes.
* RM0433 (STM32H742/743/753/750 reference manual): section 2 memory map (DTCM 128 KB at
  0x2000_0000, AXI SRAM at 0x2400_0000, flash at 0x0800_0000 on the AXI bus); section 4.3.8
  / Table 17 "FLASH recommended number of wait states and programming delay": LATENCY = 4
  AXI-clock wait states at VOS0 with ACLK 240 MHz (CPU 480 MHz, HPRE /2), one 256-bit flash
  word per read; DS12110: 16 KB I-cache and 16 KB D-cache.

The per-block cost is an in-order dual-issue schedule of the block's instructions, worked
out once per block: an instruction issues when its operands are ready; the next one issues
in the same cycle if the pair is allowed and its operands are ready then too.

| producer \\ consumer's operand  | ALU  | address / shifted | MAC multiplicand | MAC accumulator | store data |
|--------------------------------|------|-------------------|------------------|-----------------|------------|
| ADD/SUB/MOV/shift by constant  | 1    | 1                 | 1                | 1               | 0          |
| other ALU, DSP, bit-field      | 1    | 2                 | 1                | 1               | 0          |
| LDR (word), VLDR               | 1    | 2                 | 2                | 1               | 0          |
| LDRB/LDRH/LDRSB/LDRSH          | 2    | 3                 | 2                | 1               | 0          |
| MUL/MLA/SMLAD/SMULL ...        | 2    | 3                 | 2                | 1               | 0          |
| VFP arithmetic                 | 3    | 3                 | 3                | 3               | 1          |

(cycles from the producer's issue until the consumer may issue; 0: same cycle.)
Pairs never issue together when: either is single-issue (LDM/STM/PUSH/POP and
LDRD/STRD - ceil(N/2) cycles -, SDIV/UDIV - 7 cycles -, TBB/TBH - 2 -, VDIV 16, VSQRT 14,
double-precision VFP, MRS/MSR/barriers); both are stores; both are multiplies; a multiply
meets a store; the younger is a DSP/bit-field operation (they issue from the older slot
only) or both are; both need the shifter (operand2 shifted register or shifted constant),
or a DSP operation meets one; both are VFP arithmetic; a VFP multiply-accumulate meets a
VFP load, store or move; both write the same register. Two loads may pair (different
D-cache/DTCM banks assumed). A block's final branch issues like any instruction; its
outcome is then charged at the next block: a conditional branch is predicted by a 2-bit
counter per branch (starting weakly not-taken), an indirect branch (BX, POP {PC}, TBB)
by the last target seen there, an unconditional direct branch always right. A correctly
predicted taken branch costs `taken_branch_cycles` (1), a misprediction
`mispredict_cycles` (8, measured 6-8 on the H743).

Memory: code fetched from flash goes through the I-cache (16 KB, 2-way, 32-byte lines,
LRU), data reads of flash through the D-cache (16 KB, 4-way, 32-byte lines, LRU). A miss
costs axi_clock_divider x (LATENCY + 1 + axi_overhead) CPU cycles: the critical word comes
after the flash's programmed wait states (FLASH_ACR.LATENCY, read live, in AXI clocks)
plus an assumed two AXI cycles through the AXIM and the AXI interconnect; 2 x (4+1+2) = 14
at 480 MHz. The rest of the line streams in behind it. DTCM (where the linker places data,
stack and, when it fits, the arena) has no wait states and is not hooked. AXI SRAM reads
are not timed unless the board names the region in `dcache_timed_ram`: a D-cache miss
there costs axi_clock_divider x (1 + axi_overhead) = 6 cycles per 32-byte line. Putting
every SRAM read of a recorded ds_cnn_lite inference (6.1 M reads) through the D-cache adds
0.4 % to its cycles, while reporting them costs a Python call each (6.1 M more calls for
that one inference, which executes 2.3 M blocks); the band covers it.

Board knobs (`[cycle_model]` in board.toml), all optional: axi_clock_divider (2),
axi_overhead (2), mispredict_cycles (8), taken_branch_cycles (1), divide_cycles (7),
icache_kb (16), dcache_kb (16), dcache_timed_ram ([] - RAM region names).
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
    DIVIDES,
    EXTEND_ACCUMULATE,
    MULTIPLE_TRANSFERS,
    MULTIPLIES,
    SIMD_PREFIXES,
    SYSTEM,
    UNCONDITIONAL,
    VFP_MAC,
    LruCache,
    accesses,
    address_registers,
    forget_blocks,
    base_name,
    board_params,
    flash_range,
    has_shifted_register,
    is_it,
    is_shifted_constant,
    register_operands,
    thumb_disassembler,
    transfer_count,
    writes_pc,
)
from mcuqual.target.virtual.cycles_native import CompiledTotals, SetAssociativeAccumulator

DEFAULTS = {"axi_clock_divider": 2, "axi_overhead": 2, "mispredict_cycles": 8,
            "taken_branch_cycles": 1, "divide_cycles": 7, "icache_kb": 16, "dcache_kb": 16,
            "dcache_timed_ram": []}
LINE_BYTES = 32                     # TRM 5.9: both caches
# The ends of the ranges the sources leave open, costed beside the nominal rules (the
# model's `cycles_low` / `cycles_high`): divide 2-12 (data dependent; LLVM's latency 7 is
# one value), the taken-branch bubble 0-2, the misprediction 6-11 cycles (measured 6-8 on
# an H743, up to 11 reported for the pipeline's depth) and the AXI overhead 0-5 AXI cycles.
# A board's knob outside a range widens it.
DIVIDE_RANGE = (2, 12)
TAKEN_RANGE = (0, 2)
MISPREDICT_RANGE = (6, 11)
AXI_OVERHEAD_RANGE = (0, 5)
ICACHE_WAYS, DCACHE_WAYS = 2, 4

# producer profile -> consumer operand kind -> cycles from producer issue to consumer issue
# operand kinds: n normal (ALU), e early (address, shifted operand, early-ALU bit-field),
# m multiplicand, a accumulator, s store data
LATENCY = {
    "alu": {"n": 1, "e": 1, "m": 1, "a": 1, "s": 0},
    "late": {"n": 1, "e": 2, "m": 1, "a": 1, "s": 0},
    "ldw": {"n": 1, "e": 2, "m": 2, "a": 1, "s": 0},
    "ldbh": {"n": 2, "e": 3, "m": 2, "a": 1, "s": 0},
    "mac": {"n": 2, "e": 3, "m": 2, "a": 1, "s": 0},
    "fp": {"n": 3, "e": 3, "m": 3, "a": 3, "s": 1},
}
FLAGS = -1                          # the condition flags, as a pseudo register
EARLY_ALU = frozenset({"add", "sub", "addw", "subw", "mov", "movw", "movt", "adr", "lsl", "lsr",
                       "asr", "ror", "nop"})
EARLY_BITFIELD = frozenset({"ubfx", "sbfx", "rev", "rev16", "revsh", "rbit"})
SLOW_SIMD = frozenset({"ssat", "usat", "ssat16", "usat16", "usad8", "usada8"})
COMPARES = frozenset({"cmp", "cmn", "tst", "teq"})

DIRECT, CONDITIONAL, INDIRECT = "direct", "conditional", "indirect"


@dataclass(frozen=True)
class Op:
    """One instruction as the scheduler sees it."""
    name: str
    kind: str                        # alu shift dsp mac load store multi branch div vfp vfpmac vmov sys
    cycles: int = 1                  # issue cycles (more than 1 only when single-issue)
    single: bool = False
    reads: tuple[tuple[int, str], ...] = ()
    writes: tuple[tuple[int, str], ...] = ()


def _double(insn: capstone.CsInsn) -> bool:
    return any(insn.reg_name(reg).startswith("d") for reg in register_operands(insn))


def classify(insn: capstone.CsInsn, divide_cycles: int = 7) -> Op:
    """The scheduler's view of one detail-mode instruction (see the module docstring)."""
    name = base_name(insn)
    read_regs, written = accesses(insn)
    registers = register_operands(insn)
    is_branch = name in ("b", "bl", "bx", "blx", "cbz", "cbnz")
    flag_reads = ((FLAGS, "n"),) if insn.cc not in UNCONDITIONAL and not is_branch else ()
    flag_writes = ((FLAGS, "alu"),) if insn.update_flags or name in COMPARES else ()
    addresses = address_registers(insn)

    def plain(how: str = "n", skip=()) -> tuple[tuple[int, str], ...]:
        return tuple((reg, how) for reg in read_regs if reg not in skip
                     and insn.reg_name(reg) != "pc") + flag_reads

    if is_it(name):
        return Op(name, "alu")
    if writes_pc(insn) or is_branch or name in ("tbb", "tbh"):
        if name in ("tbb", "tbh"):
            return Op(name, "branch", 2, True, plain("e"))
        if name in MULTIPLE_TRANSFERS or name.startswith("ldm"):
            count = transfer_count(insn)
            return Op(name, "multi", max(1, (count + 1) // 2), True, plain("e"))
        if name.startswith("ldr"):
            return Op(name, "load", 1, True, plain("e"))
        return Op(name, "branch", 1, False, plain("n"))
    if name in MULTIPLIES:
        if name in ACCUMULATE_LAST and len(registers) == 4:
            accumulators = {registers[3]}
        elif name in ACCUMULATE_LONG and len(registers) == 4:
            accumulators = set(registers[:2])
        else:
            accumulators = set()
        reads = tuple((reg, "a" if reg in accumulators else "m") for reg in read_regs) + flag_reads
        return Op(name, "mac", reads=reads,
                  writes=tuple((reg, "mac") for reg in written) + flag_writes)
    if name in DIVIDES:
        return Op(name, "div", divide_cycles, True, plain(),
                  tuple((reg, "alu") for reg in written))
    if name in ("ldrd", "strd") or name in MULTIPLE_TRANSFERS or name.startswith(("ldm", "stm")):
        count = 2 if name in ("ldrd", "strd") else transfer_count(insn)
        loading = name in ("ldrd", "pop", "vpop") or name.startswith(("ldm", "vldm"))
        reads = tuple((reg, "e" if reg in addresses or insn.reg_name(reg) == "sp" else "s")
                      for reg in read_regs)
        writes = tuple((reg, "ldw" if loading and reg not in addresses
                        and insn.reg_name(reg) != "sp" else "alu") for reg in written)
        return Op(name, "multi", max(1, (count + 1) // 2), True, reads, writes)
    if name in ("ldrex", "strex", "ldrexb", "ldrexh", "strexb", "strexh"):
        return Op(name, "sys", 1, True, plain("e"), tuple((reg, "ldw") for reg in written))
    if name.startswith("ldr") or name in ("vldr", "pld", "pli"):
        width = "ldbh" if name[3:4] in ("b", "h", "s") else "ldw"
        data = set(registers[:1]) if name not in ("pld", "pli") else set()
        writes = tuple((reg, width if reg in data else "alu") for reg in written)
        if name == "vldr" and _double(insn):
            return Op(name, "load", 1, True, plain("e"), writes)
        return Op(name, "load", reads=plain("e"), writes=writes)
    if name.startswith("str") or name == "vstr":
        reads = tuple((reg, "e" if reg in addresses else "s") for reg in read_regs) + flag_reads
        writes = tuple((reg, "alu") for reg in written)
        return Op(name, "store", 1, name == "vstr" and _double(insn), reads, writes)
    if name in SYSTEM:
        cycles = 3 if name in ("isb", "dsb", "dmb") else 1
        return Op(name, "sys", cycles, True, plain(), tuple((reg, "alu") for reg in written))
    if name.startswith("v"):
        double = _double(insn)
        if name == "vdiv":
            return Op(name, "vfp", 16, True, plain(), tuple((reg, "fp") for reg in written))
        if name == "vsqrt":
            return Op(name, "vfp", 14, True, plain(), tuple((reg, "fp") for reg in written))
        to_core = bool(written) and insn.reg_name(written[0]).startswith("r")
        # VMOV to a core register is ready for the ALU a cycle later; FP results after three
        writes = tuple((reg, "alu" if to_core else "fp") for reg in written)
        if name == "vmrs":
            writes = ((FLAGS, "alu"),)
        kind = "vfpmac" if name in VFP_MAC else "vmov" if name == "vmov" else "vfp"
        return Op(name, kind, 1, double, plain(), writes)
    if name in BITFIELD or name.startswith(SIMD_PREFIXES):
        profile = "mac" if name in SLOW_SIMD or name.startswith(("q", "uq")) else "late"
        if name in EARLY_BITFIELD:
            reads = plain("e")
        elif name in EXTEND_ACCUMULATE or name.startswith("pkh") or name == "bfi":
            last = registers[-1] if name != "bfi" else registers[1]
            reads = tuple((reg, "e" if reg == last else "n") for reg in read_regs) + flag_reads
        else:
            reads = plain()
        return Op(name, "dsp", reads=reads,
                  writes=tuple((reg, profile) for reg in written) + flag_writes)
    # data processing
    shifted_reg = has_shifted_register(insn)
    shifted_imm = any(op.type == arm.ARM_OP_IMM and is_shifted_constant(op.imm)
                      for op in insn.operands) and not name.startswith(("mov", "mvn")) \
        and name not in ("addw", "subw")
    kind = "shift" if shifted_reg or shifted_imm else "alu"
    if shifted_reg:
        shifted = {op.reg for op in insn.operands[1:]
                   if op.type == arm.ARM_OP_REG and op.shift.type != arm.ARM_SFT_INVALID}
        reads = tuple((reg, "e" if reg in shifted else "n") for reg in read_regs) + flag_reads
    else:
        reads = plain()
    profile = "alu" if name in EARLY_ALU and kind == "alu" else "late"
    return Op(name, kind, reads=reads,
              writes=tuple((reg, profile) for reg in written) + flag_writes)


def can_pair(older: Op, younger: Op) -> bool:
    """Whether two neighbours may issue in the same cycle (resources, not operands)."""
    if older.single or younger.single or older.kind == "branch":
        return False
    kinds = {older.kind, younger.kind}
    if older.kind == "store" and younger.kind == "store":
        return False
    if older.kind == "mac" and younger.kind == "mac":
        return False
    if "mac" in kinds and "store" in kinds:
        return False
    if younger.kind == "dsp" or (older.kind == "dsp" and younger.kind == "shift"):
        return False
    if older.kind == "shift" and younger.kind == "shift":
        return False
    if older.kind in ("vfp", "vfpmac") and younger.kind in ("vfp", "vfpmac"):
        return False
    if "vfpmac" in kinds and kinds & {"load", "store", "vmov"} and \
            (older.name.startswith("v") and younger.name.startswith("v")):
        return False
    if ({reg for reg, _ in older.writes} & {reg for reg, _ in younger.writes}) - {FLAGS}:
        return False                    # (the flags: the younger's simply win)
    return True


def schedule(ops: list[Op]) -> int:
    """Cycles to issue `ops` in order, two at a time where the rules allow."""
    ready: dict[int, tuple[int, str]] = {}          # register -> (issue cycle, profile)
    cycle, index, count = 0, 0, len(ops)

    def earliest(op: Op) -> int:
        start = 0
        for reg, how in op.reads:
            written = ready.get(reg)
            if written is not None:
                start = max(start, written[0] + LATENCY[written[1]][how])
        return start

    while index < count:
        older = ops[index]
        issue = max(cycle, earliest(older))
        pair = False
        if index + 1 < count and can_pair(older, ops[index + 1]):
            younger = ops[index + 1]
            from_older = dict(older.writes)
            pair = True
            for reg, how in younger.reads:
                if reg in from_older:
                    if LATENCY[from_older[reg]][how] > 0:
                        pair = False
                        break
                else:
                    written = ready.get(reg)
                    if written is not None and written[0] + LATENCY[written[1]][how] > issue:
                        pair = False
                        break
        last = issue + older.cycles - 1
        for reg, profile in older.writes:
            ready[reg] = (last, profile)
        if pair:
            for reg, profile in ops[index + 1].writes:
                ready[reg] = (issue, profile)
        cycle = issue + older.cycles
        index += 2 if pair else 1
    return cycle


def branch_kind(insn: capstone.CsInsn) -> str | None:
    """How the final instruction of a block leaves it, for the predictor (None: it does not)."""
    name = base_name(insn)
    if name in ("cbz", "cbnz"):
        return CONDITIONAL
    if name in ("b", "bl"):
        return CONDITIONAL if insn.cc not in UNCONDITIONAL else DIRECT
    if writes_pc(insn) or name in ("bx", "blx", "tbb", "tbh"):
        return INDIRECT
    return None


@dataclass(frozen=True)
class M7Block:
    cycles: int                  # the dual-issue schedule of the block
    branch: str | None           # DIRECT, CONDITIONAL, INDIRECT or None
    fallthrough: int             # address after the block: also the branch's predictor key
    lines: tuple[int, ...]       # I-cache lines its code spans (flash code only)
    low: int = 0                 # the schedule with divides at the low end of their range
    high: int = 0                # ... and at the high end


class CortexM7Model:
    """Costs blocks once by the dual-issue schedule (module docstring), then adds branch
    prediction outcomes and cache misses per executed block and per reported data read."""

    CORE = "cortex-m7"
    SUMMARY = ("Cortex-M7: in-order dual issue scheduled per block (pairing rules and "
               "latencies from LLVM's M7 model and H7 measurements; the TRM gives none), "
               "2-bit branch prediction with an 8-cycle misprediction, 16 KB 2-way I-cache "
               "and 16 KB 4-way D-cache of 32-byte lines in front of the AXI flash, a miss "
               "costing 2 x (LATENCY + 1 + 2) CPU cycles; DTCM without wait states.")
    # the fixed band, used only where an inference's own range is not known (no DWT reads)
    UNCERTAINTY = (0.20, 0.30)
    UNCERTAINTY_WHY = (
        "The M7 TRM publishes neither instruction timings nor dual-issue rules: pairing, "
        "latencies, prediction and the AXI miss cost come from LLVM's M7 model and STM32H7 "
        "measurements. Every inference is costed at both ends of the open ranges (divide "
        "2-12, taken-branch bubble 0-2, misprediction 6-11, AXI overhead 0-5), and its figure "
        "carries that band widened by what no rule covers: -12 % (re-costing a recorded "
        "ds_cnn_lite inference with DSP operations pairing as the younger instruction moves "
        "it -10 %) and +22 % (no load pairs - bank conflicts - moves it +6 %; store-buffer "
        "stalls of byte stores, unaligned loads and fetch-bandwidth limits are not modelled "
        "and would add cycles).")
    # added to the computed band on each side for what no rule covers
    UNMODELLED = (0.12, 0.22)

    def __init__(self, flash_start: int, flash_end: int, wait_states: Callable[[], int],
                 params: dict | None = None,
                 timed_ram: list[tuple[int, int]] | None = None) -> None:
        knobs = {**DEFAULTS, **(params or {})}
        self.params = knobs
        self.flash_start, self.flash_end = flash_start, flash_end
        self.wait_states = wait_states
        self.cycles = 0
        self.cycles_low = 0
        self.cycles_high = 0
        self.icache = LruCache(int(knobs["icache_kb"]) * 1024, ICACHE_WAYS, LINE_BYTES)
        self.dcache = LruCache(int(knobs["dcache_kb"]) * 1024, DCACHE_WAYS, LINE_BYTES)
        self._divider = int(knobs["axi_clock_divider"])
        self._overhead = int(knobs["axi_overhead"])
        self._mispredict = int(knobs["mispredict_cycles"])
        self._taken = int(knobs["taken_branch_cycles"])
        self._divide = int(knobs["divide_cycles"])
        self._timed_ram = list(timed_ram or [])
        self._taken_range = (min(TAKEN_RANGE[0], self._taken), max(TAKEN_RANGE[1], self._taken))
        self._mispredict_range = (min(MISPREDICT_RANGE[0], self._mispredict),
                                  max(MISPREDICT_RANGE[1], self._mispredict))
        self._overhead_range = (min(AXI_OVERHEAD_RANGE[0], self._overhead),
                                max(AXI_OVERHEAD_RANGE[1], self._overhead))
        self._divide_range = (min(DIVIDE_RANGE[0], self._divide),
                              max(DIVIDE_RANGE[1], self._divide))
        self._blocks: dict[tuple[int, int], M7Block] = {}
        self._previous: M7Block | None = None
        self._counters: dict[int, int] = {}         # branch -> 2-bit counter (>= 2: taken)
        self._targets: dict[int, int] = {}          # indirect branch -> last target
        self._disassembler = thumb_disassembler(detail=True)

    @classmethod
    def for_board(cls, board, wait_states: Callable[[], int]) -> "CortexM7Model":
        params = board_params(board)
        timed = [(board.region(name).start, board.region(name).end)
                 for name in params.get("dcache_timed_ram", [])]
        start, end = flash_range(board)
        return cls(start, end, wait_states, params, timed)

    @property
    def data_ranges(self) -> list[tuple[int, int]]:
        """Flash (weights through the D-cache), plus AXI SRAM regions only where the board
        asks for them (see the module docstring for why not by default)."""
        return [(self.flash_start, self.flash_end), *self._timed_ram]

    def _add_miss(self, wait_states: int) -> None:
        """One cache line from the AXI bus: `wait_states` flash wait states (0 for SRAM)."""
        self.cycles += self._divider * (wait_states + 1 + self._overhead)
        self.cycles_low += self._divider * (wait_states + 1 + self._overhead_range[0])
        self.cycles_high += self._divider * (wait_states + 1 + self._overhead_range[1])

    def cost(self, address: int, code: bytes) -> M7Block:
        key = (address, len(code))
        block = self._blocks.get(key)
        if block is None:
            insns = list(self._disassembler.disasm(bytes(code), address))
            cycles = schedule([classify(insn, self._divide) for insn in insns])
            low, high = (schedule([classify(insn, divide) for insn in insns])
                         for divide in self._divide_range)
            kind = branch_kind(insns[-1]) if insns else None
            in_flash = self.flash_start <= address < self.flash_end
            last = address + max(1, len(code)) - 1
            lines = tuple(range(address // LINE_BYTES, last // LINE_BYTES + 1))
            block = M7Block(cycles, kind, address + len(code), lines if in_flash else (),
                            low, high)
            self._blocks[key] = block
        return block

    def _branch_outcome(self, previous: M7Block, address: int) -> tuple[int, int, int]:
        """(nominal, low, high) cycles the previous block's branch costs, going to `address`."""
        taken = address != previous.fallthrough
        site = previous.fallthrough
        if previous.branch == DIRECT:
            return (self._taken, *self._taken_range)
        if previous.branch == CONDITIONAL:
            counter = self._counters.get(site, 1)
            self._counters[site] = min(3, counter + 1) if taken else max(0, counter - 1)
            right = (counter >= 2) == taken
        else:
            right = self._targets.get(site) == address
            self._targets[site] = address
        if not right:
            return (self._mispredict, *self._mispredict_range)
        return (self._taken, *self._taken_range) if taken else (0, 0, 0)

    def on_block(self, address: int, size: int, fetch: Callable[[int, int], bytes]) -> None:
        block = self._blocks.get((address, size)) or self.cost(address, fetch(address, size))
        previous = self._previous
        if previous is not None and previous.branch is not None:
            nominal, low, high = self._branch_outcome(previous, address)
            self.cycles += nominal
            self.cycles_low += low
            self.cycles_high += high
        touch = self.icache.touch
        for line in block.lines:
            if not touch(line):
                self._add_miss(self.wait_states())
        self.cycles += block.cycles
        self.cycles_low += block.low
        self.cycles_high += block.high
        self._previous = block

    def on_data_read(self, address: int) -> None:
        if self.dcache.touch(address // LINE_BYTES):
            return
        in_flash = self.flash_start <= address < self.flash_end
        self._add_miss(self.wait_states() if in_flash else 0)

    def band_counters(self) -> tuple[int, int, int]:
        """(nominal, low, high) cycles so far: the low and high totals cost every ranged
        rule at that end of its range."""
        return self.cycles, self.cycles_low, self.cycles_high

    def forget_code(self, start: int, end: int) -> None:
        """Code in [start, end) changed (flash programmed): cost its blocks afresh."""
        forget_blocks(self._blocks, start, end)


class CompiledCortexM7Model(CompiledTotals, CortexM7Model):
    """`CortexM7Model` with its per-block accumulation compiled
    (`native/set_assoc_cycles.c`): the same rules and totals, the L1 caches and the branch
    predictor kept inside unicorn's hook calls."""

    _KINDS = {None: SetAssociativeAccumulator.NONE, DIRECT: SetAssociativeAccumulator.DIRECT,
              CONDITIONAL: SetAssociativeAccumulator.CONDITIONAL,
              INDIRECT: SetAssociativeAccumulator.INDIRECT}

    def __init__(self, flash_start: int, flash_end: int, wait_states: Callable[[], int],
                 params: dict | None = None,
                 timed_ram: list[tuple[int, int]] | None = None) -> None:
        self._start_native(SetAssociativeAccumulator())
        super().__init__(flash_start, flash_end, wait_states, params, timed_ram)
        native, state = self._native, self._native.state
        for which, cache in enumerate((self.icache, self.dcache)):
            native.cache_geometry(which, cache.sets, cache.ways, cache.line_bytes)
        state.data_cache = 1
        state.flash_start, state.flash_end = flash_start, flash_end
        state.miss_multiplier = self._divider      # _add_miss: AXI clocks of the line
        state.miss_add[:] = [self._divider * (1 + overhead) for overhead in
                             (self._overhead, *self._overhead_range)]
        state.taken_cost[:] = [self._taken, *self._taken_range]
        state.mispredict_cost[:] = [self._mispredict, *self._mispredict_range]

    def _store(self, address: int, size: int, block: M7Block) -> None:
        self._native.put(address, size, block.cycles, block.low, block.high, 0, 0, 0,
                         self._KINDS[block.branch], block.fallthrough,
                         block.lines[0] if block.lines else 0, len(block.lines))
