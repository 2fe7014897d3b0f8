"""Code generation and the host twin: bit-exact with tflite_micro on real CIFAR-10 images."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from mcuqual.firmware import codegen
from mcuqual.firmware.codegen import emit
from mcuqual.reference import tflm as reference
from mcuqual.quantize import tflite_model
from mcuqual.model import zoo
from mcuqual.common.cache import Cache
from mcuqual.quantize.calibration import calibration_images
from mcuqual.firmware.codegen import params as qp
from mcuqual.firmware.codegen.arena import Buffer, plan
from mcuqual.firmware.codegen.graph import CodegenError
from mcuqual.common.errors import ModelError
from mcuqual.firmware.host_twin import HostTwin, build_host_twin
from mcuqual.firmware.twin_check import first_differing_layer
from mcuqual.quantize.convert import convert
from mcuqual.model.preprocessing import PIXEL_OVER_255

MODELS = Path(__file__).resolve().parent.parent / "models"
SAMPLE = os.environ.get("MCUQUAL_BITEXACT_IMAGES", "300")


def _randomize(model, seed):
    """Give batch-norm statistics and biases non-trivial values, as training would."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                               rng.normal(0, 0.2, beta.shape).astype(np.float32),
                               rng.normal(0, 0.2, mean.shape).astype(np.float32),
                               rng.uniform(0.5, 1.5, var.shape).astype(np.float32)])
        elif kind in ("Conv2D", "Dense", "DepthwiseConv2D") and layer.use_bias:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.05, bias.shape).astype(np.float32)])
    return model


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return Cache(tmp_path_factory.mktemp("cache"))


def _zoo_tflite(name, cifar):
    model = zoo.discover(MODELS)[name]
    if model.tflite_path.is_file():
        return model.tflite_path.read_bytes(), "trained artifact"
    return convert(_randomize(model.build(seed=1), seed=5), calibration_images(cifar, 200)), \
        "untrained (randomized) weights"


def _images(cifar):
    count = len(cifar.test) if SAMPLE == "all" else int(SAMPLE)
    return cifar.test.images[:count]


@pytest.mark.parametrize("name", sorted(zoo.discover(MODELS)))
def test_zoo_model_is_bit_exact_with_tflite_micro(name, cifar, cache):
    flatbuffer, origin = _zoo_tflite(name, cifar)
    generated = codegen.generate(flatbuffer, name)
    twin = HostTwin(build_host_twin(generated, cache), generated.input_bytes,
                    generated.output_bytes)
    inputs = tflite_model.quantize_images(_images(cifar),
                                          tflite_model.read(flatbuffer).input, PIXEL_OVER_255)
    golden = reference.run_reference(flatbuffer, inputs, workers=2)
    ours = twin.run(inputs)
    mismatched = np.flatnonzero((ours != golden).any(axis=1))
    assert mismatched.size == 0, (f"{name} ({origin}): {mismatched.size} of {len(inputs)} images "
                                  f"differ, first {mismatched[0]}")
    # our static plan (scratch included) stays within 0.8 x TFLM's arena (issue #16)
    arena = reference.tflm_arena(flatbuffer, inputs[0], name)
    assert generated.arena_bytes <= 0.8 * arena.total_bytes, (generated.arena_bytes,
                                                              arena.total_bytes)


def test_tiny_model_is_bit_exact_on_every_layer(tiny_tflite, cifar, cache):
    generated = codegen.generate(tiny_tflite, "tiny")
    twin = HostTwin(build_host_twin(generated, cache), generated.input_bytes,
                    generated.output_bytes)
    inputs = tflite_model.quantize_images(cifar.test.images[:64],
                                          tflite_model.read(tiny_tflite).input, PIXEL_OVER_255)
    np.testing.assert_array_equal(twin.run(inputs), reference.run_reference(tiny_tflite, inputs, workers=1))
    assert generated.layers == ["0:CONV_2D", "1:MEAN", "2:FULLY_CONNECTED", "3:SOFTMAX"]
    conv = twin.layer_output(inputs[0], 0, 16 * 16 * 8)
    assert conv.min() >= -128 and np.count_nonzero(conv) > 0


def test_unsupported_operator_is_named(cifar):
    import keras
    from keras import layers

    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(4, 3)(inputs)
    x = layers.Activation("tanh")(x)           # TANH: not in the kernel library
    outputs = layers.Dense(10)(layers.Flatten()(x))
    flatbuffer = convert(keras.Model(inputs, outputs, name="odd"), calibration_images(cifar, 20))
    with pytest.raises(CodegenError, match=r"model odd: operator 1 \(TANH\): not supported"):
        codegen.generate(flatbuffer, "odd")


def test_corrupt_and_float_models_are_rejected(tiny_tflite, tiny_keras_path):
    with pytest.raises(ModelError, match="not a TFLite flatbuffer"):
        codegen.generate(b"garbage" * 10, "broken")
    import keras
    import tensorflow as tf
    from mcuqual.common.capture import captured_fds
    converter = tf.lite.TFLiteConverter.from_keras_model(
        keras.models.load_model(tiny_keras_path, compile=False))
    with captured_fds(1, 2):
        float_model = converter.convert()
    with pytest.raises(ModelError, match="float32"):
        codegen.generate(float_model, "float")


@pytest.mark.parametrize("real,expected", [
    (0.5, (1 << 30, 0)), (1.0, (1 << 30, 1)), (0.25, (1 << 30, -1)),
    (0.75, (3 << 29, 0)), (0.0, (0, 0)), (2.0 ** -40, (0, 0)),
    (1 - 2.0 ** -33, (1 << 30, 1)),             # rounds up to 2^31, renormalized
])
def test_quantize_multiplier(real, expected):
    assert qp.quantize_multiplier(real) == expected


def test_mean_multiplier_folds_in_the_element_count():
    multiplier, shift = qp.mean_multiplier(np.float32(0.5), np.float32(0.5), 64)
    # 1/64 of a unit multiplier: (2^30 << 6) / 64 with the shift lowered by 6
    assert (multiplier, shift) == (1 << 30, 1 - 6)


def test_arena_plan_never_overlaps_live_buffers():
    rng = np.random.default_rng(3)
    for _ in range(50):
        buffers = []
        for key in range(12):
            first = int(rng.integers(-1, 10))
            buffers.append(Buffer(key, int(rng.integers(1, 5000)), first,
                                  first + int(rng.integers(1, 4))))
        offsets, total = plan(buffers)
        for a in buffers:
            assert offsets[a.key] % 16 == 0 and offsets[a.key] + a.size <= total
            for b in buffers:
                if a.key < b.key and not (a.last < b.first or b.last < a.first):
                    assert (offsets[a.key] + a.size <= offsets[b.key]
                            or offsets[b.key] + b.size <= offsets[a.key])
        assert total <= sum(b.size + 15 for b in buffers)


def test_arena_plan_keeps_each_part_of_a_buffer_apart_from_what_lives_with_it():
    """Buffers of two parts (a pointwise convolution's output laid over its dying input):
    a part only has to avoid what is alive during its own lifetime, and the search over
    placement orders finds the layout a largest-first placement misses."""
    rng = np.random.default_rng(5)
    for _ in range(50):
        buffers = []
        for key in range(10):
            first = int(rng.integers(-1, 10))
            size = int(rng.integers(16, 4000))
            if rng.random() < 0.4:
                inner, delta = int(rng.integers(16, 4000)), 16 * int(rng.integers(0, 100))
                parts = ((0, size, first + 1, first + 2), (delta, delta + inner, first, first + 1))
                buffers.append(Buffer(key, max(size, delta + inner), first, first + 2, parts))
            else:
                buffers.append(Buffer(key, size, first, first + int(rng.integers(1, 4))))
        offsets, total = plan(buffers)
        parts = [(offsets[b.key] + start, offsets[b.key] + end, f, l, b.key)
                 for b in buffers for start, end, f, l in b.lifetimes()]
        for a0, a1, af, al, ak in parts:
            assert a1 <= total
            for b0, b1, bf, bl, bk in parts:
                if ak < bk and not (al < bf or bl < af):
                    assert a1 <= b0 or b1 <= a0
    # ds_cnn_lite's first block: 32 KB alive over ops 0-1, then a 1x1 convolution's 48 KB
    # output over its dying 32 KB input (16 KB in) from op 1: 64 KB, not 80 KB
    laid = Buffer(1, 49152, 1, 3, ((0, 49152, 2, 3), (16384, 49152, 1, 2)))
    offsets, total = plan([Buffer(0, 32768, 0, 1), laid])
    assert total == 65536 and offsets == {0: 0, 1: 16384}


def test_a_pointwise_convolution_writes_over_its_dying_input():
    """ds_cnn_lite's op 2 (1x1, 32 -> 48 channels at 32x32): the input lies inside the
    output's storage. The kernel writes blocks of three pixels after reading them, the last
    pixel (1023) alone: its input must still be there when pixels 0..1022 are written, so
    the input sits at least 1023 x (48 - 32) bytes in, which is 16-byte aligned already
    (bit-exactness of the layout: test_zoo_model_is_bit_exact_with_tflite_micro)."""
    from mcuqual.firmware.codegen.graph import read_graph

    flatbuffer = (MODELS / "ds_cnn_lite" / "model_int8.tflite").read_bytes()
    generated = codegen.generate(flatbuffer, "ds_cnn_lite")
    op = read_graph(flatbuffer, "ds_cnn_lite").ops[2]
    offsets = generated.tensor_offsets
    assert offsets[op.inputs[0]] - offsets[op.outputs[0]] == 1023 * (48 - 32)
    assert generated.arena_bytes < 73728          # the plan before 3x3 layers went in place


def test_convolutions_prepare_their_pairs_only_where_the_arena_has_room(monkeypatch):
    """ds_cnn_lite: the convolutions before 8x8 (stem and pointwise, 2-20 KB of prepared
    pairs each) prepare every pair beside their layers' buffers under the arena's peak; the
    8x8 ones (30-53 KB for all) only as many as fit; the 4x4 ones none (too few blocks to
    repay it). The arena is the plan's without any."""
    flatbuffer = (MODELS / "ds_cnn_lite" / "model_int8.tflite").read_bytes()
    generated = codegen.generate(flatbuffer, "ds_cnn_lite")
    source = generated.sources["mq_model_data.c"]
    fields = re.findall(r"l(\d+)_p MQ_MODEL_CONST = \{[^}]*\.out_c = (\d+)[^}]*"
                        r"\.prepared_pairs = (\d+)", source)
    prepared = {int(n): (int(out_c), int(pairs)) for n, out_c, pairs in fields}
    assert sorted(prepared) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert all(pairs == out_c // 2 for out_c, pairs in (prepared[n] for n in (0, 2, 4, 6)))
    assert all(0 < pairs < out_c // 2 for out_c, pairs in (prepared[n] for n in (8, 10)))
    assert prepared[12][1] == prepared[14][1] == 0        # 4x4: five blocks do not repay it
    monkeypatch.setattr(emit, "_choose_prepared_pairs", lambda *args: None)
    plain = codegen.generate(flatbuffer, "ds_cnn_lite")
    assert re.search(r"\.prepared_pairs = [1-9]", plain.sources["mq_model_data.c"]) is None
    assert generated.arena_bytes == plain.arena_bytes
    assert emit.conv_prepared_pairs_bytes(1, 1, 96, 48) == (16 * 24 + 32) * 48


def _conv_fields(size, channels, out_channels, kernel, stride, pad):
    out = (size + 2 * pad - kernel) // stride + 1
    return dict(in_h=size, in_w=size, in_c=channels, out_h=out, out_w=out, out_c=out_channels,
                k_h=kernel, k_w=kernel, stride_h=stride, stride_w=stride, dil_h=1, dil_w=1,
                pad_top=pad, pad_left=pad, depth_multiplier=1)


def test_in_place_offsets_follow_each_kernels_order_of_reads_and_writes():
    # 3x3, stride 1, padding 1, 32x32x16 -> 16: a block of three pixels (y, x..x+2) is
    # written after its windows are read; the next block's window starts at (y - 1, x + 2),
    # (32 + 1) pixels behind the block's last written byte: (32 + 1) x 16 bytes
    assert emit.in_place_offset(_conv_fields(32, 16, 16, 3, 1, 1), depthwise=False) == 33 * 16
    # the same as a depthwise layer (its rows path): output row y is written once input
    # rows up to y + 1 are copied out, and row y + 2, still to be read, starts beyond it
    assert emit.in_place_offset(_conv_fields(32, 16, 16, 3, 1, 1), depthwise=True) == 0
    # a 5x5 depthwise (the per-pixel path): a pixel's outputs are written group by group
    # while its own window (from (y - 2, x - 2)) is still read; pixel (y, 2) needs the most,
    # (2 x 32 + 2 + 1) x 16 bytes
    assert emit.in_place_offset(_conv_fields(32, 16, 16, 5, 1, 2), depthwise=True) == 67 * 16
    # a 3x3 depthwise of rows narrower than 8 outputs takes the per-pixel path too: pixel
    # (y, x)'s window starts at (y - 1, x - 1), (4 + 2) pixels of 16 channels behind its end
    assert emit.in_place_offset(_conv_fields(4, 16, 16, 3, 1, 1), depthwise=True) == 6 * 16
    # depthwise stride 2 (the per-pixel path), 32x32x48 -> 16x16: pixel (y, x) reads from
    # (2y, 2x) on; only pixel 0 (its outputs end at 48, its window starts at 0) needs room
    assert emit.in_place_offset(_conv_fields(32, 48, 48, 3, 2, 0), depthwise=True) == 48
    # a 1x1 that narrows (32 -> 16 channels) never writes ahead of its reads
    assert emit.in_place_offset(_conv_fields(8, 32, 16, 1, 1, 0), depthwise=False) == 0


def test_residual_3x3_convolution_writes_over_its_dying_input():
    """resnet8's first block at 32x32x16: its second 3x3 convolution (op 2) reads the first
    one's output, which dies there, while the block's input waits for the ADD. Laid 33
    pixels x 16 channels into the convolution's output storage, the block needs two 16 KB
    activations (plus 528 bytes and the scratch) alive instead of three."""
    from mcuqual.firmware.codegen.graph import read_graph

    flatbuffer = (MODELS / "resnet8" / "model_int8.tflite").read_bytes()
    generated = codegen.generate(flatbuffer, "resnet8")
    op = read_graph(flatbuffer, "resnet8").ops[2]
    assert op.kind == "CONV_2D"
    offsets = generated.tensor_offsets
    assert offsets[op.inputs[0]] - offsets[op.outputs[0]] == (32 + 1) * 16
    assert generated.arena_bytes < 3 * 32 * 32 * 16


def test_a_wrong_multiplier_is_caught_and_located(tiny_tflite, cifar, cache):
    """A deliberately broken requantization in one layer: the check names that layer."""
    import re

    from mcuqual.firmware.twin_check import BitExactnessError, compare_with_reference

    generated = codegen.generate(tiny_tflite, "tiny")
    source = generated.sources["mq_model_data.c"]
    broken_source = re.sub(r"(static const int32_t l2_m\[\d+\] MQ_MODEL_CONST = \{\n    )(\d+)",
                           lambda m: m.group(1) + str(int(m.group(2)) // 2), source)
    assert broken_source != source
    broken = codegen.GeneratedModel(**{**generated.__dict__,
                                       "sources": {**generated.sources,
                                                   "mq_model_data.c": broken_source}})
    twin = HostTwin(build_host_twin(broken, cache), broken.input_bytes, broken.output_bytes)
    inputs = tflite_model.quantize_images(cifar.test.images[:50],
                                          tflite_model.read(tiny_tflite).input, PIXEL_OVER_255)
    golden = reference.run_reference(tiny_tflite, inputs, workers=1)
    check = compare_with_reference(twin, inputs, golden, cache, "tiny", tiny_tflite, broken)
    assert check.mismatched_images > 0
    with pytest.raises(BitExactnessError, match=r"first differing layer 2:FULLY_CONNECTED"):
        check.require_bit_exact()


def paths_model(cifar) -> bytes:
    """A model for the kernels' less travelled paths: an odd number of output pixels
    and of filters, input channels that are not a multiple of 4 after the stem
    (gathered columns, dilated too, column tails, depthwise channel tails), a
    strided 1x1, dilation, depth multiplier 2, valid padding, max and average
    pooling."""
    import keras
    from keras import layers

    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(6, 3, strides=2, padding="valid", activation="relu")(inputs)   # 15x15
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = layers.Conv2D(7, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(8, 3, dilation_rate=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(8, 1, strides=2)(x)                                               # 8x8
    x = layers.Conv2D(8, 3, dilation_rate=2, padding="same", activation="relu")(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="valid", activation="relu")(x)
    x = layers.DepthwiseConv2D(3, dilation_rate=2, padding="same")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.AveragePooling2D(3, strides=2, padding="same")(x)
    outputs = layers.Dense(10, activation="softmax")(layers.Flatten()(x))
    model = _randomize(keras.Model(inputs, outputs, name="paths"), seed=9)
    return convert(model, calibration_images(cifar, 50))


def test_less_travelled_kernel_paths_are_bit_exact(cifar, cache):
    flatbuffer = paths_model(cifar)
    generated = codegen.generate(flatbuffer, "paths")
    twin = HostTwin(build_host_twin(generated, cache), generated.input_bytes,
                    generated.output_bytes)
    inputs_q = tflite_model.quantize_images(cifar.test.images[:100],
                                            tflite_model.read(flatbuffer).input, PIXEL_OVER_255)
    np.testing.assert_array_equal(twin.run(inputs_q),
                                  reference.run_reference(flatbuffer, inputs_q, workers=1))
    # a random model's softmax hides small errors: every layer's bytes must match too
    for image in inputs_q[:5]:
        assert first_differing_layer(flatbuffer, generated, twin, image) is None

@pytest.mark.parametrize("name", sorted(zoo.discover(MODELS)))
def test_macs_counted_on_the_tflite_graph_equal_the_keras_count(name):
    """The graph count (any model) against the Keras layer count (zoo models) kept in
    results.json: two independent formulas over two representations of the same network."""
    model = zoo.discover(MODELS)[name]
    keras_macs = model.results().get("macs")
    if not model.tflite_path.is_file() or keras_macs is None:
        pytest.fail(f"{name}: no committed .tflite or no Keras MAC count in results.json")
    generated = codegen.generate(model.tflite_path.read_bytes(), name)
    assert generated.macs == keras_macs
    assert len(generated.layer_macs) == len(generated.layers)
    assert all(m == 0 for m, layer in zip(generated.layer_macs, generated.layers)
               if layer.split(":")[1] in ("MEAN", "SOFTMAX", "ADD", "MAX_POOL_2D",
                                          "AVERAGE_POOL_2D"))


def test_a_layer_beyond_the_kernel_parameters_is_refused_by_name(cifar):
    """81,920 input features do not fit the fully connected kernel's 16-bit field: the code
    generator says so instead of letting the compiler truncate it."""
    import keras
    from keras import layers

    inputs = keras.Input((32, 32, 3))
    x = layers.Flatten()(layers.Conv2D(80, 1)(inputs))
    model = keras.Model(inputs, layers.Dense(10, activation="softmax")(x))
    flatbuffer = convert(model, calibration_images(cifar, 10))
    with pytest.raises(CodegenError,
                       match=r"FULLY_CONNECTED\): in_features = 81920 exceeds what the kernels' "
                             r"mq_fc_params_t holds \(0\.\.65535\)"):
        codegen.generate(flatbuffer, "wide_fc")
