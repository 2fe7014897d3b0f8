"""A throwaway qualification project for pytester runs: the repo's requirements,
the suite's test file, and whatever models a test puts in it."""
from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

TINY_CARD = """name = "{name}"
title = "tiny test model"
[input]
preprocessing = "pixel / 255"
[recipe]
epochs = 1
batch_size = 64
optimizer = "adamw"
learning_rate = 0.01
seed = 3
"""

TINY_BUILDER = '''
import keras
from keras import layers


def build(seed=None):
    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv")(inputs)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax", name="logits")(x))
'''


def make_project(root: Path) -> Path:
    (root / "models").mkdir()
    (root / "qualification").mkdir()               # the boards are the package's built-in ones
    for name in ("requirements.toml", "test_requirements.py", "test_regressions.py",
                 "conftest.py"):
        shutil.copy(REPO / "qualification" / name, root / "qualification" / name)
    (root / "pytest.ini").write_text("[pytest]\n")
    return root


def add_model(root: Path, name: str, keras_path: Path | None) -> Path:
    folder = root / "models" / name
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(TINY_BUILDER)
    (folder / "card.toml").write_text(TINY_CARD.format(name=name))
    if keras_path is not None:
        shutil.copy(keras_path, folder / "model.keras")
    return folder
