"""A user's own INT8 .tflite, qualified through the documented path: a folder with the file
and a card that declares its preprocessing, or --tflite with --preprocessing.

The model here takes the raw pixel (0-255) like MLPerf Tiny's published ResNet-8, so its
int8 input is pixel - 128 (scale 1, zero point -128): exactly the case the suite once
mis-read as pixel / 255 and reported at 11 % instead of the model's real accuracy."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mcuqual.model import preprocessing
from mcuqual.quantize import tflite_model
from mcuqual.plugin import EXIT_ERROR
from mcuqual.model.preprocessing import PreprocessingError
from project import make_project


@pytest.fixture(scope="module")
def raw_pixel_tflite(cifar, tmp_path_factory) -> Path:
    """Trained on raw 0-255 floats (it rescales inside), converted with raw-pixel calibration,
    saved as a user would save it."""
    import keras
    from keras import layers
    from mcuqual.quantize.calibration import calibration_images
    from mcuqual.quantize.convert import convert

    keras.utils.set_random_seed(11)
    inputs = keras.Input((32, 32, 3))
    x = layers.Rescaling(1 / 64.0)(inputs)
    x = layers.Conv2D(12, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(10, activation="softmax")(x))
    model.compile(optimizer=keras.optimizers.Adam(0.005), loss="sparse_categorical_crossentropy")
    model.fit(cifar.train.images[:8192].astype(np.float32), cifar.train.labels[:8192].astype(int),
              epochs=2, batch_size=128, verbose=0)
    flatbuffer = convert(model, calibration_images(cifar, 200), preprocessing.parse("pixel"))
    path = tmp_path_factory.mktemp("user") / "rawnet.tflite"
    path.write_bytes(flatbuffer)
    return path


def _tflm_top1_on_pixel_minus_128(flatbuffer: bytes, cifar) -> float:
    """The model's accuracy computed without the suite's preprocessing code: int8 = pixel - 128."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(flatbuffer, arena_size=1 << 21)
    inputs = (cifar.test.images.astype(np.int16) - 128).astype(np.int8)
    correct = 0
    for image, label in zip(inputs, cifar.test.labels):
        interpreter.set_input(image[None], 0)
        interpreter.invoke()
        correct += int(np.asarray(interpreter.get_output(0)).argmax() == label)
    return correct / len(inputs)


def test_the_model_takes_the_raw_pixel(raw_pixel_tflite):
    info = tflite_model.read(raw_pixel_tflite.read_bytes()).input
    assert info.scale == 1.0 and info.zero_point == -128


@pytest.fixture
def run(pytester, cifar_dir):
    make_project(pytester.path)

    def go(*args):
        result = pytester.runpytest_subprocess("qualification", f"--dataset-dir={cifar_dir}",
                                               "-p", "no:cacheprovider", "--samples=2", *args,
                                               timeout=900)
        doc = json.loads((pytester.path / "reports" / "latest" / "qualification.json").read_text())
        return result, {(r["model"], r["requirement"]): r for r in doc["results"]}
    return go


def test_own_model_folder_is_qualified_with_its_declared_preprocessing(
        run, pytester, raw_pixel_tflite, cifar):
    folder = pytester.path / "models" / "rawnet"
    folder.mkdir()
    (folder / "rawnet.tflite").write_bytes(raw_pixel_tflite.read_bytes())
    (folder / "card.toml").write_text('title = "a user\'s model"\n[input]\n'
                                      'preprocessing = "pixel"   # raw 0-255\n')
    result, records = run("--model=rawnet")
    acc = records[("rawnet", "REQ-ACC")]
    assert acc["verdict"] in ("pass", "not met"), acc["message"]
    expected = _tflm_top1_on_pixel_minus_128(raw_pixel_tflite.read_bytes(), cifar)
    assert expected > 0.25                            # a real, if small, classifier
    assert acc["value"] == expected
    assert acc["details"]["preprocessing"] == "pixel, RGB"
    assert acc["details"]["host_twin_mismatches"] == 0 and acc["details"]["on_target_images"] == 2
    latency = records[("rawnet", "REQ-LATENCY")]
    # MACs come from the .tflite graph, with no Keras model in the folder
    assert latency["details"]["macs"] == 16 * 16 * 27 * 12 + 8 * 8 * 108 * 16 + 16 * 10
    assert latency["details"]["macs_per_cycle"] > 0
    assert result.ret == pytest.ExitCode.TESTS_FAILED         # the tiny model misses 86 %


def test_a_wrong_declaration_is_an_error_not_a_figure(run, raw_pixel_tflite):
    result, records = run(f"--tflite={raw_pixel_tflite}", "--preprocessing=pixel / 255")
    acc = records[("rawnet", "REQ-ACC")]
    assert acc["verdict"] == "error" and acc["value"] is None
    assert "the preprocessing is probably wrong" in acc["message"]
    assert 'suggests \\"pixel\\" (raw 0-255)' in json.dumps(acc["message"])
    # the figures that do not depend on the inputs are still there
    assert records[("rawnet", "REQ-WEIGHTS")]["verdict"] == "pass"
    assert result.ret == EXIT_ERROR


def test_the_one_off_form_needs_a_declaration(pytester, raw_pixel_tflite):
    make_project(pytester.path)
    result = pytester.runpytest_subprocess("qualification", f"--tflite={raw_pixel_tflite}",
                                           timeout=300)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--tflite needs --preprocessing" in result.stderr.str()


@pytest.mark.parametrize("text,fields,message", [
    (None, {}, "not declared"),
    ("pixel/256", {}, "unknown preprocessing"),
    ("(pixel - mean) / std", {"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]},
     "look like values on the 0-1 scale"),
    ("(pixel - mean) / std", {"mean": 120.0}, "needs both mean and std"),
    ("(pixel - mean) / std", {"mean": [1, 2], "std": 60}, "needs 1 or 3 values"),
    ("pixel", {"channel_order": "RBG"}, "neither RGB nor BGR"),
    ("pixel / 255", {"mean": 3}, "does not use them"),
])
def test_declarations_are_parsed_as_data_and_checked(text, fields, message):
    with pytest.raises(PreprocessingError, match=message):
        preprocessing.parse(text, fields.get("mean"), fields.get("std"), fields.get("channel_order"))


def test_each_declared_form_computes_what_it_says():
    pixels = np.array([[[[0, 128, 255]]]], dtype=np.uint8)
    cases = {
        "pixel / 255": [0, 128 / 255, 1], "pixel": [0, 128, 255],
        "pixel / 127.5 - 1": [-1, 128 / 127.5 - 1, 1],
    }
    for text, expected in cases.items():
        np.testing.assert_allclose(preprocessing.parse(text).to_float(pixels).ravel(), expected)
    standard = preprocessing.from_option("(pixel - mean) / std; mean=10,20,30; std=2,4,5; order=BGR")
    # BGR: the model's channel 0 is blue (255), mean/std are given in the model's order
    np.testing.assert_allclose(standard.to_float(pixels).ravel(),
                               [(255 - 10) / 2, (128 - 20) / 4, (0 - 30) / 5])
    unit = preprocessing.parse("(pixel / 255 - mean) / std", [0.5] * 3, [0.25] * 3)
    np.testing.assert_allclose(unit.to_float(pixels).ravel(),
                               [(0 - 0.5) / 0.25, (128 / 255 - 0.5) / 0.25, (1 - 0.5) / 0.25])
    q = preprocessing.parse("pixel").quantize(pixels, 1.0, -128)
    assert q.ravel().tolist() == [-128, 0, 127]


def test_a_collapsed_prediction_is_flagged():
    declared = preprocessing.parse("pixel")
    with pytest.raises(PreprocessingError, match="96% of the 1000 test images are predicted as 'cat'"):
        preprocessing.check_predictions(np.array([3] * 960 + [1] * 40), [str(i) for i in range(3)]
                                        + ["cat"] + [str(i) for i in range(4, 10)], declared, "m")
    preprocessing.check_predictions(np.arange(1000) % 10, list("abcdefghij"), declared, "m")
