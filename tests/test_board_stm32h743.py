"""The NUCLEO-H743ZI2 board folder: its profile, the virtual STM32H743's flash interface
(RM0433 chapter 4) driven as a program and pyOCD's built-in algorithm drive it, the
firmware booting at 480 MHz with its caches on, and a zoo model bit-exact on it."""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile
from mcuqual.boards.profile import MemoryRegion, select_boards
from mcuqual.common.cache import Cache
from mcuqual.firmware import codegen
from mcuqual.firmware.build import build_firmware, memory_script
from mcuqual.model.preprocessing import PIXEL_OVER_255
from mcuqual.quantize import tflite_model
from mcuqual.reference import tflm as reference
from mcuqual.target.connection import BoardConnection
from mcuqual.target.mailbox_runner import MailboxRunner
from mcuqual.target.probes import choose_probe
from mcuqual.target.virtual import TargetFaultError, VirtualBoard
from mcuqual.target.virtual.soc import stm32h7_flash as fl
from mcuqual.target.virtual.soc.stm32h7 import Stm32h7Soc

REPO = Path(__file__).resolve().parent.parent
BOARD = select_boards(None, ["stm32h743"])[0]
PYOCD = str(Path(sys.executable).with_name("pyocd"))
FLASH, DTCM = 0x0800_0000, 0x2000_0000
FLASH_REGS = 0x5200_2000
MB = 1024 * 1024


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return Cache(tmp_path_factory.mktemp("h743"))


@pytest.fixture(scope="module")
def ds_cnn_xs():
    flatbuffer = (REPO / "models" / "ds_cnn_xs" / "model_int8.tflite").read_bytes()
    return flatbuffer, codegen.generate(flatbuffer, "ds_cnn_xs")


@pytest.fixture(scope="module")
def image(ds_cnn_xs, cache):
    return build_firmware(ds_cnn_xs[1], BOARD, cache)


# ---- the profile -----------------------------------------------------------------------
def test_profile_has_the_parts_memories_and_clock():
    assert (BOARD.title, BOARD.mcu, BOARD.core) == ("NUCLEO-H743ZI2", "STM32H743ZIT6", "cortex-m7")
    assert BOARD.clock_hz == 480_000_000 and BOARD.pyocd_target == "stm32h743xx"
    regions = {r.name: r for r in BOARD.memory}
    assert (regions["flash"].size, regions["flash"].banks, regions["flash"].page_size) == (
        2 * MB, 2, 128 * 1024)
    sizes = {name: r.size // 1024 for name, r in regions.items() if r.kind == "ram"}
    assert sizes == {"itcm": 64, "dtcm": 128, "axi_sram": 512, "sram123": 288, "sram4": 64}
    assert BOARD.ram_window() == (DTCM, 128 * 1024)           # stack, data, mailbox: DTCM
    assert not BOARD.boot_alias and BOARD.arena_regions == ("dtcm", "axi_sram")
    core = BOARD.core_description
    assert core.cflags[:3] == ("-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16")
    assert core.cpuid == 0x411F_C271 and core.scs_features[0xD80] == 0xF00F_E019
    assert "MLPerf Tiny" in BOARD.power.source and BOARD.power.supply_v == 3.3
    from pyocd.target import TARGET
    assert BOARD.pyocd_target in TARGET                       # pyOCD's own target


def test_the_arena_goes_to_the_dtcm_when_it_fits_else_to_the_axi_sram():
    assert 'REGION_ALIAS("ARENA", RAM)' in memory_script(BOARD, 64 * 1024)
    assert 'REGION_ALIAS("ARENA", AXI_SRAM)' in memory_script(BOARD, 200 * 1024)


# ---- the flash interface as a Python model ------------------------------------------------
class FlashUnderTest:
    """The controller on a 2 MB buffer, with the board's store/fix-up protocol."""

    def __init__(self) -> None:
        self.memory = ctypes.create_string_buffer(b"\xff" * (2 * MB), 2 * MB)
        self.fc = fl.FlashController(FLASH_REGS, FLASH, 2 * MB, 2, self.memory)

    def reg(self, offset: int, value: int | None = None) -> int:
        if value is None:
            return self.fc.read(offset, 4)
        self.fc.write(offset, 4, value)
        return value

    def unlock(self, bank: int = 0) -> None:
        self.reg(fl.KEYR + 0x100 * bank, fl.KEY1)
        self.reg(fl.KEYR + 0x100 * bank, fl.KEY2)

    def store(self, address: int, value: int, size: int = 4) -> bool:
        """A CPU store as the virtual board does it: hook, raw landing, fix-up."""
        offset = address - FLASH
        chunk = offset & ~7
        before = self.memory.raw[chunk:chunk + 8]
        accepted = self.fc.store(address, size, value)
        if accepted:
            self.memory[offset:offset + size] = value.to_bytes(size, "little")
            fixed = self.fc.expected(chunk, before)
            self.memory[chunk:chunk + 8] = fixed
        return accepted

    def flash(self, address: int, size: int) -> bytes:
        return self.memory.raw[address - FLASH:address - FLASH + size]


def _program_word(f: FlashUnderTest, address: int, data: bytes) -> None:
    for i in range(0, 32, 4):
        assert f.store(address + i, int.from_bytes(data[i:i + 4], "little"))


def test_registers_reset_locked_with_seven_wait_states():
    f = FlashUnderTest()
    assert f.reg(fl.ACR) == 0x37 and f.reg(0x100 + fl.ACR) == 0x37      # shared, mirrored
    assert f.fc.wait_states == 7
    assert f.reg(fl.CR) & fl.CR_LOCK and f.reg(0x100 + fl.CR) & fl.CR_LOCK
    assert (f.reg(fl.OPTSR_PRG) >> 8) & 0xFF == 0xAA == (f.reg(0x120) >> 8) & 0xFF   # RDP 0
    f.reg(fl.ACR, 0x24)
    assert f.fc.wait_states == 4 and f.reg(fl.ACR) == 0x24


def test_unlock_takes_both_keys_in_order_per_bank_and_a_wrong_key_locks_until_reset():
    f = FlashUnderTest()
    f.unlock(0)
    assert not f.reg(fl.CR) & fl.CR_LOCK and f.reg(0x100 + fl.CR) & fl.CR_LOCK
    f.reg(0x100 + fl.KEYR, fl.KEY2)                           # wrong order on bank 2
    f.reg(0x100 + fl.KEYR, fl.KEY1)
    f.reg(0x100 + fl.KEYR, fl.KEY2)
    assert f.reg(0x100 + fl.CR) & fl.CR_LOCK                  # stays locked until reset
    f.reg(0x100 + fl.CR, fl.CR_PG)
    assert not f.reg(0x100 + fl.CR) & fl.CR_PG                # writes ignored while locked
    f.fc.reset()
    f.unlock(1)
    assert not f.reg(0x100 + fl.CR) & fl.CR_LOCK
    f.reg(fl.CR, fl.CR_LOCK)                                   # LOCK = 1 locks again
    assert f.reg(fl.CR) & fl.CR_LOCK


def test_sector_and_bank_erase():
    f = FlashUnderTest()
    f.memory[:] = b"\x00" * (2 * MB)
    f.unlock(0)
    f.unlock(1)
    f.reg(fl.CR, fl.CR_SER | (3 << fl.CR_SNB_SHIFT))
    f.reg(fl.CR, fl.CR_SER | (3 << fl.CR_SNB_SHIFT) | fl.CR_START)
    assert f.flash(FLASH + 3 * 128 * 1024, 128 * 1024) == b"\xff" * 128 * 1024
    assert f.flash(FLASH + 2 * 128 * 1024 + 128 * 1024 - 1, 1) == b"\x00"
    assert f.flash(FLASH + 4 * 128 * 1024, 1) == b"\x00"
    assert f.reg(fl.SR) & fl.SR_EOP and not f.reg(fl.SR) & (fl.SR_QW | fl.SR_BSY)
    assert not f.reg(fl.CR) & fl.CR_START                     # START clears itself
    f.reg(fl.CCR, fl.SR_EOP)
    assert not f.reg(fl.SR) & fl.SR_EOP
    f.reg(0x100 + fl.CR, fl.CR_SER | (7 << fl.CR_SNB_SHIFT) | fl.CR_START)   # bank 2, sector 7
    assert f.flash(FLASH + 2 * MB - 128 * 1024, 128 * 1024) == b"\xff" * 128 * 1024
    f.reg(0x100 + fl.CR, fl.CR_BER | fl.CR_START)
    assert f.flash(FLASH + MB, MB) == b"\xff" * MB and f.flash(FLASH, 1) == b"\x00"
    f.reg(fl.CR, fl.CR_SER | fl.CR_BER | fl.CR_START)        # both: refused
    assert f.reg(fl.SR) & fl.SR_PGSERR and f.flash(FLASH, 1) == b"\x00"


def test_a_256_bit_flash_word_is_programmed_when_its_eighth_word_arrives():
    f = FlashUnderTest()
    f.unlock(0)
    f.reg(fl.CR, fl.CR_PG | (3 << fl.CR_PSIZE_SHIFT))
    data = bytes(range(32))
    for i in range(0, 28, 4):
        assert f.store(FLASH + 0x40 + i, int.from_bytes(data[i:i + 4], "little"))
        assert f.reg(fl.SR) & fl.SR_WBNE                        # buffered, not programmed
    assert f.flash(FLASH + 0x40, 32) == b"\xff" * 32
    assert f.store(FLASH + 0x5C, int.from_bytes(data[28:], "little"))
    assert f.flash(FLASH + 0x40, 32) == data
    sr = f.reg(fl.SR)
    assert sr & fl.SR_EOP and not sr & (fl.SR_WBNE | fl.SR_QW | fl.SR_BSY)
    # bank 2 the same way, through its own registers
    f.unlock(1)
    f.reg(0x100 + fl.CR, fl.CR_PG)
    _program_word(f, FLASH + MB + 0x20, data)
    assert f.flash(FLASH + MB + 0x20, 32) == data and f.reg(0x110) & fl.SR_EOP


def test_force_write_programs_a_partial_word_and_keeps_the_rest_erased():
    f = FlashUnderTest()
    f.unlock(0)
    f.reg(fl.CR, fl.CR_PG)
    f.store(FLASH + 0x104, 0x11223344)
    f.reg(fl.CR, fl.CR_PG | fl.CR_FW)
    assert f.flash(FLASH + 0x100, 12) == b"\xff" * 4 + bytes.fromhex("44332211") + b"\xff" * 4
    assert not f.reg(fl.SR) & fl.SR_WBNE and not f.reg(fl.CR) & fl.CR_FW


def test_programming_errors():
    f = FlashUnderTest()
    f.unlock(0)
    f.reg(fl.CR, fl.CR_PG)
    _program_word(f, FLASH, bytes(range(32)))
    # a programmed word again: refused, unchanged, OPERR
    _program_word(f, FLASH, b"\x5a" * 32)
    assert f.reg(fl.SR) & fl.SR_OPERR and f.flash(FLASH, 32) == bytes(range(32))
    # ... except all zeros, which a programmed word accepts
    _program_word(f, FLASH, bytes(32))
    assert f.flash(FLASH, 32) == bytes(32)
    # a byte written twice into the buffer: strobe error, the second write dropped
    f.store(FLASH + 0x200, 0x01020304)
    f.store(FLASH + 0x200, 0xAABBCCDD)
    assert f.reg(fl.SR) & fl.SR_STRBERR
    # another flash word while the buffer holds a partial one: inconsistency error
    f.store(FLASH + 0x220, 0x55)
    assert f.reg(fl.SR) & fl.SR_INCERR and not f.reg(fl.SR) & fl.SR_WBNE
    assert f.flash(FLASH + 0x200, 64) == b"\xff" * 64
    f.reg(fl.CCR, fl.SR_FLAGS)
    assert f.reg(fl.SR) & fl.SR_FLAGS == 0 and f.reg(fl.CCR) == 0
    # PG clear, or the bank locked: the store is refused (a bus fault on the board)
    f.reg(fl.CR, 0)
    assert not f.store(FLASH + 0x300, 1) and f.reg(fl.SR) & fl.SR_PGSERR
    f.reg(fl.CR, fl.CR_LOCK)
    f.reg(fl.CR, fl.CR_PG)
    assert not f.store(FLASH + 0x300, 1)


def test_a_word_stored_in_one_block_survives_the_fix_ups_of_its_earlier_stores():
    """The board applies every store's fix-up when the block ends: the first seven of a
    word restore erased bytes after the eighth programmed it; the next access to the
    flash registers puts the programmed word back."""
    f = FlashUnderTest()
    f.unlock(0)
    f.reg(fl.CR, fl.CR_PG)
    data = bytes(range(100, 132))
    pending = []
    for i in range(0, 32, 4):
        address, value = FLASH + 0x400 + i, int.from_bytes(data[i:i + 4], "little")
        chunk = (address - FLASH) & ~7
        before = [c for where, c in pending if where == chunk]
        before = before[-1] if before else f.memory.raw[chunk:chunk + 8]
        assert f.fc.store(address, 4, value)
        f.memory[address - FLASH:address - FLASH + 4] = value.to_bytes(4, "little")
        pending.append((chunk, f.fc.expected(chunk, before)))
    for chunk, content in pending:                             # the end of the block
        f.memory[chunk:chunk + 8] = content
    assert f.flash(FLASH + 0x400, 32) != data                  # the stale fix-ups landed
    assert f.reg(fl.SR) & fl.SR_EOP                             # the program polls SR ...
    assert f.flash(FLASH + 0x400, 32) == data                  # ... and reads its word


def test_soc_reset_values_and_ready_bits():
    memory = ctypes.create_string_buffer(b"\xff" * (2 * MB), 2 * MB)
    region = MemoryRegion("flash", "flash", FLASH, 2 * MB, 128 * 1024, banks=2)
    soc = Stm32h7Soc(region, memory, lambda o, s: None, lambda: 0, [])
    assert soc.rcc.read(0x000, 4) & 0x5 == 0x5                 # HSI on and ready
    soc.rcc.write(0x000, 4, (1 << 0) | (1 << 24))
    assert soc.rcc.read(0x000, 4) & (1 << 25)                  # PLL1RDY follows PLL1ON
    soc.rcc.write(0x010, 4, 3)
    assert (soc.rcc.read(0x010, 4) >> 3) & 7 == 3              # SWS follows SW
    assert soc.pwr.read(0x04, 4) & (1 << 13) and soc.pwr.read(0x18, 4) & (1 << 13)
    assert soc.dbgmcu.read(0x00, 4) == 0x2003_0450
    soc.dbgmcu.write(0x00, 4, 0)
    assert soc.dbgmcu.read(0x00, 4) & 0xFFF == 0x450            # read-only
    assert not soc.swo_routed
    soc.dbgmcu.write(0x04, 4, 1 << 20)
    soc.swtf.write(0x000, 4, 0x301)
    assert soc.swo_routed
    soc.system_reset()
    assert soc.swo_routed                                      # the debug domain keeps it
    assert soc.gpio[6].base == 0x5802_1800                     # GPIOG, the marker's port


# ---- the flash interface, driven by code on the core ----------------------------------------
FLASH_ROUTINE = """
    .syntax unified
    .thumb
    ldr r0, =0x52002000
    ldr r1, =0x45670123
    str r1, [r0, #0x104]       @ KEYR2: key 1
    ldr r1, =0xCDEF89AB
    str r1, [r0, #0x104]       @ KEYR2: key 2 -> bank 2 unlocked
    ldr r1, =(1 << 8) | (3 << 4) | 4
    str r1, [r0, #0x10C]       @ CR2: SER, sector 1, PSIZE x64
    orr r1, r1, #0x80
    str r1, [r0, #0x10C]       @ CR2: START -> erase 0x08120000..0x0813FFFF
    movs r1, #0x32
    str r1, [r0, #0x10C]       @ CR2: PG, PSIZE x64
    ldr r2, =0x08120000
    ldr r3, =0x03020100
    ldr r4, =0x04040404
    movs r5, #8
fill:                          @ eight words, one per loop iteration (one block each)
    str r3, [r2], #4
    add r3, r3, r4
    subs r5, #1
    bne fill
    stm r2!, {r3-r10}          @ a second flash word in a single store instruction
poll:
    ldr r1, [r0, #0x110]       @ SR2: wait for QW to clear
    tst r1, #4
    bne poll
    movs r1, #0
    str r1, [r0, #0x10C]
done:
    b done
"""


def _assemble(source: str, tmp_path) -> tuple[bytes, int]:
    asm, obj, out = tmp_path / "r.s", tmp_path / "r.o", tmp_path / "r.bin"
    asm.write_text(source)
    subprocess.run(["arm-none-eabi-as", "-mcpu=cortex-m7", "-mthumb", "-o", str(obj), str(asm)],
                   check=True)
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(obj), str(out)], check=True)
    symbols = subprocess.run(["arm-none-eabi-nm", str(obj)], capture_output=True, text=True,
                             check=True).stdout
    done = next(int(line.split()[0], 16) for line in symbols.splitlines() if line.endswith(" done"))
    return out.read_bytes(), done


def _run_routine(code: bytes, done: int) -> VirtualBoard:
    target = VirtualBoard(BOARD, cycle_accurate=False)
    target.write_memory(0x0812_0000, b"\x00" * 64)        # old contents: must be erased first
    target.write_memory(0x0814_0000, b"\x5a" * 16)        # the next sector stays as it is
    target.write_memory(DTCM + 0x1000, code)
    for index, name in enumerate(("r6", "r7", "r8", "r9", "r10")):
        target.write_core_register(name, 0x6000_0000 + index)
    target.write_core_register("sp", DTCM + 0x800)
    target.write_core_register("pc", DTCM + 0x1000)
    target.run(lambda: target.read_core_register("pc") == DTCM + 0x1000 + done,
               max_cycles=10_000_000, timeout_s=30)
    return target


def test_code_on_the_core_erases_and_programs_256_bit_words(tmp_path):
    target = _run_routine(*_assemble(FLASH_ROUTINE, tmp_path))
    first = b"".join(((0x03020100 + 0x04040404 * i) & 0xFFFFFFFF).to_bytes(4, "little")
                     for i in range(8))
    assert target.read_memory(0x0812_0000, 32) == first
    r3 = (0x03020100 + 0x04040404 * 8) & 0xFFFFFFFF
    second = b"".join(v.to_bytes(4, "little") for v in
                      (r3, 0x04040404, 8 * 0, 0x6000_0000, 0x6000_0001, 0x6000_0002,
                       0x6000_0003, 0x6000_0004))
    assert target.read_memory(0x0812_0020, 32) == second
    assert target.read_memory(0x0812_0040, 64) == b"\xff" * 64
    assert target.read_memory(0x0814_0000, 16) == b"\x5a" * 16
    assert not target.unmodelled


def test_a_store_to_flash_without_pg_faults(tmp_path):
    no_pg = FLASH_ROUTINE.replace("movs r1, #0x32\n", "movs r1, #0x30\n")
    with pytest.raises(TargetFaultError,
                       match="store to read-only memory \\(flash\\) at 0x08120000"):
        _run_routine(*_assemble(no_pg, tmp_path))


# ---- pyOCD, from the command line, with its own STM32H743 target and algorithm -------------
def _pyocd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYOCD, *args], capture_output=True, text=True, timeout=300,
                          env=os.environ.copy(), cwd=REPO)


def _flash_image(elf: Path) -> dict[int, bytes]:
    with open(elf, "rb") as handle:
        return {segment["p_paddr"]: segment.data() for segment in ELFFile(handle).iter_segments()
                if segment["p_type"] == "PT_LOAD" and segment["p_filesz"]}


def test_pyocd_lists_flashes_and_commands_the_virtual_board(image):
    listed = _pyocd("list")
    assert listed.returncode == 0 and "virtual-stm32h743" in listed.stdout
    assert "NUCLEO-H743ZI2" in listed.stdout
    flashed = _pyocd("flash", "-t", "stm32h743xx", "--uid", "virtual-stm32h743", str(image.elf))
    assert flashed.returncode == 0, flashed.stdout + flashed.stderr
    with BoardConnection(BOARD, choose_probe("virtual", BOARD.name)) as session:
        assert session.flash_holds(image.elf)
        for address, data in _flash_image(image.elf).items():
            assert session.read_memory(address, len(data)) == data
    commander = _pyocd("commander", "-t", "stm32h743xx", "--uid", "virtual-stm32h743",
                       "-O", "connect_mode=halt", "-c", "read32 0x5c001000",
                       "-c", "read32 0x5c001004", "-c", "read32 0xe000ed00")
    assert commander.returncode == 0, commander.stdout + commander.stderr
    assert "20030450" in commander.stdout              # DBGMCU_IDC: DEV_ID 0x450, rev V
    assert "0070003f" in commander.stdout              # pyOCD's connect set DBGMCU_CR
    assert "411fc271" in commander.stdout              # CPUID: Cortex-M7 r1p1


# ---- the firmware on the virtual board ---------------------------------------------------
def test_firmware_boots_at_480_mhz_with_caches_and_runs_ds_cnn_xs_bit_exact(
        image, ds_cnn_xs, cifar):
    flatbuffer, generated = ds_cnn_xs
    with open(image.elf, "rb") as handle:
        arena = ELFFile(handle).get_section_by_name(".mq_arena")
        assert DTCM <= arena["sh_addr"] < DTCM + 128 * 1024        # small arena: the DTCM
    inputs = tflite_model.quantize_images(cifar.test.images[:2],
                                          tflite_model.read(flatbuffer).input, PIXEL_OVER_255)
    golden = reference.run_reference(flatbuffer, inputs, workers=1)
    with BoardConnection(BOARD, choose_probe("virtual", BOARD.name)) as session:
        session.flash(image.elf)
        session.set_cycle_model(True)
        session.start()
        runner = MailboxRunner(session, image.elf)
        header = runner.boot()
        assert header["core_clock_hz"] == 480_000_000
        results = [runner.infer(x) for x in inputs]
        for result, expected in zip(results, golden):
            np.testing.assert_array_equal(result.output, expected)
        lines = runner.finish()
        assert lines[0].startswith("BOOT model=ds_cnn_xs board=stm32h743")
        assert not session.unmodelled_accesses
        board = session.session.probe.target
        soc = board.soc
        assert soc.rcc.read(0x010, 4) == 0x1B                  # SW = SWS = PLL1
        assert soc.rcc.read(0x030, 4) == (59 | 1 << 9 | 3 << 16 | 1 << 24)   # N 60, P 2, Q 4, R 2
        assert soc.rcc.read(0x018, 4) == 0x48                  # HPRE /2, D1PPRE /2, D1CPRE /1
        assert soc.flash_interface.read(0x000, 4) == 0x24      # LATENCY 4, WRHIGHFREQ 2
        assert soc.syscfg.overdrive and (soc.pwr.read(0x18, 4) >> 14) == 3   # VOS0
        assert board.read_u32(0xE000_ED14) & (3 << 16) == 3 << 16            # IC and DC on
        assert soc.swo_routed
        marker = [level for _, pin, level in board.pin_edges if pin == BOARD.marker_pin]
        assert marker == [1, 0] * 2


AXI_MODEL = r'''
#include "mq_model.h"
#include "mq_model_config.h"
int8_t mq_model_arena[MQ_MODEL_ARENA_BYTES] __attribute__((section(".bss.mq_arena"), aligned(32)));
static const char *const names[] = {"0:SPREAD"};
const mq_model_info_t mq_model_info = {"axi", 3072u, 10u, MQ_MODEL_ARENA_BYTES, 1u, names};
const int8_t *mq_model_layer_output(int layer) { (void)layer; return mq_model_arena; }
int mq_model_invoke(const int8_t *input, int8_t *output, mq_layer_hook_t hook, void *context)
{
    if (hook) hook(context, 0, MQ_LAYER_BEGIN);
    for (uint32_t k = 0; k < 10u; ++k) {          /* spread over the whole arena ... */
        mq_model_arena[k * (MQ_MODEL_ARENA_BYTES / 10u)] = (int8_t)(input[k] ^ 0x5A);
    }
    for (uint32_t k = 0; k < 10u; ++k) {          /* ... and back, through the D-cache */
        output[k] = (int8_t)(mq_model_arena[k * (MQ_MODEL_ARENA_BYTES / 10u)] ^ 0x5A);
    }
    if (hook) hook(context, 0, MQ_LAYER_END);
    return 0;
}
'''


def test_an_arena_too_big_for_the_dtcm_runs_from_the_axi_sram(cache):
    from mcuqual.firmware.codegen import GeneratedModel

    arena = 200 * 1024
    config = ("#define MQ_MODEL_INPUT_BYTES 3072u\n#define MQ_MODEL_OUTPUT_BYTES 10u\n"
              f"#define MQ_MODEL_LAYERS 1u\n#define MQ_MODEL_ARENA_BYTES {arena}u\n")
    model = GeneratedModel("axi", {"mq_model_data.c": AXI_MODEL, "mq_model_config.h": config},
                           arena, 0, ["0:SPREAD"], 3072, 10)
    built = build_firmware(model, BOARD, cache)
    with open(built.elf, "rb") as handle:
        section = ELFFile(handle).get_section_by_name(".mq_arena")
        assert section["sh_addr"] == 0x2400_0000 and section["sh_size"] == arena
    target = VirtualBoard(BOARD, cycle_accurate=False)
    target.load_elf(built.elf)
    target.reset(halt=False)
    target.swo_start()
    target.trace_text = lambda: ""
    runner = MailboxRunner(target, built.elf, inference_budget_cycles=50_000_000, timeout_s=60)
    runner.boot()
    image = np.arange(3072, dtype=np.int64).astype(np.int8)
    np.testing.assert_array_equal(runner.infer(image).output, image[:10])
    assert not target.unmodelled


def test_pyocds_algorithm_erases_the_sector_after_the_one_asked_for():
    """pyOCD's built-in STM32H743 algorithm loops from the sector's address up to and
    including address + 128 KB, so EraseSector erases that sector and the next one (for
    the last sector of bank 2 the computed sector number wraps to bank 2's first).
    The virtual flash does what the part does with it. With smart flashing, a sector
    pyOCD skips as unchanged after a changed one loses its content; BoardConnection's
    read-back verification reports that."""
    from pyocd.core.helpers import ConnectHelper

    with ConnectHelper.session_with_chosen_probe(unique_id="virtual-stm32h743",
                                                 target_override="stm32h743xx") as session:
        board = session.probe.target
        for address, fill in ((0x0802_0000, 0x11), (0x0804_0000, 0x22), (0x0810_0000, 0x44),
                              (0x081E_0000, 0x33)):
            board.write_memory(address, bytes([fill]) * 16)
        flash = session.target.memory_map.get_region_for_address(FLASH).flash
        flash.init(flash.Operation.ERASE)
        flash.erase_sector(FLASH)                     # sector 0 of bank 1
        flash.erase_sector(0x081E_0000)               # the last sector of bank 2
        flash.uninit()
        assert board.read_memory(0x0802_0000, 16) == b"\xff" * 16     # sector 1 too
        assert board.read_memory(0x0804_0000, 16) == b"\x22" * 16     # sector 2 kept
        assert board.read_memory(0x081E_0000, 16) == b"\xff" * 16
        assert board.read_memory(0x0810_0000, 16) == b"\xff" * 16     # bank 2 sector 0 too
        assert not board.unmodelled


def test_qualification_suite_runs_a_zoo_model_on_the_board(pytester, cifar_dir):
    """`pytest qualification --board=stm32h743`: ds_cnn_xs on the virtual NUCLEO-H743ZI2,
    its two images bit-exact (or the latency would be an error, not a verdict), the energy
    from this board's power profile."""
    import json
    import shutil

    from project import make_project

    make_project(pytester.path)
    shutil.copytree(REPO / "models" / "ds_cnn_xs", pytester.path / "models" / "ds_cnn_xs")
    pytester.runpytest_subprocess(
        "qualification", "-p", "no:cacheprovider", f"--dataset-dir={cifar_dir}", "--samples=2",
        "--board=stm32h743", "--model=ds_cnn_xs", "-k", "not REQ-ACC", timeout=900)
    doc = json.loads((pytester.path / "reports" / "latest" / "qualification.json").read_text())
    records = {r["requirement"]: r for r in doc["results"]}
    latency = records["REQ-LATENCY"]
    assert latency["board"] == "stm32h743" and latency["evidence"] == "emulated"
    assert latency["details"]["images_on_target"] == 2 and latency["verdict"] == "pass"
    energy = records["REQ-ENERGY"]
    assert energy["details"]["run_power_mw"] == pytest.approx(3.3 * 290.0 * 480 / 1000)
    assert "MLPerf Tiny" in energy["details"]["power_source"]
