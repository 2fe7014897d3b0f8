"""Keras building blocks shared by the zoo's depthwise-separable models.

A model folder's `model.py` stays the single place that says what a model is
(its widths, strides, name); these are only the bricks, written once.
"""
from __future__ import annotations

import keras
from keras import layers


def conv_bn_relu(x, filters: int, kernel: int, strides: int, name: str):
    """Conv (no bias) + batch-norm + ReLU: folds into one CONV_2D with fused ReLU in INT8."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def separable_block(x, filters: int, strides: int, name: str):
    """3x3 depthwise + 1x1 pointwise, each with batch-norm and ReLU."""
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False,
                               name=f"{name}_dw")(x)
    x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = layers.ReLU(name=f"{name}_dw_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    x = layers.BatchNormalization(name=f"{name}_pw_bn")(x)
    return layers.ReLU(name=f"{name}_pw_relu")(x)


def ds_cnn(name: str, input_shape: tuple[int, int, int], num_classes: int, stem_filters: int,
           stem_strides: int, blocks: tuple[tuple[int, int], ...], dropout: float,
           seed: int | None) -> keras.Model:
    """Stem, separable blocks ((filters, stride) each), global mean, dense softmax."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = conv_bn_relu(inputs, stem_filters, 3, stem_strides, "stem")
    for index, (filters, strides) in enumerate(blocks, start=1):
        x = separable_block(x, filters, strides, f"block{index}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, seed=seed, name="drop")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def residual_ds_cnn(name: str, input_shape: tuple[int, int, int], num_classes: int,
                    stem_filters: int, stem_strides: int, blocks: tuple[tuple[int, int], ...],
                    dropout: float, seed: int | None) -> keras.Model:
    """`ds_cnn` with an identity shortcut around every separable block that keeps its input's
    shape (stride 1, same width), as in MobileNetV2's residual bottlenecks (Sandler et al.,
    2018). The shortcut adds no MAC and converts to one INT8 ADD; it lets the small models
    train deeper stacks at low resolution, where a block is cheap."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = conv_bn_relu(inputs, stem_filters, 3, stem_strides, "stem")
    for index, (filters, strides) in enumerate(blocks, start=1):
        y = separable_block(x, filters, strides, f"block{index}")
        if strides == 1 and int(x.shape[-1]) == filters:
            y = layers.Add(name=f"block{index}_add")([x, y])
        x = y
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, seed=seed, name="drop")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
