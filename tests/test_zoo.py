"""The model zoo: discovery, the builders' shapes, and MAC counting."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mcuqual.model import zoo
from mcuqual.common.errors import ConfigError, MissingArtifactError, ModelError
from mcuqual.model.macs import model_macs

MODELS = Path(__file__).resolve().parent.parent / "models"


def test_zoo_lists_the_study_models():
    found = zoo.discover(MODELS)
    assert {"vgg_baseline", "ds_cnn_lite", "resnet8"} <= set(found)
    assert all(m.recipe.epochs > 0 and m.recipe.seed is not None for m in found.values())


def test_vgg_baseline_has_exactly_the_studys_parameter_count():
    net = zoo.discover(MODELS)["vgg_baseline"].build()
    assert net.count_params() == 1_344_042
    assert net.get_layer("flatten").output.shape[1] == 512   # conv part ends at 2x2x128


def test_resnet8_matches_the_mlperf_reference():
    net = zoo.discover(MODELS)["resnet8"].build()
    trainable = sum(int(w.numpy().size) for w in net.trainable_weights)
    assert trainable == 78_186
    assert 12.0e6 < model_macs(net) < 13.0e6   # MLPerf quotes ~12.5 M MACs


def test_ds_cnn_lite_is_sized_for_the_board():
    net = zoo.discover(MODELS)["ds_cnn_lite"].build()
    assert 130_000 <= net.count_params() <= 170_000
    for layer in net.layers:
        if type(layer).__name__ in ("Conv2D", "DepthwiseConv2D") and layer.name != "stem_conv":
            assert int(layer.output.shape[-1]) % 4 == 0, layer.name


def test_mac_count_of_a_model_with_known_arithmetic():
    import keras
    from keras import layers

    inputs = keras.Input((8, 8, 2))
    x = layers.Conv2D(4, 3, padding="same")(inputs)          # 8*8 * 3*3*2 * 4 = 4608
    x = layers.DepthwiseConv2D(3, strides=2, padding="same")(x)  # 4*4 * 3*3 * 4 = 576
    x = layers.Flatten()(x)
    outputs = layers.Dense(10)(x)                             # 64 * 10 = 640
    assert model_macs(keras.Model(inputs, outputs)) == 4608 + 576 + 640


def test_untrained_model_says_how_to_train_it(tmp_path):
    folder = tmp_path / "fresh"
    folder.mkdir()
    (folder / "model.py").write_text("def build(seed=None):\n    raise RuntimeError('x')\n")
    (folder / "card.toml").write_text('name = "fresh"\n[input]\npreprocessing = "pixel / 255"\n'
                                      '[recipe]\nepochs = 1\nbatch_size = 8\n'
                                      'optimizer = "adamw"\nlearning_rate = 0.001\nseed = 1\n')
    model = zoo.discover(tmp_path)["fresh"]
    assert not model.trained
    with pytest.raises(MissingArtifactError, match="--train"):
        model.require_trained()
    with pytest.raises(ModelError, match="build\\(\\) failed"):
        model.build()


def test_unknown_model_name_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown model nope; valid: .*resnet8"):
        zoo.select(MODELS, ["nope"])


def test_card_name_must_match_folder(tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "model.py").write_text("def build(seed=None): pass\n")
    (folder / "card.toml").write_text('name = "b"\n[recipe]\n')
    broken = zoo.discover(tmp_path)["a"]              # listed, so its tests can say why
    with pytest.raises(ModelError, match="differs from its folder"):
        broken.require_usable()


def test_requantize_reproduces_the_committed_int8_artifact_and_keeps_the_training_record(
        cifar, tmp_path):
    """The committed .tflite must follow from the committed float model by the suite's own
    quantization; quantizing again keeps when and how the float model was trained."""
    import json
    import shutil

    from mcuqual.training import artifacts
    from mcuqual.common.cache import Cache
    from mcuqual.firmware.codegen.graph import read_graph

    source = zoo.discover(MODELS)["ds_cnn_xs"]
    folder = tmp_path / "ds_cnn_xs"
    shutil.copytree(source.folder, folder, ignore=shutil.ignore_patterns("model_int8.tflite"))
    before = json.loads((folder / "results.json").read_text())
    results = artifacts.requantize(zoo.load_model_folder(folder), cifar, Cache(tmp_path / "c"))
    # Same int8/int32 constants and zero points; the float scales agree to float32 rounding
    # (the per-channel scale arithmetic differs in the last bit between CPUs: seen on AVX-512)
    ours = read_graph((folder / "model_int8.tflite").read_bytes(), "requantized")
    committed = read_graph(source.tflite_path.read_bytes(), "committed")
    assert len(ours.tensors) == len(committed.tensors)
    for a, b in zip(ours.tensors, committed.tensors):
        assert (a.name, a.shape, a.dtype) == (b.name, b.shape, b.dtype)
        assert (a.data is None) == (b.data is None)
        if a.data is not None:
            np.testing.assert_array_equal(a.data, b.data, err_msg=a.name)
        assert (a.scales is None) == (b.scales is None)
        if a.scales is not None:
            np.testing.assert_array_equal(a.zero_points, b.zero_points, err_msg=a.name)
            np.testing.assert_allclose(a.scales, b.scales, rtol=1e-6, err_msg=a.name)
    assert json.loads((folder / "results.json").read_text()) == results
    # a last-bit scale difference moves a requantization multiplier and, on this machine,
    # one of 10,000 predictions: allow that, not a change of the model
    assert abs(results["int8_top1"] - before["int8_top1"]) <= 0.0002
    for kept in ("epochs", "training_seconds", "trained_on", "finished"):
        assert results[kept] == before[kept]
    assert results["requantized"] >= before["finished"]
