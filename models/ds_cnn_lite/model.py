"""The study's answer: a depthwise-separable CNN of about 140 k parameters.

Designed for a Cortex-M4: every channel count is a multiple of 4 (so SIMD
kernels never need a tail), the only full-resolution layers are a narrow 3x3
stem and one separable block, the spatial size halves three times while the
width grows, and the head is a global mean and one dense layer. Every op maps to
CONV_2D, DEPTHWISE_CONV_2D, MEAN, FULLY_CONNECTED and SOFTMAX once converted
(batch-norm folds into the convolutions; ReLU fuses into them). Sized so that the
firmware's model section -- int8 weights plus an int32 bias and a multiplier and
shift per output channel (about 12 B x 1,770 channels) -- stays under 160 KB.
"""
from __future__ import annotations

import keras

from mcuqual.model.blocks import ds_cnn

INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
# (pointwise filters, depthwise stride) per separable block.
BLOCKS = ((48, 1), (96, 2), (96, 1), (160, 2), (160, 1), (192, 2), (192, 1))
STEM_FILTERS = 32


def build(input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = NUM_CLASSES,
          seed: int | None = None) -> keras.Model:
    return ds_cnn("ds_cnn_lite", input_shape, num_classes, STEM_FILTERS, 1, BLOCKS,
                  dropout=0.2, seed=seed)
