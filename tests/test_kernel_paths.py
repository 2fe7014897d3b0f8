"""The kernels' fast paths and the exact general ones they stand in for: both bit-exact with
tflite_micro on the emulated Cortex-M4 (the DSP build, hand-scheduled loop included) and
in the host twin, and the code generator's proofs that decide between them."""
from __future__ import annotations

import numpy as np
import pytest
from mcuqual.boards.profile import select_boards
from mcuqual.common.cache import Cache
from mcuqual.firmware import codegen
from mcuqual.firmware.build import build_firmware
from mcuqual.firmware.codegen import emit
from mcuqual.firmware.codegen import params as qp
from mcuqual.firmware.host_twin import HostTwin, build_host_twin
from mcuqual.model.preprocessing import PIXEL_OVER_255
from mcuqual.quantize import tflite_model
from mcuqual.quantize.calibration import calibration_images
from mcuqual.quantize.convert import convert
from mcuqual.reference import tflm as reference
from mcuqual.target.virtual import booted_runner

BOARD = select_boards(None, ["stm32l4r9"])[0]


def test_pair_channels_pads_rows_to_groups_of_four_and_interleaves_pairs():
    rows = np.arange(1, 3 * 6 + 1, dtype=np.int8).reshape(3, 6)   # 3 channels, K = 6
    # rows padded to 8 with zeros; pair (0, 1): c0 k0..3, c1 k0..3, c0 k4..7, c1 k4..7;
    # channel 2 as it is (padded)
    expected = [1, 2, 3, 4, 7, 8, 9, 10, 5, 6, 0, 0, 11, 12, 0, 0,
                13, 14, 15, 16, 17, 18, 0, 0]
    assert emit.pair_channels(rows).tolist() == expected
    whole = np.arange(2 * 8, dtype=np.int8).reshape(2, 8)        # K % 4 == 0: no padding
    assert emit.pair_channels(whole).tolist() == [0, 1, 2, 3, 8, 9, 10, 11,
                                                  4, 5, 6, 7, 12, 13, 14, 15]


def test_requant_fast_needs_right_shifts_and_small_sums():
    sums = np.array([1000, 2000])
    assert qp.requant_fast(sums, np.array([5, -7]), [-3, -1])
    assert not qp.requant_fast(sums, None, [-3, 0])              # a channel without right shift
    # 255 * sum|w| + |bias| reaches 2^30
    assert not qp.requant_fast(np.array([(1 << 30) // 255]), np.array([255]), [-4])
    assert qp.requant_fast(np.array([(1 << 30) // 255 - 1]), None, [-4])


def test_requant_fast_bounds_the_folded_output_offset():
    sums = np.array([1000])
    # the rounding term (2 * offset + 1) * 2^(e - 1) must stay below 2^30
    assert qp.requant_fast(sums, None, [-23], output_offset=-128)    # 255 * 2^22 < 2^30
    assert not qp.requant_fast(sums, None, [-24], output_offset=-128)  # 255 * 2^23 > 2^30
    assert qp.requant_fast(sums, None, [-24], output_offset=0)       # 1 * 2^23
    assert qp.requant_fast(sums, None, [-24])                        # no folding asked


def test_add_fast_follows_the_rescale():
    rescale = qp.add_multipliers(np.float32(0.05), np.float32(0.02), np.float32(0.06))
    assert rescale["input1_shift"] == 0 and rescale["output_shift"] <= -1
    assert qp.add_fast(rescale)
    assert not qp.add_fast({**rescale, "output_shift": 0})
    assert qp.add_fast({**rescale, "left_shift": 22})         # 255 * 2^22 < 2^30, just
    assert not qp.add_fast({**rescale, "left_shift": 23})     # (x + offset) 2^23 reaches 2^30


def _block_model():
    """A conv 3x3 with 16 channels (the hand-scheduled loop), an odd channel count and
    an odd pixel count (the leftover paths), a depthwise 3x3 and an ADD."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(11)
    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)
    y = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    y = layers.DepthwiseConv2D(3, padding="same", activation="relu")(y)
    x = layers.Add()([x, y])
    x = layers.Conv2D(7, 3, strides=3, padding="valid")(x)      # 5x5 pixels, 7 channels
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(10)(x)
    model = keras.Model(inputs, outputs, name="blocks")
    rng = np.random.default_rng(3)
    for layer in model.layers:
        weights = layer.get_weights()
        if len(weights) == 2:
            layer.set_weights([weights[0], rng.normal(0, 0.1, weights[1].shape).astype(np.float32)])
    return model


@pytest.fixture(scope="module")
def block_tflite(cifar) -> bytes:
    return convert(_block_model(), calibration_images(cifar, 100))


def _prepare_pairs_regardless(emitter, *plan_inputs) -> None:
    """emit._choose_prepared_pairs without its arena test: every convolution the assembly
    routine takes prepares all its channel pairs but one (both loops run in one layer)."""
    for n, (decl, name, fields) in emitter.preparable.items():
        pairs = max(1, fields["out_c"] // 2 - 1)
        emitter.scratch[n] += emit.conv_prepared_pairs_bytes(fields["k_h"], fields["k_w"],
                                                             fields["in_c"], pairs)
        fields["prepared_pairs"] = pairs
        emitter.decls[decl] = emit._struct("mq_conv_params_t", name, fields)


@pytest.mark.parametrize("fast, widened", [(True, False), (True, True), (False, False)],
                         ids=["fast-paths", "prepared-pairs", "general-paths"])
def test_kernels_are_bit_exact_on_the_emulated_core_and_the_host(block_tflite, cifar, fast,
                                                                 widened, monkeypatch, tmp_path):
    if not fast:
        monkeypatch.setattr(qp, "requant_fast", lambda *args: False)
        monkeypatch.setattr(qp, "add_fast", lambda *args: False)
    # both assembly loops: int8 weights from flash, or prepared pairs in scratch (and flash)
    monkeypatch.setattr(emit, "_choose_prepared_pairs",
                        _prepare_pairs_regardless if widened else lambda *args: None)
    generated = codegen.generate(block_tflite, "blocks")
    source = generated.sources["mq_model_data.c"]
    assert (".requant_fast = 1" in source) == fast and (".fast = 1" in source) == fast
    assert (".prepared_pairs = 0" not in source) == widened
    inputs = tflite_model.quantize_images(cifar.test.images[:3],
                                          tflite_model.read(block_tflite).input, PIXEL_OVER_255)
    golden = reference.run_reference(block_tflite, inputs, workers=1)
    cache = Cache(tmp_path / "cache")
    twin = HostTwin(build_host_twin(generated, cache), generated.input_bytes,
                    generated.output_bytes)
    np.testing.assert_array_equal(twin.run(inputs), golden)
    image = build_firmware(generated, BOARD, cache)
    runner = booted_runner(BOARD, image.elf, cycle_accurate=False)
    for index, one in enumerate(inputs):
        assert np.array_equal(runner.infer(one).output, golden[index]), f"image {index}"
