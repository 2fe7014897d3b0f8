"""Shared fixtures for the project's own tests: the real dataset and a tiny model."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from mcuqual.data.cifar10 import load_cifar10, resolve_directory

REPO = Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]


def pytest_configure(config) -> None:
    """Import tflite_micro's interpreter once, before any in-process pytester run: such a
    run drops the modules it imported when it ends, and importing the pybind11 extension a
    second time fails ("type PythonInterpreterConfig is already registered")."""
    from tflite_micro import runtime  # noqa: F401


@pytest.fixture(autouse=True)
def blank_virtual_boards(tmp_path, monkeypatch):
    """Every test starts with blank virtual boards and leaves the developer's alone
    (their flash persists, like a real board's; pyOCD subprocesses inherit this too)."""
    monkeypatch.setenv("MCUQUAL_VIRTUAL_BOARDS_DIR", str(tmp_path / "virtual-boards"))


@pytest.fixture(scope="session")
def cifar_dir() -> Path:
    directory, looked = resolve_directory(None, REPO)
    if directory is None:
        pytest.fail("these tests read the real CIFAR-10: set MCUQUAL_DATASET_DIR; looked in "
                    + ", ".join(map(str, looked)), pytrace=False)
    return directory


@pytest.fixture(scope="session")
def cifar(cifar_dir):
    return load_cifar10(cifar_dir)


def build_tiny_model(seed: int = 7):
    """A three-layer CNN small enough to train and quantize in seconds."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv")(inputs)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(10, activation="softmax", name="logits")(x)
    return keras.Model(inputs, outputs, name="tiny")


@pytest.fixture(scope="session")
def tiny_keras_path(tmp_path_factory, cifar) -> Path:
    """The tiny model, trained just enough (two epochs on 16,384 images, ~25 % top-1) that
    its predictions spread over the classes: a model that puts most images in one class is
    flagged by the suite's preprocessing check, as it should be."""
    import keras

    model = build_tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    images = cifar.train.images[:16384].astype(np.float32) / 255.0
    model.fit(images, cifar.train.labels[:16384].astype(np.int64), epochs=2, batch_size=128,
              verbose=0)
    path = tmp_path_factory.mktemp("tiny") / "model.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_tflite(tiny_keras_path, cifar) -> bytes:
    import keras
    from mcuqual.quantize.calibration import calibration_images
    from mcuqual.quantize.convert import convert

    model = keras.models.load_model(tiny_keras_path, compile=False)
    return convert(model, calibration_images(cifar, count=100))


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MCUQUAL_PROGRESS", "off")


@pytest.fixture(scope="session")
def ds_cnn_xs_firmware(cifar, tmp_path_factory):
    """A factory: the zoo's ds_cnn_xs built for a board (by name, built once per board)
    and the first two CIFAR-10 test images, quantized as its card says: (ELF path, images)."""
    from mcuqual.boards.profile import select_boards
    from mcuqual.common.cache import Cache
    from mcuqual.firmware import codegen
    from mcuqual.firmware.build import build_firmware
    from mcuqual.model.zoo import load_model_folder
    from mcuqual.quantize import tflite_model

    model = load_model_folder(REPO / "models" / "ds_cnn_xs")
    flatbuffer = (model.folder / model.tflite_file).read_bytes()
    info = tflite_model.read(flatbuffer, "ds_cnn_xs")
    images = model.preprocessing.quantize(cifar.test.images[:2], info.input.scale,
                                          info.input.zero_point)
    cache = Cache(tmp_path_factory.mktemp("ds-cnn-xs"))
    built: dict[str, Path] = {}

    def build(board_name: str):
        if board_name not in built:
            board = select_boards(None, [board_name])[0]
            built[board_name] = build_firmware(codegen.generate(flatbuffer, "ds_cnn_xs"),
                                               board, cache).elf
        return built[board_name], images
    return build


@pytest.fixture(scope="session")
def ds_cnn_xs_l4r9(ds_cnn_xs_firmware):
    """ds_cnn_xs for the L4R9 (see `ds_cnn_xs_firmware`)."""
    return ds_cnn_xs_firmware("stm32l4r9")
