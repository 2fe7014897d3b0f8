"""Cortex-M4 cycle model, applied once per translated block.

Instruction costs follow the instruction timing table of the Cortex-M4
Technical Reference Manual (section 3.3); memory timing follows the STM32L4+
flash interface (RM0432, section 3.3: wait states and the ART accelerator):

| class                                   | cycles                                  |
|-----------------------------------------|-----------------------------------------|
| data processing, MOV, shifts, compares  | 1                                       |
| MUL/MLA/MLS, SMULxy, SMLAxy, SMLAD, SMUAD, UMULL, SMLAL and the other multiplies | 1 |
| SDIV, UDIV                              | 2 to 12 (data dependent); modelled as 7 |
| LDR/STR single (any width)              | 2; 1 when it follows another load/store (pipelined) |
| LDRD/STRD                               | 3                                       |
| LDM/STM/PUSH/POP with N registers       | 1 + N                                   |
| branch taken (B, BL, BX, BLX, CBZ/CBNZ, POP/LDM of PC, writes to PC) | 1 + P, P = 2 (pipeline refill from the ART cache) |
| branch not taken                        | 1                                       |
| IT                                      | 0 (folded into the next instruction)    |
| VFP add/sub/mul/move                    | 1; VMLA/VFMA 3; VDIV/VSQRT 14; VLDR/VSTR 2; VPUSH/VPOP 1 + N |

(LDM/STM with an explicit base register are charged one more than 1 + N: the model counts
the base among the transfers. Kept: the baseline was measured with it; PUSH/POP are right.)

Flash at 120 MHz needs 5 wait states. The ART accelerator's instruction cache
(32 lines of 32 bytes) hides them on a hit; a miss costs the wait states. Data
reads from flash (weights) go through its data cache (8 lines of 32 bytes) the
same way. SRAM accesses have no wait states. The figure this produces is an
emulation, labelled `emulated` wherever it is reported.

This module also holds the registry of the cores' models (`CYCLE_MODELS`, keyed by a core
description's `cycle_model`): the Cortex-M33 model is in `cycles_m33`, the Cortex-M7
model in `cycles_m7`, what they share in `cycles_common`. Every model has the same face:
`for_board(board, wait_states)`, `cycles`, `data_ranges` (the [start, end) ranges whose
data reads the board reports), `on_block(address, size, fetch)`, `on_data_read(address)`,
and the class attributes `UNCERTAINTY` (low, high) - the real core's cycles are expected
within [emulated x (1 - low), emulated x (1 + high)] for this suite's int8 kernels - and
`UNCERTAINTY_WHY`. `describe(model)` says in a paragraph what a model models.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import capstone

from mcuqual.target.virtual.cycles_common import forget_blocks
from mcuqual.target.virtual.cycles_m33 import CortexM33Model
from mcuqual.target.virtual.cycles_m7 import CortexM7Model

MULTIPLIES = {"mul", "muls", "mla", "mls", "umull", "smull", "umlal", "smlal", "smmul", "smmla",
              "smmls", "smmulr", "smmlar", "smmlsr", "smlad", "smladx", "smlsd", "smlsdx",
              "smuad", "smuadx", "smusd", "smusdx", "smlald", "smlaldx", "smlsld", "smlsldx",
              "umaal", "usad8", "usada8"}
DIVIDES = {"sdiv", "udiv"}
BRANCHES = {"b", "bl", "bx", "blx", "cbz", "cbnz", "tbb", "tbh"}
VFP_SLOW = {"vdiv", "vsqrt"}
VFP_MAC = {"vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms"}
DIVIDE_CYCLES = 7
BRANCH_REFILL = 2


@dataclass(frozen=True)
class BlockCost:
    cycles: int                  # everything except a taken final branch's refill
    ends_in_branch: bool
    fallthrough: int             # address after the block
    lines: tuple[int, ...]       # 32-byte flash lines the block's code spans (I-cache)


def _base(mnemonic: str) -> str:
    """Strip width suffixes and condition codes: 'ldrb.w' -> 'ldrb', 'bne' -> 'b'."""
    name = mnemonic.split(".")[0]
    for cond in ("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge",
                 "lt", "gt", "le", "al"):
        if name.endswith(cond) and name[:-2] in BRANCHES | {"b"}:
            return name[:-2]
    return name


def instruction_cycles(insn: capstone.CsInsn, after_memory_op: bool) -> tuple[int, bool, bool]:
    """(cycles, is a single load/store, is a branch) for one instruction."""
    name = _base(insn.mnemonic)
    op_str = insn.op_str
    writes_pc = "pc" in op_str.split(",")[0] or (name in ("pop", "ldm", "ldmia") and "pc" in op_str)
    if name in BRANCHES or (writes_pc and name not in ("push", "stm", "stmdb", "str")):
        registers = op_str.count(",") + 1 if name in ("pop", "ldm", "ldmia", "ldmdb") else 0
        return 1 + registers, False, True
    if name.startswith("it") and len(name) <= 5 and set(name[2:]) <= {"t", "e"}:
        return 0, False, False
    if name in MULTIPLIES:
        return 1, False, False
    if name in DIVIDES:
        return DIVIDE_CYCLES, False, False
    if name in ("ldrd", "strd"):
        return 3, False, False
    if name in ("push", "pop", "ldm", "ldmia", "ldmdb", "stm", "stmia", "stmdb", "vpush", "vpop",
                "vldmia", "vstmia", "vstmdb", "vldmdb"):
        return 1 + op_str.count(",") + 1, False, False
    if name.startswith(("ldr", "str", "ldrex", "strex")):
        return (1 if after_memory_op else 2), True, False
    if name in ("vldr", "vstr"):
        return 2, False, False
    if name in VFP_SLOW:
        return 14, False, False
    if name in VFP_MAC:
        return 3, False, False
    return 1, False, False


class CycleModel:
    """Costs blocks once, then accumulates cycles per executed block and flash access."""

    CORE = "cortex-m4"
    SUMMARY = ("Cortex-M4: TRM Table 3-1 per instruction (loads 2, or 1 when pipelined behind "
               "another load or store; taken branches 1 + 2 refill; divides 7), the STM32L4+ "
               "ART accelerator as 32 + 8 lines of 32 bytes in front of the flash wait states.")
    UNCERTAINTY = (0.05, 0.08)
    UNCERTAINTY_WHY = (
        "Fixed where the TRM gives ranges (pipeline refill 2 of 1-3, divide 7 of 2-12); loads "
        "pipelined behind stores, address-dependency stalls and literal loads' fetch "
        "contention not charged; ART geometry approximate. Re-costing a recorded ds_cnn_lite "
        "inference with the TRM's low and high ends gives -3 % / +4 %; the band leaves room "
        "for the ART's prefetch and bus effects.")

    LINE_BYTES = 32

    def __init__(self, flash_start: int, flash_end: int, wait_states: callable) -> None:
        self.flash_start, self.flash_end = flash_start, flash_end
        self.wait_states = wait_states
        self.cycles = 0
        self._blocks: dict[tuple[int, int], BlockCost] = {}
        self._previous: BlockCost | None = None
        self._icache: OrderedDict[int, None] = OrderedDict()
        self._dcache: OrderedDict[int, None] = OrderedDict()
        self._disassembler = capstone.Cs(capstone.CS_ARCH_ARM,
                                         capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)

    def cost(self, address: int, code: bytes) -> BlockCost:
        key = (address, len(code))
        cost = self._blocks.get(key)
        if cost is None:
            total, after_memory, branch = 0, False, False
            for insn in self._disassembler.disasm(code, address):
                cycles, memory_op, branch = instruction_cycles(insn, after_memory)
                total += cycles
                after_memory = memory_op
            first = address // self.LINE_BYTES
            last = (address + max(1, len(code)) - 1) // self.LINE_BYTES
            in_flash = self.flash_start <= address < self.flash_end
            cost = BlockCost(total, branch, address + len(code),
                             tuple(range(first, last + 1)) if in_flash else ())
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
        if previous is not None and previous.ends_in_branch and address != previous.fallthrough:
            self.cycles += BRANCH_REFILL
        wait = self.wait_states()
        for line in cost.lines:
            if not self._touch(self._icache, line, 32):
                self.cycles += wait
        self.cycles += cost.cycles
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
        if not self._touch(self._dcache, address // self.LINE_BYTES, 8):
            self.cycles += self.wait_states()

    on_flash_read = on_data_read

    def forget_code(self, start: int, end: int) -> None:
        """Code in [start, end) changed (flash programmed): cost its blocks afresh."""
        forget_blocks(self._blocks, start, end)


CortexM4Model = CycleModel

# Cycle models by the name a core description gives (firmware/cores/<core>.toml).
CYCLE_MODELS: dict[str, type] = {"cortex-m4": CycleModel, "cortex-m33": CortexM33Model,
                                 "cortex-m7": CortexM7Model}


def describe(model: type) -> str:
    """What a cycle model models and how far to trust it, in one paragraph (for the
    README and reports): its summary, then its uncertainty band and why."""
    low, high = model.UNCERTAINTY
    return (f"{model.SUMMARY} Real cycles expected within -{100 * low:.0f} % / "
            f"+{100 * high:.0f} % of the emulated count: {model.UNCERTAINTY_WHY}")


def cycle_model_class(board) -> type:
    """The cycle model class of `board`'s core (its UNCERTAINTY band, for reports)."""
    return CYCLE_MODELS[board.core_description.cycle_model]
