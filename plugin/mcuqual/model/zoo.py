"""The model zoo: one folder per model, and the user's own models beside it.

A folder is a model if it holds a card (`card.toml`), a builder (`model.py`) or a
`.tflite`. The card's `[input]` table *declares* the float preprocessing (see
`preprocessing`); that is all a user's own INT8 `.tflite` needs. A builder and a
`[recipe]` are needed only to train (`--train`). A folder that cannot be read is
still listed, as a broken model whose tests report its one-line problem, so one
half-made folder never stops the other models.
"""
from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from mcuqual.common.errors import ConfigError, MissingArtifactError, ModelError
from mcuqual.model.preprocessing import PIXEL_OVER_255 as TRAINED_PREPROCESSING
from mcuqual.model.preprocessing import Preprocessing, PreprocessingError, from_table
from mcuqual.common.tomlfile import read_toml

if TYPE_CHECKING:  # keras is heavy; import it only where a model is built
    import keras

BUILDER_FILE = "model.py"
CARD_FILE = "card.toml"
KERAS_FILE = "model.keras"
TFLITE_FILE = "model_int8.tflite"
HISTORY_FILE = "history.json"
HISTORY_PLOT = "history.png"
RESULTS_FILE = "results.json"
CHECKPOINT_DIR = "checkpoint"
# Names reach file names, Allure ids and generated C: keep them to a safe alphabet.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Per-image augmentations the training code implements (besides cutoutN, see `Recipe.check`).
AUGMENTATIONS = ("random_crop_pad4", "horizontal_flip")


@dataclass(frozen=True)
class Recipe:
    """How the committed artifacts were trained; `--train` follows it again."""

    epochs: int
    batch_size: int
    optimizer: str
    learning_rate: float
    weight_decay: float
    schedule: str
    warmup_epochs: int
    label_smoothing: float
    augmentation: tuple[str, ...]
    seed: int
    # The last `validation_images` of the 50,000 training images are held out: training never
    # sees them and every choice (epochs, checkpoint, architecture) is made on them, so the
    # test set is evaluated once per final model. 0 (older cards): train on all 50,000 and
    # measure nothing per epoch.
    validation_images: int = 0
    # Knowledge distillation (Hinton et al., 2015): a zoo model whose logits on the same
    # augmented batch are the soft targets; the loss is (1 - alpha) x cross-entropy with the
    # labels + alpha x temperature^2 x KL(teacher || student), both softened by `temperature`.
    teacher: str | None = None
    distillation_alpha: float = 0.0
    temperature: float = 1.0

    @classmethod
    def from_table(cls, table: dict[str, Any], where: Path) -> "Recipe":
        try:
            recipe = cls(
                epochs=int(table["epochs"]), batch_size=int(table["batch_size"]),
                optimizer=str(table["optimizer"]), learning_rate=float(table["learning_rate"]),
                weight_decay=float(table.get("weight_decay", 0.0)),
                schedule=str(table.get("schedule", "cosine")),
                warmup_epochs=int(table.get("warmup_epochs", 0)),
                label_smoothing=float(table.get("label_smoothing", 0.0)),
                augmentation=tuple(table.get("augmentation", ())), seed=int(table["seed"]),
                validation_images=int(table.get("validation_images", 0)),
                teacher=str(table["teacher"]) if table.get("teacher") else None,
                distillation_alpha=float(table.get("distillation_alpha", 0.0)),
                temperature=float(table.get("temperature", 1.0)))
        except KeyError as exc:
            raise ModelError(f"{where}: [recipe] lacks {exc.args[0]!r}.") from exc
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{where}: [recipe] has a value of the wrong type ({exc}).") from exc
        recipe.check(where)
        return recipe

    def check(self, where: Path) -> None:
        """One-line errors for values that would train something else than the card says."""
        unknown = [a for a in self.augmentation if a not in AUGMENTATIONS
                   and not re.fullmatch(r"cutout([1-9][0-9]?)", a)]
        if unknown:
            raise ModelError(f"{where}: [recipe] augmentation {unknown[0]!r} is unknown; known: "
                             f"{', '.join(AUGMENTATIONS)}, cutoutN (an N x N square, N < 100).")
        if not 0 <= self.validation_images < 50_000:
            raise ModelError(f"{where}: [recipe] validation_images must be 0..49999.")
        if self.teacher is not None:
            if not NAME_PATTERN.fullmatch(self.teacher):
                raise ModelError(f"{where}: [recipe] teacher {self.teacher!r} is no model name.")
            if not 0.0 < self.distillation_alpha <= 1.0 or self.temperature <= 0.0:
                raise ModelError(f"{where}: [recipe] a teacher needs 0 < distillation_alpha <= 1 "
                                 "and temperature > 0.")
        elif self.distillation_alpha:
            raise ModelError(f"{where}: [recipe] distillation_alpha is set but no teacher is.")


@dataclass(frozen=True)
class ZooModel:
    """A model folder (or a one-off `.tflite`): what the card declares and where the files are.

    `problem` is set for a folder that could not be read; every stage that needs the
    model raises it (`require_usable`), so its tests report it and the others run.
    """

    name: str
    folder: Path
    title: str
    summary: str
    input_shape: tuple[int, ...]
    preprocessing: Preprocessing | None
    recipe: Recipe | None
    card: dict[str, Any] = field(repr=False)
    tflite_file: str = TFLITE_FILE
    problem: str | None = None

    @classmethod
    def broken(cls, folder: Path, problem: str) -> "ZooModel":
        return cls(name=folder.name, folder=folder, title=folder.name, summary="",
                   input_shape=(32, 32, 3), preprocessing=None, recipe=None, card={},
                   problem=problem)

    @classmethod
    def from_tflite(cls, path: Path, preprocessing: Preprocessing) -> "ZooModel":
        """A `.tflite` outside the zoo (`--tflite PATH --preprocessing ...`)."""
        path = Path(path).resolve()
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)[:64].lstrip("._-") or "model"
        if not path.is_file():
            return cls.broken(path.parent / name, f"--tflite {path}: no such file.")
        return cls(name=name, folder=path.parent, title=path.name, summary=f"one-off file {path}",
                   input_shape=(32, 32, 3), preprocessing=preprocessing, recipe=None, card={},
                   tflite_file=path.name)

    @property
    def has_builder(self) -> bool:
        return (self.folder / BUILDER_FILE).is_file()

    def require_usable(self) -> None:
        if self.problem is not None:
            raise ModelError(self.problem)

    def require_recipe(self) -> "Recipe":
        """Training (and quantizing a float model) needs a builder, a recipe and the preprocessing
        the training code implements; qualifying a committed .tflite needs none of them."""
        self.require_usable()
        if self.recipe is None or not self.has_builder:
            raise ModelError(
                f"model {self.name} cannot be trained: --train needs {BUILDER_FILE} with a build() "
                f"function and a [recipe] table in {CARD_FILE}; without them the committed "
                f"{self.tflite_file} is qualified as it is.")
        if self.preprocessing != TRAINED_PREPROCESSING:
            raise ModelError(
                f"model {self.name}: the suite trains and quantizes float models on RGB "
                f"{TRAINED_PREPROCESSING.describe()} inputs, but its card declares "
                f"{self.preprocessing.describe() if self.preprocessing else 'none'}; train it "
                "yourself and bring the INT8 .tflite.")
        return self.recipe

    @property
    def keras_path(self) -> Path:
        return self.folder / KERAS_FILE

    @property
    def tflite_path(self) -> Path:
        return self.folder / self.tflite_file

    @property
    def history_path(self) -> Path:
        return self.folder / HISTORY_FILE

    @property
    def results_path(self) -> Path:
        return self.folder / RESULTS_FILE

    @property
    def checkpoint_dir(self) -> Path:
        return self.folder / CHECKPOINT_DIR

    @property
    def trained(self) -> bool:
        return self.keras_path.is_file() or self.tflite_path.is_file()

    def results(self) -> dict[str, Any]:
        """The card's measured half, written by training; empty until trained."""
        if not self.results_path.is_file():
            return {}
        return json.loads(self.results_path.read_text())

    def builder(self) -> Callable[..., "keras.Model"]:
        path = self.folder / BUILDER_FILE
        spec = importlib.util.spec_from_file_location(f"mcuqual_zoo_{self.name}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        except Exception as exc:
            raise ModelError(f"{path}: the builder failed to import: {exc}") from exc
        if not callable(getattr(module, "build", None)):
            raise ModelError(f"{path}: defines no build() function.")
        return module.build

    def build(self, seed: int | None = None) -> "keras.Model":
        try:
            return self.builder()(seed=seed)
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"model {self.name}: build() failed: {exc}") from exc

    def require_trained(self) -> None:
        self.require_usable()
        if self.trained:
            return
        if not self.has_builder:
            raise ModelError(f"model {self.name}: {self.folder} holds no {self.tflite_file}; put "
                             f"the INT8 .tflite there (or name it with tflite = \"...\" in "
                             f"{CARD_FILE}).")
        raise MissingArtifactError(
            f"model {self.name} has no trained artifacts ({self.folder / KERAS_FILE} and "
            f"{self.folder / TFLITE_FILE} are missing). Train it with "
            f"`pytest qualification --model {self.name} --train` or "
            f"`mcuqual-train {self.name}`.")


def _tflite_file(folder: Path, card: dict[str, Any], card_path: Path) -> str:
    named = card.get("tflite")
    if named is not None:
        if not isinstance(named, str) or Path(named).name != named:
            raise ModelError(f"{card_path}: tflite = {named!r} must be a file name in {folder}.")
        if not (folder / named).is_file():
            raise ModelError(f"{card_path}: tflite = {named!r}, but {folder / named} does not exist.")
        return named
    if (folder / TFLITE_FILE).is_file() or (folder / BUILDER_FILE).is_file():
        return TFLITE_FILE
    found = sorted(p.name for p in folder.glob("*.tflite"))
    if len(found) > 1:
        raise ModelError(f"{folder}: holds {len(found)} .tflite files ({', '.join(found)}); name "
                         f"the one to qualify with tflite = \"...\" in {CARD_FILE}.")
    return found[0] if found else TFLITE_FILE


def load_model_folder(folder: Path) -> ZooModel:
    """Read one model folder; ModelError (one line, saying what to add) if it is unusable."""
    card_path = folder / CARD_FILE
    if not NAME_PATTERN.fullmatch(folder.name):
        raise ModelError(f"{folder}: a model folder's name may hold only letters, digits, '_', "
                         "'.' and '-' (it names files and generated C).")
    if not card_path.is_file():
        raise ModelError(
            f"{folder}: a model folder needs {CARD_FILE} declaring how the model's float input "
            f"was made from the pixels; the smallest card is two lines: [input] and "
            f"preprocessing = \"pixel / 255\" (or \"pixel\", ...; see README \"Qualify your own "
            f"model\").")
    card = read_toml(card_path, ModelError)
    name = card.get("name", folder.name)
    if name != folder.name:
        raise ModelError(f"{card_path}: name {name!r} differs from its folder {folder.name!r}.")
    inputs = card.get("input", {})
    if not isinstance(inputs, dict):
        raise ModelError(f"{card_path}: [input] must be a table.")
    try:
        declared = from_table(inputs, str(card_path))
    except PreprocessingError as exc:
        raise ModelError(str(exc)) from None
    recipe = Recipe.from_table(card["recipe"], card_path) if "recipe" in card else None
    return ZooModel(
        name=name, folder=folder, title=card.get("title", name), summary=card.get("summary", ""),
        input_shape=tuple(inputs.get("shape", (32, 32, 3))), preprocessing=declared,
        recipe=recipe, card=card, tflite_file=_tflite_file(folder, card, card_path))


def _is_model_folder(folder: Path) -> bool:
    return ((folder / BUILDER_FILE).is_file() or (folder / CARD_FILE).is_file()
            or any(folder.glob("*.tflite")))


def discover(models_dir: Path) -> dict[str, ZooModel]:
    """Every model folder under `models_dir`, by name; unreadable ones as broken models."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise ConfigError(f"models folder {models_dir} does not exist.")
    found = {}
    for folder in sorted(p for p in models_dir.iterdir() if p.is_dir()):
        if _is_model_folder(folder):
            try:
                model = load_model_folder(folder)
            except ModelError as exc:
                model = ZooModel.broken(folder, str(exc))
            found[model.name] = model
    return found


def select(models_dir: Path, names: list[str] | None) -> list[ZooModel]:
    """The models named (default: all), with a one-line error for an unknown name."""
    zoo = discover(models_dir)
    if not names:
        return list(zoo.values())
    unknown = [n for n in names if n not in zoo]
    if unknown:
        raise ConfigError(f"unknown model {', '.join(unknown)}; valid: {', '.join(zoo) or 'none'} "
                          f"(folders in {models_dir}).")
    return [zoo[n] for n in dict.fromkeys(names)]
