"""The firmware ELF: built with arm-none-eabi-gcc for the board's real memories, and measured."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile
from mcuqual.firmware import codegen
from mcuqual.boards.profile import select_boards
from mcuqual.common.cache import Cache
from mcuqual.quantize.calibration import calibration_images
from mcuqual.firmware.elf import analyze
from mcuqual.firmware.build import memory_script, ModelTooLargeError, build_firmware
from mcuqual.firmware.host_twin import BuildError
from mcuqual.quantize.convert import convert

REPO = Path(__file__).resolve().parent.parent
BOARD = select_boards(None, ["stm32l4r9"])[0]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return Cache(tmp_path_factory.mktemp("fw"))


def test_linker_memory_is_generated_from_the_board_profile():
    text = memory_script(BOARD)
    regions = {name: (int(origin, 16), int(length)) for name, origin, length in
               re.findall(r"(\w+)\s*\(\w+\)\s*:\s*ORIGIN = (0x[0-9A-Fa-f]+), LENGTH = (\d+)", text)}
    assert regions["FLASH"] == (0x0800_0000, 2048 * 1024)
    assert regions["RAM"] == (0x2000_0000, 640 * 1024)     # SRAM1 + SRAM2 + SRAM3, contiguous


def test_tiny_model_firmware_layout(tiny_tflite, cache):
    generated = codegen.generate(tiny_tflite, "tiny")
    image = build_firmware(generated, BOARD, cache)
    figures = analyze(image.elf)
    assert figures.arena_bytes == generated.arena_bytes
    # the model section holds exactly the constants the generator emitted, plus param structs
    assert generated.constant_bytes <= figures.weights_bytes < generated.constant_bytes + 512
    assert 0x2000_0000 <= figures.mailbox_address < 0x2000_0000 + BOARD.ram_bytes
    with open(image.elf, "rb") as handle:
        elf = ELFFile(handle)
        vectors = elf.get_section_by_name(".isr_vector")
        assert vectors["sh_addr"] == 0x0800_0000
        initial_sp, reset = np.frombuffer(vectors.data()[:8], dtype="<u4")
        assert 0x2000_0000 < initial_sp <= 0x2000_0000 + BOARD.ram_bytes and initial_sp % 8 == 0
        assert reset & 1 and 0x0800_0000 <= reset < 0x0800_0000 + BOARD.flash_bytes  # Thumb
        assert elf.header["e_machine"] == "EM_ARM"
        attributes = elf.get_section_by_name(".ARM.attributes").data()
        assert b"Cortex-M4" in attributes or b"7E-M" in attributes


def _dense_model(units_in: int, units_out: int):
    import keras
    from keras import layers

    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(units_in // 64, 3, strides=4, padding="same")(inputs)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(units_out, activation="softmax")(x), name="giant")


def test_an_unknown_optimization_level_is_refused(tiny_tflite, cache):
    with pytest.raises(BuildError, match="optimization '-O9': expected one of -O2, -O3, -Os"):
        build_firmware(codegen.generate(tiny_tflite, "tiny"), BOARD, cache, optimization="-O9")


def test_model_too_big_for_flash_names_the_numbers(cifar, cache):
    model = _dense_model(4096, 600)              # 4096 x 600 int8 weights = 2.3 MB > 2 MB
    flatbuffer = convert(model, calibration_images(cifar, 20))
    with pytest.raises(ModelTooLargeError,
                       match=r"model giant needs \d+ KB of flash, board stm32l4r9 has 2048 KB"):
        build_firmware(codegen.generate(flatbuffer, "giant"), BOARD, cache)


def test_model_too_big_for_ram_names_the_numbers(cifar, cache):
    import keras
    from keras import layers

    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(720, 1)(inputs)             # a 720 KB activation > 640 KB SRAM
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(10, activation="softmax")(x), name="wide")
    flatbuffer = convert(model, calibration_images(cifar, 20))
    with pytest.raises(ModelTooLargeError, match=r"model wide needs \d+ KB of RAM, board "
                                                 r"stm32l4r9 has 640 KB"):
        build_firmware(codegen.generate(flatbuffer, "wide"), BOARD, cache)


def _struct_members(elf_path, type_name):
    """Member name -> byte offset of a typedef'd struct, from the ELF's DWARF."""
    with open(elf_path, "rb") as handle:
        dwarf = ELFFile(handle).get_dwarf_info()
        for unit in dwarf.iter_CUs():
            for die in unit.iter_DIEs():
                if die.tag == "DW_TAG_typedef" and die.attributes.get("DW_AT_name") and \
                        die.attributes["DW_AT_name"].value == type_name.encode():
                    target = die.get_DIE_from_attribute("DW_AT_type")
                    return {child.attributes["DW_AT_name"].value.decode():
                            child.attributes["DW_AT_data_member_location"].value
                            for child in target.iter_children() if child.tag == "DW_TAG_member"}
    raise AssertionError(f"{type_name} not in the DWARF of {elf_path}")


def test_host_mailbox_layout_matches_the_firmware_struct(tiny_tflite, cache):
    from mcuqual.target import mailbox

    image = build_firmware(codegen.generate(tiny_tflite, "tiny"), BOARD, cache)
    members = _struct_members(image.elf, "mq_mailbox_t")
    for field in mailbox.HEADER_FIELDS:
        assert members[field] == mailbox.offset_of(field), field
    assert members["layer_cycles"] == mailbox.LAYER_CYCLES_OFFSET
    assert members["input"] == mailbox.LAYER_CYCLES_OFFSET + 4 * mailbox.MAX_LAYERS


def test_ds_cnn_lite_is_designed_to_fit_the_studys_budgets(cifar, cache):
    """The architecture, not the training, decides these bytes: checked with random weights."""
    from mcuqual.model import zoo
    from test_codegen import _randomize

    model = zoo.discover(REPO / "models")["ds_cnn_lite"]
    flatbuffer = convert(_randomize(model.build(seed=1), seed=5), calibration_images(cifar, 50))
    figures = analyze(build_firmware(codegen.generate(flatbuffer, "ds_cnn_lite"), BOARD, cache).elf)
    assert figures.weights_bytes <= 160 * 1024
    assert figures.arena_bytes <= 120 * 1024
