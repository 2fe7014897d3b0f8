"""MLPerf Tiny's image-classification reference, ResNet-8 (16 filters).

Stem conv, three residual stacks (16, 32, 64 filters; the last two stride 2 with
a 1x1 projection shortcut), 8x8 average pooling, dense softmax; L2 1e-4 on the
kernels as in the reference training script. The external anchor for latency.
"""
from __future__ import annotations

import keras
from keras import layers, regularizers

INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
L2 = 1e-4


def _conv(filters: int, kernel: int, strides: int, name: str) -> layers.Conv2D:
    return layers.Conv2D(filters, kernel, strides=strides, padding="same",
                         kernel_initializer="he_normal",
                         kernel_regularizer=regularizers.l2(L2), name=name)


def _stack(x, filters: int, strides: int, name: str):
    y = _conv(filters, 3, strides, f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv(filters, 3, 1, f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    if strides != 1 or x.shape[-1] != filters:
        x = _conv(filters, 1, strides, f"{name}_shortcut")(x)
    x = layers.Add(name=f"{name}_add")([x, y])
    return layers.ReLU(name=f"{name}_relu2")(x)


def build(input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = NUM_CLASSES,
          seed: int | None = None) -> keras.Model:
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv(16, 3, 1, "stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    x = _stack(x, 16, 1, "stack1")
    x = _stack(x, 32, 2, "stack2")
    x = _stack(x, 64, 2, "stack3")
    x = layers.AveragePooling2D(pool_size=x.shape[1], name="avgpool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_initializer="he_normal",
                           name="logits")(x)
    return keras.Model(inputs, outputs, name="resnet8")
