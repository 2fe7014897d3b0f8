"""The frontier recipe (#19): a held-out validation split, cutout, and distillation from a
zoo teacher, each checked against an independent computation."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mcuqual.common.errors import ModelError
from mcuqual.data.cifar10 import Split
from mcuqual.model import zoo
from mcuqual.training import train as training

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"

STUDENT_BUILDER = '''
from mcuqual.model.blocks import residual_ds_cnn


def build(input_shape=(32, 32, 3), num_classes=10, seed=None):
    return residual_ds_cnn("student", input_shape, num_classes, 8, 2, ((8, 1), (16, 2), (16, 1)),
                           dropout=0.1, seed=seed)
'''

RECIPE = '''
[input]
preprocessing = "pixel / 255"
[recipe]
epochs = 1
batch_size = 32
optimizer = "sgd"
learning_rate = 0.05
augmentation = ["random_crop_pad4", "horizontal_flip", "cutout8"]
seed = 3
validation_images = 5000
'''
DISTILL = '''teacher = "ds_cnn_lite"
distillation_alpha = 0.9
temperature = 4.0
'''


def _student(folder: Path, distill: bool = True) -> zoo.ZooModel:
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(STUDENT_BUILDER)
    (folder / "card.toml").write_text(f'name = "{folder.name}"\n' + RECIPE
                                      + (DISTILL if distill else ""))
    return zoo.load_model_folder(folder)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- the card ---------------------------------------------------------------------------

def test_recipe_reads_the_new_fields_and_old_cards_keep_their_meaning(tmp_path):
    model = _student(tmp_path / "student")
    recipe = model.recipe
    assert (recipe.validation_images, recipe.teacher) == (5000, "ds_cnn_lite")
    assert (recipe.distillation_alpha, recipe.temperature) == (0.9, 4.0)
    assert recipe.augmentation[-1] == "cutout8"
    # an older card: no split (all 50,000 images train, as when it was made), no teacher
    old = zoo.discover(MODELS)["ds_cnn_s"].recipe
    assert (old.validation_images, old.teacher, old.distillation_alpha) == (0, None, 0.0)


@pytest.mark.parametrize("line, message", [
    ('distillation_alpha = 0.5', "no teacher"),
    ('teacher = "ds_cnn_lite"', "distillation_alpha"),
    ('validation_images = 50000', "validation_images"),
    ('augmentation = ["mixup"]', "'mixup' is unknown"),
])
def test_recipe_refuses_what_it_cannot_train(tmp_path, line, message):
    table = {"epochs": 1, "batch_size": 8, "optimizer": "sgd", "learning_rate": 0.1, "seed": 1}
    key, value = (part.strip() for part in line.split("=", 1))
    import tomllib

    table.update(tomllib.loads(f"{key} = {value}"))
    with pytest.raises(ModelError, match=message):
        zoo.Recipe.from_table(table, tmp_path / "card.toml")


# --- the validation split ---------------------------------------------------------------

def test_validation_split_is_the_fixed_tail_of_the_training_set(cifar):
    fit, held = training.split_validation(cifar.train, 5000)
    assert (len(fit), len(held)) == (45_000, 5000)
    np.testing.assert_array_equal(held.images, cifar.train.images[45_000:])
    np.testing.assert_array_equal(fit.labels, cifar.train.labels[:45_000])
    again_fit, again_held = training.split_validation(cifar.train, 5000)
    assert np.array_equal(again_held.images, held.images)
    assert training.split_validation(cifar.train, 0) == (cifar.train, None)
    # every class is represented in the held-out images
    assert np.bincount(held.labels, minlength=10).min() > 400


def test_training_never_sees_the_validation_images_nor_the_test_set(cifar, tmp_path, monkeypatch):
    """The pipeline gets a prefix of the first 45,000 training images; the per-epoch figures
    come from the held-out tail; the test split is not touched (it is replaced by None)."""
    seen: list[Split] = []
    real = training.make_train_dataset

    def spy(split, *args, **kwargs):
        seen.append(split)
        return real(split, *args, **kwargs)

    monkeypatch.setattr(training, "make_train_dataset", spy)
    no_test = dataclasses.replace(cifar, test=None)
    model = _student(tmp_path / "student", distill=False)
    outcome = training.train(model, no_test, limit=64, steps_per_epoch=2, validation_limit=200,
                             verbose=0, output_dir=tmp_path / "out")
    assert len(seen) == 1 and len(seen[0]) == 64
    np.testing.assert_array_equal(seen[0].images, cifar.train.images[:64])
    assert outcome.val_top1 == outcome.history["val_accuracy"][0]
    assert 0.0 <= outcome.val_top1 <= 1.0 and np.isfinite(outcome.history["val_loss"][0])
    # the full run's pipeline: exactly the first 45,000 images (stopped before it trains)

    class Stop(Exception):
        pass

    def capture(split, *args, **kwargs):
        seen.append(split)
        raise Stop

    monkeypatch.setattr(training, "make_train_dataset", capture)
    with pytest.raises(Stop):
        training.train(model, no_test, verbose=0, output_dir=tmp_path / "full")
    assert len(seen[-1]) == 45_000
    np.testing.assert_array_equal(seen[-1].labels, cifar.train.labels[:45_000])
    assert np.array_equal(seen[-1].images, cifar.train.images[:45_000])


# --- cutout -----------------------------------------------------------------------------

def test_cutout_paints_one_clipped_square(cifar):
    white = Split(np.full((64, 32, 32, 3), 255, np.uint8), np.zeros(64, np.uint8))
    images = next(iter(training.make_train_dataset(white, 64, ("cutout8",), 5)))[0].numpy()
    sizes = set()
    for image in images:
        grey = np.argwhere((image == training.CUTOUT_FILL).all(axis=2))
        assert set(np.unique(image)) <= {1.0, training.CUTOUT_FILL}
        rows, cols = np.unique(grey[:, 0]), np.unique(grey[:, 1])
        assert len(grey) == len(rows) * len(cols)            # a rectangle...
        assert np.ptp(rows) == len(rows) - 1 and np.ptp(cols) == len(cols) - 1
        assert 4 <= len(rows) <= 8 and 4 <= len(cols) <= 8   # ...an 8x8 square clipped by a border
        sizes.add((len(rows), len(cols)))
    assert (8, 8) in sizes and len(sizes) > 1


# --- the loss ---------------------------------------------------------------------------

def _numpy_distillation(labels, teacher_logits, student_logits, alpha, t, smoothing=0.0):
    """Hinton et al. (2015), written out independently of the Keras loss."""
    n = labels.shape[1]
    soft_labels = labels * (1 - smoothing) + smoothing / n
    p = _softmax(student_logits)
    hard = -(soft_labels * np.log(p)).sum(axis=1)
    q_t, p_t = _softmax(teacher_logits / t), _softmax(student_logits / t)
    kl = (q_t * (np.log(q_t) - np.log(p_t))).sum(axis=1)
    return ((1 - alpha) * hard + alpha * t * t * kl).mean()


@pytest.mark.parametrize("alpha, t, smoothing", [(0.0, 4.0, 0.0), (0.0, 1.0, 0.1),
                                                  (0.9, 4.0, 0.0), (0.5, 2.0, 0.1), (1.0, 1.0, 0.0)])
def test_distillation_loss_matches_an_independent_computation(alpha, t, smoothing):
    import keras

    rng = np.random.default_rng(0)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 16)]
    teacher = rng.normal(0, 3, (16, 10)).astype(np.float32)
    student = rng.normal(0, 1.5, (16, 10)).astype(np.float32)   # Keras clips p at 1e-7
    probs = _softmax(student).astype(np.float32)
    loss = training.distillation_loss(alpha, t, smoothing)
    got = float(loss(np.concatenate([labels, teacher], axis=1), probs))
    assert got == pytest.approx(_numpy_distillation(labels, teacher, student, alpha, t, smoothing),
                                rel=1e-4)
    if alpha == 0.0:      # no teacher weight: plain (smoothed) cross-entropy
        plain = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)(labels, probs)
        assert got == pytest.approx(float(plain), rel=1e-4)
    else:                 # the teacher changes the loss
        assert abs(got - _numpy_distillation(labels, teacher, student, 0.0, t, smoothing)) > 1e-3


def test_teacher_logits_are_the_teachers_own_pre_softmax_outputs(cifar):
    import keras

    teacher = zoo.discover(MODELS)["ds_cnn_lite"]
    logits = training.teacher_logits_function(teacher)
    images = training.float_inputs(cifar.train.images[:32])
    probs = keras.models.load_model(teacher.keras_path, compile=False).predict(images, verbose=0)
    np.testing.assert_allclose(_softmax(logits(images)), probs, atol=1e-5)


# --- a run ------------------------------------------------------------------------------

def test_distilled_training_runs_checkpoints_and_resumes(cifar, tmp_path):
    model = _student(tmp_path / "student")
    args = dict(epochs=2, limit=128, steps_per_epoch=3, validation_limit=100, verbose=0,
                output_dir=tmp_path / "out", teachers_dir=MODELS)
    first = training.train(model, cifar, **args)
    assert first.epochs_run == 2 and np.isfinite(first.history["loss"]).all()
    assert set(first.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(first.history["val_accuracy"]) == 2
    # as if the run had been stopped after epoch 1: the checkpoint, which names the
    # distillation loss and metric, must load, compile and train on
    state_path = tmp_path / "out" / "checkpoint" / "state.json"
    state = json.loads(state_path.read_text())
    assert state["epoch"] == 2
    state["epoch"] = 1
    state["history"] = {k: v[:1] for k, v in state["history"].items()}
    state_path.write_text(json.dumps(state))
    resumed = training.train(model, cifar, **args)
    assert resumed.epochs_run == 1
    assert len(resumed.history["loss"]) == 2 and np.isfinite(resumed.history["loss"]).all()
    assert resumed.history["loss"][0] == first.history["loss"][0]


def test_a_missing_teacher_is_named(cifar, tmp_path):
    model = _student(tmp_path / "student")
    with pytest.raises(ModelError, match="teacher ds_cnn_lite needs a trained"):
        training.train(model, cifar, epochs=1, limit=64, steps_per_epoch=1, verbose=0,
                       output_dir=tmp_path / "out", teachers_dir=tmp_path)


def test_distilled_training_runs_under_jax(tmp_path, cifar_dir):
    """The training code is backend-neutral: the same smoke run under KERAS_BACKEND=jax."""
    pytest.importorskip("jax")
    model_folder = tmp_path / "models" / "student"
    _student(model_folder)
    script = f'''
import json, sys
from pathlib import Path
import keras
assert keras.backend.backend() == "jax", keras.backend.backend()
from mcuqual.data.cifar10 import load_cifar10
from mcuqual.model import zoo
from mcuqual.training import train as training
data = load_cifar10(Path({str(cifar_dir)!r}))
model = zoo.load_model_folder(Path({str(model_folder)!r}))
args = dict(limit=128, steps_per_epoch=2, validation_limit=100, verbose=0,
            output_dir=Path({str(tmp_path / "out")!r}), teachers_dir=Path({str(MODELS)!r}))
first = training.train(model, data, epochs=1, **args)
again = training.train(model, data, epochs=1, **args)   # resumed at the end: loads the checkpoint
print(json.dumps([first.history["loss"][0], first.val_top1, again.epochs_run]))
'''
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    loss, val_top1, resumed_epochs = json.loads(done.stdout.strip().splitlines()[-1])
    assert np.isfinite(loss) and 0.0 <= val_top1 <= 1.0 and resumed_epochs == 0


def test_results_record_the_split_the_teacher_and_the_last_validation_figure(tmp_path):
    from mcuqual.training.artifacts import _training_record

    model = _student(tmp_path / "student")
    (tmp_path / "history.json").write_text(json.dumps({"val_accuracy": [0.5, 0.81234]}))
    record = _training_record(model.recipe, tmp_path / "history.json")
    assert record["val_top1"] == 0.8123 and record["teacher"] == "ds_cnn_lite"
    assert "last 5000" in record["validation"]
    assert record["distillation"] == {"alpha": 0.9, "temperature": 4.0}
    old = zoo.discover(MODELS)["ds_cnn_s"].recipe      # an older card's results are unchanged
    assert _training_record(old, tmp_path / "history.json") == {}
