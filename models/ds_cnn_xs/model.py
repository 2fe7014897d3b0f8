"""Latency-first DS-CNN, size xs: about 11.5 k parameters and 0.35 M MACs: the smallest point, sized for the 12.6 ms budget at the kernels' measured MAC/cycle.

One point of the accuracy/MAC frontier below ds_cnn_lite. A strided 3x3 stem
halves the resolution before anything else (no full-resolution layer but the
stem), then depthwise-separable blocks; channel counts are multiples of 4 for the
Cortex-M4's SIMD kernels.
"""
from __future__ import annotations

import keras

from mcuqual.model.blocks import ds_cnn

INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
STEM_FILTERS, STEM_STRIDES = 8, 2
BLOCKS = ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1))     # (pointwise filters, depthwise stride)


def build(input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = NUM_CLASSES,
          seed: int | None = None) -> keras.Model:
    return ds_cnn("ds_cnn_xs", input_shape, num_classes, STEM_FILTERS, STEM_STRIDES, BLOCKS,
                  dropout=0.1, seed=seed)
