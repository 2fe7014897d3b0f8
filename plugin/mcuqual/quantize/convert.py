"""Full-integer INT8 TFLite from a float Keras model, calibrated on training images.

The firmware only has int8 kernels, so the conversion must be full-integer
(int8 input and output, no float fallback); anything else is an error here, not
a surprise at build time.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

import numpy as np

from mcuqual.common.cache import Cache, content_hash
from mcuqual.quantize.calibration import (CALIBRATION_IMAGES, CALIBRATION_SEED, RANGE_METHOD,
                          calibration_images, measure_ranges)
from mcuqual.common.capture import captured_fds
from mcuqual.data.cifar10 import Cifar10
from mcuqual.common.errors import QuantizationError
from mcuqual.model.preprocessing import PIXEL_OVER_255, Preprocessing
from mcuqual.quantize.tflite_model import float_operators

if TYPE_CHECKING:
    import keras

T = TypeVar("T")
log = logging.getLogger(__name__)


def _fail(model_name: str, error: Exception, log_text: str) -> QuantizationError:
    tail = "\n".join(log_text.strip().splitlines()[-15:])
    return QuantizationError(
        f"model {model_name}: full-integer INT8 conversion failed: {error}\n{tail}\n"
        "Every layer must map to an int8 TFLite builtin op; replace the layer that the "
        "converter names.")


def _quietly(model_name: str, action: Callable[[], T]) -> T:
    """Run a converter step with its native chatter captured; shown only if it fails."""
    error = None
    with captured_fds(1, 2) as chatter, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = action()
        except Exception as exc:
            error = exc
    if error is not None:
        raise _fail(model_name, error, chatter.text) from error
    return result


def convert(model: "keras.Model", calibration: np.ndarray,
            preprocessing: Preprocessing = PIXEL_OVER_255) -> bytes:
    """Convert with TensorFlow's converter and quantizer; int8 in, int8 out, int8 ops only.

    `calibration`: uint8 RGB images, fed through `preprocessing` (the zoo's models take
    pixel / 255).

    The converter calibrates, `calibration.measure_ranges` corrects the ranges it
    logged (see there why), and TensorFlow's quantizer then quantizes as usual.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize

    floats = preprocessing.to_float(calibration, np.float32)

    def representative():
        for image in floats:
            yield [image[None]]

    # A fixed batch of one gives static shapes, so Flatten becomes a single RESHAPE
    # instead of the SHAPE/STRIDED_SLICE/PACK chain a dynamic batch needs.
    single = keras.Input(batch_shape=(1, *model.input_shape[1:]), name="image")
    fixed = keras.Model(single, model(single, training=False), name=model.name)
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    # stop after calibration (a private switch, TF 2.21) so the ranges can be corrected
    converter._experimental_calibrate_only = True
    calibrated = _quietly(model.name, converter.convert)
    corrected, changes = measure_ranges(calibrated, floats, model.name)
    for change in changes:
        log.info("%s: calibration range of %s corrected from [%.4g, %.4g] to [%.4g, %.4g]",
                 model.name, change.tensor, *change.recorded, *change.measured)
    flatbuffer = _quietly(model.name, lambda: bytes(mlir_quantize(
        corrected, fully_quantize=True, input_data_type=tf.int8, output_data_type=tf.int8)))
    still_float = float_operators(flatbuffer)
    if still_float:
        raise _fail(model.name, RuntimeError(
            f"{', '.join(sorted(set(still_float)))} kept float tensors"), "")
    return flatbuffer


def quantize_cached(keras_path: Path, dataset: Cifar10, cache: Cache) -> tuple[bytes, bool]:
    """The INT8 flatbuffer for a saved .keras model; (bytes, came_from_cache)."""
    key = content_hash(Path(keras_path).read_bytes(), dataset.fingerprint,
                       f"calib={CALIBRATION_IMAGES},{CALIBRATION_SEED},{RANGE_METHOD}")
    path = cache.path("quantized", key, ".tflite")
    if path.is_file():
        return path.read_bytes(), True
    import keras

    try:
        model = keras.models.load_model(keras_path, compile=False)
    except Exception as exc:
        raise QuantizationError(f"{keras_path}: cannot be loaded by Keras: {exc}") from exc
    flatbuffer = convert(model, calibration_images(dataset))
    cache.write_atomic(path, flatbuffer)
    return flatbuffer, False
