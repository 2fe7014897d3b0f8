"""The model zoo: one folder per model with a builder, a card and trained artifacts.

A folder is a model if it holds `model.py` (with `build()`) and `card.toml`.
Artifacts are optional: a model without them is still listed, so the suite can
say "not trained yet" instead of quietly qualifying fewer models.
"""
from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .errors import ConfigError, MissingArtifactError, ModelError
from .tomlfile import read_toml

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

    @classmethod
    def from_table(cls, table: dict[str, Any], where: Path) -> "Recipe":
        try:
            return cls(
                epochs=int(table["epochs"]), batch_size=int(table["batch_size"]),
                optimizer=str(table["optimizer"]), learning_rate=float(table["learning_rate"]),
                weight_decay=float(table.get("weight_decay", 0.0)),
                schedule=str(table.get("schedule", "cosine")),
                warmup_epochs=int(table.get("warmup_epochs", 0)),
                label_smoothing=float(table.get("label_smoothing", 0.0)),
                augmentation=tuple(table.get("augmentation", ())), seed=int(table["seed"]))
        except KeyError as exc:
            raise ModelError(f"{where}: [recipe] lacks {exc.args[0]!r}.") from exc


@dataclass(frozen=True)
class ZooModel:
    name: str
    folder: Path
    title: str
    summary: str
    input_shape: tuple[int, ...]
    preprocessing: str
    recipe: Recipe
    card: dict[str, Any] = field(repr=False)

    @property
    def keras_path(self) -> Path:
        return self.folder / KERAS_FILE

    @property
    def tflite_path(self) -> Path:
        return self.folder / TFLITE_FILE

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
        if not self.trained:
            raise MissingArtifactError(
                f"model {self.name} has no trained artifacts ({self.folder / KERAS_FILE} and "
                f"{self.folder / TFLITE_FILE} are missing). Train it with "
                f"`pytest qualification --model {self.name} --train` or "
                f"`mcuqual-train {self.name}`.")


def load_model_folder(folder: Path) -> ZooModel:
    card_path = folder / CARD_FILE
    if not (folder / BUILDER_FILE).is_file():
        raise ModelError(f"{folder}: a model folder needs {BUILDER_FILE} with a build() function.")
    if not card_path.is_file():
        raise ModelError(f"{folder}: a model folder needs {CARD_FILE} (title, input, recipe).")
    card = read_toml(card_path, ModelError)
    name = card.get("name", folder.name)
    if name != folder.name:
        raise ModelError(f"{card_path}: name {name!r} differs from its folder {folder.name!r}.")
    if "recipe" not in card:
        raise ModelError(f"{card_path}: lacks a [recipe] table.")
    inputs = card.get("input", {})
    return ZooModel(
        name=name, folder=folder, title=card.get("title", name), summary=card.get("summary", ""),
        input_shape=tuple(inputs.get("shape", (32, 32, 3))),
        preprocessing=inputs.get("preprocessing", "pixel / 255"),
        recipe=Recipe.from_table(card["recipe"], card_path), card=card)


def discover(models_dir: Path) -> dict[str, ZooModel]:
    """Every model folder under `models_dir`, by name."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise ConfigError(f"models folder {models_dir} does not exist.")
    found = {}
    for folder in sorted(p for p in models_dir.iterdir() if p.is_dir()):
        if (folder / BUILDER_FILE).is_file() or (folder / CARD_FILE).is_file():
            model = load_model_folder(folder)
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
