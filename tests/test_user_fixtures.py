"""Requirement tests of a user's own, written on the public fixtures, next to the suite's."""
from __future__ import annotations

import json

import pytest
from project import make_project
from test_exit_codes import WEIGHTS_ONLY, add_user_model

USER_TESTS = '''
def test_stack_fits(mcuqual_requirement):
    mcuqual_requirement("REQ-STACK", "Stack high-water mark", "<=", 16, "KB",
                        metric="stack_bytes")


def test_every_class(mcuqual_evaluation, mcuqual_requirement):
    confusion = mcuqual_evaluation.confusion()
    worst = float((confusion.diagonal() / confusion.sum(axis=1)).min())
    mcuqual_requirement("REQ-CLASS", "Every class", ">=", {class_percent}, "%", value=worst,
                        unit_of_value="fraction", evidence="host", method="worst class")


def test_the_stages_are_there(mcuqual_tflite, mcuqual_elf, mcuqual_swo_log, mcuqual_model):
    assert mcuqual_tflite[4:8] == b"TFL3"
    assert 0 < mcuqual_elf.weights_bytes < 10_000
    assert any(line.startswith("INFERENCE") for line in mcuqual_swo_log)
    assert mcuqual_model.preprocessing.describe() == "pixel / 255, RGB"
'''


@pytest.fixture
def project(pytester, tiny_tflite):
    make_project(pytester.path)
    add_user_model(pytester.path, "tiny", tiny_tflite)
    (pytester.path / "qualification" / "requirements.toml").write_text(
        WEIGHTS_ONLY.format(threshold=160))
    return pytester


def _run(project, cifar_dir, class_percent):
    (project.path / "qualification" / "test_mine.py").write_text(
        USER_TESTS.format(class_percent=class_percent))
    result = project.runpytest_subprocess("qualification", "-p", "no:cacheprovider",
                                          f"--dataset-dir={cifar_dir}", "--samples=2",
                                          timeout=600)
    doc = json.loads((project.path / "reports" / "latest" / "qualification.json").read_text())
    return result, {r["requirement"]: r for r in doc["results"]}, doc


def test_user_requirements_appear_with_their_verdicts_and_leave_the_rest_alone(project,
                                                                               cifar_dir):
    result, records, doc = _run(project, cifar_dir, class_percent=0)   # the tiny model misses a class
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.OK                   # as the built-in one alone gives
    assert records["REQ-WEIGHTS"]["verdict"] == "pass"
    stack = records["REQ-STACK"]
    assert stack["verdict"] == "pass" and stack["evidence"] == "emulated"
    assert 0 < stack["value"] <= 16 * 1024 and stack["metric"] == "stack_bytes"
    klass = records["REQ-CLASS"]
    assert klass["verdict"] == "pass" and klass["metric"] == "custom" and klass["unit"] == "fraction"
    header = next(line for line in result.outlines if line.startswith("board "))
    assert "REQ-STACK" in header and "REQ-CLASS" in header
    summary = (project.path / "reports" / "latest" / "summary.md").read_text()
    assert "REQ-CLASS" in summary and "REQ-STACK" in summary
    assert {r["id"] for r in doc["requirements"]} == {"REQ-WEIGHTS", "REQ-STACK", "REQ-CLASS"}


def test_a_user_requirement_not_met_is_a_failure_not_an_error(project, cifar_dir):
    result, records, _ = _run(project, cifar_dir, class_percent=99)
    assert records["REQ-CLASS"]["verdict"] == "not met"
    assert records["REQ-WEIGHTS"]["verdict"] == "pass"
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_the_fixtures_are_documented(project):
    result = project.runpytest_subprocess("qualification", "--fixtures", timeout=300)
    text = result.stdout.str()
    for name in ("mcuqual_deployment", "mcuqual_tflite", "mcuqual_evaluation", "mcuqual_firmware",
                 "mcuqual_elf", "mcuqual_board", "mcuqual_target_run", "mcuqual_swo_log",
                 "mcuqual_requirement"):
        assert name in text, name
    assert "A pyOCD session on the board with the model's firmware flashed" in text
