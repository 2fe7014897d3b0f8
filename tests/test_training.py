"""Training stays alive: every zoo builder trains a few steps, and a checkpoint resumes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcuqual.training import train as training
from mcuqual.model import zoo

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.mark.parametrize("name", sorted(zoo.discover(MODELS)))
def test_each_builder_trains_a_few_steps(name, cifar, tmp_path):
    model = zoo.discover(MODELS)[name]
    outcome = training.train(model, cifar, epochs=1, limit=512, steps_per_epoch=2,
                             validation_limit=200, verbose=0, output_dir=tmp_path)
    assert outcome.epochs_run == 1
    assert (tmp_path / "model.keras").is_file() and (tmp_path / "history.png").is_file()
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history["loss"]) == 1
    if model.recipe.validation_images:     # measured on the held-out split, never on the test set
        assert 0.0 <= history["val_accuracy"][0] <= 1.0 and outcome.val_top1 is not None
    else:                                  # an older recipe trains on all 50,000: nothing to measure
        assert "val_accuracy" not in history and outcome.val_top1 is None
    # the float artifact is the model alone: same parameters, no optimizer state
    import io
    import zipfile

    import h5py
    import keras

    saved = keras.models.load_model(tmp_path / "model.keras", compile=False)
    assert saved.count_params() == model.build().count_params()
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        assert "optimizer" not in weights and "layers" in weights


def test_checkpoint_resumes_instead_of_restarting(cifar, tmp_path):
    model = zoo.discover(MODELS)["resnet8"]
    args = dict(limit=256, steps_per_epoch=2, validation_limit=100, verbose=0, output_dir=tmp_path)
    first = training.train(model, cifar, epochs=1, **args)
    state = json.loads((tmp_path / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 1
    again = training.train(model, cifar, epochs=1, **args)
    assert again.epochs_run == 0                      # nothing left to do: resumed at the end
    assert again.history["loss"] == first.history["loss"]
    longer = training.train(model, cifar, epochs=2, **args)
    assert longer.epochs_run == 2                     # another recipe: a fresh run, not a resume


def test_augmentation_differs_between_epochs(cifar):
    import numpy as np
    from mcuqual.data.cifar10 import Split

    one_image = Split(np.repeat(cifar.train.images[:1], 8, axis=0), np.zeros(8, dtype=np.uint8))
    data = training.make_train_dataset(one_image, 8, ("random_crop_pad4", "horizontal_flip"), 1)
    first, second = (next(iter(data))[0].numpy() for _ in range(2))
    # eight crops of one image in one epoch differ, and the next epoch draws new ones
    assert len({arr.tobytes() for arr in first}) > 1
    assert not np.array_equal(np.sort(first.reshape(8, -1), axis=0),
                              np.sort(second.reshape(8, -1), axis=0))
