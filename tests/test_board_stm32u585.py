"""The B-U585I-IOT02A (STM32U585, Cortex-M33): its profile and core description, the
STM32U5 flash controller's program/erase semantics on the virtual board, the firmware
built for it, run through pyOCD (the probe plugin, a target made from the profile and
the flash algorithm from the board folder), pyOCD's command line, and a zoo model
qualified on it."""
from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile
from mcuqual.boards.profile import select_boards
from mcuqual.common.cache import Cache
from mcuqual.firmware import codegen
from mcuqual.firmware.build import build_firmware, memory_script
from mcuqual.model.preprocessing import PIXEL_OVER_255
from mcuqual.quantize import tflite_model
from mcuqual.reference import tflm as reference
from mcuqual.target.connection import BoardConnection
from mcuqual.target.mailbox_runner import MailboxRunner
from mcuqual.target.probes import choose_probe
from mcuqual.target.pyocd.flash_algo import build_flash_algo
from mcuqual.target.pyocd.targets import memory_map, target_origin
from mcuqual.target.virtual import TargetFaultError, VirtualBoard
from mcuqual.target.virtual.soc import stm32u5_flash as u5flash
from pyocd.core.memory_map import MemoryType
from pyocd.target.pack.flash_algo import PackFlashAlgo

REPO = Path(__file__).resolve().parent.parent
BOARD = select_boards(None, ["stm32u585"])[0]
PYOCD = str(Path(sys.executable).with_name("pyocd"))
DS_CNN_XS = REPO / "models" / "ds_cnn_xs" / "model_int8.tflite"
FLASH, RAM = 0x0800_0000, 0x2000_0000
KEY1, KEY2 = u5flash.KEY1, u5flash.KEY2


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return Cache(tmp_path_factory.mktemp("u585"))


@pytest.fixture(scope="module")
def ds_cnn_xs_image(cache):
    return build_firmware(codegen.generate(DS_CNN_XS.read_bytes(), "ds_cnn_xs"), BOARD, cache)


# ---- profile and core ----------------------------------------------------------------
def test_profile_has_the_real_memories_clock_and_power_source():
    assert BOARD.folder == REPO / "firmware" / "boards" / "stm32u585"
    assert (BOARD.title, BOARD.mcu, BOARD.core) == ("B-U585I-IOT02A", "STM32U585AII6Q",
                                                    "cortex-m33")
    assert BOARD.clock_hz == 160_000_000 and BOARD.virtual_soc == "stm32u5"
    flash = BOARD.region("flash")
    assert (flash.start, flash.size, flash.page_size, flash.banks) == (FLASH, 2 << 20, 8192, 2)
    sram = {r.name: (r.start, r.size // 1024) for r in BOARD.memory if r.kind == "ram"}
    assert sram == {"sram1": (RAM, 192), "sram2": (0x2003_0000, 64),
                    "sram3": (0x2004_0000, 512), "sram4": (0x2800_0000, 16)}
    assert BOARD.ram_window() == (RAM, 768 * 1024)          # SRAM1..3 contiguous; SRAM4 apart
    assert BOARD.connect_writes == ((0xE004_4004, 0x36),)
    assert round(BOARD.power.run_power_mw(BOARD.clock_hz), 1) == 10.3
    assert "DS13086" in BOARD.power.source and "23.6 mW" in BOARD.power.source


def test_linker_memory_names_sram4_beside_the_ram_window():
    text = memory_script(BOARD)
    regions = {name: (int(origin, 16), int(length)) for name, origin, length in
               re.findall(r"(\w+)\s*\(\w+\)\s*:\s*ORIGIN = (0x[0-9A-Fa-f]+), LENGTH = (\d+)", text)}
    assert regions == {"FLASH": (FLASH, 2 << 20), "RAM": (RAM, 768 * 1024),
                       "SRAM4": (0x2800_0000, 16 * 1024)}


def test_core_ids_are_what_pyocd_expects_of_a_cortex_m33():
    """pyOCD finds its Armv8-M core class, DWTv2, FPB, ITM and TPIU by (designer, class,
    part, DEVTYPE, archid) and its AP class by the AP's IDR: the core description's IDs
    must land on those entries."""
    from pyocd.coresight import ap
    from pyocd.coresight.component_ids import COMPONENT_MAP
    from pyocd.coresight.core_ids import CORE_TYPE_NAME

    core = BOARD.core_description
    assert core.cflags[0] == "-mcpu=cortex-m33" and core.unicorn_cpu == "CORTEX_M33"
    assert CORE_TYPE_NAME[(core.cpuid >> 24, (core.cpuid >> 4) & 0xFFF)] == "Cortex-M33"
    found = {}
    for component in ("scs", "itm", "dwt", "fpb", "tpiu", "etm"):
        pidr0, pidr1, pidr2, _, pidr4, cls, devarch, devtype = core.coresight[component]
        part = pidr0 | (pidr1 & 0xF) << 8
        designer = (pidr1 >> 4) | (pidr2 & 0x7) << 4 | (pidr4 & 0xF) << 8    # JEP106 0x43B
        archid = devarch & 0xFFFF if devarch & (1 << 20) else 0
        info = COMPONENT_MAP[(designer, cls >> 4, part, devtype, archid)]
        found[component] = (info.name, info.product)
    assert found == {"scs": ("SCS", "M33"), "itm": ("ITM", "M33"), "dwt": ("DWT", "M33"),
                     "fpb": ("BPU", "M33"), "tpiu": ("TPIU", "M33"), "etm": ("ETM", "M33")}
    idr = core.ahb_ap_idr
    key = ((idr >> 17) & 0x7FF, (idr >> 13) & 0xF, (idr >> 4) & 0xF, idr & 0xF)
    assert ap.AP_TYPE_MAP[key][0] == "AHB5-AP"
    assert core.scs_features[0xD44] & 0xF0 == 0              # TrustZone off: no Security Ext.


# ---- the STM32U5 flash controller, on its own ------------------------------------
class Bus:
    """A flash controller with the virtual board's store protocol around it: each store is
    announced before it lands, and the 8-byte units it touched are restored to what the
    controller expects once the 'block' ends (`end_block`)."""

    def __init__(self, banks_swapped: bool = False) -> None:
        self.memory = ctypes.create_string_buffer(b"\xff" * (2 << 20), 2 << 20)
        self.ctrl = u5flash.FlashController(0x4002_2000, FLASH, 2 << 20, 0x2000, 2, self.memory)
        if banks_swapped:
            self.ctrl.regs[u5flash.OPTR] |= u5flash.OPTR_SWAP_BANK
        self.fixups: list = []

    def store(self, address: int, value: int, size: int = 4) -> bool:
        offset = (address - FLASH) & ~7
        pending = [content for where, content in self.fixups if where == offset]
        before = pending[-1] if pending else ctypes.string_at(ctypes.addressof(self.memory)
                                                             + offset, 8)
        taken = self.ctrl.store(address, size, value)
        self.fixups.append((offset, self.ctrl.expected(offset, before) if taken else before))
        ctypes.memmove(ctypes.addressof(self.memory) + address - FLASH,
                       value.to_bytes(size, "little"), size)          # the store lands
        return taken

    def end_block(self) -> None:
        for offset, content in self.fixups:
            ctypes.memmove(ctypes.addressof(self.memory) + offset, content, 8)
        self.fixups.clear()

    def program(self, address: int, data: bytes, blocks_per_word: bool = False) -> None:
        for index in range(0, len(data), 4):
            self.store(address + index, int.from_bytes(data[index:index + 4], "little"))
            if blocks_per_word:
                self.end_block()
        self.end_block()

    def read(self, address: int, size: int) -> bytes:
        return ctypes.string_at(ctypes.addressof(self.memory) + address - FLASH, size)

    def sr(self) -> int:
        return self.ctrl.read(u5flash.NSSR, 4)

    def unlock(self) -> None:
        self.ctrl.write(u5flash.NSKEYR, 4, KEY1)
        self.ctrl.write(u5flash.NSKEYR, 4, KEY2)

    def cr(self, value: int) -> None:
        self.ctrl.write(u5flash.NSCR, 4, value)


def test_flash_unlocks_with_the_two_keys_and_a_wrong_key_locks_until_reset():
    bus = Bus()
    assert bus.ctrl.read(u5flash.NSCR, 4) == u5flash.NSCR_LOCK | u5flash.NSCR_OPTLOCK
    bus.unlock()
    assert not bus.ctrl.read(u5flash.NSCR, 4) & u5flash.NSCR_LOCK
    bus.cr(u5flash.NSCR_LOCK)
    bus.ctrl.write(u5flash.NSKEYR, 4, KEY2)                     # wrong order
    bus.unlock()
    assert bus.ctrl.read(u5flash.NSCR, 4) & u5flash.NSCR_LOCK   # locked until reset
    bus.cr(u5flash.NSCR_PER | u5flash.NSCR_STRT)                # ignored while locked
    bus.ctrl.reset()
    bus.unlock()
    assert not bus.ctrl.read(u5flash.NSCR, 4) & u5flash.NSCR_LOCK


@pytest.mark.parametrize("blocks_per_word", [False, True])
def test_a_quad_word_programs_an_erased_location(blocks_per_word):
    bus = Bus()
    bus.unlock()
    bus.cr(u5flash.NSCR_PG | u5flash.NSCR_EOPIE)
    data = bytes(range(1, 17))
    bus.store(FLASH + 0x100, int.from_bytes(data[:4], "little"))
    assert bus.sr() & u5flash.NSSR_WDW                           # waiting for three more words
    for index in range(4, 16, 4):
        if blocks_per_word:
            bus.end_block()
        bus.store(FLASH + 0x100 + index, int.from_bytes(data[index:index + 4], "little"))
    bus.end_block()
    assert bus.read(FLASH + 0x100, 16) == data
    assert bus.sr() == u5flash.NSSR_EOP                          # done, no error, WDW clear
    assert bus.read(FLASH + 0x0F0, 16) == b"\xff" * 16           # neighbours untouched


def test_programming_a_programmed_quad_word_fails_and_keeps_the_flash():
    bus = Bus()
    bus.unlock()
    bus.cr(u5flash.NSCR_PG)
    bus.program(FLASH + 0x200, b"\x5a" * 16)
    bus.program(FLASH + 0x200, b"\x00\x01" * 8)
    assert bus.sr() & u5flash.NSSR_PROGERR
    assert bus.read(FLASH + 0x200, 16) == b"\x5a" * 16           # nothing landed
    bus.ctrl.write(u5flash.NSSR, 4, u5flash.NSSR_ERRORS)
    bus.program(FLASH + 0x200, bytes(16))                       # all zero: allowed over anything
    assert bus.read(FLASH + 0x200, 16) == bytes(16) and not bus.sr() & u5flash.NSSR_ERRORS


def test_misaligned_scattered_and_narrow_stores_set_their_error_flags():
    bus = Bus()
    bus.unlock()
    bus.cr(u5flash.NSCR_PG)
    bus.program(FLASH + 0x308, b"\x11" * 16)                   # not quad-word aligned
    assert bus.sr() & u5flash.NSSR_PGAERR and bus.read(FLASH + 0x300, 32) == b"\xff" * 32
    bus.ctrl.write(u5flash.NSSR, 4, u5flash.NSSR_ERRORS)
    bus.store(FLASH + 0x400, 1)
    bus.store(FLASH + 0x408, 2)                                  # skips a word of the quad-word
    bus.end_block()
    assert bus.sr() & u5flash.NSSR_PGAERR and bus.read(FLASH + 0x400, 16) == b"\xff" * 16
    bus.ctrl.write(u5flash.NSSR, 4, u5flash.NSSR_ERRORS)
    assert bus.store(FLASH + 0x500, 0x12, size=1)
    bus.end_block()
    assert bus.sr() & u5flash.NSSR_SIZERR and bus.read(FLASH + 0x500, 1) == b"\xff"


def test_a_store_without_pg_is_a_bus_fault():
    bus = Bus()
    assert not bus.store(FLASH, 0)                              # locked
    bus.unlock()
    assert not bus.store(FLASH, 0)                              # unlocked, but PG clear
    bus.end_block()
    assert bus.sr() & u5flash.NSSR_PGSERR and bus.read(FLASH, 4) == b"\xff" * 4


@pytest.mark.parametrize("swapped", [False, True])
def test_page_erase_clears_one_8k_page_of_the_bank_bker_names(swapped):
    bus = Bus(banks_swapped=swapped)
    ctypes.memset(bus.memory, 0, 2 << 20)                       # everything programmed
    bus.unlock()
    bus.cr(u5flash.NSCR_PER | (3 << 3) | u5flash.NSCR_BKER)      # bank 2, page 3
    bus.cr(u5flash.NSCR_PER | (3 << 3) | u5flash.NSCR_BKER | u5flash.NSCR_STRT)
    start = FLASH + (0 if swapped else 0x10_0000) + 3 * 0x2000
    assert bus.read(start, 0x2000) == b"\xff" * 0x2000
    assert bus.read(start - 1, 1) == b"\x00" and bus.read(start + 0x2000, 1) == b"\x00"
    assert not bus.sr() & u5flash.NSSR_ERRORS
    bus.cr(u5flash.NSCR_MER1 | u5flash.NSCR_STRT)                 # mass erase of bank 1
    bank1 = FLASH + (0x10_0000 if swapped else 0)
    assert bus.read(bank1, 0x10_0000) == b"\xff" * 0x10_0000


def test_strt_with_errors_pending_or_nothing_selected_is_a_sequence_error():
    bus = Bus()
    bus.unlock()
    bus.cr(u5flash.NSCR_STRT)
    assert bus.sr() & u5flash.NSSR_PGSERR
    ctypes.memset(bus.memory, 0, 0x2000)
    bus.cr(u5flash.NSCR_PER | u5flash.NSCR_STRT)                 # refused: PGSERR pending
    assert bus.read(FLASH, 4) == bytes(4)


# ---- the flash controller on the virtual board -------------------------------------
def _run_snippet(target: VirtualBoard, code_hex: str, **registers: int) -> None:
    """Run Thumb code placed in SRAM up to its final `b .`."""
    code = bytes.fromhex(code_hex)
    target.write_memory(RAM + 0x1000, code)
    target.write_core_register("sp", RAM + 0x800)
    for name, value in registers.items():
        target.write_core_register(name, value)
    target.write_core_register("pc", RAM + 0x1000)
    end = RAM + 0x1000 + len(code) - 2
    target.run(lambda: target.read_core_register("pc") == end, max_cycles=5_000_000,
               timeout_s=30)


@pytest.mark.parametrize("code", [
    "016042608360c460fee7",                      # str r1..r4 at [r0, #0..12]; b .
    "0160ffe74260ffe78360ffe7c460ffe7fee7",      # the same, each store ending its block
])
def test_the_virtual_board_programs_a_quad_word_through_its_stores(code):
    target = VirtualBoard(BOARD, cycle_accurate=False)
    flash = target.flash_interface
    flash.write(u5flash.NSKEYR, 4, KEY1)
    flash.write(u5flash.NSKEYR, 4, KEY2)
    flash.write(u5flash.NSCR, 4, u5flash.NSCR_PG)
    words = (0x11223344, 0x55667788, 0x99AABBCC, 0xDDEEFF00)
    _run_snippet(target, code, r0=FLASH + 0x4000, r1=words[0], r2=words[1], r3=words[2],
                 r4=words[3])
    assert target.read_memory(FLASH + 0x4000, 16) == b"".join(w.to_bytes(4, "little")
                                                              for w in words)
    assert target.read_memory(FLASH + 0x4010, 16) == b"\xff" * 16
    assert not flash.read(u5flash.NSSR, 4) & (u5flash.NSSR_ERRORS | u5flash.NSSR_WDW)


def test_a_plain_store_to_flash_faults_on_the_virtual_board():
    target = VirtualBoard(BOARD, cycle_accurate=False)
    with pytest.raises(TargetFaultError, match="store to read-only memory .* 0x08000010"):
        _run_snippet(target, "0160fee7", r0=FLASH + 0x10, r1=0x55)
    assert target.read_memory(FLASH + 0x10, 4) == b"\xff" * 4


# ---- firmware, pyOCD and the flash algorithm ----------------------------------------
def test_firmware_is_built_for_the_cortex_m33(ds_cnn_xs_image):
    with open(ds_cnn_xs_image.elf, "rb") as handle:
        elf = ELFFile(handle)
        vectors = elf.get_section_by_name(".isr_vector")
        assert vectors["sh_addr"] == FLASH and vectors["sh_size"] == 4 * (16 + 126)
        initial_sp, reset = np.frombuffer(vectors.data()[:8], dtype="<u4")
        assert RAM < initial_sp <= RAM + 768 * 1024 and reset & 1
        attributes = elf.get_section_by_name(".ARM.attributes").data()
        assert b"Cortex-M33" in attributes or b"8-M.MAIN" in attributes
        arena = elf.get_section_by_name(".mq_arena")
        assert RAM <= arena["sh_addr"] < RAM + 768 * 1024


def test_flash_algorithm_is_a_position_independent_flm_and_the_target_agrees(cache):
    flm = build_flash_algo(BOARD, cache)
    algo = PackFlashAlgo(str(flm))
    assert {"Init", "UnInit", "EraseSector", "ProgramPage", "EraseChip"} <= set(algo.symbols)
    assert (algo.flash_start, algo.flash_size, algo.page_size) == (FLASH, 2 << 20, 0x2000)
    assert algo.sector_sizes == [(0, 0x2000)]
    assert algo.rw_size == 0
    assert target_origin(BOARD.pyocd_target).startswith("mcuqual built-in")
    pyocd_map = memory_map(BOARD, str(flm))
    boot = pyocd_map.get_boot_memory()
    assert (boot.start, boot.length, boot.sector_size) == (FLASH, 2 << 20, 0x2000)
    rams = {r.name: (r.start, r.length)
            for r in pyocd_map.iter_matching_regions(type=MemoryType.RAM)}
    assert rams["sram4"] == (0x2800_0000, 0x4000) and len(rams) == 4


def test_ds_cnn_xs_runs_bit_exact_through_pyocd(ds_cnn_xs_image, cifar):
    """Flashed by pyOCD with the board's own algorithm, run with cycle accounting: the
    outputs match the reference interpreter's, the ITM log and the marker pin work, and
    nothing the firmware touches is unmodelled."""
    from pyocd.coresight.cortex_m_v8m import CortexM_v8M

    tflite = DS_CNN_XS.read_bytes()
    inputs = tflite_model.quantize_images(cifar.test.images[:2], tflite_model.read(tflite).input,
                                          PIXEL_OVER_255)
    golden = reference.run_reference(tflite, inputs, workers=1)
    with BoardConnection(BOARD, choose_probe("virtual", BOARD.name)) as session:
        core = session.target.selected_core
        assert isinstance(core, CortexM_v8M) and core.name == "Cortex-M33"
        # as pyOCD describes a real B-U585I-IOT02A (TrustZone disabled as shipped)
        assert [e.name for e in core.extensions] == ["DSP", "MPU", "FPU", "FPU_V5"]
        assert session.flash(ds_cnn_xs_image.elf).programmed
        assert session.flash_holds(ds_cnn_xs_image.elf)
        session.set_cycle_model(True)
        session.start()
        runner = MailboxRunner(session, ds_cnn_xs_image.elf)
        header = runner.boot()
        assert header["core_clock_hz"] == 160_000_000
        results = [runner.infer(x) for x in inputs]
        for result, expected in zip(results, golden):
            np.testing.assert_array_equal(result.output, expected)
            assert 0 < sum(result.layer_cycles) <= result.cycles_total
        lines = runner.finish()
        assert lines[0].startswith("BOOT model=ds_cnn_xs board=stm32u585")
        assert not session.unmodelled_accesses
        board = session.session.probe.target
        assert board.flash_interface.wait_states == 4 and board.soc.icache_enabled
        assert board.soc.pwr.read(0x3C, 4) & 0x3_0002 == 0x3_0002    # SMPS, range 1
        marker = [level for _, pin, level in board.pin_edges if pin == BOARD.marker_pin]
        assert marker == [1, 0] * 2


def _pyocd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYOCD, *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ), cwd=REPO)


def test_pyocd_command_line_lists_flashes_and_inspects_the_virtual_board(ds_cnn_xs_image):
    listing = _pyocd("list")
    assert listing.returncode == 0, listing.stderr
    assert "virtual-stm32u585" in listing.stdout and "STM32U585AII6Q" in listing.stdout
    flashed = _pyocd("flash", "-t", BOARD.pyocd_target, "--uid", "virtual-stm32u585",
                     str(ds_cnn_xs_image.elf))
    assert flashed.returncode == 0, flashed.stdout + flashed.stderr
    commander = _pyocd("commander", "-t", BOARD.pyocd_target, "--uid", "virtual-stm32u585",
                       "-c", "read32 0xE0044000", "-c", "read32 0xE000ED00",
                       "-c", "reset halt", "-c", "reg pc")
    assert commander.returncode == 0, commander.stdout + commander.stderr
    assert "20000482" in commander.stdout                       # DBGMCU_IDCODE: STM32U575/585
    assert "410fd214" in commander.stdout                       # CPUID: Cortex-M33 r0p4
    with open(ds_cnn_xs_image.elf, "rb") as handle:
        reset = int(np.frombuffer(ELFFile(handle).get_section_by_name(".isr_vector")
                                  .data()[4:8], dtype="<u4")[0]) & ~1
    assert f"pc = 0x{reset:08x}" in commander.stdout            # halted on the reset vector
    with BoardConnection(BOARD, choose_probe("virtual", BOARD.name)) as session:
        assert session.flash_holds(ds_cnn_xs_image.elf)         # the flash persisted


def test_ds_cnn_xs_qualifies_on_the_virtual_stm32u585(pytester, cifar_dir):
    """The suite itself, on this board: the zoo's ds_cnn_xs runs on the virtual STM32U585,
    its outputs bit-exact on the images it ran (a mismatch would make latency an error),
    latency emulated with the Cortex-M33 model, energy from the board's power profile."""
    from project import make_project
    from test_exit_codes import add_user_model

    make_project(pytester.path)
    add_user_model(pytester.path, "ds_cnn_xs", DS_CNN_XS.read_bytes())
    pytester.runpytest_subprocess(
        "qualification", "-p", "no:cacheprovider", f"--dataset-dir={cifar_dir}", "--samples=2",
        "--board=stm32u585", "-k", "not REQ-ACC", timeout=900)
    doc = json.loads((pytester.path / "reports" / "latest" / "qualification.json").read_text())
    records = {r["requirement"]: r for r in doc["results"] if r["model"] == "ds_cnn_xs"}
    assert {r["board"] for r in records.values()} == {"stm32u585"}
    assert all(r["verdict"] != "error" for r in records.values()), records
    latency = records["REQ-LATENCY"]
    assert latency["evidence"] == "emulated" and latency["value"] > 0
    assert "160 MHz" in latency["method"]
    energy = records["REQ-ENERGY"]
    assert "19.5 uA/MHz" in energy["method"] and "MLPerf Tiny" in energy["method"]
