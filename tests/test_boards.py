"""Board profiles: the shipped STM32L4R9 and the loader's checks."""
from __future__ import annotations

from pathlib import Path

import pytest
from mcuqual.boards.profile import load_board, select_boards
from mcuqual.common.errors import ConfigError

BOARDS = Path(__file__).resolve().parent.parent / "qualification" / "boards"


def test_stm32l4r9_profile_has_the_real_memories():
    board = select_boards(BOARDS, ["stm32l4r9"])[0]
    assert board.mcu == "STM32L4R9AII6" and board.core == "cortex-m4"
    assert board.clock_hz == 120_000_000
    assert board.flash_bytes == 2 * 1024 * 1024
    assert board.ram_bytes == 640 * 1024
    sram = sorted((r for r in board.memory if r.kind == "ram"), key=lambda r: r.start)
    assert [r.size // 1024 for r in sram] == [192, 64, 384]
    assert all(a.end == b.start for a, b in zip(sram, sram[1:]))   # contiguous from 0x20000000
    assert board.power.source


def test_unknown_board_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown board nucleo; valid: stm32l4r9"):
        select_boards(BOARDS, ["nucleo"])


def test_overlapping_regions_are_rejected(tmp_path):
    text = (BOARDS / "stm32l4r9.toml").read_text().replace("start = 0x2003_0000",
                                                           "start = 0x2002_0000")
    path = tmp_path / "stm32l4r9.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="overlap"):
        load_board(path)
