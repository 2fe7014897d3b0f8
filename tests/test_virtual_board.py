"""The virtual STM32L4R9: ITM framing, the cycle model, faults and hangs, and real firmware."""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
from mcuqual.firmware import codegen
from mcuqual.reference import tflm as reference
from mcuqual.quantize import tflite_model
from mcuqual.boards.profile import select_boards
from mcuqual.common.cache import Cache
from mcuqual.firmware.codegen import GeneratedModel
from mcuqual.target.connection import BoardConnection
from mcuqual.firmware.build import build_firmware
from mcuqual.target.mailbox_runner import MailboxRunner
from mcuqual.target.probes import choose_probe
from mcuqual.measure.on_target import inference_budget_s, run_on_target
from mcuqual.target.virtual import TargetFaultError, TargetTimeoutError, VirtualBoard
from mcuqual.target.virtual.cycles import BRANCH_REFILL, CycleModel
from mcuqual.target.virtual.arm.itm import SYNC, local_timestamp, source_packet
from mcuqual.model.preprocessing import PIXEL_OVER_255
from pyocd.trace.events import TraceITMEvent
from pyocd.trace.sink import TraceEventSink
from pyocd.trace.swo import SWOParser

REPO = Path(__file__).resolve().parent.parent
BOARD = select_boards(None, ["stm32l4r9"])[0]
RAM = 0x2000_0000


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return Cache(tmp_path_factory.mktemp("virtual"))


# ---- ITM ---------------------------------------------------------------------------
def test_itm_source_packets_follow_the_architecture():
    assert source_packet(0, ord("A"), 1) == bytes([0x01, 0x41])
    assert source_packet(1, 0x12345678, 4) == bytes([0x0B, 0x78, 0x56, 0x34, 0x12])
    assert source_packet(31, 0xBEEF, 2) == bytes([0xFA, 0xEF, 0xBE])
    assert local_timestamp(5) == bytes([0x50]) and local_timestamp(300) == bytes([0xC0, 0xAC, 0x02])
    stream = SYNC + source_packet(0, ord("h"), 1) + source_packet(2, 7, 4) + \
        source_packet(0, ord("i"), 1) + local_timestamp(3)

    class Events(TraceEventSink):
        def __init__(self):
            self.seen = []

        def receive(self, event):
            if isinstance(event, TraceITMEvent):
                self.seen.append((event.port, event.data, event.width))

    events = Events()
    SWOParser(None, events).parse(stream)        # pyOCD's decoder reads what our ITM wrote
    assert events.seen == [(0, ord("h"), 1), (2, 7, 4), (0, ord("i"), 1)]


# ---- cycle model -------------------------------------------------------------------
def test_flash_acr_switches_the_art_caches_of_the_cycle_model():
    """RM0432 FLASH_ACR (0x4002_2000): ICEN bit 9, DCEN bit 10; the model follows writes
    and resets (both on at reset)."""
    target = VirtualBoard(BOARD, cycle_accurate=False)
    model = target.cycle_model
    assert (model.icache_enabled, model.dcache_enabled) == (True, True)
    target.write_u32(0x4002_2000, 5 | (1 << 8) | (1 << 10))       # LATENCY 5, PRFTEN, DCEN
    assert (model.icache_enabled, model.dcache_enabled) == (False, True)
    assert target.flash_interface.wait_states == 5
    target.flash_interface.reset()
    assert (model.icache_enabled, model.dcache_enabled) == (True, True)


def test_neighbouring_loads_pipeline():
    model = CycleModel(0x0800_0000, 0x0820_0000, lambda: 0)
    code = bytes.fromhex("0a684b68")          # ldr r2, [r1]; ldr r3, [r1, #4]
    assert model.cost(RAM, code).cycles == 2 + 1


def test_taken_branches_pay_the_refill_and_flash_misses_pay_wait_states():
    model = CycleModel(0x0800_0000, 0x0820_0000, lambda: 5)
    loop = bytes.fromhex("0138fdd1")          # subs r0, #1; bne <self>
    fetch = lambda address, size: loop         # noqa: E731
    model.on_block(0x0800_0100, 4, fetch)      # first pass: I-cache miss (5) + 2
    assert model.cycles == 5 + 2
    model.on_block(0x0800_0100, 4, fetch)      # branch back taken: refill, cache hit
    assert model.cycles == 5 + 2 + BRANCH_REFILL + 2
    model.on_flash_read(0x0801_0000)           # a weight: data-cache miss
    model.on_flash_read(0x0801_0004)           # same 32-byte line: hit
    assert model.cycles == 5 + 2 + BRANCH_REFILL + 2 + 5


# ---- faults on raw code ------------------------------------------------------------
def _run_snippet(code_hex: str, r0: int):
    target = VirtualBoard(BOARD, cycle_accurate=False)
    target.write_memory(RAM + 0x1000, bytes.fromhex(code_hex))
    target.write_core_register("sp", RAM + 0x800)
    target.write_core_register("r0", r0)
    target.write_core_register("r1", 0x55)
    target.write_core_register("pc", RAM + 0x1000)
    target.run(lambda: False, max_cycles=10_000, timeout_s=10)


def test_store_to_flash_faults():
    with pytest.raises(TargetFaultError, match="store to read-only memory .* 0x08000010"):
        _run_snippet("0160fee7", 0x0800_0010)      # str r1, [r0]; b .


def test_read_of_unmapped_memory_faults():
    with pytest.raises(TargetFaultError, match="read of unmapped address 0x30000000"):
        _run_snippet("0168fee7", 0x3000_0000)      # ldr r1, [r0]; b .


def test_endless_loop_ends_at_its_budget():
    with pytest.raises(TargetTimeoutError, match="did not finish within its budget"):
        _run_snippet("fee7", 0)                     # b .


# ---- real firmware -------------------------------------------------------------------
def test_firmware_boots_runs_bit_exact_and_logs_over_itm(tiny_tflite, cifar, cache):
    """Through pyOCD, as the suite does: flash, reset, SWV, the mailbox protocol."""
    generated = codegen.generate(tiny_tflite, "tiny")
    image = build_firmware(generated, BOARD, cache)
    with BoardConnection(BOARD, choose_probe("virtual", BOARD.name)) as session:
        session.flash(image.elf)
        assert session.flash_holds(image.elf)
        assert not session.flash(image.elf).programmed        # unchanged image: not flashed again
        session.set_cycle_model(True)
        session.start()
        runner = MailboxRunner(session, image.elf)
        header = runner.boot()
        assert header["input_bytes"] == 3072 and header["core_clock_hz"] == 120_000_000
        inputs = tflite_model.quantize_images(cifar.test.images[:3],
                                              tflite_model.read(tiny_tflite).input, PIXEL_OVER_255)
        golden = reference.run_reference(tiny_tflite, inputs, workers=1)
        results, bands = [], []
        for x in inputs:
            session.clear_cycle_band()
            results.append(runner.infer(x))
            bands.append(session.cycle_band())
        for result, band in zip(results, bands):
            # the ranged totals span exactly the inference the firmware timed
            nominal, low, high = band
            assert nominal == result.cycles_total and low <= nominal < high
        for result, expected in zip(results, golden):
            np.testing.assert_array_equal(result.output, expected)
            assert 0 < sum(result.layer_cycles) <= result.cycles_total
            assert result.stack_high_water_bytes > 0
        lines = runner.finish()
        assert lines[0].startswith("BOOT model=tiny board=stm32l4r9")
        assert f"INFERENCE seq=3 cycles={results[-1].cycles_total}" in " ".join(lines)
        assert not session.unmodelled_accesses    # every register the firmware touches is modelled
        marker = [(c, level) for c, pin, level in session.session.probe.target.pin_edges
                  if pin == BOARD.marker_pin]
        assert [level for _, level in marker] == [1, 0] * 3       # one window per inference
        widths = [fall - rise for (rise, _), (fall, _) in zip(marker[::2], marker[1::2])]
        assert all(r.cycles_total <= w <= r.cycles_total + 200 for r, w in zip(results, widths))



def test_a_run_does_not_need_pyocds_raw_swv_port(tiny_tflite, cache):
    """Two suites on one machine: the port pyOCD would serve raw SWV on is taken, and the
    run still boots and logs over ITM (the log comes through the SWV console)."""
    import socket

    from pyocd.core.options import OPTIONS_INFO

    image = build_firmware(codegen.generate(tiny_tflite, "tiny"), BOARD, cache)
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        try:
            squatter.bind(("", OPTIONS_INFO["swv_raw_port"].default))
            squatter.listen(1)
        except OSError:
            pass                                    # taken already: the case itself
        with BoardConnection(BOARD, choose_probe("virtual", BOARD.name)) as session:
            session.flash(image.elf)
            session.start()
            runner = MailboxRunner(session, image.elf)
            assert runner.boot()["input_bytes"] == 3072
            assert runner.finish()[0].startswith("BOOT model=tiny")
    finally:
        squatter.close()

BAD_MODEL = r'''
#include "mq_model.h"
#include "mq_model_config.h"
int8_t mq_model_arena[16] __attribute__((section(".bss.mq_arena"), aligned(16)));
static const char *const names[] = {"0:BAD"};
const mq_model_info_t mq_model_info = {"bad", 3072u, 10u, 16u, 1u, names};
const int8_t *mq_model_layer_output(int layer) { (void)layer; return mq_model_arena; }
static volatile int sink;
int recurse(int depth);
int recurse(int depth)
{
    volatile char pad[256];
    pad[0] = (char)depth;
    if (depth > 100000000) return 0;
    return recurse(depth + 1) + pad[0];
}
int mq_model_invoke(const int8_t *input, int8_t *output, mq_layer_hook_t hook, void *context)
{
    output[0] = input[0];
    if (hook) hook(context, 0, MQ_LAYER_BEGIN);
#if BEHAVIOUR == 1
    *(volatile uint32_t *)0x30000000u = 1u;
#elif BEHAVIOUR == 2
    for (;;) { sink++; }
#else
    sink = recurse(0);
#endif
    return 0;
}
'''


def _bad_firmware(behaviour: int, cache):
    config = ("#define MQ_MODEL_INPUT_BYTES 3072u\n#define MQ_MODEL_OUTPUT_BYTES 10u\n"
              f"#define MQ_MODEL_LAYERS 1u\n#define MQ_MODEL_ARENA_BYTES 16u\n"
              f"#define BEHAVIOUR {behaviour}\n")
    model = GeneratedModel(f"bad{behaviour}", {"mq_model_data.c": BAD_MODEL,
                                               "mq_model_config.h": config},
                           16, 0, ["0:BAD"], 3072, 10)
    return build_firmware(model, BOARD, cache)


@pytest.mark.parametrize("behaviour,error,message", [
    (1, TargetFaultError, "bus fault: data access at 0x30000000"),
    (2, TargetTimeoutError, "did not finish within its budget"),
    (3, TargetFaultError, "stack overflow: write below the start of SRAM"),
])
def test_broken_firmware_ends_with_a_clear_report(behaviour, error, message, cache):
    """Faults are told from the fault registers pyOCD reads, as on a physical board."""
    image = _bad_firmware(behaviour, cache)
    with BoardConnection(BOARD, choose_probe("virtual", BOARD.name)) as session:
        session.flash(image.elf)
        session.start()
        runner = MailboxRunner(session, image.elf, timeout_s=5)
        runner.boot()
        with pytest.raises(error, match=message) as info:
            runner.infer(np.zeros(3072, dtype=np.int8))
    assert "pc=0x08" in str(info.value)         # where it happened, in flash


def test_a_fault_names_the_function_and_the_layer(cache):
    """The suite's own run: the faulting PC is symbolized from the ELF, and the layer that
    was running comes from the firmware's mq_current_layer, read through pyOCD."""
    image = _bad_firmware(1, cache)
    model = GeneratedModel("bad1", {}, 16, 0, ["0:BAD"], 3072, 10)
    with pytest.raises(TargetFaultError) as info:
        run_on_target(choose_probe("virtual", BOARD.name), BOARD, image, model,
                      np.zeros((2, 3072), np.int8), np.zeros((2, 10), np.int8), "bad1",
                      power_monitor="none")
    message = str(info.value)
    assert "bus fault: data access at 0x30000000" in message
    assert re.search(r"\(pc=0x0800[0-9a-f]{4} .*\) in mq_model_invoke\+0x[0-9a-f]+, during", message)
    assert "during layer 0 (0:BAD)" in message


def test_a_hung_target_ends_within_the_budget_its_size_gives(cache):
    """No fixed 600 s: a model of (nearly) no MACs gets the floor budget, and the hang is
    reported when it runs out, naming the pc."""
    image = _bad_firmware(2, cache)
    model = GeneratedModel("bad2", {}, 16, 0, ["0:BAD"], 3072, 10, layer_macs=[0])
    budget = inference_budget_s(model.macs, model.arena_bytes, True, BOARD.clock_hz)
    assert budget < 30
    started = time.monotonic()
    with pytest.raises(TargetTimeoutError, match=r"did not finish within its budget \(2\d s"):
        run_on_target(choose_probe("virtual", BOARD.name), BOARD, image, model,
                      np.zeros((1, 3072), np.int8), np.zeros((1, 10), np.int8), "bad2",
                      timeout_s=budget, power_monitor="none")
    assert time.monotonic() - started < budget + 15


def test_emulator_faults_carry_the_access_kind(cache):
    """Run directly on the emulator, a fault also says whether it was a read or a write."""
    image = _bad_firmware(1, cache)
    target = VirtualBoard(BOARD, cycle_accurate=False)
    target.load_elf(image.elf)
    target.reset(halt=False)
    target.swo_start()
    target.trace_text = lambda: ""
    runner = MailboxRunner(target, image.elf, inference_budget_cycles=50_000_000, timeout_s=60)
    runner.boot()
    with pytest.raises(TargetFaultError, match="bus fault: write to unmapped address 0x30000000"):
        runner.infer(np.zeros(3072, dtype=np.int8))


# ---- the flash controller, driven by code on the core ---------------------------------
FLASH_ROUTINE = """
    .syntax unified
    .thumb
    ldr r0, =0x40022000
    ldr r1, =0x45670123
    str r1, [r0, #8]           @ KEYR: key 1
    ldr r1, =0xCDEF89AB
    str r1, [r0, #8]           @ KEYR: key 2 -> unlocked
    ldr r1, =(2 << 3) | 2
    str r1, [r0, #0x14]        @ CR: PER, page 2
    ldr r1, =(2 << 3) | 2 | (1 << 16)
    str r1, [r0, #0x14]        @ CR: STRT -> erase
    movs r1, #1
    str r1, [r0, #0x14]        @ CR: PG
    ldr r2, =0x08002000
    ldr r3, =0x11223344
    str r3, [r2], #4           @ double word, post-indexed stores
    ldr r3, =0x55667788
    str r3, [r2], #4
    movs r1, #0
    str r1, [r0, #0x14]
done:
    b done
"""


def _assemble(source: str, tmp_path) -> tuple[bytes, int]:
    import subprocess

    asm, obj = tmp_path / "routine.s", tmp_path / "routine.o"
    asm.write_text(source)
    subprocess.run(["arm-none-eabi-as", "-mcpu=cortex-m4", "-mthumb", "-o", str(obj), str(asm)],
                   check=True)
    out = tmp_path / "routine.bin"
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(obj), str(out)], check=True)
    symbols = subprocess.run(["arm-none-eabi-nm", str(obj)], capture_output=True, text=True,
                             check=True).stdout
    done = next(int(line.split()[0], 16) for line in symbols.splitlines() if line.endswith(" done"))
    return out.read_bytes(), done


def _run_routine(code: bytes, done: int) -> VirtualBoard:
    target = VirtualBoard(BOARD, cycle_accurate=False)
    target.write_memory(0x0800_2000, b"\x00" * 16)       # old contents: page 2 not erased
    target.write_memory(0x0800_3000, b"\x5a" * 16)       # page 3 must stay as it is
    target.write_memory(RAM + 0x1000, code)
    target.write_core_register("sp", RAM + 0x800)
    target.write_core_register("pc", RAM + 0x1000)
    target.run(lambda: target.read_core_register("pc") == RAM + 0x1000 + done,
               max_cycles=10_000_000, timeout_s=20)
    return target


def test_code_on_the_core_erases_and_programs_flash(tmp_path):
    code, done = _assemble(FLASH_ROUTINE, tmp_path)
    target = _run_routine(code, done)
    assert target.read_memory(0x0800_2000, 8) == bytes.fromhex("4433221188776655")
    assert target.read_memory(0x0800_2008, 4088) == b"\xff" * 4088        # rest of the page erased
    assert target.read_memory(0x0800_3000, 16) == b"\x5a" * 16
    assert target.read_core_register("r2") == 0x0800_2008                 # writeback happened


def test_flash_stays_locked_without_the_key_sequence(tmp_path):
    wrong_key = FLASH_ROUTINE.replace("0xCDEF89AB", "0x12345678")
    code, done = _assemble(wrong_key, tmp_path)
    with pytest.raises(TargetFaultError, match="store to read-only memory \\(flash\\) at 0x08002000"):
        _run_routine(code, done)


def test_programming_a_written_double_word_is_a_programming_error(tmp_path):
    no_erase = FLASH_ROUTINE.replace("str r1, [r0, #0x14]        @ CR: STRT -> erase", "nop")
    code, done = _assemble(no_erase, tmp_path)
    target = _run_routine(code, done)
    assert target.read_memory(0x0800_2000, 8) == b"\x00" * 8               # unchanged
    assert target.read_u32(0x4002_2010) & (1 << 3)                           # SR.PROGERR


def test_debugger_register_access_and_step():
    target = VirtualBoard(BOARD, cycle_accurate=False)
    target.write_memory(RAM + 0x1000, bytes.fromhex("0130fee7"))    # adds r0, #1; b .
    target.write_core_register("pc", RAM + 0x1000)
    target.write_core_register("r0", 41)
    target.step()
    assert target.read_core_register("r0") == 42
    assert target.read_core_register("pc") == RAM + 0x1002
    # the debugger's path: DCRSR selects r0 for reading, DCRDR holds its value
    target.write_u32(0xE000_EDF4, 0)
    assert target.read_u32(0xE000_EDF8) == 42
    target.write_u32(0xE000_EDF8, 7)
    target.write_u32(0xE000_EDF4, (1 << 16) | 1)                   # write r1
    assert target.read_core_register("r1") == 7
    assert target.read_u32(0xE000_EDF0) & (1 << 17)                  # S_HALT while halted
    assert target.read_u32(0xE000_ED00) == 0x410FC241                 # CPUID: Cortex-M4 r0p1


@pytest.mark.parametrize("name", ["resnet8", "ds_cnn_lite", "paths"])
def test_dsp_kernels_on_the_target_are_bit_exact(name, cifar, cache):
    """The Cortex-M4 build runs the kernels' 16-bit lane helpers as DSP instructions
    (SXTB16, SADD16, SMLAD, SMLABB/SMLATT) where the host twin computes them in C:
    check them on the emulated core against tflite_micro."""
    from mcuqual.model import zoo
    from mcuqual.quantize.convert import calibration_images, convert
    from mcuqual.measure.on_target import run_on_target
    from test_codegen import _randomize, paths_model

    if name == "paths":
        flatbuffer = paths_model(cifar)
    else:
        model = zoo.discover(REPO / "models")[name]
        flatbuffer = convert(_randomize(model.build(seed=1), seed=5), calibration_images(cifar, 50))
    generated = codegen.generate(flatbuffer, name)
    image = build_firmware(generated, BOARD, cache)
    inputs = tflite_model.quantize_images(cifar.test.images[:3],
                                          tflite_model.read(flatbuffer).input, PIXEL_OVER_255)
    golden = reference.run_reference(flatbuffer, inputs, workers=1)
    run = run_on_target(choose_probe("virtual", BOARD.name), BOARD, image, generated, inputs,
                        golden, name, timed_runs=0)
    assert run.mismatched_images == 0 and run.images == 3


def test_rom_table_leads_a_debugger_to_every_component():
    target = VirtualBoard(BOARD, cycle_accurate=False)
    rom = 0xE00F_F000

    def component_class(base):
        cidr = [target.read_u32(base + 0xFF0 + 4 * i) & 0xFF for i in range(4)]
        assert cidr[0] == 0x0D and cidr[2] == 0x05 and cidr[3] == 0xB1, hex(base)
        return cidr[1]

    assert component_class(rom) == 0x10                     # a ROM table
    found, index = [], 0
    while (entry := target.read_u32(rom + 4 * index)) != 0:
        assert entry & 1                                      # present
        found.append((rom + (entry & 0xFFFFF000)) & 0xFFFFFFFF)
        index += 1
    assert found == [0xE000_E000, 0xE000_1000, 0xE000_2000, 0xE000_0000, 0xE004_0000, 0xE004_1000]
    for base in found:
        assert component_class(base) in (0xE0, 0x90)
    # the SCS identifies as an ARMv7-M system control space (part number 0x00C)
    scs_part = target.read_u32(0xE000_EFE0) | (target.read_u32(0xE000_EFE4) & 0xF) << 8
    assert scs_part == 0x00C


ITM_COUNTER = """
    .syntax unified
    .thumb
    ldr r1, =0xE0000000        @ ITM stimulus port 0
    movs r0, #0
loop:
    adds r0, #1
    strb r0, [r1]              @ the iteration number, low byte: one packet per iteration
    b loop
done:
    b done
"""


def test_a_peripheral_write_happens_once_however_plain_slices_stop(tmp_path):
    """Plain emulation slices end by wall time (watchdog.py); a stop that lands on a
    peripheral store makes unicorn run the store again on resume. Thousands of short slices
    over a loop writing its counter to the ITM: every value reaches the SWO stream once, in
    order, none lost and none twice."""
    code, _ = _assemble(ITM_COUNTER, tmp_path)
    target = VirtualBoard(BOARD, cycle_accurate=False)
    target.write_memory(RAM + 0x1000, code)
    target.write_core_register("sp", RAM + 0x800)
    target.write_core_register("pc", RAM + 0x1000)
    target.write_u32(0xE000_EDFC, 1 << 24)              # DEMCR.TRCENA
    target.write_u32(0xE000_0E80, 1)                    # ITM TCR.ITMENA, no timestamps
    target.write_u32(0xE000_0E00, 1)                    # TER: port 0
    target.swo_start()
    target.halted = False
    for slice_index in range(1_000):                   # a count, not a wall-time span: a
        target.advance(2_000 + 37 * (slice_index % 50))  # loaded CI machine runs as many
    stream = target.swo_read()
    assert stream[:len(SYNC)] == SYNC
    packets = stream[len(SYNC):]
    assert len(packets) % 2 == 0 and set(packets[0::2]) == {0x01}     # 1-byte port-0 packets
    values = list(packets[1::2])
    iterations = target.read_core_register("r0")
    assert len(values) in (iterations, iterations - 1)     # the last may be due
    assert values == [(i + 1) & 0xFF for i in range(len(values))]
