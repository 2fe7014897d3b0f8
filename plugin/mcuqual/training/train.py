"""Training a zoo model from its card's recipe, resumable epoch by epoch.

CPU training of a CIFAR-10 model takes hours on two cores, longer than one work
session, so every epoch leaves a checkpoint (model, optimizer state and
history) that the next call resumes from when the recipe is unchanged.

A recipe with `validation_images` holds out the last images of the training set
and measures them after every epoch; the test set is never looked at here (the
artifacts step evaluates it once, on the final model). A recipe with a
`teacher` distills: the teacher's logits on each augmented batch ride along with
the labels as extra target columns, so one backend-neutral loss (TensorFlow or
JAX) sees both.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import re
from typing import Any, Callable, Iterator

import numpy as np

from mcuqual.common.errors import ModelError
from mcuqual.data.cifar10 import Cifar10, Split
from mcuqual.model.preprocessing import PIXEL_OVER_255
from mcuqual.model.zoo import HISTORY_PLOT, KERAS_FILE, ZooModel, load_model_folder

if TYPE_CHECKING:
    import keras

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Bumped whenever training itself changes meaning, so no checkpoint of an older
# pipeline is resumed (2: augmentation redrawn every epoch; 3: validation split,
# distillation, cutout, no per-epoch look at the test set).
TRAINING_VERSION = 3
NUM_CLASSES = 10
CUTOUT_FILL = 0.5     # mid-grey in [0, 1] inputs, near CIFAR-10's mean pixel


@dataclass
class TrainingOutcome:
    epochs_run: int
    epochs_total: int
    val_top1: float | None        # last epoch, on the held-out split (None without one)
    seconds: float
    history: dict[str, list[float]]


def split_validation(train: Split, count: int) -> tuple[Split, Split | None]:
    """(what the model trains on, the held-out validation images): the last `count` training
    images in file order (the end of data_batch_5), fixed so every run holds out the same."""
    if count <= 0:
        return train, None
    if count >= len(train):
        raise ValueError(f"cannot hold out {count} of {len(train)} training images")
    cut = len(train) - count
    return (Split(train.images[:cut], train.labels[:cut]),
            Split(train.images[cut:], train.labels[cut:]))


def teacher_model(model: ZooModel, teachers_dir: Path | None = None) -> ZooModel | None:
    """The recipe's teacher: a zoo model (beside the student unless `teachers_dir` says where)
    with a trained float model."""
    recipe = model.require_recipe()
    if recipe.teacher is None:
        return None
    folder = Path(teachers_dir or model.folder.parent) / recipe.teacher
    teacher = load_model_folder(folder) if folder.is_dir() else None
    if teacher is None or not teacher.keras_path.is_file():
        raise ModelError(f"model {model.name}: its teacher {recipe.teacher} needs a trained "
                         f"{folder / KERAS_FILE}.")
    return teacher


def recipe_key(model: ZooModel, dataset: Cifar10, limit: int | None,
               teacher: ZooModel | None = None) -> str:
    """Identifies a training run: a checkpoint is only resumed by the same recipe and data
    (and the same teacher weights)."""
    text = json.dumps({"version": TRAINING_VERSION, "recipe": asdict(model.recipe),
                       "data": dataset.fingerprint,
                       "limit": limit, "builder": (model.folder / "model.py").read_text(),
                       "teacher": teacher and hashlib.sha256(
                           teacher.keras_path.read_bytes()).hexdigest()},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cutout(image, size: int, seed_pair):
    """Cutout (DeVries and Taylor, 2017): a size x size square at a uniformly drawn centre,
    clipped by the border, painted mid-grey."""
    import tensorflow as tf

    height, width = tf.shape(image)[0], tf.shape(image)[1]
    centre = tf.random.stateless_uniform([2], seed=seed_pair, minval=0, maxval=1 << 30,
                                         dtype=tf.int32) % tf.stack([height, width])
    top, left = centre[0] - size // 2, centre[1] - size // 2
    rows = tf.range(height)[:, None]
    cols = tf.range(width)[None, :]
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return tf.where(inside[:, :, None], tf.constant(CUTOUT_FILL, image.dtype), image)


def _augment(image, augmentation: tuple[str, ...], seed_pair):
    import tensorflow as tf

    if "random_crop_pad4" in augmentation:
        padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]], mode="REFLECT")
        image = tf.image.stateless_random_crop(padded, tf.shape(image), seed=seed_pair)
    if "horizontal_flip" in augmentation:
        image = tf.image.stateless_random_flip_left_right(image, seed=seed_pair + 1)
    for name in augmentation:
        found = re.fullmatch(r"cutout(\d+)", name)
        if found:
            image = _cutout(image, int(found.group(1)), seed_pair + 2)
    return image


def make_train_dataset(split: Split, batch_size: int, augmentation: tuple[str, ...], seed: int,
                       threads: int | None = None):
    """A seeded tf.data pipeline: pixel/255, per-image augmentation, one-hot labels
    (`threads`: the size of its own thread pool, for a run that must stay on one core)."""
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
            .prefetch(tf.data.AUTOTUNE)
            .with_options(_data_options(threads)))


def _data_options(threads: int | None):
    import tensorflow as tf

    options = tf.data.Options()
    if threads:
        options.threading.private_threadpool_size = threads
        options.threading.max_intra_op_parallelism = 1
    return options


def teacher_logits_function(teacher: ZooModel) -> Callable[[np.ndarray], np.ndarray]:
    """images (float, as the student gets them) -> the teacher's pre-softmax logits.

    The zoo's float models end in Dense(softmax); the logits are that layer's affine part,
    applied here to its input, so no layer is rebuilt and any backend serves."""
    import keras

    net = keras.models.load_model(teacher.keras_path, compile=False)
    head = net.layers[-1]
    if type(head).__name__ != "Dense" or int(head.units) != NUM_CLASSES:
        raise ModelError(f"teacher {teacher.name}: its last layer must be a {NUM_CLASSES}-way "
                         "Dense (the logits), not " + type(head).__name__)
    features = keras.Model(net.inputs, head.input)
    kernel = keras.ops.convert_to_numpy(head.kernel).astype(np.float32)
    bias = (keras.ops.convert_to_numpy(head.bias).astype(np.float32) if head.use_bias
            else np.zeros(NUM_CLASSES, np.float32))

    def logits(images: np.ndarray) -> np.ndarray:
        feats = keras.ops.convert_to_numpy(features.predict_on_batch(images))
        return feats.astype(np.float32) @ kernel + bias

    return logits


def with_teacher(data, logits: Callable[[np.ndarray], np.ndarray]) -> Iterator[tuple[Any, Any]]:
    """Endless (images, [one-hot labels | teacher logits]) batches: the teacher sees exactly the
    augmented batch the student gets (consistent teaching, Beyer et al., 2022); every pass over
    `data` is a new shuffle and a new draw of augmentations."""
    while True:
        for images, labels in data.as_numpy_iterator():
            yield images, np.concatenate([labels, logits(images)], axis=1).astype(np.float32)


_DISTILLATION_CLASSES: list[type] = []


def _distillation_classes() -> tuple[type, type]:
    """The loss and metric classes, made on first use so that importing this module does not
    import Keras; registered (as mcuqual>DistillationLoss, mcuqual>LabelAccuracy) so that a
    checkpoint naming them loads again."""
    if _DISTILLATION_CLASSES:
        return _DISTILLATION_CLASSES[0], _DISTILLATION_CLASSES[1]
    import keras
    from keras import ops

    serializable = keras.saving.register_keras_serializable(package="mcuqual")

    @serializable
    class DistillationLoss(keras.losses.Loss):
        """y_true = [one-hot labels | teacher logits], y_pred = the student's softmax.

        (1 - alpha) x CE(smoothed labels, p) + alpha x T^2 x KL(softmax(t / T) || softmax(z / T))
        (Hinton, Vinyals and Dean, 2015: the T^2 keeps the soft term's gradients on the hard
        term's scale). The student's logits z are taken as log p: they differ from the real
        ones by a per-image constant, which a softmax ignores."""

        def __init__(self, alpha: float, temperature: float, label_smoothing: float = 0.0,
                     num_classes: int = NUM_CLASSES, name: str = "distillation", **kwargs):
            super().__init__(name=name, **kwargs)
            self.alpha, self.temperature = float(alpha), float(temperature)
            self.label_smoothing, self.num_classes = float(label_smoothing), int(num_classes)

        def call(self, y_true, y_pred):
            n, t = self.num_classes, self.temperature
            labels, teacher = y_true[:, :n], y_true[:, n:]
            if self.label_smoothing:
                labels = labels * (1.0 - self.label_smoothing) + self.label_smoothing / n
            log_p = ops.log(ops.maximum(y_pred, 1e-30))
            hard = -ops.sum(labels * log_p, axis=-1)
            teacher_log_q = ops.log_softmax(teacher / t, axis=-1)
            student_log_q = ops.log_softmax(log_p / t, axis=-1)
            soft = ops.sum(ops.exp(teacher_log_q) * (teacher_log_q - student_log_q), axis=-1)
            return (1.0 - self.alpha) * hard + self.alpha * t * t * soft

        def get_config(self):
            return {**super().get_config(), "alpha": self.alpha,
                    "temperature": self.temperature, "label_smoothing": self.label_smoothing,
                    "num_classes": self.num_classes}

    @serializable
    class LabelAccuracy(keras.metrics.Mean):
        """Top-1 against the label columns of packed targets (the logits beside them ignored)."""

        def __init__(self, name: str = "accuracy", num_classes: int = NUM_CLASSES, **kwargs):
            super().__init__(name=name, **kwargs)
            self.num_classes = int(num_classes)

        def update_state(self, y_true, y_pred, sample_weight=None):
            hits = ops.equal(ops.argmax(y_true[:, :self.num_classes], axis=-1),
                             ops.argmax(y_pred, axis=-1))
            return super().update_state(ops.cast(hits, "float32"), sample_weight=sample_weight)

        def get_config(self):
            return {**super().get_config(), "num_classes": self.num_classes}

    _DISTILLATION_CLASSES.extend((DistillationLoss, LabelAccuracy))
    return DistillationLoss, LabelAccuracy


def distillation_loss(alpha: float, temperature: float, label_smoothing: float = 0.0):
    loss_class, _ = _distillation_classes()
    return loss_class(alpha, temperature, label_smoothing)


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
          validation_limit: int | None = None, verbose: int = 1,
          output_dir: Path | None = None, teachers_dir: Path | None = None,
          threads: int | None = None) -> TrainingOutcome:
    """Train (or resume) `model` per its recipe; write model.keras and history when done.

    `limit`/`steps_per_epoch`/`epochs`/`validation_limit` shrink the run for smoke
    tests; the committed artifacts always come from the full recipe. `teachers_dir`:
    where the recipe's teacher is (default: beside the model). `threads`: the size of
    the input pipeline's thread pool (the caller pins the framework's own threads).
    """
    import keras

    recipe = model.require_recipe()
    epochs = epochs or recipe.epochs
    output_dir = Path(output_dir or model.folder)
    checkpoint_dir = output_dir / "checkpoint"
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    teacher = teacher_model(model, teachers_dir)
    key = recipe_key(model, dataset, limit, teacher) + f"-e{epochs}-s{steps_per_epoch}"
    state_path = checkpoint_dir / "state.json"
    ckpt_path = checkpoint_dir / "last.keras"

    keras.utils.set_random_seed(recipe.seed)
    fit_split, val_split = split_validation(dataset.train, recipe.validation_images)
    train_split = fit_split if limit is None else fit_split.take(limit)
    if val_split is not None and validation_limit is not None:
        val_split = val_split.take(validation_limit)
    data = make_train_dataset(train_split, recipe.batch_size, recipe.augmentation, recipe.seed,
                              threads)
    steps = steps_per_epoch or len(train_split) // recipe.batch_size
    if steps_per_epoch:
        data = data.repeat()
    fit_data = data if teacher is None else with_teacher(data, teacher_logits_function(teacher))

    history: dict[str, list[float]] = {}
    initial_epoch = 0
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    if state.get("key") == key and ckpt_path.is_file():
        _distillation_classes()        # registered before a checkpoint that names them loads
        net = keras.models.load_model(ckpt_path)
        initial_epoch = int(state["epoch"])
        history = state["history"]
        print(f"[mcuqual] {model.name}: resuming at epoch {initial_epoch}/{epochs} from {ckpt_path}")
    else:
        net = model.build(seed=recipe.seed)
        if teacher is None:
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
            metrics: list[Any] = ["accuracy"]
        else:
            loss = distillation_loss(recipe.distillation_alpha, recipe.temperature,
                                     recipe.label_smoothing)
            metrics = [_distillation_classes()[1]()]
        net.compile(optimizer=_optimizer(model, steps, epochs), loss=loss, metrics=metrics)

    if val_split is not None:
        val_x, val_labels = float_inputs(val_split.images), val_split.labels.astype(np.int64)

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            for metric, value in (logs or {}).items():
                history.setdefault(metric, []).append(float(value))
            if val_split is not None:
                probs = net.predict(val_x, batch_size=500, verbose=0)
                picked = probs[np.arange(len(val_labels)), val_labels]
                history.setdefault("val_loss", []).append(
                    float(-np.log(np.maximum(picked, 1e-12)).mean()))
                history.setdefault("val_accuracy", []).append(
                    float((probs.argmax(axis=1) == val_labels).mean()))
                if verbose:
                    print(f"[mcuqual] {model.name} epoch {epoch + 1}/{epochs}: validation top-1 "
                          f"{history['val_accuracy'][-1]:.4f} ({len(val_labels)} held-out "
                          "training images)", flush=True)
            history.setdefault("epoch_seconds", []).append(time.time() - self._t0)
            # written aside and renamed: a run stopped mid-write keeps the previous epoch's
            # checkpoint whole, and the state never names a model that is not all there
            net.save(ckpt_path.with_name("writing.keras"))
            os.replace(ckpt_path.with_name("writing.keras"), ckpt_path)
            state_path.with_name("writing.json").write_text(
                json.dumps({"key": key, "epoch": epoch + 1, "history": history}))
            os.replace(state_path.with_name("writing.json"), state_path)

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.time()

    start = time.time()
    if initial_epoch < epochs:
        net.fit(fit_data, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
                callbacks=[Checkpoint()], verbose=verbose, shuffle=False)
    save_float_model(net, output_dir / "model.keras")
    (output_dir / "history.json").write_text(json.dumps(history, indent=1))
    plot_history(history, output_dir / HISTORY_PLOT, title=f"{model.name} training")
    val_top1 = history["val_accuracy"][-1] if history.get("val_accuracy") else None
    return TrainingOutcome(epochs_run=epochs - initial_epoch, epochs_total=epochs,
                           val_top1=val_top1, seconds=time.time() - start, history=history)


def plot_history(history: dict[str, list[float]], path: Path, title: str) -> Path:
    """Loss and accuracy per epoch, training against the held-out validation split."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, axis in (("loss", loss_ax), ("accuracy", acc_ax)):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + key)
            if values:
                label = ("validation " if prefix else "train ") + key
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
