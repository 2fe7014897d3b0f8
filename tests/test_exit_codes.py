"""Exit codes that never hide an error, interrupts that never pass, reports never wiped by
a run that runs nothing. Each case is a real pytest run of the suite on a tiny model whose
INT8 .tflite sits in its folder as a user's would (no builder, no recipe)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcuqual.plugin import EXIT_ERROR
from project import make_project

REPO = Path(__file__).resolve().parent.parent

WEIGHTS_ONLY = """
[[requirement]]
id = "REQ-WEIGHTS"
title = "Model weights in flash"
metric = "weights_bytes"
op = "<="
threshold = {threshold}
unit = "KB"
source = "test"
"""
ARENA = """
[[requirement]]
id = "REQ-ARENA"
title = "Activation arena"
metric = "arena_bytes"
op = "<="
threshold = 120
unit = "KB"
source = "test"
"""


def add_user_model(root: Path, name: str, flatbuffer: bytes,
                   preprocessing: str = "pixel / 255") -> Path:
    folder = root / "models" / name
    folder.mkdir(parents=True)
    (folder / f"{name}.tflite").write_bytes(flatbuffer)
    (folder / "card.toml").write_text(f'[input]\npreprocessing = "{preprocessing}"\n')
    return folder


@pytest.fixture
def project(pytester, tiny_tflite):
    make_project(pytester.path)
    add_user_model(pytester.path, "tiny", tiny_tflite)
    return pytester


def _requirements(project, threshold_kb: float, arena: bool = False) -> None:
    text = WEIGHTS_ONLY.format(threshold=threshold_kb) + (ARENA if arena else "")
    (project.path / "qualification" / "requirements.toml").write_text(text)


def _run(project, *args):
    result = project.runpytest_subprocess("qualification", "-p", "no:cacheprovider",
                                          "--dataset-dir=/nonexistent", *args, timeout=600)
    path = project.path / "reports" / "latest" / "qualification.json"
    return result, json.loads(path.read_text()) if path.is_file() else None


def _break_a_folder(project) -> None:
    """A half-made model folder beside the good one: a card without a declaration."""
    folder = project.path / "models" / "halfmade"
    folder.mkdir()
    (folder / "halfmade.tflite").write_bytes(b"not yet")


def test_clean_pass_is_0(project):
    _requirements(project, 160)
    result, doc = _run(project)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert doc["run"]["status"] == "complete" and doc["run"]["exit_code"] == 0
    assert doc["run"]["verdicts"]["pass"] == 1


def test_not_met_only_is_1(project):
    _requirements(project, 0.001)
    result, doc = _run(project)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert doc["run"]["verdicts"]["not met"] == 1 and doc["run"]["exit_meaning"].startswith(
        "some requirement not met")


def test_error_only_is_distinct_and_one_broken_folder_stops_nothing_else(project):
    _requirements(project, 160)
    _break_a_folder(project)
    result, doc = _run(project)
    assert result.ret == EXIT_ERROR
    verdicts = {r["model"]: r for r in doc["results"]}
    assert verdicts["tiny"]["verdict"] == "pass"                 # the good model still ran
    assert verdicts["halfmade"]["verdict"] == "error"
    assert "card.toml" in verdicts["halfmade"]["message"]
    text = result.stdout.str()
    assert "INTERNALERROR" not in text and "Traceback" not in text
    assert f"exit code {EXIT_ERROR}: error" in text


def test_error_and_not_met_together_give_the_error_code(project):
    _requirements(project, 0.001)
    _break_a_folder(project)
    result, doc = _run(project)
    assert result.ret == EXIT_ERROR
    assert doc["run"]["verdicts"]["not met"] == 1 and doc["run"]["verdicts"]["error"] == 1


def test_a_half_made_folder_does_not_stop_other_models_or_other_runs(project):
    _requirements(project, 160)
    _break_a_folder(project)
    result, _ = _run(project, "--model=tiny")
    assert result.ret == pytest.ExitCode.OK
    listed = project.runpytest_subprocess("qualification", "--collect-only", "-q", timeout=300)
    assert listed.ret == pytest.ExitCode.OK and "halfmade" in listed.stdout.str()


INTERRUPTER = """
import os, signal
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    if "REQ-ARENA" in item.nodeid:
        os.kill(os.getpid(), signal.{signal})     # as a user's Ctrl-C, or a CI runner's cancel
    yield
"""


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_interrupted_run_says_so_keeps_what_it_measured_and_never_passes(project, signum):
    _requirements(project, 160, arena=True)
    (project.path / "conftest.py").write_text(INTERRUPTER.format(signal=signum))
    result, doc = _run(project)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert doc["run"]["status"] == "interrupted"
    assert "REQ-ARENA" in doc["run"]["interrupted_during"]
    assert doc["run"]["not_run"] == ["REQ-ARENA tiny on stm32l4r9"]
    assert [r["requirement"] for r in doc["results"]] == ["REQ-WEIGHTS"]   # kept
    summary = (project.path / "reports" / "latest" / "summary.md").read_text()
    assert "INTERRUPTED during" in summary
    results = [json.loads(p.read_text()) for p in
               (project.path / "reports" / "allure-results").glob("*-result.json")]
    arena = [r for r in results if "REQ-ARENA" in r["fullName"] + r["name"]]
    assert arena and arena[0]["status"] == "broken"
    assert arena[0]["statusDetails"]["message"].startswith("INTERRUPTED")


@pytest.mark.parametrize("args", [["--fixtures"], ["--collect-only"], ["--help"],
                                  ["--samples=abc"], ["--markers"]])
def test_runs_that_run_nothing_leave_the_allure_results_alone(project, args):
    results = project.path / "reports" / "allure-results"
    results.mkdir(parents=True)
    kept = results / "previous-result.json"
    kept.write_text("{}")
    project.runpytest_subprocess("qualification", *args, timeout=300)
    assert kept.is_file()


def test_a_run_replaces_the_previous_allure_results(project):
    _requirements(project, 160)
    results = project.path / "reports" / "allure-results"
    results.mkdir(parents=True)
    (results / "previous-result.json").write_text("{}")
    _run(project)
    assert not (results / "previous-result.json").exists()
    assert list(results.glob("*-result.json"))


def test_ctrl_c_while_reference_workers_are_busy_ends_in_seconds(pytester, cifar_dir):
    """SIGINT to pytest alone (not its process group), mid-way through a 10,000-image
    tflite_micro run of a real model: the workers are killed, not waited for."""
    make_project(pytester.path)
    add_user_model(pytester.path, "lite",
                   (REPO / "models" / "ds_cnn_lite" / "model_int8.tflite").read_bytes())
    (pytester.path / "qualification" / "requirements.toml").write_text(
        (REPO / "qualification" / "requirements.toml").read_text())
    env = {**os.environ, "MCUQUAL_PROGRESS": "off", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "qualification", "-p", "no:cacheprovider", "-x",
         f"--dataset-dir={cifar_dir}", "--model=lite", "-k", "REQ-ACC"],
        cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        workers = _wait_for_workers(process.pid, timeout_s=120)
        time.sleep(2)
        stopped = time.monotonic()
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        seconds = time.monotonic() - stopped
    finally:
        process.kill()
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output.decode()[-3000:]
    assert seconds < 10, f"{seconds:.1f} s to stop"
    time.sleep(1)
    assert not [w for w in workers if _alive(w)], "reference workers outlived the run"
    doc = json.loads((pytester.path / "reports" / "latest" / "qualification.json").read_text())
    assert doc["run"]["status"] == "interrupted"


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def _wait_for_workers(pid: int, timeout_s: float) -> list[int]:
    """Until pytest has spawned its reference workers (children running multiprocessing)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        workers = []
        for child in _children(pid):
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                workers.append(child)
        if workers:
            return workers
        time.sleep(0.2)
    raise AssertionError("the reference workers never started")


def test_the_report_renderer_replaces_only_its_own_reports(tmp_path):
    from mcuqual.report.render import RenderError, render

    results = tmp_path / "results"
    results.mkdir()
    (results / "x-result.json").write_text("{}")
    elsewhere = tmp_path / "my-documents"
    elsewhere.mkdir()
    (elsewhere / "thesis.tex").write_text("keep me")
    with pytest.raises(RenderError, match="not a report mcuqual-report rendered"):
        render(REPO, results, elsewhere)
    assert (elsewhere / "thesis.tex").read_text() == "keep me"


LATENCY = """
[[requirement]]
id = "REQ-LATENCY"
title = "Latency of one inference"
metric = "latency_ms"
op = "<="
threshold = 12.6
unit = "ms"
source = "test"
"""


def test_a_model_too_large_for_the_flash_is_not_met_with_its_size_not_an_error(
        pytester, cifar, cifar_dir):
    import keras
    from keras import layers
    from mcuqual.quantize.calibration import calibration_images
    from mcuqual.quantize.convert import convert

    inputs = keras.Input((32, 32, 3))
    x = layers.Flatten()(layers.Conv2D(60, 1)(inputs))          # 61,440 features
    x = layers.Dense(40)(x)                                     # 2.46 MB of weights > 2 MB
    giant = keras.Model(inputs, layers.Dense(10, activation="softmax")(x))
    make_project(pytester.path)
    add_user_model(pytester.path, "giant", convert(giant, calibration_images(cifar, 20)))
    (pytester.path / "qualification" / "requirements.toml").write_text(
        WEIGHTS_ONLY.format(threshold=160) + LATENCY)
    result = pytester.runpytest_subprocess("qualification", "-p", "no:cacheprovider",
                                           f"--dataset-dir={cifar_dir}", timeout=600)
    doc = json.loads((pytester.path / "reports" / "latest" / "qualification.json").read_text())
    records = {r["requirement"]: r for r in doc["results"]}
    weights = records["REQ-WEIGHTS"]
    assert weights["verdict"] == "not met"
    assert weights["value"] >= 61_440 * 40                     # the size, although nothing links
    assert "does not link" in weights["method"] and "2048 KB" in weights["method"]
    latency = records["REQ-LATENCY"]
    assert latency["verdict"] == "not met" and latency["value"] is None
    assert "cannot be deployed" in latency["message"]
    assert result.ret == pytest.ExitCode.TESTS_FAILED
