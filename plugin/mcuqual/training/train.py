"""Training a zoo model from its card's recipe, resumable epoch by epoch.

CPU training of a CIFAR-10 model takes hours on two cores, longer than one work
session, so every epoch leaves a checkpoint (model, optimizer state and
history) that the next call resumes from when the recipe is unchanged.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mcuqual.data.cifar10 import Cifar10, Split
from mcuqual.model.preprocessing import PIXEL_OVER_255
from mcuqual.model.zoo import HISTORY_PLOT, ZooModel

if TYPE_CHECKING:
    import keras

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Bumped whenever training itself changes meaning, so no checkpoint of an older
# pipeline is resumed (2: augmentation redrawn every epoch).
TRAINING_VERSION = 2


@dataclass
class TrainingOutcome:
    epochs_run: int
    epochs_total: int
    float_top1: float
    seconds: float
    history: dict[str, list[float]]


def recipe_key(model: ZooModel, dataset: Cifar10, limit: int | None) -> str:
    """Identifies a training run: a checkpoint is only resumed by the same recipe and data."""
    text = json.dumps({"version": TRAINING_VERSION, "recipe": asdict(model.recipe),
                       "data": dataset.fingerprint,
                       "limit": limit, "builder": (model.folder / "model.py").read_text()},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _augment(image, augmentation: tuple[str, ...], seed_pair):
    import tensorflow as tf

    if "random_crop_pad4" in augmentation:
        padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]], mode="REFLECT")
        image = tf.image.stateless_random_crop(padded, tf.shape(image), seed=seed_pair)
    if "horizontal_flip" in augmentation:
        image = tf.image.stateless_random_flip_left_right(image, seed=seed_pair + 1)
    return image


def make_train_dataset(split: Split, batch_size: int, augmentation: tuple[str, ...], seed: int):
    """A seeded tf.data pipeline: pixel/255, per-image augmentation, one-hot labels."""
    import tensorflow as tf

    images = tf.data.Dataset.from_tensor_slices((split.images, split.labels))
    # a fresh draw every epoch: with a fixed stream each image would get the same crop
    # and flip in every epoch, and the augmentation would do almost nothing
    counter = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).map(
        lambda s: tf.stack([s, s + 7]))
    def prepare(pair, seed_pair):
        image, label = pair
        image = tf.cast(image, tf.float32) / 255.0
        image = _augment(image, augmentation, seed_pair)
        return image, tf.one_hot(tf.cast(label, tf.int32), 10)
    return (tf.data.Dataset.zip((images, counter))
            .shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
            .map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE))


def float_inputs(images: np.ndarray) -> np.ndarray:
    """The float models' preprocessing: RGB pixel / 255 (what a trainable card must declare)."""
    return PIXEL_OVER_255.to_float(images, np.float32)


def _optimizer(model: ZooModel, steps_per_epoch: int, epochs: int):
    import keras

    recipe = model.require_recipe()
    total = max(1, steps_per_epoch * epochs)
    warmup = min(total - 1, steps_per_epoch * recipe.warmup_epochs)
    if recipe.schedule == "cosine":
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=recipe.learning_rate * 0.1 if warmup else recipe.learning_rate,
            decay_steps=total - warmup, alpha=0.01,
            warmup_target=recipe.learning_rate if warmup else None, warmup_steps=warmup)
    else:
        schedule = recipe.learning_rate
    if recipe.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=recipe.weight_decay)
    elif recipe.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=0.9, nesterov=True,
                                         weight_decay=recipe.weight_decay or None)
    else:
        raise ValueError(f"model {model.name}: unknown optimizer {recipe.optimizer!r}")
    if recipe.weight_decay:
        # decay kernels only: shrinking batch-norm scales and biases only hurts
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


def save_float_model(net: "keras.Model", path: Path) -> None:
    """Save weights and architecture only: the optimizer's slots would double or triple the
    file and are not needed to quantize or deploy (checkpoints keep them for resuming)."""
    import keras

    plain = keras.Model.from_config(net.get_config())
    plain.set_weights(net.get_weights())
    plain.save(path)


def train(model: ZooModel, dataset: Cifar10, *, epochs: int | None = None,
          limit: int | None = None, steps_per_epoch: int | None = None,
          test_limit: int | None = None, verbose: int = 1,
          output_dir: Path | None = None) -> TrainingOutcome:
    """Train (or resume) `model` per its recipe; write model.keras and history when done.

    `limit`/`steps_per_epoch`/`epochs`/`test_limit` shrink the run for smoke
    tests; the committed artifacts always come from the full recipe.
    """
    import keras

    recipe = model.require_recipe()
    epochs = epochs or recipe.epochs
    output_dir = Path(output_dir or model.folder)
    checkpoint_dir = output_dir / "checkpoint"
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    key = recipe_key(model, dataset, limit) + f"-e{epochs}-s{steps_per_epoch}"
    state_path = checkpoint_dir / "state.json"
    ckpt_path = checkpoint_dir / "last.keras"

    keras.utils.set_random_seed(recipe.seed)
    train_split = dataset.train if limit is None else dataset.train.take(limit)
    data = make_train_dataset(train_split, recipe.batch_size, recipe.augmentation, recipe.seed)
    steps = steps_per_epoch or len(train_split) // recipe.batch_size
    if steps_per_epoch:
        data = data.repeat()

    history: dict[str, list[float]] = {}
    initial_epoch = 0
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    if state.get("key") == key and ckpt_path.is_file():
        net = keras.models.load_model(ckpt_path)
        initial_epoch = int(state["epoch"])
        history = state["history"]
        print(f"[mcuqual] {model.name}: resuming at epoch {initial_epoch}/{epochs} from {ckpt_path}")
    else:
        net = model.build(seed=recipe.seed)
        net.compile(optimizer=_optimizer(model, steps, epochs),
                    loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
                    metrics=["accuracy"])

    test = dataset.test if test_limit is None else dataset.test.take(test_limit)
    test_x = float_inputs(test.images)
    test_y = keras.utils.to_categorical(test.labels, 10)

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            for metric, value in (logs or {}).items():
                history.setdefault(metric, []).append(float(value))
            history.setdefault("epoch_seconds", []).append(time.time() - self._t0)
            net.save(ckpt_path)
            state_path.write_text(json.dumps({"key": key, "epoch": epoch + 1, "history": history}))

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.time()

    start = time.time()
    if initial_epoch < epochs:
        net.fit(data, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
                validation_data=(test_x, test_y), validation_batch_size=500,
                callbacks=[Checkpoint()], verbose=verbose, shuffle=False)
    _, float_top1 = net.evaluate(test_x, test_y, batch_size=500, verbose=0)
    save_float_model(net, output_dir / "model.keras")
    (output_dir / "history.json").write_text(json.dumps(history, indent=1))
    plot_history(history, output_dir / HISTORY_PLOT, title=f"{model.name} training")
    return TrainingOutcome(epochs_run=epochs - initial_epoch, epochs_total=epochs,
                           float_top1=float(float_top1), seconds=time.time() - start,
                           history=history)


def plot_history(history: dict[str, list[float]], path: Path, title: str) -> Path:
    """Loss and accuracy per epoch, train against test."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, axis in (("loss", loss_ax), ("accuracy", acc_ax)):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + key)
            if values:
                label = ("test " if prefix else "train ") + key
                axis.plot(range(1, len(values) + 1), values, style, label=label)
        axis.set_xlabel("epoch")
        axis.set_title(key)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
