"""Option validation: a bad option ends the run at once with one clear line."""
from __future__ import annotations

import pytest
from project import add_model, make_project


@pytest.fixture
def project(pytester):
    make_project(pytester.path)
    add_model(pytester.path, "tiny", None)
    return pytester


@pytest.mark.parametrize("args,message", [
    (["--board=nucleo"], "mcuqual: unknown board nucleo; valid: stm32h743, stm32l4r9, stm32u585"),
    (["--model=giant"], "mcuqual: unknown model giant; valid: tiny"),
    (["--samples=0"], "--samples must be a positive number or 'all'"),
    (["--samples=many"], "--samples must be a positive number or 'all'"),
    (["--evidence=rumour"], "unknown evidence level 'rumour'"),
    (["--probe=auto"], "--probe auto needs exactly one connected debug probe; connected: none"),
    (["--probe=0669FF3733"], "no debug probe with unique id '0669FF3733'"),
    (["--requirements=absent.toml"], "requirements file"),
    (["--power-monitor=ppk2:/dev/ttyACM0"], "the virtual board has no supply to measure"),
    (["--power-monitor=multimeter"], "--power-monitor must be auto, none, virtual or ppk2:DEVICE"),
])
def test_bad_options_are_usage_errors(project, args, message):
    result = project.runpytest_subprocess("qualification", "--collect-only", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


def test_good_options_parametrize_board_model_and_requirement(project):
    result = project.runpytest_subprocess("qualification", "--collect-only", "-q",
                                          "--board=stm32l4r9", "--model=tiny", "--samples=all",
                                          "--evidence=emulated")
    assert result.ret == pytest.ExitCode.OK
    ids = [line for line in result.outlines if "test_requirement[" in line]
    assert len(ids) == 5
    assert any("stm32l4r9-tiny-REQ-LATENCY" in line for line in ids)


def test_plugin_stays_out_of_unrelated_projects(pytester):
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_board_all_collects_every_board_folder(project):
    result = project.runpytest_subprocess("qualification", "--collect-only", "-q",
                                          "--board=all", "--model=tiny")
    assert result.ret == pytest.ExitCode.OK
    ids = [line for line in result.outlines if "test_requirement[" in line]
    assert len(ids) == 3 * 5
    assert {line.split("[")[1].split("-")[0] for line in ids} == {"stm32h743", "stm32l4r9",
                                                                   "stm32u585"}


def test_parallel_runs_keep_a_models_tests_together():
    """pytest-xdist's scope of a test (mcuqual.plugin.xdist_scheduling): its model, whatever
    the board or requirement; a model whose name extends another's is told apart."""
    from mcuqual.plugin.xdist_scheduling import model_scope

    pairs = [(b, m) for b in ("stm32l4r9", "stm32u585") for m in ("ds_cnn", "ds_cnn_s")]
    pairs.sort(key=lambda p: -len(p[0]) - len(p[1]))
    case = "qualification/test_requirements.py::test_requirement[{}]"
    assert model_scope(case.format("stm32l4r9-ds_cnn_s-REQ-ACC"), pairs) == "model:ds_cnn_s"
    assert model_scope(case.format("stm32u585-ds_cnn-REQ-LATENCY"), pairs) == "model:ds_cnn"
    assert model_scope("qualification/test_regressions.py::test_regression[stm32u585-ds_cnn_s]",
                       pairs) == "model:ds_cnn_s"
    assert model_scope(case.format("stm32h743-ds_cnn-REQ-ACC"), pairs) is None   # not in the run
    assert model_scope("tests/test_x.py::test_plain", pairs) is None
