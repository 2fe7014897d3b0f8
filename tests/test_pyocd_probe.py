"""pyOCD on the virtual board: probe plugin, target, flash algorithm, reset, faults, a lost probe."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mcuqual.firmware import codegen
from mcuqual.reference import tflm as reference
from mcuqual.quantize import tflite_model
from mcuqual.boards.profile import select_boards
from mcuqual.common.cache import Cache
from mcuqual.target.connection import BoardConnection, ProbeLostError
from mcuqual.common.errors import McuqualError
from mcuqual.firmware.build import build_firmware
from mcuqual.target.pyocd.flash_algo import build_flash_algo
from mcuqual.target.mailbox_runner import MailboxRunner
from mcuqual.target.probes import choose_probe
from mcuqual.target.pyocd.targets import memory_map, target_origin
from pyocd.core.memory_map import MemoryType
from mcuqual.measure.on_target import run_on_target
from mcuqual.model.preprocessing import PIXEL_OVER_255
from pyocd.target.pack.flash_algo import PackFlashAlgo

REPO = Path(__file__).resolve().parent.parent
BOARD = select_boards(None, ["stm32l4r9"])[0]
PYOCD = str(Path(sys.executable).with_name("pyocd"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return Cache(tmp_path_factory.mktemp("pyocd"))


@pytest.fixture(scope="module")
def tiny_image(tiny_tflite, cache):
    return build_firmware(codegen.generate(tiny_tflite, "tiny"), BOARD, cache)


def _pyocd(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MCUQUAL_BOARDS_DIR": str(BOARD.path.parent)}
    return subprocess.run([PYOCD, *args], capture_output=True, text=True, timeout=300, env=env,
                          cwd=REPO)


def test_pyocd_lists_the_virtual_probe(tmp_path):
    result = _pyocd("list")
    assert result.returncode == 0, result.stderr
    assert "virtual-stm32l4r9" in result.stdout and "STM32L4R9AII6" in result.stdout


def test_pyocd_flash_from_the_command_line(tmp_path, tiny_image):
    result = _pyocd("flash", "-t", BOARD.pyocd_target, "--uid", "virtual-stm32l4r9", str(tiny_image.elf))
    assert result.returncode == 0, result.stdout + result.stderr
    with BoardConnection(BOARD, choose_probe("virtual", BOARD.name)) as session:
        assert session.flash_holds(tiny_image.elf)


def test_flash_algorithm_is_position_independent_flm(cache):
    algo = PackFlashAlgo(str(build_flash_algo(BOARD, cache)))
    assert {"Init", "UnInit", "EraseSector", "ProgramPage", "EraseChip"} <= set(algo.symbols)
    assert (algo.flash_start, algo.flash_size, algo.page_size) == (0x0800_0000, 0x20_0000, 0x1000)
    assert algo.sector_sizes == [(0, 0x1000)]
    assert algo.rw_size == 0                     # no globals: runs wherever pyOCD loads it


def test_target_memory_map_agrees_with_the_board_profile(cache):
    assert BOARD.pyocd_target == "stm32l4r9aiix"
    assert target_origin(BOARD.pyocd_target).startswith("mcuqual built-in")
    pyocd_map = memory_map(BOARD, str(build_flash_algo(BOARD, cache)))
    regions = {r.name: r for r in BOARD.memory}
    flash = pyocd_map.get_boot_memory()
    assert (flash.start, flash.length, flash.sector_size) == (
        regions["flash"].start, regions["flash"].size, regions["flash"].page_size)
    rams = {r.name: (r.start, r.length) for r in pyocd_map.iter_matching_regions(type=MemoryType.RAM)}
    assert rams == {n: (r.start, r.size) for n, r in regions.items() if r.kind == "ram"}


def test_reset_and_halt_stops_at_the_reset_handler(tiny_image):
    with BoardConnection(BOARD, choose_probe("virtual", BOARD.name)) as session:
        session.flash(tiny_image.elf)
        target = session.target
        target.reset_and_halt()
        assert target.is_halted()
        vector_pc = session.read_u32(0x0800_0004) & ~1
        assert target.read_core_register("pc") == vector_pc
        target.step()
        assert target.read_core_register("pc") != vector_pc
        target.resume()
        assert target.is_running()


def test_probe_lost_mid_run_keeps_what_was_measured(tiny_tflite, tiny_image, cifar, monkeypatch):
    """The probe vanishes after two inferences: the run says so and keeps those two."""
    generated = codegen.generate(tiny_tflite, "tiny")
    inputs = tflite_model.quantize_images(cifar.test.images[:4],
                                          tflite_model.read(tiny_tflite).input, PIXEL_OVER_255)
    golden = reference.run_reference(tiny_tflite, inputs, workers=1)
    original = MailboxRunner.infer
    calls = []

    def infer_then_unplug(self, image):
        result = original(self, image)
        calls.append(1)
        if len(calls) == 2:
            self.target.session.probe.unplug()
        return result
    monkeypatch.setattr(MailboxRunner, "infer", infer_then_unplug)
    run = run_on_target(choose_probe("virtual", BOARD.name), BOARD, tiny_image, generated, inputs,
                        golden, "tiny", timed_runs=1)
    assert run.images == 2 and run.planned_images == 4 and len(run.cycles) == 1
    assert "lost" in run.interrupted
    run.require_timed()                           # latency can still be reported
    with pytest.raises(McuqualError, match="stopped after 2 of 4 images"):
        run.require_bit_exact()


def test_unknown_probe_is_an_immediate_clear_error():
    with pytest.raises(ProbeLostError, match="not connected"):
        BoardConnection(BOARD, choose_probe("virtual", BOARD.name).__class__(
            "physical", "no-such-probe", "nothing")).open()


def test_many_fast_inferences_spread_over_virtual_boards(tiny_tflite, tiny_image, cifar,
                                                          monkeypatch):
    """`--samples all` on the virtual board: after the timed inferences the fast ones run in
    chunks on several virtual boards (worker processes, each with its own pyOCD session),
    and every output still equals tflite_micro's, in image order."""
    from mcuqual.measure import on_target

    monkeypatch.setattr(on_target, "CHUNK_IMAGES", 5)
    monkeypatch.setattr(on_target, "default_workers", lambda: 2)
    generated = codegen.generate(tiny_tflite, "tiny")
    inputs = tflite_model.quantize_images(cifar.test.images[:17],
                                          tflite_model.read(tiny_tflite).input, PIXEL_OVER_255)
    golden = reference.run_reference(tiny_tflite, inputs, workers=1)
    run = run_on_target(choose_probe("virtual", BOARD.name), BOARD, tiny_image, generated, inputs,
                        golden, "tiny", timed_runs=2, parallel_min_images=10)
    assert len({row.tobytes() for row in golden}) > 5        # order matters: outputs differ
    assert run.boards == 2 and run.interrupted is None
    assert run.images == 17 and len(run.cycles) == 2 and run.mismatched_images == 0
    run.require_bit_exact()
    one = run_on_target(choose_probe("virtual", BOARD.name), BOARD, tiny_image, generated,
                        inputs[:13], golden[:13], "tiny", timed_runs=2, parallel_min_images=12)
    assert one.boards == 1 and one.images == 13 and one.mismatched_images == 0   # 11 fast: one
