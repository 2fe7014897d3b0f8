"""Top-1 of an INT8 model on the CIFAR-10 test set through the tflite_micro reference."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcuqual.quantize import tflite_model
from mcuqual.common.cache import Cache
from mcuqual.data.cifar10 import Split
from mcuqual.model.preprocessing import Preprocessing
from mcuqual.common.progress import progress_bar
from mcuqual.reference.tflm import reference_cached


@dataclass(frozen=True)
class Int8Evaluation:
    outputs: np.ndarray        # int8 [N, classes], the golden outputs
    predictions: np.ndarray    # [N]
    labels: np.ndarray         # [N]
    top1: float
    from_cache: bool

    @property
    def images(self) -> int:
        return int(self.labels.shape[0])

    def confusion(self, classes: int = 10) -> np.ndarray:
        matrix = np.zeros((classes, classes), dtype=np.int64)
        np.add.at(matrix, (self.labels.astype(np.int64), self.predictions.astype(np.int64)), 1)
        return matrix


def evaluate_int8(flatbuffer: bytes, split: Split, cache: Cache, label: str,
                  preprocessing: Preprocessing, inputs: np.ndarray | None = None,
                  macs_per_image: int | None = None) -> Int8Evaluation:
    """`inputs`: the split's images already quantized with `preprocessing`, if the caller has them."""
    if inputs is None:
        inputs = tflite_model.quantize_images(split.images, tflite_model.read(flatbuffer, label).input,
                                              preprocessing)
    with progress_bar(total=len(split), desc=f"tflite_micro {label}", unit="img") as bar:
        outputs, cached = reference_cached(flatbuffer, inputs, cache, label=label,
                                           progress=bar.update, macs_per_image=macs_per_image)
        if cached:
            bar.update(len(split))
    # argmax over int8 equals argmax over dequantized scores (monotonic, one scale)
    predictions = outputs.argmax(axis=1)
    top1 = float((predictions == split.labels).mean()) if len(split) else float("nan")
    return Int8Evaluation(outputs, predictions, split.labels, top1, cached)
