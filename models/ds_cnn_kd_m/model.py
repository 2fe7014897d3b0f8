"""Distilled residual DS-CNN, size m: the <= 3 M MAC point of the accuracy/MAC frontier.

The layout of ds_cnn_kd_s (a 3x3 stride-2 stem to 16x16, one separable block there, then
8x8 and 4x4 stages, identity shortcuts around the stride-1 blocks of equal width), with the
widths and depth sized to the budget. Every width is a multiple of 4.
"""
from __future__ import annotations

import keras

from mcuqual.model.blocks import residual_ds_cnn

INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
STEM_FILTERS, STEM_STRIDES = 24, 2
# (pointwise filters, depthwise stride); a shortcut wherever the stride is 1 and the width kept
BLOCKS = ((40, 1), (96, 2), (96, 1), (192, 2), (192, 1), (192, 1))


def build(input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = NUM_CLASSES,
          seed: int | None = None) -> keras.Model:
    return residual_ds_cnn("ds_cnn_kd_m", input_shape, num_classes, STEM_FILTERS, STEM_STRIDES,
                           BLOCKS, dropout=0.1, seed=seed)
