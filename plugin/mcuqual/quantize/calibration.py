"""Calibration for post-training quantization: which images, and the ranges they give.

TensorFlow's calibrator records each tensor's min/max while its interpreter
runs with the memory plan it would use for inference. Elementwise ops such as
MUL and ADD may write their output over their input's buffer there, so the range
logged for that input is partly the output's: a ReLU feeding a batch-norm's
multiply (vgg_baseline, BN after ReLU) got the product's range, 12 times too
wide, and 8-bit steps to match. We therefore re-measure every activation range
on the same images with every tensor kept in its own buffer and write those
ranges into the calibrated model before it is quantized.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from mcuqual.data.cifar10 import Cifar10
from mcuqual.common.progress import progress_bar

CALIBRATION_IMAGES = 500
CALIBRATION_SEED = 20240601
RANGE_METHOD = "min/max of every activation over the calibration images, all tensors kept"


def calibration_images(dataset: Cifar10, count: int = CALIBRATION_IMAGES,
                       seed: int = CALIBRATION_SEED) -> np.ndarray:
    """A fixed, class-balanced draw from the training set (never the test set)."""
    rng = np.random.default_rng(seed)
    labels = dataset.train.labels
    per_class = max(1, count // 10)
    picks = np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
                            for c in range(10)])
    return dataset.train.images[np.sort(picks)]


@dataclass(frozen=True)
class RangeChange:
    """One tensor whose recorded range differed from the one it really takes."""

    tensor: str
    recorded: tuple[float, float]
    measured: tuple[float, float]


def _activation_tensors(model) -> list[int]:
    """Tensors with a single calibrated min/max and no constant data: the activations."""
    graph = model.subgraphs[0]
    found = []
    for index, tensor in enumerate(graph.tensors):
        quant = tensor.quantization
        if quant is None or quant.min is None or quant.max is None or len(quant.min) != 1:
            continue
        if model.buffers[tensor.buffer].data is not None:
            continue
        found.append(index)
    return found


def measure_ranges(calibrated: bytes, floats: np.ndarray,
                   label: str = "model") -> tuple[bytes, list[RangeChange]]:
    """The calibrated flatbuffer with each activation's min/max measured without buffer reuse.

    `floats` are the calibration images as the float model takes them (NHWC, one
    image per row). Returns the rewritten flatbuffer and the tensors that changed.
    """
    import tensorflow as tf
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(calibrated))
    graph = model.subgraphs[0]
    tensors = _activation_tensors(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        resolver = tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        interpreter = tf.lite.Interpreter(model_content=calibrated,
                                          experimental_preserve_all_tensors=True,
                                          experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    feed = interpreter.get_input_details()[0]
    low = np.full(len(tensors), np.inf)
    high = np.full(len(tensors), -np.inf)
    with progress_bar(len(floats), f"{label}: calibration ranges", unit="img") as bar:
        for image in floats:
            interpreter.set_tensor(feed["index"], image[None].astype(feed["dtype"]))
            interpreter.invoke()
            for slot, index in enumerate(tensors):
                values = interpreter.get_tensor(index)
                low[slot] = min(low[slot], float(values.min()))
                high[slot] = max(high[slot], float(values.max()))
            bar.update()
    changes = []
    for slot, index in enumerate(tensors):
        quant = graph.tensors[index].quantization
        recorded = (float(quant.min[0]), float(quant.max[0]))
        measured = (float(low[slot]), float(high[slot]))
        if not np.isfinite(measured).all():    # never written by any op: keep what was logged
            continue
        if not np.allclose(recorded, measured, rtol=1e-6, atol=1e-7):
            name = graph.tensors[index].name
            changes.append(RangeChange(name.decode() if isinstance(name, bytes) else str(name),
                                       recorded, measured))
        quant.min = [measured[0]]
        quant.max = [measured[1]]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), changes
