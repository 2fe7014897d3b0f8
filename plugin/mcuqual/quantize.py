"""Full-integer INT8 TFLite from a float Keras model, calibrated on training images.

The firmware only has int8 kernels, so the conversion must be full-integer
(int8 input and output, no float fallback); anything else is an error here, not
a surprise at build time.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .cache import Cache, content_hash
from .capture import captured_fds
from .dataset import Cifar10
from .errors import QuantizationError

if TYPE_CHECKING:
    import keras

CALIBRATION_IMAGES = 500
CALIBRATION_SEED = 20240601


def calibration_images(dataset: Cifar10, count: int = CALIBRATION_IMAGES,
                       seed: int = CALIBRATION_SEED) -> np.ndarray:
    """A fixed, class-balanced draw from the training set (never the test set)."""
    rng = np.random.default_rng(seed)
    labels = dataset.train.labels
    per_class = max(1, count // 10)
    picks = np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
                            for c in range(10)])
    return dataset.train.images[np.sort(picks)]


def convert(model: "keras.Model", calibration: np.ndarray) -> bytes:
    """Convert with TensorFlow's converter; int8 in, int8 out, builtin int8 ops only."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    floats = calibration.astype(np.float32) / 255.0

    def representative():
        for image in floats:
            yield [image[None]]

    # A fixed batch of one gives static shapes, so Flatten becomes a single RESHAPE
    # instead of the SHAPE/STRIDED_SLICE/PACK chain a dynamic batch needs.
    import keras

    single = keras.Input(batch_shape=(1, *model.input_shape[1:]), name="image")
    fixed = keras.Model(single, model(single, training=False), name=model.name)
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with captured_fds(1, 2) as log, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            flatbuffer = converter.convert()
        except Exception as exc:
            error = exc
        else:
            error = None
    if error is not None:
        tail = "\n".join(log.text.strip().splitlines()[-15:])
        raise QuantizationError(
            f"model {model.name}: full-integer INT8 conversion failed: {error}\n{tail}\n"
            "Every layer must map to an int8 TFLite builtin op; replace the layer that the "
            "converter names.") from error
    return bytes(flatbuffer)


def quantize_cached(keras_path: Path, dataset: Cifar10, cache: Cache) -> tuple[bytes, bool]:
    """The INT8 flatbuffer for a saved .keras model; (bytes, came_from_cache)."""
    key = content_hash(Path(keras_path).read_bytes(), dataset.fingerprint,
                       f"calib={CALIBRATION_IMAGES},{CALIBRATION_SEED}")
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
