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


def _unicorn_alone(runner: MailboxRunner, image: np.ndarray):
    """The same firmware on unicorn with nothing of the virtual board: memories copied from
    the booted board, peripherals and the PPB as plain RAM, no hooks, no slicing; runs one
    inference from the command to mq_inference_done (emu_start's `until`). Returns a
    callable that does it and the output it produced."""
    from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
    from unicorn import arm_const
    from mcuqual.target import mailbox

    board = runner.target
    regions = [(region.start, region.size) for region in BOARD.memory]
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    for start, size in regions:
        uc.mem_map(start, (size + 0xFFF) & ~0xFFF)
    uc.mem_map(0x4000_0000, 0x2000_0000)
    uc.mem_map(0xE000_0000, 0x10_0000)
    names = [f"r{i}" for i in range(13)] + ["sp", "lr", "pc"]
    board.write_memory(runner.address + runner.header["input_offset"], image.tobytes())
    board.write_u32(runner.address + mailbox.offset_of("command"), mailbox.COMMAND_RUN)
    for start, size in regions:
        uc.mem_write(start, board.read_memory(start, size))
    for name in names:
        uc.reg_write(getattr(arm_const, f"UC_ARM_REG_{name.upper()}"), board.read_core_register(name))
    # the board stopped once the last inference's sequence number changed, inside that
    # iteration's tail: finish it (to mq_inference_done) before the state is kept
    uc.emu_start(uc.reg_read(arm_const.UC_ARM_REG_PC) | 1, runner.done_address)
    memory = [(start, bytes(uc.mem_read(start, size))) for start, size in regions]
    context = uc.context_save()
    output_at = runner.address + runner.header["output_offset"]
    blank = bytes(runner.header["output_bytes"])    # so that a run that does nothing fails

    def run() -> None:
        for start, content in memory:
            uc.mem_write(start, content)
        uc.mem_write(output_at, blank)
        uc.context_restore(context)
        uc.emu_start(runner.done_address | 1, 0, count=1)          # leave the stop address
        uc.emu_start(uc.reg_read(arm_const.UC_ARM_REG_PC) | 1, runner.done_address)
        assert uc.reg_read(arm_const.UC_ARM_REG_PC) == runner.done_address, "did not finish"

    def output() -> np.ndarray:
        return np.frombuffer(bytes(uc.mem_read(runner.address + runner.header["output_offset"],
                                               runner.header["output_bytes"])), dtype=np.int8)
    return run, output


@pytest.mark.parametrize("cycle_accurate", [False, True], ids=["plain", "cycle-accounting"])
def test_emulation_against_unicorn_alone(benchmark, ds_cnn_xs_l4r9, cycle_accurate):
    """#17: a ds_cnn_xs inference on the virtual board, plain or with the cycle model,
    beside unicorn alone on the same firmware and input, in one run (absolute speeds vary
    between machines; the ratio is the figure: targets <= 1.3 plain, <= 6 with cycles).
    Both must produce the same output bytes."""
    import time

    elf, images = ds_cnn_xs_l4r9
    image = images[0]
    runner = booted_runner(BOARD, elf, cycle_accurate=False)
    expected = runner.infer(image).output
    run_alone, output_alone = _unicorn_alone(runner, image)
    run_alone()                                    # translate once, as the board has
    started = time.perf_counter()
    for _ in range(5):
        run_alone()
    alone_s = (time.perf_counter() - started) / 5
    np.testing.assert_array_equal(output_alone(), expected)
    if cycle_accurate:
        runner = booted_runner(BOARD, elf, cycle_accurate=True)
        runner.infer(image)                        # translate once
    started = time.perf_counter()
    result = benchmark.pedantic(runner.infer, args=(image,), rounds=5, iterations=1)
    np.testing.assert_array_equal(result.output, expected)
    # pytest-benchmark keeps no statistics where it is disabled (under xdist, or with
    # --benchmark-disable) and runs the function once: that one time stands in
    board_s = benchmark.stats.stats.median if benchmark.stats is not None else \
        time.perf_counter() - started
    benchmark.extra_info.update(unicorn_alone_s=alone_s, board_s=board_s,
                                board_over_unicorn=round(board_s / alone_s, 2))
