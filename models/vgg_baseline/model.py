"""The study's starting point: a VGG-style CNN of exactly 1,344,042 parameters.

Three stages of two 3x3 convolutions (32, 64, 128 filters), the first "same"
and the second "valid", each followed by ReLU then batch-norm, with max-pooling
and dropout after each stage: 32 -> 30 -> 15 -> 13 -> 6 -> 4 -> 2, so the conv
part ends at 2x2x128 = 512 features. Then dense 1024 and 512 with dropout 0.5.
"""
from __future__ import annotations

import keras
from keras import layers

INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10


def build(input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = NUM_CLASSES,
          seed: int | None = None) -> keras.Model:
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for stage, filters in enumerate((32, 64, 128), start=1):
        for index, padding in enumerate(("same", "valid"), start=1):
            x = layers.Conv2D(filters, 3, padding=padding, activation="relu",
                              name=f"conv{stage}_{index}")(x)
            x = layers.BatchNormalization(name=f"bn{stage}_{index}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
        x = layers.Dropout(0.25, seed=seed, name=f"drop{stage}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(1024, activation="relu", name="fc1")(x)
    x = layers.Dropout(0.5, seed=seed, name="drop_fc1")(x)
    x = layers.Dense(512, activation="relu", name="fc2")(x)
    x = layers.Dropout(0.5, seed=seed, name="drop_fc2")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="logits")(x)
    return keras.Model(inputs, outputs, name="vgg_baseline")
