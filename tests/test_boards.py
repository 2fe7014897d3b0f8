"""Board folders: the shipped STM32L4R9, the loader's checks, and a board of your own."""
from __future__ import annotations

from pathlib import Path

import pytest
from mcuqual.boards.profile import load_board, select_boards
from mcuqual.common.errors import ConfigError

BOARDS = Path(__file__).resolve().parent.parent / "firmware" / "boards"
REPO_MODELS = BOARDS.parent.parent / "models"


def test_stm32l4r9_profile_has_the_real_memories():
    board = select_boards(None, ["stm32l4r9"])[0]
    assert board.folder == BOARDS / "stm32l4r9"
    assert board.core_description.cflags[0] == "-mcpu=cortex-m4"
    assert board.mcu == "STM32L4R9AII6" and board.core == "cortex-m4"
    assert board.clock_hz == 120_000_000
    assert board.flash_bytes == 2 * 1024 * 1024
    assert board.ram_bytes == 640 * 1024
    sram = sorted((r for r in board.memory if r.kind == "ram"), key=lambda r: r.start)
    assert [r.size // 1024 for r in sram] == [192, 64, 384]
    assert all(a.end == b.start for a, b in zip(sram, sram[1:]))   # contiguous from 0x20000000
    assert board.power.source


def test_unknown_board_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown board nucleo; valid: .*stm32l4r9"):
        select_boards(None, ["nucleo"])


def test_overlapping_regions_are_rejected(tmp_path):
    text = (BOARDS / "stm32l4r9" / "board.toml").read_text().replace("start = 0x2003_0000",
                                                                     "start = 0x2002_0000")
    (tmp_path / "stm32l4r9").mkdir()
    (tmp_path / "stm32l4r9" / "board.toml").write_text(text)
    with pytest.raises(ConfigError, match="overlap"):
        load_board(tmp_path / "stm32l4r9")


def test_an_unknown_core_is_named():
    import dataclasses
    board = select_boards(None, ["stm32l4r9"])[0]
    with pytest.raises(ConfigError, match="no core description for 'cortex-m99'.*cortex-m4"):
        dataclasses.replace(board, core="cortex-m99").core_description


def test_a_board_of_your_own_is_a_folder_and_its_memory_is_what_counts(pytester, cifar_dir):
    """A copy of the L4R9's folder, outside the package, with 48 KB of SRAM: ds_cnn_xs fits
    and runs on its virtual board, resnet8's arena does not fit, and the figures say so."""
    import json
    import shutil

    from project import make_project
    from test_exit_codes import add_user_model

    make_project(pytester.path)
    folder = pytester.path / "firmware" / "boards" / "l4small"
    shutil.copytree(BOARDS / "stm32l4r9", folder)
    profile = (folder / "board.toml").read_text()
    head, _, _ = profile.partition("# SRAM1 (192 KB)")
    head = head.replace('name = "stm32l4r9"', 'name = "l4small"').replace(
        'pyocd_target = "stm32l4r9aiix"', 'pyocd_target = "l4small"')
    power = profile[profile.index("[pyocd]"):]
    (folder / "board.toml").write_text(
        head + '[[memory]]\nname = "sram1"\nkind = "ram"\nstart = 0x2000_0000\n'
        'size = 0xC000\n\n' + power)
    for name in ("ds_cnn_xs", "resnet8"):
        add_user_model(pytester.path, name,
                       (REPO_MODELS / name / "model_int8.tflite").read_bytes())
    result = pytester.runpytest_subprocess(
        "qualification", "-p", "no:cacheprovider", f"--dataset-dir={cifar_dir}", "--samples=1",
        "--board=l4small", "-k", "not REQ-ACC and not REQ-ENERGY",
        timeout=900)
    doc = json.loads((pytester.path / "reports" / "latest" / "qualification.json").read_text())
    records = {(r["model"], r["requirement"]): r for r in doc["results"]}
    small = records[("ds_cnn_xs", "REQ-ARENA")]
    assert small["board"] == "l4small" and small["verdict"] == "pass"
    assert small["details"]["board_ram_bytes"] == 48 * 1024
    assert records[("ds_cnn_xs", "REQ-LATENCY")]["evidence"] == "emulated"    # it ran there
    big = records[("resnet8", "REQ-ARENA")]          # its arena meets 120 KB, but with the stack
    assert "needs 53 KB of RAM, board l4small has 48 KB" in big["method"]   # it does not link
    assert big["value"] == 34_816                   # the planned arena, as on any board
    latency = records[("resnet8", "REQ-LATENCY")]
    assert latency["verdict"] == "not met" and "cannot be deployed" in latency["message"]
    assert result.ret == pytest.ExitCode.TESTS_FAILED
