"""Quantization to full-integer INT8 and the tflite_micro reference, on real images."""
from __future__ import annotations

import numpy as np
import pytest
from mcuqual.reference import tflm as reference
from mcuqual.quantize import tflite_model
from mcuqual.common.cache import Cache
from mcuqual.common.capture import captured_fds
from mcuqual.common.errors import InterpreterError, ModelError
from mcuqual.model.preprocessing import PIXEL_OVER_255
from mcuqual.common.workers import WorkerError


def test_quantized_model_is_full_integer(tiny_tflite):
    summary = tflite_model.read(tiny_tflite, "tiny")
    assert summary.input.dtype == "int8" and summary.output.dtype == "int8"
    assert summary.input.shape == (1, 32, 32, 3) and summary.output.shape == (1, 10)
    assert set(summary.operators) <= {"CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"}
    # int8 kernels (1 B/weight) plus int32 biases (4 B each) are all constants
    weights = 3 * 3 * 3 * 8 + 8 * 10
    biases = 4 * (8 + 10)
    assert weights + biases <= summary.constant_bytes < summary.file_bytes


def test_input_quantization_maps_pixels_exactly(tiny_tflite, cifar):
    info = tflite_model.read(tiny_tflite).input
    q = tflite_model.quantize_images(cifar.test.images[:50], info, PIXEL_OVER_255)
    # calibration spans [0, 1], so scale is 1/255 and zero point -128: q = pixel - 128
    np.testing.assert_array_equal(q.astype(np.int16), cifar.test.images[:50].astype(np.int16) - 128)


def test_reference_agrees_with_tensorflow_lite_on_real_images(tiny_tflite, cifar):
    import tensorflow as tf

    info = tflite_model.read(tiny_tflite).input
    inputs = tflite_model.quantize_images(cifar.test.images[:200], info, PIXEL_OVER_255)
    golden = reference.run_reference(tiny_tflite, inputs, workers=2)
    interpreter = tf.lite.Interpreter(model_content=tiny_tflite,
                                      experimental_op_resolver_type=
                                      tf.lite.experimental.OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    in_index = interpreter.get_input_details()[0]["index"]
    out_index = interpreter.get_output_details()[0]["index"]
    tf_out = []
    for image in inputs:
        interpreter.set_tensor(in_index, image[None])
        interpreter.invoke()
        tf_out.append(interpreter.get_tensor(out_index)[0].copy())
    diff = np.abs(golden.astype(np.int16) - np.stack(tf_out).astype(np.int16))
    assert diff.max() <= 1          # TFLite's FULLY_CONNECTED may differ by 1 LSB
    assert (golden.argmax(1) == np.stack(tf_out).argmax(1)).mean() > 0.98


def test_reference_order_does_not_depend_on_workers(tiny_tflite, cifar):
    info = tflite_model.read(tiny_tflite).input
    inputs = tflite_model.quantize_images(cifar.test.images[:1100], info, PIXEL_OVER_255)
    one = reference.run_reference(tiny_tflite, inputs, workers=1)
    two = reference.run_reference(tiny_tflite, inputs, workers=2)
    np.testing.assert_array_equal(one, two)
    assert one.shape == (1100, 10) and one.dtype == np.int8


def test_reference_cache_returns_the_same_outputs(tiny_tflite, cifar, tmp_path):
    info = tflite_model.read(tiny_tflite).input
    inputs = tflite_model.quantize_images(cifar.test.images[:30], info, PIXEL_OVER_255)
    cache = Cache(tmp_path)
    first, cached_first = reference.reference_cached(tiny_tflite, inputs, cache)
    second, cached_second = reference.reference_cached(tiny_tflite, inputs, cache)
    assert (cached_first, cached_second) == (False, True)
    np.testing.assert_array_equal(first, second)


def test_tflm_arena_is_what_print_allocations_reports(tiny_tflite):
    figure = reference.tflm_arena(tiny_tflite, np.zeros((32, 32, 3), np.int8), "tiny")
    # the largest activation (16x16x8 int8) must fit in it
    assert figure.total_bytes >= 16 * 16 * 8
    assert f"Arena allocation total {figure.total_bytes} bytes" in figure.report


def test_corrupt_and_truncated_tflite_are_rejected(tiny_tflite):
    with pytest.raises(ModelError, match="not a TFLite flatbuffer"):
        tflite_model.read(b"\x00" * 64, "garbage")
    with pytest.raises(ModelError, match="corrupt|truncated|inconsistent"):
        tflite_model.read(tiny_tflite[: len(tiny_tflite) // 3], "cut")


def test_float_model_is_rejected_with_a_clear_message(tiny_keras_path):
    import keras
    import tensorflow as tf

    model = keras.models.load_model(tiny_keras_path, compile=False)
    float_tflite = tf.lite.TFLiteConverter.from_keras_model(model)
    with captured_fds(1, 2):
        flatbuffer = float_tflite.convert()
    with pytest.raises(ModelError, match="input tensor .* is float32; the suite deploys "
                                         "full-integer models"):
        tflite_model.read(flatbuffer, "float")


def test_interpreter_failure_becomes_a_clear_error(tiny_tflite):
    broken = bytearray(tiny_tflite)
    broken[len(broken) // 2: len(broken) // 2 + 256] = b"\xff" * 256
    with pytest.raises((InterpreterError, ModelError, WorkerError)):
        summary = tflite_model.read(bytes(broken), "broken")
        reference.run_reference(bytes(broken), np.zeros((2, *summary.input.shape[1:]), np.int8),
                                label="broken", workers=1)


def test_captured_fds_sees_native_writes():
    import os

    with captured_fds(2) as log:
        os.write(2, b"from native code\n")
    assert log.text == "from native code\n"


def _relu_then_batchnorm(gain: float):
    """Conv + ReLU followed by a batch-norm whose multiply widens the range `gain` times,
    the vgg_baseline pattern that TensorFlow's calibrator logs wrongly."""
    import keras
    from keras import layers

    inputs = keras.Input((32, 32, 3), name="image")
    relu = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inputs)
    scaled = layers.BatchNormalization(name="bn")(relu)
    x = layers.GlobalAveragePooling2D(name="gap")(scaled)
    outputs = layers.Dense(10, activation="softmax", name="logits")(x)
    model = keras.Model(inputs, outputs, name="relu_bn")
    bn = model.get_layer("bn")
    bn.set_weights([np.full(8, gain, np.float32), np.full(8, -0.5, np.float32),
                    np.zeros(8, np.float32), np.ones(8, np.float32)])
    return model, keras.Model(inputs, relu)


def test_activation_ranges_are_the_ranges_the_tensors_take(cifar):
    """Each activation's int8 scale must come from its own values: the ReLU before a
    batch-norm multiply gets the ReLU's range, not the product's (12x too wide in vgg)."""
    from mcuqual.quantize.calibration import calibration_images
    from mcuqual.quantize.convert import convert

    model, relu_only = _relu_then_batchnorm(gain=10.0)
    images = calibration_images(cifar, 100)
    flatbuffer = convert(model, images)
    relu_max = float(relu_only.predict(images.astype(np.float32) / 255.0, verbose=0).max())
    tensors = _int8_tensors(flatbuffer)
    relu_scale = next(scale for name, scale in tensors.items() if name.endswith("Relu")
                      or "conv" in name.split(";")[0] and "Relu" in name)
    assert relu_scale == pytest.approx(relu_max / 255.0, rel=1e-3)
    # the multiply's output really is about 10x wider, and keeps its own scale
    mul_scale = next(scale for name, scale in tensors.items() if "mul_1" in name)
    assert mul_scale > 5 * relu_scale


def _int8_tensors(flatbuffer: bytes) -> dict[str, float]:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    return {d["name"]: float(d["quantization"][0]) for d in interpreter.get_tensor_details()
            if d["dtype"] == np.int8 and d["quantization"][0] > 0}


def test_a_layer_without_an_int8_kernel_is_refused_by_name(cifar):
    import keras
    from keras import layers
    from mcuqual.quantize.calibration import calibration_images
    from mcuqual.common.errors import QuantizationError
    from mcuqual.quantize.convert import convert

    inputs = keras.Input((32, 32, 3), name="image")
    x = layers.Conv2D(4, 3, name="conv")(inputs)
    x = layers.Lambda(keras.ops.sin, name="sine")(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(10, activation="softmax")(x), name="with_sine")
    with pytest.raises(QuantizationError, match=r"model with_sine: full-integer INT8 conversion "
                                                r"failed: .*SIN"):
        convert(model, calibration_images(cifar, 20))
