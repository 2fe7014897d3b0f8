"""Latency-first DS-CNN, size m: about 62 k parameters and 3.0 M MACs: between the small points and ds_cnn_lite."""
from __future__ import annotations

import keras

from mcuqual.model.blocks import ds_cnn

INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
STEM_FILTERS, STEM_STRIDES = 24, 1
BLOCKS = ((32, 2), (64, 1), (64, 2), (128, 1), (128, 2), (160, 1))     # (pointwise filters, depthwise stride)


def build(input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = NUM_CLASSES,
          seed: int | None = None) -> keras.Model:
    return ds_cnn("ds_cnn_m", input_shape, num_classes, STEM_FILTERS, STEM_STRIDES, BLOCKS,
                  dropout=0.1, seed=seed)
