"""Distilled residual DS-CNN, size s: the <= 1.5 M MAC point of the accuracy/MAC frontier.

A 3x3 stride-2 stem (16 filters) takes 32x32 to 16x16, where one separable block widens to
32; the 8x8 stage holds 64 channels and the 4x4 stage three blocks of 128, since a 1x1
filter at 4x4 costs a quarter of the MACs it costs at 8x8. Identity shortcuts around the
stride-1 blocks of equal width (INT8 ADD, no MACs). Depthwise layers are under a tenth of
the MACs: on a Cortex-M4 they run fewer MACs per cycle than the 1x1 convolutions (which
are matrix products). Every width is a multiple of 4. About 57 k parameters, 1.43 M MACs.
"""
from __future__ import annotations

import keras

from mcuqual.model.blocks import residual_ds_cnn

INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
STEM_FILTERS, STEM_STRIDES = 16, 2
# (pointwise filters, depthwise stride); a shortcut wherever the stride is 1 and the width kept
BLOCKS = ((32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1))


def build(input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = NUM_CLASSES,
          seed: int | None = None) -> keras.Model:
    return residual_ds_cnn("ds_cnn_kd_s", input_shape, num_classes, STEM_FILTERS, STEM_STRIDES,
                           BLOCKS, dropout=0.1, seed=seed)
