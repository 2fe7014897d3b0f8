"""Turning a trained float model into the zoo's committed artifacts and card results.

After training: quantize to INT8, evaluate both models on the full test set,
ask TFLM for its arena, and write `model_int8.tflite` and `results.json`, so a
later qualification run loads rather than recomputes.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from mcuqual.quantize import tflite_model
from mcuqual.common.cache import Cache
from mcuqual.quantize.calibration import CALIBRATION_IMAGES, RANGE_METHOD, calibration_images
from mcuqual.data.cifar10 import Cifar10
from mcuqual.common.errors import MissingArtifactError
from mcuqual.reference.evaluation import evaluate_int8
from mcuqual.model.macs import model_macs
from mcuqual.model.preprocessing import PIXEL_OVER_255 as TRAINED_PREPROCESSING
from mcuqual.quantize.convert import convert
from mcuqual.reference.tflm import tflm_arena
from mcuqual.training.train import float_inputs
from mcuqual.model.zoo import HISTORY_FILE, ZooModel


def finalize(model: ZooModel, dataset: Cifar10, cache: Cache, *, epochs: int,
             training_seconds: float, trained_on: str | None = None,
             trained_finished: str | None = None,
             output_dir: Path | None = None) -> dict[str, Any]:
    """`trained_finished`: when the float model was trained, for a model quantized again.
    The last epoch's validation figures come from the history.json training wrote beside."""
    import keras
    import tensorflow as tf

    output_dir = Path(output_dir or model.folder)
    recipe = model.require_recipe()
    net = keras.models.load_model(output_dir / "model.keras", compile=False)
    probs = net.predict(float_inputs(dataset.test.images), batch_size=500, verbose=0)
    float_top1 = float((probs.argmax(axis=1) == dataset.test.labels).mean())
    flatbuffer = convert(net, calibration_images(dataset))
    (output_dir / "model_int8.tflite").write_bytes(flatbuffer)
    summary = tflite_model.read(flatbuffer, model.name)
    inputs = tflite_model.quantize_images(dataset.test.images, summary.input, TRAINED_PREPROCESSING)
    int8 = evaluate_int8(flatbuffer, dataset.test, cache, model.name, TRAINED_PREPROCESSING, inputs)
    arena = tflm_arena(flatbuffer, inputs[0], model.name)
    results = {
        "model": model.name,
        "params": int(net.count_params()),
        "trainable_params": int(sum(int(np.prod(w.shape)) for w in net.trainable_weights)),
        "macs": model_macs(net),
        "float_top1": round(float_top1, 4),
        "int8_top1": round(int8.top1, 4),
        "ptq_drop_points": round(100 * (float_top1 - int8.top1), 2),
        "test_images": int8.images,
        "tflite_bytes": summary.file_bytes,
        "constant_bytes": summary.constant_bytes,
        "tflm_arena_bytes": arena.total_bytes,
        "operators": sorted(set(summary.operators)),
        "quantization": f"post-training full-integer INT8, {CALIBRATION_IMAGES} class-balanced "
                        f"training images for calibration; ranges: {RANGE_METHOD}",
        "epochs": epochs,
        "seed": recipe.seed,
        **_training_record(recipe, output_dir / HISTORY_FILE),
        "training_seconds": round(training_seconds, 1),
        "trained_on": trained_on or f"{platform.node()} ({platform.machine()}, CPU)",
        "dataset_fingerprint": dataset.fingerprint,
        "dataset_test_md5": dataset.file_md5.get("test_batch.bin", dataset.file_md5.get("test_batch")),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if trained_finished is None:
        results["finished"] = now
    else:
        results.update(finished=trained_finished, requantized=now)
    (output_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


def _training_record(recipe, history_path: Path) -> dict[str, Any]:
    """What a held-out split and a teacher add to the results (nothing for older recipes)."""
    record: dict[str, Any] = {}
    history = json.loads(history_path.read_text()) if history_path.is_file() else {}
    if recipe.validation_images:
        record["validation"] = (f"the last {recipe.validation_images} of the 50,000 training "
                                "images, held out from training")
        if history.get("val_accuracy"):
            record["val_top1"] = round(history["val_accuracy"][-1], 4)
    if recipe.teacher:
        record["teacher"] = recipe.teacher
        record["distillation"] = {"alpha": recipe.distillation_alpha,
                                  "temperature": recipe.temperature}
    return record


def requantize(model: ZooModel, dataset: Cifar10, cache: Cache) -> dict[str, Any]:
    """Quantize the committed float model again (after a calibration change), keeping its
    training record: the float weights and the epochs that made them are unchanged."""
    model.require_trained()
    if not model.keras_path.is_file():
        raise MissingArtifactError(f"model {model.name}: {model.keras_path} is missing; only a "
                                   "float model can be quantized again.")
    trained = model.results()
    epochs = int(trained.get("epochs", model.require_recipe().epochs))
    return finalize(model, dataset, cache, epochs=epochs,
                    training_seconds=float(trained.get("training_seconds", 0.0)),
                    trained_on=trained.get("trained_on"), trained_finished=trained.get("finished"))
