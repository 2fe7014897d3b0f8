"""Speed of the virtual board (pytest-benchmark): seconds per inference, emulated instructions/s.

Targets, not assertions: compare runs with `--benchmark-compare`; CI only records them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mcuqual.firmware import codegen
from mcuqual.boards.profile import select_boards
from mcuqual.common.cache import Cache
from mcuqual.firmware.build import build_firmware
from mcuqual.target.mailbox_runner import MailboxRunner
from mcuqual.target.virtual import booted_runner

BOARD = select_boards(None, ["stm32l4r9"])[0]


@pytest.fixture(scope="module")
def tiny_runner_factory(tiny_tflite, tmp_path_factory):
    image = build_firmware(codegen.generate(tiny_tflite, "tiny"), BOARD,
                           Cache(tmp_path_factory.mktemp("bench")))

    def make(cycle_accurate: bool) -> MailboxRunner:
        return booted_runner(BOARD, image.elf, cycle_accurate=cycle_accurate)
    return make


@pytest.mark.parametrize("cycle_accurate", [False, True], ids=["plain", "cycle-accounting"])
def test_seconds_per_inference(benchmark, tiny_runner_factory, cycle_accurate):
    runner = tiny_runner_factory(cycle_accurate)
    image = np.zeros(3072, dtype=np.int8)
    result = benchmark.pedantic(runner.infer, args=(image,), rounds=3, iterations=1)
    assert result.output.shape == (10,)
    if cycle_accurate:
        benchmark.extra_info["cycles_per_inference"] = result.cycles_total
