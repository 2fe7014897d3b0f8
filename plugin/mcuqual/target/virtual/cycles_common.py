"""What the per-core cycle models share: Thumb disassembly, mnemonic and operand
classification, a set-associative LRU cache, and reading a board's `[cycle_model]` knobs.

The models themselves live beside this module: `cycles` (Cortex-M4, and the registry),
`cycles_m33` (Cortex-M33) and `cycles_m7` (Cortex-M7). Every model costs a translated
block once (capstone disassembly, cached by address and size) and then only adds up
per executed block and per reported data read, so emulation speed does not depend on
how detailed a block's costing is.
"""
from __future__ import annotations

from typing import Any

import capstone
from capstone import arm

# capstone's condition codes (ARM_CC_*) as the suffix a mnemonic carries inside an IT block
_CONDITION_SUFFIX = {
    arm.ARM_CC_EQ: "eq", arm.ARM_CC_NE: "ne", arm.ARM_CC_HS: "hs", arm.ARM_CC_LO: "lo",
    arm.ARM_CC_MI: "mi", arm.ARM_CC_PL: "pl", arm.ARM_CC_VS: "vs", arm.ARM_CC_VC: "vc",
    arm.ARM_CC_HI: "hi", arm.ARM_CC_LS: "ls", arm.ARM_CC_GE: "ge", arm.ARM_CC_LT: "lt",
    arm.ARM_CC_GT: "gt", arm.ARM_CC_LE: "le",
}
_ALIASES = {"hs": ("cs",), "lo": ("cc",)}
UNCONDITIONAL = (arm.ARM_CC_AL, arm.ARM_CC_INVALID)

MULTIPLIES = frozenset({
    "mul", "mla", "mls", "umull", "smull", "umlal", "smlal", "smmul", "smmla", "smmls",
    "smmulr", "smmlar", "smmlsr", "smlad", "smladx", "smlsd", "smlsdx", "smuad", "smuadx",
    "smusd", "smusdx", "smlald", "smlaldx", "smlsld", "smlsldx", "umaal", "smulbb", "smulbt",
    "smultb", "smultt", "smulwb", "smulwt", "smlabb", "smlabt", "smlatb", "smlatt", "smlawb",
    "smlawt", "smlalbb", "smlalbt", "smlaltb", "smlaltt"})
# multiplies whose last source operand is an accumulator (Rd, Rn, Rm, Ra)
ACCUMULATE_LAST = frozenset({
    "mla", "mls", "smmla", "smmls", "smmlar", "smmlsr", "smlad", "smladx", "smlsd", "smlsdx",
    "smlabb", "smlabt", "smlatb", "smlatt", "smlawb", "smlawt", "usada8"})
# multiplies that accumulate into the 64-bit pair they write (RdLo, RdHi, Rn, Rm)
ACCUMULATE_LONG = frozenset({
    "umlal", "smlal", "smlald", "smlaldx", "smlsld", "smlsldx", "umaal", "smlalbb", "smlalbt",
    "smlaltb", "smlaltt"})
DIVIDES = frozenset({"sdiv", "udiv"})
# bit-field, extend, reverse, saturate and 8/16-bit SIMD: the DSP-extension ALU operations
SIMD_PREFIXES = ("sadd", "ssub", "sasx", "ssax", "uadd", "usub", "uasx", "usax", "qadd", "qsub",
                 "qasx", "qsax", "uqadd", "uqsub", "uqasx", "uqsax", "shadd", "shsub", "shasx",
                 "shsax", "uhadd", "uhsub", "uhasx", "uhsax", "qdadd", "qdsub")
BITFIELD = frozenset({
    "sxtb", "sxth", "uxtb", "uxth", "sxtb16", "uxtb16", "sxtab", "sxtah", "sxtab16", "uxtab",
    "uxtah", "uxtab16", "ubfx", "sbfx", "bfi", "bfc", "rev", "rev16", "revsh", "rbit", "clz",
    "ssat", "usat", "ssat16", "usat16", "pkhbt", "pkhtb", "sel", "usad8", "usada8"})
EXTEND_ACCUMULATE = frozenset({"sxtab", "sxtah", "sxtab16", "uxtab", "uxtah", "uxtab16"})
MULTIPLE_TRANSFERS = frozenset({
    "push", "pop", "ldm", "ldmia", "ldmdb", "ldmfd", "stm", "stmia", "stmdb", "stmea",
    "vpush", "vpop", "vldmia", "vldmdb", "vstmia", "vstmdb", "vldm", "vstm"})
DIRECT_BRANCHES = frozenset({"b", "bl", "cbz", "cbnz"})
VFP_SLOW = frozenset({"vdiv", "vsqrt"})
VFP_MAC = frozenset({"vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms"})
SYSTEM = frozenset({"mrs", "msr", "dmb", "dsb", "isb", "cpsid", "cpsie", "svc", "bkpt", "wfi",
                    "wfe", "sev", "yield", "clrex", "udf"})


def thumb_disassembler(detail: bool = False) -> capstone.Cs:
    """capstone for Thumb-2 M-profile code; `detail` adds operands and register access."""
    disassembler = capstone.Cs(capstone.CS_ARCH_ARM,
                               capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    disassembler.detail = detail
    return disassembler


def base_name(insn: capstone.CsInsn) -> str:
    """The operation without width qualifier, condition or flag-setting suffix:
    'ldrb.w' -> 'ldrb', 'addeq' (in an IT block) -> 'add', 'subs' -> 'sub', 'bne' -> 'b'.
    Needs a detail-mode instruction (condition and flag update come from capstone)."""
    name = insn.mnemonic.split(".")[0]
    suffix = _CONDITION_SUFFIX.get(insn.cc)
    if suffix is not None:
        for candidate in (suffix, *_ALIASES.get(suffix, ())):
            if name.endswith(candidate) and len(name) > len(candidate):
                name = name[:-len(candidate)]
                break
    if insn.update_flags and name.endswith("s") and len(name) > 2 and name not in ("mls",):
        name = name[:-1]
    return name


def is_it(name: str) -> bool:
    return name.startswith("it") and len(name) <= 5 and set(name[2:]) <= {"t", "e"}


def register_operands(insn: capstone.CsInsn) -> list[int]:
    """The register operands in written order (memory operands left out)."""
    return [op.reg for op in insn.operands if op.type == arm.ARM_OP_REG]


def memory_operand(insn: capstone.CsInsn):
    for op in insn.operands:
        if op.type == arm.ARM_OP_MEM:
            return op.mem
    return None


def address_registers(insn: capstone.CsInsn) -> set[int]:
    mem = memory_operand(insn)
    if mem is None:
        return set()
    return {reg for reg in (mem.base, mem.index) if reg}


def has_shifted_register(insn: capstone.CsInsn) -> bool:
    """A data-processing operand2 shifted by the barrel shifter (ADD Rd, Rn, Rm, LSL #2)."""
    return any(op.type == arm.ARM_OP_REG and op.shift.type != arm.ARM_SFT_INVALID
               for op in insn.operands[1:])


def is_shifted_constant(value: int) -> bool:
    """A Thumb-2 modified immediate that needs the shifter: not a plain byte and not one of
    the replicated-byte patterns 0x00XY00XY, 0xXY00XY00, 0xXYXYXYXY."""
    value &= 0xFFFFFFFF
    if value <= 0xFF:
        return False
    byte = value & 0xFF
    high = (value >> 8) & 0xFF
    if value in (byte * 0x00010001, byte * 0x01010101) or value == high * 0x01000100:
        return False
    return True


def accesses(insn: capstone.CsInsn) -> tuple[list[int], list[int]]:
    """(registers read, registers written); none for an instruction capstone cannot say."""
    try:
        read, written = insn.regs_access()
    except capstone.CsError:
        return [], []
    return list(read), list(written)


def writes_pc(insn: capstone.CsInsn) -> bool:
    return any(insn.reg_name(reg) == "pc" for reg in accesses(insn)[1])


def transfer_count(insn: capstone.CsInsn) -> int:
    """Registers an LDM/STM/PUSH/POP (or VLDM/VSTM/VPUSH/VPOP) moves, base register left out."""
    registers = register_operands(insn)
    name = base_name(insn)
    if name in ("push", "pop", "vpush", "vpop"):
        return len(registers)
    return max(1, len(registers) - 1)           # LDM/STM: the first register is the base


class LruCache:
    """A set-associative cache of `ways` ways over `line_bytes`-byte lines with LRU
    replacement; `touch(line)` says whether the line was present and makes it so."""

    def __init__(self, size_bytes: int, ways: int, line_bytes: int) -> None:
        if size_bytes % (ways * line_bytes):
            raise ValueError(f"cache of {size_bytes} bytes is not {ways} ways of "
                             f"{line_bytes}-byte lines")
        self.ways, self.line_bytes = ways, line_bytes
        self.sets = size_bytes // (ways * line_bytes)
        self.shift = line_bytes.bit_length() - 1
        self._sets: list[list[int]] = [[] for _ in range(self.sets)]

    def touch(self, line: int) -> bool:
        entries = self._sets[line % self.sets]
        if line in entries:
            if entries[-1] != line:              # most recently used last
                entries.remove(line)
                entries.append(line)
            return True
        entries.append(line)
        if len(entries) > self.ways:
            del entries[0]
        return False

    def touch_address(self, address: int) -> bool:
        return self.touch(address >> self.shift)

    def invalidate(self) -> None:
        for entries in self._sets:
            entries.clear()


def forget_blocks(blocks: dict[tuple[int, int], Any], start: int, end: int) -> None:
    """Drop the cached costs of blocks (keyed by address and size) that overlap [start, end)."""
    for key in [key for key in blocks if key[0] < end and key[0] + key[1] > start]:
        del blocks[key]


def board_params(board) -> dict[str, Any]:
    """The board's free-form `[cycle_model]` table (empty when it sets none)."""
    return dict(getattr(board, "cycle_params", None) or {})


def flash_range(board) -> tuple[int, int]:
    start, size = board.flash_window()
    return start, start + size
