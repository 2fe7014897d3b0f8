"""The cores' cycle models (#15) on instruction sequences whose costs their manuals give.

Cortex-M4: TRM (ARM DDI 0439B) section 3.3.1, Table 3-1 "Cortex-M4 instruction set summary".
Cortex-M33: TRM (ARM 100230) chapter 2 (three-stage pipeline, C-AHB/S-AHB) gives no cycle
table, so the model keeps the M4 TRM's Table 3-1 where published M33 r1p0 measurements
agree and differs where they do not (module docstring of cycles_m33); the ICACHE rules
follow RM0456 section 8 (8 KB, 2-way, 16-byte lines, shared by code and flash data).
Cortex-M7: TRM (ARM DDI 0489F) sections 1.1/2.1 (six-stage dual-issue pipeline, branch
target address cache, two load pipes and one store pipe) and 5.9 (L1 caches: 2-way I,
4-way D, 32-byte lines, read-allocate, critical word first); the TRM has no timing table,
so pairing and latencies follow LLVM's ARMScheduleM7.td, and flash timing RM0433 Table 17
(LATENCY in AXI clocks, AXI = CPU / 2).

Sequences are assembled with arm-none-eabi-as at test time and costed as one block.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mcuqual.boards.profile import Board, MemoryRegion, PowerProfile
from mcuqual.target.virtual.cycles import (
    CYCLE_MODELS,
    BRANCH_REFILL,
    CycleModel,
    describe,
)
from mcuqual.target.virtual.cycles_common import LruCache, is_shifted_constant
from mcuqual.target.virtual.cycles_m33 import CortexM33Model
from mcuqual.target.virtual.cycles_m7 import CortexM7Model

FLASH, FLASH_END = 0x0800_0000, 0x0820_0000
SRAM = 0x2000_0000
AXI_SRAM = 0x2400_0000
CPU_FLAGS = {
    "cortex-m4": ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16"],
    "cortex-m33": ["-mcpu=cortex-m33", "-mfpu=fpv5-sp-d16"],
    "cortex-m7": ["-mcpu=cortex-m7", "-mfpu=fpv5-d16"],
}
_ASSEMBLED: dict[tuple[str, str], bytes] = {}


@pytest.fixture(scope="module")
def asm(tmp_path_factory):
    """Thumb-2 machine code of an assembly snippet, as the core's own assembler makes it."""
    folder = tmp_path_factory.mktemp("asm")

    def assemble(source: str, core: str) -> bytes:
        key = (core, source)
        if key not in _ASSEMBLED:
            index = len(_ASSEMBLED)
            src, obj, binary = (folder / f"s{index}.s", folder / f"s{index}.o",
                                folder / f"s{index}.bin")
            src.write_text(".syntax unified\n.thumb\n" + source + "\n")
            subprocess.run(["arm-none-eabi-as", *CPU_FLAGS[core], "-mfloat-abi=hard", "-mthumb",
                            "-o", str(obj), str(src)], check=True)
            subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(obj), str(binary)],
                           check=True)
            _ASSEMBLED[key] = binary.read_bytes()
        return _ASSEMBLED[key]
    return assemble


def _m33(wait_states: int = 0, **params) -> CortexM33Model:
    return CortexM33Model(FLASH, FLASH_END, lambda: wait_states, params)


def _m7(wait_states: int = 0, **params) -> CortexM7Model:
    return CortexM7Model(FLASH, FLASH_END, lambda: wait_states, params)


def _board(core: str, memory, **params) -> Board:
    return Board(name="test", title="test", mcu="test", core=core, fpu=None, clock_hz=1,
                 pyocd_target="test", swo_clock_hz=0, memory=tuple(memory),
                 power=PowerProfile(3.3, 1.0, "test"), power_monitors=(), path=Path("."),
                 cycle_params=params)


# the inner loop of an earlier Cortex-M4 build's dot_2x2 (conv2d_s8.c, two pixels per pass
# before the three-pixel loop of #16): 6 loads, 4 SXTB16,
# 8 SMLAD, a loop test; taken from the firmware the baseline was measured with
DOT_2X2_LOOP = bytes.fromhex(
    "5ef8044b0568d0f80890d0f80480c7685bf8041b2ffa84fa25fb0acc29fb0a662ffa94f428fb04cc"
    "27fb04662ffa81f425fb042529fb04342ffa91f128fb015227fb014302998e4500f11000d8d3")


# ---- registry and interface ----------------------------------------------------------
def test_every_core_has_a_model_with_the_boards_interface():
    assert set(CYCLE_MODELS) == {"cortex-m4", "cortex-m33", "cortex-m7"}
    for name, model in CYCLE_MODELS.items():
        low, high = model.UNCERTAINTY
        assert 0 < low < 1 and 0 < high < 1, name
        assert model.UNCERTAINTY_WHY and model.SUMMARY and model.CORE == name
        text = describe(model)
        assert f"-{100 * low:.0f} % / +{100 * high:.0f} %" in text
        for attribute in ("for_board", "on_block", "on_data_read", "data_ranges"):
            assert hasattr(model, attribute), (name, attribute)
    # of the fixed bands the M7's (the approximation) is wider than the M33's; the M4 model
    # computes each inference's own band from its ranged totals (its fixed band is a fallback)
    assert CYCLE_MODELS["cortex-m7"].UNCERTAINTY > CYCLE_MODELS["cortex-m33"].UNCERTAINTY
    assert hasattr(CYCLE_MODELS["cortex-m4"], "band_counters")
    assert hasattr(CYCLE_MODELS["cortex-m33"], "band_counters")
    assert hasattr(CYCLE_MODELS["cortex-m7"], "band_counters")


def test_the_m4_model_keeps_its_counts_and_its_old_face():
    """The baseline's numbers: the same block costs what it did (TRM Table 3-1), and the
    old constructor and on_flash_read still work beside for_board and on_data_read."""
    model = CycleModel(FLASH, FLASH_END, lambda: 5)
    assert model.cost(FLASH + 0x100, DOT_2X2_LOOP).cycles == 7 + 4 + 8 + 2 + 1 + 1 + 1
    assert CycleModel.on_flash_read is CycleModel.on_data_read
    board = _board("cortex-m4", [MemoryRegion("flash", "flash", FLASH, 0x20_0000),
                                 MemoryRegion("sram", "ram", SRAM, 0x4_0000)])
    built = CycleModel.for_board(board, lambda: 5)
    assert (built.flash_start, built.flash_end) == (FLASH, FLASH_END)
    assert built.data_ranges == [(FLASH, FLASH_END)]
    built.on_data_read(FLASH + 0x1000)
    built.on_flash_read(FLASH + 0x1004)               # same 32-byte ART line
    assert built.cycles == 5


def test_blocks_are_costed_once():
    """Disassembly happens per translated block, never per execution."""
    loop = DOT_2X2_LOOP
    for model in (CycleModel(FLASH, FLASH_END, lambda: 0), _m33(), _m7()):
        fetched = []

        def fetch(address, size):
            fetched.append(address)
            return loop
        for _ in range(5):
            model.on_block(FLASH + 0x100, len(loop), fetch)
        assert fetched == [FLASH + 0x100], type(model).__name__


def test_the_kernel_loop_is_cheaper_on_the_newer_cores():
    """One dot_2x2 iteration (16 MACs), loop branch taken: M4 24 + 2 refill (Table 3-1);
    M33 single-cycle loads, one load-use stall, 1-cycle refill; M7 dual-issues the loads
    and pairs ALU work beside the MACs (MACs do not pair with each other)."""
    m33, m7 = _m33().cost(FLASH, DOT_2X2_LOOP), _m7().cost(FLASH, DOT_2X2_LOOP)
    assert (m33.cycles, m33.taken_extra) == (6 + 4 + 8 + 1 + 1 + 1 + 1 + 1, 1)
    assert m7.cycles == 17 and m7.branch == "conditional"
    assert m7.cycles + 1 < m33.cycles + 1 < 24 + BRANCH_REFILL


# ---- Cortex-M4 (#17: each rule against TRM DDI 0439 Table 3-1 / section 3.3.2) -----------
def _m4(wait_states: int = 0) -> CycleModel:
    return CycleModel(FLASH, FLASH_END, lambda: wait_states)


@pytest.mark.parametrize("source,nominal,low,high", [
    # 3.3.2: "STR Rx,[Ry,#imm] is always one cycle" (the data phase overlaps the next one)
    ("adds r0, #1\nstr r1, [r2, #4]", 2, 2, 2),
    # a register-offset store: 2 (Table 3-1), 1 right after a load (3.3.2)
    ("adds r0, #1\nstr r1, [r2, r3]", 3, 3, 3),
    ("ldr r0, [r1]\nstr r0, [r2, r3]", 3, 3, 3),
    # nothing pipelines after a store: the load after it is 2 again
    ("ldr r0, [r1]\nstr r0, [r2, #4]\nldr r3, [r4]", 5, 5, 5),
    # a load whose address the previous load produced is not pipelined
    ("ldr r0, [r1]\nldr r2, [r0]", 4, 4, 4),
    ("ldr r0, [r1]\nldr r2, [r3]", 3, 3, 3),
    # an address from the previous data-processing result: one stall (no forwarding path)
    ("adds r1, #4\nldr r0, [r1]", 4, 4, 4),
    ("adds r1, #4\nnop\nldr r0, [r1]", 4, 4, 4),
    ("sub sp, #8\nstr r0, [sp, #4]", 3, 3, 3),
    # LDRD/STRD 1 + N = 3, and nothing pipelines with them
    ("ldrd r2, r3, [r0]\nldr r1, [r4]", 5, 5, 5),
    # LDM/STM of N registers: 1 + N, the base register not counted
    ("ldmia r0!, {r1, r2, r3}", 4, 4, 4),
    # ldrdne inside an IT block is a load double, not a single load
    ("cmp r0, #0\nit ne\nldrdne r2, r3, [r1]", 4, 4, 4),
    # IT folds onto a preceding 16-bit instruction (Table 3-1 footnote d), else 1
    ("cmp r0, #1\nit eq\nmoveq r0, #2", 2, 2, 2),
    ("cmp.w r0, #1\nit eq\nmoveq r0, #2", 3, 2, 3),
    # divide: 2 to 12 by the operands
    ("sdiv r0, r1, r2", 7, 2, 12),
    # a literal load may add a cycle (fetch-unit contention)
    ("ldr r0, [pc, #4]\nnop\nnop\nnop", 5, 5, 6),
    # multiplies, long ones included, are single cycle on the M4
    ("smull r0, r1, r2, r3\nsmlal r0, r1, r2, r3\numull r0, r1, r2, r3", 3, 3, 3),
])
def test_m4_instruction_rules(asm, source, nominal, low, high):
    cost = _m4().cost(SRAM, asm(source, "cortex-m4"))
    assert (cost.cycles, cost.low, cost.high) == (nominal, low, high)
    assert not cost.ends_in_branch


@pytest.mark.parametrize("source,fallthrough,taken_extra,refill", [
    # conditional writes to PC are branches: 1 when the condition fails (Table 3-1 footnote c)
    ("cmp r0, #0\nit ne\npopne {r4, pc}", 1 + 0 + 1, 2, True),     # 1 + N + P when taken
    ("cmp r0, #0\nit ne\nldrne pc, [r1]", 1 + 0 + 1, 4, False),    # 2 + 3 reload when taken
    # unconditional loads to PC: LDR PC 2 + 3, TBB 2 + 1 + 3, POP {.., PC} 1 + N + P
    ("ldr pc, [r1]", 5, 0, False),
    ("tbb [pc, r0]", 6, 0, False),
    ("pop {r4, r5, pc}", 4, 0, True),
    ("subs r0, #1\nbne .", 2, 0, True),
])
def test_m4_branch_rules(asm, source, fallthrough, taken_extra, refill):
    cost = _m4().cost(SRAM, asm(source, "cortex-m4"))
    assert cost.ends_in_branch
    assert (cost.cycles, cost.taken_extra, cost.refill) == (fallthrough, taken_extra, refill)


def test_m4_refill_depends_on_the_target_and_carries_its_range(asm):
    """A taken branch pays P at its target: 1, 2 for a 32-bit instruction on an odd
    halfword (measured; Table 3-1 gives 1-3, the low and high totals take the ends)."""
    jump = asm("b.w .+0x40", "cortex-m4")
    narrow = asm("adds r0, #1\nadds r0, #1", "cortex-m4")
    wide = asm("add.w r0, r0, #1", "cortex-m4")
    code = {FLASH: jump, FLASH + 0x40: narrow, FLASH + 0x42: wide}
    fetch = lambda address, size: code[address][:size]     # noqa: E731
    for target, block, p in ((FLASH + 0x40, narrow, 1), (FLASH + 0x42, wide, 2)):
        model = _m4()
        model.on_block(FLASH, len(jump), fetch)
        before = model.band_counters()
        model.on_block(target, len(block), fetch)
        nominal, low, high = (after - start for after, start in
                              zip(model.band_counters(), before))
        body = model.cost(target, block).cycles
        assert (nominal, low, high) == (body + p, body + 1, body + 3)


def test_m4_conditional_return_is_charged_only_when_taken(asm):
    code = asm("cmp r0, #0\nit ne\npopne {r4, pc}", "cortex-m4")
    after = asm("adds r0, #1", "cortex-m4")
    end = FLASH + len(code)
    fetch = lambda address, size: (code if address == FLASH else after)[:size]  # noqa: E731
    model = _m4()
    model.on_block(FLASH, len(code), fetch)
    model.on_block(end, len(after), fetch)                 # condition failed: fell through
    assert model.cycles == 2 + 1                            # CMP, folded IT, POPNE failed
    model = _m4()
    model.on_block(FLASH, len(code), fetch)
    model.on_block(FLASH + 0x100, len(after), fetch)       # returned
    assert model.cycles == 2 + 2 + 1 + 1                    # 1 + N (3) + P (1), then adds


def test_m4_kernel_loop_cost_by_the_manual():
    """dot_2x2's loop: six loads (2 + 5 pipelined), four SXTB16, eight SMLAD, a reload of
    the bound from the stack after a MAC (2), CMP, ADD, BLO = 24, + P = 1 when taken. Two
    of the pipelined loads are 32-bit on an odd halfword: the high end charges them 2."""
    cost = _m4().cost(FLASH + 0x100, DOT_2X2_LOOP)
    assert (cost.cycles, cost.low, cost.high) == (24, 24, 26)
    assert cost.refill and cost.taken_extra == 0


def test_m4_art_follows_icen_dcen_and_carries_the_line_fill_range():
    """A data-cache hit is free; the high end charges each 64-bit flash word of a line on
    its first use (RM0440's 4 x 64-bit lines, fill order unstated); a cache switched off
    in FLASH_ACR misses every time."""
    model = _m4(5)
    model.on_data_read(FLASH + 0x1000)           # miss: the wait states on all three totals
    model.on_data_read(FLASH + 0x1004)           # same 64-bit word
    model.on_data_read(FLASH + 0x1008)           # same line, next word: high end only
    assert model.band_counters() == (5, 5, 10)
    model.set_flash_caches(True, False)
    model.on_data_read(FLASH + 0x1000)
    assert model.band_counters() == (10, 10, 15)
    code = bytes.fromhex("00bf00bf")             # nop; nop
    fetch = lambda address, size: code           # noqa: E731
    model.set_flash_caches(False, True)
    model.on_block(FLASH + 0x200, 4, fetch)
    model.on_block(FLASH + 0x200, 4, fetch)      # fell through to itself: no refill
    assert model.cycles == 10 + 2 * (5 + 2)


# ---- Cortex-M33 ------------------------------------------------------------------------
@pytest.mark.parametrize("source,cycles,m4", [
    # data processing: 1 each (M4 TRM Table 3-1, "Add", "Logical", "Shift")
    ("adds r0, r1\neors r2, r3\nlsls r4, r4, #2", 3, 3),
    # independent loads issue in one cycle each (M4: 2, then 1 pipelined)
    ("ldr r0, [r1]\nldr r2, [r1, #4]\nadds r3, #1", 3, 4),
    # load-use: the loaded register is ready one cycle later
    ("ldr r0, [r1]\nadds r0, #1", 3, 3),
    # a load feeding a MAC's accumulator, or a store's data, does not stall
    ("ldr r0, [r1]\nsmlad r2, r3, r4, r0", 2, 3),
    ("ldr r0, [r1]\nstr r0, [r2]", 2, 3),
    # MACs: single-cycle issue (Table 3-1 "Multiply", "Signed multiply accumulate dual"),
    # accumulator chains back to back, a multiplicand waits one cycle for the result
    ("smlad r0, r1, r2, r0\nsmlad r0, r3, r4, r0", 2, 2),
    ("mul r0, r1, r2\nmul r3, r0, r4", 3, 2),
    ("sxtb16 r0, r1\nsxtb16 r2, r1, ror #8\nsmlad r3, r0, r2, r3", 3, 3),
    # a shifted operand2 result is late too
    ("add.w r0, r1, r2, lsl #2\nadds r3, r0, #1", 3, 2),
    # LDRD/STRD 2 (M4: 3), LDM/STM/PUSH/POP of N registers N (M4: 1 + N)
    ("ldrd r2, r3, [r0]", 2, 3),
    ("push {r4, r5, r6, r7, lr}", 5, 6),
    ("stmia r0!, {r1, r2, r3}", 3, 4),
    # a flag-setting instruction with a shifted constant takes two cycles
    ("adds.w r0, r1, #0x1fc0", 2, 1),
    # divide: 2-12 in Table 3-1 for the M4, modelled as 7 on both
    ("sdiv r0, r1, r2", 7, 7),
    # IT dual-issues with the instruction before it; a 16-bit NOP with a 16-bit neighbour
    ("cmp r0, #1\nit eq\nmoveq r0, #2", 2, 2),
    ("adds r0, #1\nnop", 1, 2),
])
def test_m33_instruction_costs(asm, source, cycles, m4):
    code = asm(source, "cortex-m33")
    assert _m33().cost(SRAM, code).cycles == cycles
    assert CycleModel(FLASH, FLASH_END, lambda: 0).cost(SRAM, code).cycles == m4


@pytest.mark.parametrize("source,fallthrough,taken", [
    # a 16-bit branch pairs with the 16-bit instruction before it: not taken 0 cycles;
    # taken 1 after an instruction that sets no flags, 2 after one that does
    ("adds r0, #1\nbne .", 1, 2 + 1),
    ("add r0, r1\nbne .", 1, 2),
    # after a 32-bit instruction it issues alone: 1 not taken, 1 + refill taken
    ("add.w r0, r1, #1\nbne .", 2, 3),
    ("add.w r0, r1, #1\nb.w .", 2, 3),
    # POP with PC: N registers + the load of PC, then the refill
    ("pop {r4, pc}", 3, 4),
])
def test_m33_branches(asm, source, fallthrough, taken):
    block = _m33().cost(SRAM, asm(source, "cortex-m33"))
    assert block.ends_in_branch
    assert (block.cycles, block.cycles + block.taken_extra) == (fallthrough, taken)


def test_m33_taken_branch_is_charged_at_the_next_block(asm):
    code = asm("subs r0, #1\nbne .-2", "cortex-m33")        # a two-instruction loop
    model = _m33()
    fetch = lambda address, size: code                  # noqa: E731
    model.on_block(SRAM, len(code), fetch)
    model.on_block(SRAM, len(code), fetch)              # back to the top: taken
    model.on_block(SRAM + len(code), 2, lambda a, s: asm("nop", "cortex-m33"))   # fell out
    assert model.cycles == (1 + 0) + (1 + 1) + (1 + 0) + 1


def test_m33_icache_is_shared_by_code_and_flash_data():
    """RM0456 section 8: the ICACHE sits on C-AHB, which carries instruction fetches and
    data reads of the code region; 16-byte lines, 2 ways; a miss costs the programmed
    wait states (+1 assumed for the master port and bus matrix)."""
    model = _m33(wait_states=4)
    code = bytes.fromhex("0130fee7")                     # adds r0, #1; b .
    model.on_block(FLASH + 0x200, 4, lambda a, s: code)    # code line 0x0800_0200: miss
    assert model.cycles == 5 + 1
    model.on_data_read(FLASH + 0x20C)                    # literal in the same 16-byte line
    assert model.cycles == 6
    model.on_data_read(FLASH + 0x210)                    # next line: miss
    model.on_data_read(FLASH + 0x21C)
    assert model.cycles == 6 + 5
    # three lines 4 KB apart share a set of the 2-way, 256-set cache: LRU evicts the oldest
    model.on_data_read(FLASH + 0x1200)
    model.on_data_read(FLASH + 0x2200)
    model.on_data_read(FLASH + 0x200)                    # evicted by the two above
    assert model.cycles == 6 + 5 + 5 + 5 + 5
    assert model.data_ranges == [(FLASH, FLASH_END)]


def test_m33_for_board_reads_the_boards_knobs():
    memory = [MemoryRegion("flash", "flash", FLASH, 0x20_0000),
              MemoryRegion("sram", "ram", SRAM, 0xC_0000)]
    default = CortexM33Model.for_board(_board("cortex-m33", memory), lambda: 4)
    assert (default.icache.sets, default.icache.ways, default.icache.line_bytes) == (256, 2, 16)
    assert default.data_ranges == [(FLASH, FLASH_END)]
    one_way = CortexM33Model.for_board(
        _board("cortex-m33", memory, icache_ways=1, icache_miss_overhead=0), lambda: 4)
    assert one_way.icache.ways == 1
    one_way.on_data_read(FLASH)
    assert one_way.cycles == 4


# ---- Cortex-M7 -------------------------------------------------------------------------
@pytest.mark.parametrize("source,cycles", [
    # two ALU pipes: independent pairs issue together, a dependent one waits
    ("add r0, r1\nadd r2, r3", 1),
    ("add r0, r1\nadd r2, r3\nadd r4, r5\nadd r6, r7", 2),
    ("adds r0, r1\nadds r0, r2", 2),
    # two load pipes, one store pipe: loads pair, stores do not; a load pairs with ALU work
    ("ldr r0, [r1]\nldr r2, [r1, #4]", 1),
    ("str r0, [r1]\nstr r2, [r1, #4]", 2),
    ("ldr r0, [r1]\nadds r2, #1", 1),
    # load-use: a word is ready for the ALU next cycle, for a multiplicand one later;
    # bytes and halfwords a cycle later than words
    ("ldr r0, [r1]\nadds r0, #1", 2),
    ("ldr r0, [r1]\nsmlad r2, r0, r3, r2", 3),
    ("ldrb r0, [r1]\nadds r0, #1", 3),
    # a load's address needs its base a cycle early unless a simple ADD made it
    ("add r1, r2\nldr r0, [r1]", 2),
    ("eor r1, r2\nldr r0, [r1]", 3),
    # one MAC pipe: MACs never pair, accumulator chains run back to back, a product is
    # ready two cycles after issue
    ("smlad r0, r1, r2, r0\nsmlad r4, r5, r6, r4", 2),
    ("smlad r0, r1, r2, r0\nsmlad r0, r3, r4, r0", 2),
    ("mul r0, r1, r2\nadds r3, r0, #1", 3),
    # a MAC pairs with a load but not with a store
    ("smlad r0, r1, r2, r0\nldr r4, [r5]", 1),
    ("smlad r0, r1, r2, r0\nstr r4, [r5]", 2),
    # DSP/bit-field operations issue from the older slot only, and one per cycle
    ("sxtb16 r0, r1\nadds r2, #1", 1),
    ("adds r2, #1\nsxtb16 r0, r1", 2),
    ("sxtb16 r0, r1\nsxtb16 r2, r3", 2),
    # one shifter for operand2: two shifted operands do not pair; plain shifts do
    ("add.w r0, r1, r2, lsl #2\nadd.w r3, r4, r5, lsl #2", 2),
    ("lsls r0, r1, #2\nlsls r2, r3, #2", 1),
    # single-issue: LDM/STM/PUSH/POP ceil(N/2), LDRD/STRD 1, divide 7
    ("push {r4, r5, r6, r7, lr}", 3),
    ("pop {r4, r5, r6, r7}", 2),
    ("ldrd r0, r1, [r2]\nadds r3, #1", 2),
    ("udiv r0, r1, r2", 7),
    # a store may take a result produced in the same cycle
    ("adds r0, #1\nstr r0, [r1]", 1),
])
def test_m7_dual_issue_schedule(asm, source, cycles):
    assert _m7().cost(SRAM, asm(source, "cortex-m7")).cycles == cycles


def test_m7_branch_prediction(asm):
    """A loop back-edge: the 2-bit counter starts weakly not-taken, so the first taken pass
    and the final fall-through are mispredicted (8 each); taken passes in between cost the
    predicted-taken branch (1). BTAC-style prediction per TRM 2.1; costs assumed."""
    code = asm("subs r0, #1\nbne .-2", "cortex-m7")
    model = _m7()
    fetch = lambda address, size: code                  # noqa: E731
    body = model.cost(SRAM, code).cycles
    assert body == 1                # a predicted branch needs no flags to issue: it pairs
    for _ in range(10):
        model.on_block(SRAM, len(code), fetch)
    model.on_block(SRAM + len(code), 2, lambda a, s: asm("nop", "cortex-m7"))
    assert model.cycles == 10 * body + 8 + 8 * 1 + 8 + 1
    # the next run of the same loop: only the exit mispredicts
    before = model.cycles
    for _ in range(10):
        model.on_block(SRAM, len(code), fetch)
    model.on_block(SRAM + len(code), 2, lambda a, s: asm("nop", "cortex-m7"))
    assert model.cycles - before == 10 * body + 9 * 1 + 8 + 1


def test_m7_indirect_branches_predict_the_last_target(asm):
    ret = asm("bx lr", "cortex-m7")
    model = _m7()
    model.on_block(SRAM + 0x100, 2, lambda a, s: ret)
    model.on_block(SRAM + 0x200, 2, lambda a, s: asm("nop", "cortex-m7"))   # new target: 8
    model.on_block(SRAM + 0x100, 2, lambda a, s: ret)
    model.on_block(SRAM + 0x200, 2, lambda a, s: asm("nop", "cortex-m7"))   # same target: 1
    assert model.cycles == 1 + 8 + 1 + 1 + 1 + 1


def test_m7_caches_time_the_axi_flash():
    """TRM 5.9: I-cache 2-way and D-cache 4-way, 32-byte lines, read-allocate; a miss waits
    for the critical word: 2 x (LATENCY + 1 + 2) CPU cycles (RM0433 Table 17: LATENCY in
    AXI clocks, AXI at half the CPU clock; 2 AXI cycles of AXIM/interconnect assumed)."""
    model = _m7(wait_states=4)
    miss = 2 * (4 + 1 + 2)
    code = bytes.fromhex("0130fee7")
    model.on_block(FLASH + 0x400, 4, lambda a, s: code)
    assert model.cycles == miss + 1
    model.on_block(FLASH + 0x400, 4, lambda a, s: code)     # hit; B is always predicted
    assert model.cycles == miss + 1 + 1 + 1
    model.cycles = 0
    model.on_data_read(FLASH + 0x1000)                    # weights: D-cache miss, then hits
    for offset in range(4, 32, 4):
        model.on_data_read(FLASH + 0x1000 + offset)
    assert model.cycles == miss
    # five lines 4 KB apart share a set of the 4-way, 128-set D-cache: the oldest goes
    for line in range(1, 5):
        model.on_data_read(FLASH + 0x1000 + line * 4096)
    model.on_data_read(FLASH + 0x1000)
    assert model.cycles == 6 * miss
    assert model.data_ranges == [(FLASH, FLASH_END)]       # DTCM data is not hooked


def test_m7_for_board_times_axi_sram_only_when_asked():
    memory = [MemoryRegion("flash", "flash", FLASH, 0x20_0000),
              MemoryRegion("dtcm", "ram", SRAM, 0x2_0000),
              MemoryRegion("axi_sram", "ram", AXI_SRAM, 0x8_0000)]
    default = CortexM7Model.for_board(_board("cortex-m7", memory), lambda: 4)
    assert default.data_ranges == [(FLASH, FLASH_END)]
    assert (default.icache.sets, default.dcache.sets) == (256, 128)
    timed = CortexM7Model.for_board(
        _board("cortex-m7", memory, dcache_timed_ram=["axi_sram"], axi_overhead=3), lambda: 4)
    assert timed.data_ranges == [(FLASH, FLASH_END), (AXI_SRAM, AXI_SRAM + 0x8_0000)]
    timed.on_data_read(AXI_SRAM + 0x40)                    # AXI SRAM, zero wait states
    timed.on_data_read(AXI_SRAM + 0x44)
    assert timed.cycles == 2 * (1 + 3)
    timed.on_data_read(FLASH)
    assert timed.cycles == 2 * (1 + 3) + 2 * (4 + 1 + 3)


# ---- shared pieces ---------------------------------------------------------------------
def test_reprogrammed_code_is_costed_afresh(asm):
    """Flash programmed with new code at the same address: `forget_code` drops the cached
    block costs (the board can call it where it flushes unicorn's translations)."""
    slow, fast = asm("udiv r0, r1, r2", "cortex-m7"), asm("adds r0, #1\nadds r1, #1", "cortex-m7")
    for model in (CycleModel(FLASH, FLASH_END, lambda: 0), _m33(), _m7()):
        assert model.cost(FLASH + 0x40, slow).cycles == 7
        model.forget_code(FLASH + 0x42, FLASH + 0x44)
        assert model.cost(FLASH + 0x40, fast).cycles < 7, type(model).__name__



def test_lru_cache_replaces_the_least_recently_used_way():
    cache = LruCache(4 * 32, ways=2, line_bytes=32)       # 2 sets of 2 ways
    assert cache.sets == 2
    assert not cache.touch(0) and not cache.touch(2)       # both in set 0
    assert cache.touch(0)                                  # 0 is now the most recent
    assert not cache.touch(4)                              # evicts 2
    assert cache.touch(0) and not cache.touch(2)


@pytest.mark.parametrize("value,shifted", [
    (0xFF, False), (0x00AB00AB, False), (0xAB00AB00, False), (0xABABABAB, False),
    (0x1FC0, True), (0x40000000, True), (-1, False)])
def test_thumb2_modified_immediates(value, shifted):
    assert is_shifted_constant(value) is shifted


def test_m33_ranged_rules_are_costed_at_both_ends(asm):
    """The M33's open ranges (cycles_m33: divide 2-12, taken-branch refill 1-2, ICACHE
    miss overhead 0-3 beyond the wait states) are kept as low and high totals beside the
    nominal count (divide 7, refill 1, overhead 1), as the M4's are."""
    code = asm("sdiv r0, r1, r2\nsubs r3, #1\nbne .-6", "cortex-m33")
    model = _m33(wait_states=4)
    fetch = lambda address, size: code                   # noqa: E731
    # SRAM (no ICACHE); the 16-bit bne pairs with the 16-bit subs: 0 when it falls through
    model.on_block(SRAM, len(code), fetch)
    assert model.band_counters() == (7 + 1 + 0, 2 + 1 + 0, 12 + 1 + 0)
    # back to the top: taken after a flag-setting instruction, 1 + refill (1 / 1 / 2)
    model.on_block(SRAM, len(code), fetch)
    assert model.band_counters() == (8 + 2 + 8, 3 + 2 + 3, 13 + 3 + 13)
    model.on_data_read(FLASH + 0x40)                     # a flash read that misses
    assert model.band_counters() == (18 + 4 + 1, 8 + 4 + 0, 29 + 4 + 3)
    model.on_data_read(FLASH + 0x44)                     # same 16-byte line: a hit
    assert model.band_counters() == (23, 12, 36)


def test_m7_ranged_rules_are_costed_at_both_ends(asm):
    """The M7's open ranges (cycles_m7: divide 2-12, taken-branch bubble 0-2, misprediction
    6-11, AXI overhead 0-5) are kept as low and high totals beside the nominal count
    (divide 7, bubble 1, misprediction 8, overhead 2)."""
    code = asm("sdiv r0, r1, r2\nsubs r3, #1\nbne .-6", "cortex-m7")
    model = _m7(wait_states=4)
    fetch = lambda address, size: code                   # noqa: E731
    model.on_block(SRAM, len(code), fetch)
    first = model.band_counters()
    assert first[1] == first[0] - 5 and first[2] == first[0] + 5    # the divide alone
    # back to the top: the 2-bit counter starts weakly not-taken, so this is mispredicted
    model.on_block(SRAM, len(code), fetch)
    assert model.band_counters() == (2 * first[0] + 8, 2 * first[1] + 6, 2 * first[2] + 11)
    model.on_block(SRAM, len(code), fetch)              # predicted taken now: the bubble
    assert model.band_counters() == (3 * first[0] + 9, 3 * first[1] + 6, 3 * first[2] + 13)
    before = model.band_counters()
    model.on_data_read(FLASH + 0x40)                     # a flash line: 2 x (4 + 1 + 0/2/5)
    assert [b - a for a, b in zip(before, model.band_counters())] == [14, 10, 20]
