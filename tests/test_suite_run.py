"""The whole suite through pytest, on a tiny model built in the test and the real test set."""
from __future__ import annotations

import json
import os
import re

from pathlib import Path

import numpy as np
import pytest
from mcuqual.plugin import EXIT_ERROR
from mcuqual.qualify.regression import Baseline
from mcuqual.report.render import render, view
from project import add_model, make_project

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def run_suite(pytester, cifar_dir):
    make_project(pytester.path)

    def run(*args):
        result = pytester.runpytest_subprocess("qualification", f"--dataset-dir={cifar_dir}",
                                               "-p", "no:cacheprovider", *args, timeout=900)
        document = pytester.path / "reports" / "latest" / "qualification.json"
        return result, json.loads(document.read_text()) if document.is_file() else None
    return run


def _independent_top1(keras_path, cifar) -> float:
    """Top-1 of the same model through TensorFlow Lite (not tflite_micro), for cross-checking."""
    import keras
    import tensorflow as tf
    from mcuqual.quantize.calibration import calibration_images
    from mcuqual.common.capture import captured_fds
    from mcuqual.quantize.convert import convert

    flatbuffer = convert(keras.models.load_model(keras_path, compile=False),
                         calibration_images(cifar))
    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = inp["quantization"]
    q = np.clip(np.round(cifar.test.images / 255.0 / scale) + zero, -128, 127).astype(np.int8)
    predictions = []
    with captured_fds(2):
        for image in q:
            interpreter.set_tensor(inp["index"], image[None])
            interpreter.invoke()
            predictions.append(int(interpreter.get_tensor(out["index"]).argmax()))
    return float((np.array(predictions) == cifar.test.labels).mean())


def test_suite_reports_every_figure_with_its_evidence(run_suite, pytester, tiny_keras_path, cifar):
    add_model(pytester.path, "tiny", tiny_keras_path)
    result, doc = run_suite("--samples=4")
    # the tiny model is fast and small but inaccurate: only accuracy fails
    result.assert_outcomes(passed=4, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    records = {r["requirement"]: r for r in doc["results"]}
    assert set(records) == {"REQ-ACC", "REQ-WEIGHTS", "REQ-ARENA", "REQ-LATENCY", "REQ-ENERGY"}

    acc = records["REQ-ACC"]
    assert acc["evidence"] == "host" and acc["samples"] == 10_000 and acc["verdict"] == "not met"
    assert acc["value"] == pytest.approx(_independent_top1(tiny_keras_path, cifar), abs=0.003)

    weights = records["REQ-WEIGHTS"]
    assert weights["evidence"] == "host" and weights["verdict"] == "pass"
    assert 3 * 3 * 3 * 8 + 8 * 10 + 4 * 18 <= weights["value"] < 4096

    arena = records["REQ-ARENA"]
    assert arena["evidence"] == "host" and arena["verdict"] == "pass"
    assert arena["value"] >= 16 * 16 * 8

    assert acc["details"]["on_target_images"] == 4 and acc["details"]["host_twin_mismatches"] == 0

    latency = records["REQ-LATENCY"]
    assert latency["evidence"] == "emulated" and latency["samples"] == 3
    details = latency["details"]
    # per-layer cycles add up to (nearly) the total: only the hooks' own cycles are outside
    assert 0.95 < sum(details["layers"].values()) / details["median_cycles"] <= 1.0
    assert latency["value"] == pytest.approx(1000 * details["median_cycles"] / 120e6)
    assert details["input_dependence"] < 0.01
    # the band is this model's own: the M4 model's ranged rules at both ends, plus its
    # allowance for what it leaves out
    low, high = latency["band"]
    assert 0.02 <= low < 0.1 and 0.02 < high < 0.6 and (low, high) != (0.05, 0.08)
    energy = records["REQ-ENERGY"]
    assert energy["evidence"] == "modelled"
    # the modelled monitor's windows (marker pin, 100 kHz samples) span the measured inference
    windows = energy["details"]["window_seconds"]
    assert len(windows) == 3 and energy["details"]["marker_pin"] == "PB2"
    assert all(abs(w - latency["value"] / 1000) <= 2e-5 for w in windows)
    assert energy["value"] == pytest.approx(sorted(windows)[1] * energy["details"]["run_power_mw"])

    # the terminal matrix and the Allure extras
    assert any(line.startswith("stm32l4r9  tiny") for line in result.outlines)
    allure = pytester.path / "reports" / "allure-results"
    env = (allure / "environment.properties").read_text()
    assert "dataset fingerprint (16 hex digits)=" in env
    assert re.search(r"^tiny \.tflite sha256=[0-9a-f]{64}$", env, re.M)
    assert re.search(r"^tiny firmware \(stm32l4r9\) sha256=[0-9a-f]{64}$", env, re.M)
    assert re.search(r"^requirements sha256=[0-9a-f]{64}$", env, re.M)
    assert "stm32l4r9 pyOCD target=stm32l4r9aiix (mcuqual built-in" in env
    categories = json.loads((allure / "categories.json").read_text())
    assert {"Requirement not met", "Not measurable with this probe"} <= {c["name"] for c in categories}
    labelled = [json.loads(p.read_text()) for p in allure.glob("*-result.json")]
    labels = {(label["name"], label["value"]) for r in labelled for label in r["labels"]}
    assert ("story", "tiny") in labels and ("feature", "REQ-ACC Top-1 accuracy of the INT8 model on "
                                                       "the CIFAR-10 test set") in labels
    latency_result = next(r for r in labelled if any(
        label["name"] == "feature" and label["value"].startswith("REQ-LATENCY")
        for label in r["labels"]))
    attachments = {a["name"]: a for a in latency_result["attachments"]}
    # the fixture's internal tuple is hidden; the pipeline's steps carry their real durations
    parameters = {p["name"]: p for p in latency_result["parameters"]}
    assert parameters["qualification_case"]["mode"] == "hidden"
    assert "mode" not in parameters["board"] or parameters["board"]["mode"] != "hidden"
    target_step = next(s for s in latency_result["steps"] if s["name"].startswith("target"))
    assert target_step["stop"] - target_step["start"] > 100          # ms: it ran the target
    assert attachments["latency per layer"]["type"] == "image/png"
    swo = (allure / attachments["SWO log"]["source"]).read_text()
    assert swo.startswith("BOOT model=tiny") and "LAYER 0 0:CONV_2D cycles=" in swo
    by_feature = {label["value"].split()[0]: r for r in labelled for label in r["labels"]
                  if label["name"] == "feature" and label["value"].startswith("REQ-")}
    assert {"confusion matrix", "measurement"} <= {a["name"] for a in by_feature["REQ-ACC"]["attachments"]}
    assert "flash and RAM" in {a["name"] for a in by_feature["REQ-ARENA"]["attachments"]}
    # each result states its verdict in the verdict's words, a pass too (Allure shows a
    # passed test no message, and a pass inside the band says so only there)
    for requirement, result in by_feature.items():
        assert f"Verdict: {records[requirement]['message']}" in result["description"]
    assert any(step["name"].startswith("build") for step in by_feature["REQ-WEIGHTS"]["steps"])
    energy_result = next(r for r in labelled if any(
        label["name"] == "feature" and label["value"].startswith("REQ-ENERGY")
        for label in r["labels"]))
    # a modelled monitor's trace only restates the latency: no picture of it
    assert not any(a["name"] == "energy windows" for a in energy_result["attachments"])
    # the per-layer table, as HTML and CSV, layer by layer with shapes and kernels
    table = (allure / attachments["per-layer table (csv)"]["source"]).read_text().splitlines()
    assert table[0].startswith("layer,op,input_shape,output_shape,kernel,macs,cycles,ms")
    assert table[1].startswith("0,CONV_2D,1x32x32x3,1x16x16x8,mq_conv2d_s8,")
    assert attachments["per-layer table"]["type"] == "text/html"
    # 4 inferences on target, 3 of them timed: the fourth is said to be untimed, not zero
    assert "cycles=not timed" in swo and " cycles=0\n" not in swo + "\n"

    # the deployment summary, and the rendered report as a browser shows it
    summary = (pytester.path / "reports" / "latest" / "summary.md").read_text()
    assert "| tiny | stm32l4r9 | virtual-stm32l4r9 |" in summary and "(emulated)" in summary
    index = render(REPO, allure, pytester.path / "allure-report")
    page = view(index.parent, pytester.path / "report.png")
    assert "Deployment summary · stm32l4r9" in page
    # the verdict first: the report's name is the run's answer
    assert "mcuqual: 0 of 1 model x board pair meet every requirement; closest: tiny on " \
           "stm32l4r9 (top-1 " in page
    # Allure 3 files the not-met result under the project's category, not "Product errors"
    categories = json.loads((index.parent / "widgets" / "categories.json").read_text())
    names = {node["name"]: node for node in categories["nodes"].values()
             if node.get("type") == "category"}
    assert names["Requirement not met"]["statistic"]["failed"] >= 1
    assert "Product errors" not in names
    assert "Requirement not met" in view(index.parent, route="categories")
    # the tree is board > requirement > model; the latency test's own page has its title
    # (with the cycle model's band) and the per-layer table among its attachments
    latency_id = next(r["id"] for r in map(json.loads, (p.read_text() for p in
                      (index.parent / "data" / "test-results").glob("*.json")))
                      if r["name"].startswith("REQ-LATENCY"))
    page = view(index.parent, route=latency_id)
    assert re.search(r"REQ-LATENCY · tiny on stm32l4r9: [0-9.]+ ms \(emulated, -\d+/\+\d+ %\) "
                     r"(meets|fails) &lt;= 12.6 ms", page)
    assert "per-layer table" in page
    assert (pytester.path / "report.png").stat().st_size > 10_000


def test_untrained_model_is_reported_not_dropped(run_suite, pytester, tiny_keras_path):
    add_model(pytester.path, "tiny", tiny_keras_path)
    add_model(pytester.path, "untrained", None)
    result, doc = run_suite("--evidence=measured")
    untrained = [r for r in doc["results"] if r["model"] == "untrained"]
    assert len(untrained) == 5
    assert {r["verdict"] for r in untrained if r["metric"] in ("top1", "weights_bytes")} == {"error"}
    assert "has no trained artifacts" in result.stdout.str()
    # with --evidence=measured, host figures can no longer pass
    tiny = {r["requirement"]: r["verdict"] for r in doc["results"] if r["model"] == "tiny"}
    assert tiny["REQ-WEIGHTS"] == "insufficient evidence"
    assert result.ret == EXIT_ERROR                 # the untrained model's errors come first


def test_missing_dataset_fails_accuracy_but_keeps_the_other_figures(pytester, tiny_keras_path):
    make_project(pytester.path)
    folder = add_model(pytester.path, "tiny", None)
    # a committed .tflite needs no dataset for its weights and arena
    import keras
    from mcuqual.quantize.convert import convert
    rng = np.random.default_rng(0)
    model = keras.models.load_model(tiny_keras_path, compile=False)
    (folder / "model_int8.tflite").write_bytes(
        convert(model, rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)))
    result = pytester.runpytest_subprocess("qualification", f"--dataset-dir={pytester.path}/none",
                                           "-p", "no:cacheprovider", timeout=600)
    doc = json.loads((pytester.path / "reports" / "latest" / "qualification.json").read_text())
    verdicts = {r["requirement"]: r for r in doc["results"]}
    assert verdicts["REQ-ACC"]["verdict"] == "error"
    assert "CIFAR-10 not found" in verdicts["REQ-ACC"]["message"]
    assert verdicts["REQ-WEIGHTS"]["verdict"] == "pass"
    assert verdicts["REQ-ARENA"]["verdict"] == "pass"
    assert result.ret == EXIT_ERROR      # no requirement failed: an error stopped it


def test_train_option_rebuilds_the_artifacts_it_then_qualifies(run_suite, pytester):
    folder = add_model(pytester.path, "tiny", None)
    result, doc = run_suite("--train", "--model=tiny")
    for artifact in ("model.keras", "model_int8.tflite", "history.json", "history.png",
                     "results.json"):
        assert (folder / artifact).is_file(), artifact
    card = json.loads((folder / "results.json").read_text())
    records = {r["requirement"]: r for r in doc["results"]}
    assert card["epochs"] == 1 and card["test_images"] == 10_000
    # the suite qualifies exactly what training produced
    assert records["REQ-ACC"]["value"] == pytest.approx(card["int8_top1"], abs=5e-5)
    arena, weights = records["REQ-ARENA"], records["REQ-WEIGHTS"]
    assert arena["details"]["tflm_arena_bytes"] == card["tflm_arena_bytes"]
    assert arena["value"] <= card["tflm_arena_bytes"]          # our plan is no larger than TFLM's
    assert weights["details"]["tflite_constant_bytes"] == card["constant_bytes"]
    # the ELF's model section holds those constants plus requantization parameters
    assert card["constant_bytes"] <= weights["value"] < card["constant_bytes"] + 2048
    assert result.ret == pytest.ExitCode.TESTS_FAILED   # one epoch of a tiny model: inaccurate


def test_exit_codes_and_the_regression_gate(run_suite, pytester, tiny_keras_path):
    """0 when every requirement passes, 1 when one fails or a model regressed."""
    add_model(pytester.path, "tiny", tiny_keras_path)
    # a requirements file the tiny model meets: this project's own, not the product's
    (pytester.path / "qualification" / "requirements.toml").write_text(
        (pytester.path / "qualification" / "requirements.toml").read_text()
        .replace("threshold = 0.86", "threshold = 0.10"))
    result, doc = run_suite("--update-baseline")
    assert {r["verdict"] for r in doc["results"]} == {"pass"}, doc["results"]
    assert result.ret == pytest.ExitCode.OK
    baseline_path = pytester.path / "qualification" / "baseline.json"
    baseline = Baseline.load(baseline_path)
    entry = baseline.entry("stm32l4r9", "virtual", "tiny")
    latency = next(r for r in doc["results"] if r["metric"] == "latency_ms")
    assert entry["median_cycles"] == latency["details"]["median_cycles"]

    result, _ = run_suite()                          # same code, same figures: no regression
    result.assert_outcomes(passed=6)
    assert result.ret == pytest.ExitCode.OK

    baseline.record("stm32l4r9", "virtual", "tiny", int(entry["median_cycles"] * 0.9),
                    entry["top1"] + 0.02)            # the model "used to be" faster and better
    baseline.save()
    result, doc = run_suite()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=5, failed=1)
    text = result.stdout.str()
    assert "REGRESSION: tiny on stm32l4r9:" in text and "cycles, baseline" in text
    assert "top-1" in text and {r["verdict"] for r in doc["results"]} == {"pass"}


def test_two_workers_report_what_one_process_does(run_suite, pytester, tiny_keras_path):
    """#17: `pytest -n 2` (pytest-xdist) spreads whole models over two workers, each with its
    own unit of the virtual board, and the controller writes one report: the same verdicts,
    figures and order as one process, the baseline and the Allure results included."""
    for name in ("tiny_a", "tiny_b"):
        add_model(pytester.path, name, tiny_keras_path)
    single, doc_single = run_suite("--samples=4")
    allure = pytester.path / "reports" / "allure-results"

    def allure_names():
        # each result's name; a REQ-ENERGY name's figure to figures()' resolution below
        names = sorted(json.loads(p.read_text())["name"] for p in allure.glob("*-result.json"))
        return [(name.split(": ")[0], pytest.approx(float(name.split(": ")[1].split()[0]),
                                                    rel=0.01), name.split(" mJ ")[1])
                if name.startswith("REQ-ENERGY") else name for name in names]
    allure_single = allure_names()
    parallel, doc_parallel = run_suite("-n", "2", "--samples=4", "--update-baseline")
    assert single.ret == parallel.ret == pytest.ExitCode.TESTS_FAILED     # accuracy, twice
    parallel.assert_outcomes(passed=8, failed=2)

    def figures(doc):
        # the modelled energy is integrated over a 100 kHz trace (a PPK2's rate) whose phase
        # against the inference differs from run to run (polling is paced by wall time): a
        # window may gain or lose one 10 us sample, so it is compared to that resolution
        return [(r["board"], r["model"], r["requirement"], r["verdict"],
                 pytest.approx(r["value"], rel=0.01) if r["metric"] == "energy_mj" else r["value"],
                 r["evidence"], r.get("band"), (r.get("details") or {}).get("median_cycles"))
                for r in doc["results"]]
    assert figures(doc_parallel) == figures(doc_single)
    assert len(doc_parallel["results"]) == 10
    assert set(doc_parallel["models"]) == {"tiny_a", "tiny_b"}
    assert doc_parallel["run"]["exit_code"] == 1 and not doc_parallel["run"]["not_run"]
    assert "mcuqual qualification" in parallel.stdout.str()      # the controller's matrix

    baseline = Baseline.load(pytester.path / "qualification" / "baseline.json")
    for record in doc_parallel["results"]:
        if record["metric"] == "latency_ms":
            entry = baseline.entry("stm32l4r9", "virtual", record["model"])
            assert entry["median_cycles"] == record["details"]["median_cycles"]
    # the tests' results and the deployment summary, as from one process: the folder was
    # emptied once, by the controller, before the workers wrote
    assert allure_names() == allure_single
    flash = Path(os.environ["MCUQUAL_VIRTUAL_BOARDS_DIR"]) / "stm32l4r9"
    assert {p.name for p in flash.glob("flash-gw*.bin")} == {"flash-gw0.bin", "flash-gw1.bin"}
