"""Latency-first DS-CNN, size s: about 39 k parameters and 1.15 M MACs: the 12.6 ms budget if the core sustained one MAC per cycle."""
from __future__ import annotations

import keras

from mcuqual.model.blocks import ds_cnn

INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
STEM_FILTERS, STEM_STRIDES = 16, 2
BLOCKS = ((32, 1), (64, 2), (64, 1), (128, 2), (128, 1))     # (pointwise filters, depthwise stride)


def build(input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = NUM_CLASSES,
          seed: int | None = None) -> keras.Model:
    return ds_cnn("ds_cnn_s", input_shape, num_classes, STEM_FILTERS, STEM_STRIDES, BLOCKS,
                  dropout=0.1, seed=seed)
