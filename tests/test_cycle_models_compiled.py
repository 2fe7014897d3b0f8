"""The compiled accumulation of the cycle models (#17, `cycles_native`) against the Python
models it replaces in the virtual boards: the same cycles, band and output bytes on whole
inferences of a zoo model on real CIFAR-10 images, on every core (the M4 with the ART
caches on and off); an error inside a hook call surfaces instead of hanging or being lost."""
from __future__ import annotations

import pytest
from mcuqual.boards.profile import select_boards
from mcuqual.common.errors import McuqualError
from mcuqual.target.virtual import booted_runner
from mcuqual.target.virtual import board as board_module
from mcuqual.target.virtual.cycles import CYCLE_MODELS, CompiledCycleModel, CycleModel
from mcuqual.target.virtual.cycles_m7 import CortexM7Model
from mcuqual.target.virtual.cycles_m33 import CortexM33Model

BOARD = select_boards(None, ["stm32l4r9"])[0]
# board -> (core, the Python model the compiled one must equal)
CORES = {"stm32l4r9": ("cortex-m4", CycleModel), "stm32u585": ("cortex-m33", CortexM33Model),
         "stm32h743": ("cortex-m7", CortexM7Model)}
FLASH_ACR = 0x4002_2000
ACR_ICEN, ACR_DCEN = 1 << 9, 1 << 10


def _run(elf, images, model_class, monkeypatch, acr_clear: int = 0, board=BOARD,
         core: str = "cortex-m4"):
    monkeypatch.setitem(board_module.CYCLE_MODELS, core, model_class)
    runner = booted_runner(board, elf, cycle_accurate=True)
    target = runner.target
    assert type(target.cycle_model) is model_class
    if acr_clear:
        acr = int.from_bytes(target.read_memory(FLASH_ACR, 4), "little")
        target.write_memory(FLASH_ACR, (acr & ~acr_clear).to_bytes(4, "little"))
    figures = []
    for image in images:
        target.clear_cycle_band()
        result = runner.infer(image)
        figures.append((result.cycles_total, target.cycle_band(), bytes(result.output)))
    return figures


@pytest.mark.parametrize("acr_clear", [0, ACR_ICEN | ACR_DCEN], ids=["art-on", "art-off"])
def test_compiled_accumulation_equals_the_python_model(ds_cnn_xs_l4r9, monkeypatch, acr_clear):
    elf, images = ds_cnn_xs_l4r9
    compiled = _run(elf, images, CompiledCycleModel, monkeypatch, acr_clear)
    python = _run(elf, images, CycleModel, monkeypatch, acr_clear)
    assert compiled == python
    for cycles, band, _ in compiled:
        assert band is not None and band[1] <= band[0] < band[2]
        assert cycles > 1_000_000                       # ds_cnn_xs: ~1.8 M on the L4R9


@pytest.mark.parametrize("board_name", ["stm32u585", "stm32h743"])
def test_compiled_accumulation_equals_the_python_model_on_every_core(ds_cnn_xs_firmware,
                                                                     monkeypatch, board_name):
    elf, images = ds_cnn_xs_firmware(board_name)
    board = select_boards(None, [board_name])[0]
    core, python_class = CORES[board_name]
    compiled_class = CYCLE_MODELS[core]
    assert compiled_class is not python_class and issubclass(compiled_class, python_class)
    compiled = _run(elf, images, compiled_class, monkeypatch, board=board, core=core)
    python = _run(elf, images, python_class, monkeypatch, board=board, core=core)
    assert compiled == python
    for cycles, band, _ in compiled:
        assert band is not None and band[1] < band[0] < band[2]
        assert cycles > 200_000


def test_the_art_off_costs_more_in_the_compiled_model(ds_cnn_xs_l4r9, monkeypatch):
    """The wait states and the cache enables reach the C state when FLASH_ACR changes."""
    elf, images = ds_cnn_xs_l4r9
    on = _run(elf, images[:1], CompiledCycleModel, monkeypatch)[0][0]
    off = _run(elf, images[:1], CompiledCycleModel, monkeypatch, ACR_ICEN | ACR_DCEN)[0][0]
    assert off > 1.5 * on


def test_an_error_inside_the_hook_call_is_raised_after_the_slice(ds_cnn_xs_l4r9, monkeypatch):
    elf, images = ds_cnn_xs_l4r9
    monkeypatch.setitem(board_module.CYCLE_MODELS, "cortex-m4", CompiledCycleModel)
    runner = booted_runner(BOARD, elf, cycle_accurate=True)
    model = runner.target.cycle_model

    def broken(address, code):
        raise McuqualError(f"cannot cost the block at 0x{address:08x}")
    model._blocks.clear()
    model._native.forget_all()
    monkeypatch.setattr(model, "cost", broken)
    with pytest.raises(McuqualError, match="cannot cost the block"):
        runner.infer(images[0])
