"""The pytest plugin: options, the qualification_case fixture, reporting hooks.

A thin layer over the engine (`mcuqual.qualify`, `mcuqual.report`), in the manner of
pytest-benchmark: everything that computes a figure works without pytest. This module is
the `pytest11` entry point, loaded by every pytest run of the environment, so it imports
only pytest at load time; the engine is imported inside the hooks, and only in a run
that qualifies something.
"""
from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mcuqual.plugin.fixtures import (  # noqa: F401  (public fixtures: pytest finds them here)
    DEPLOYMENT_FIXTURE,
    mcuqual_board,
    mcuqual_deployment,
    mcuqual_elf,
    mcuqual_evaluation,
    mcuqual_firmware,
    mcuqual_model,
    mcuqual_requirement,
    mcuqual_swo_log,
    mcuqual_target_run,
    mcuqual_tflite,
)

if TYPE_CHECKING:    # the engine is imported on first use: see _engine_imports below
    from mcuqual.plugin.cases import QualificationCase, RegressionCase
    from mcuqual.qualify.run import QualificationRun, Settings

SESSION_KEY = pytest.StashKey["QualificationRun | None"]()
_CASE_KEY = pytest.StashKey["QualificationCase"]()
_SIGTERM_KEY = pytest.StashKey[object]()
CASE_FIXTURE = "qualification_case"
REGRESSION_FIXTURE = "regression_case"
# Exit codes, strongest first (README "Exit codes"): 2 interrupted, 3 internal error and
# 4 usage error are pytest's; then EXIT_ERROR whenever any figure could not be produced
# (an error, a fault, a crash, a broken model folder, a requirement not measurable),
# whatever else failed in the same run; 1 (pytest's "tests failed") only when every
# failure is a requirement not met or a regression; 0 when every requirement is met.
EXIT_ERROR = 6
DEFAULT_BOARD = "stm32l4r9"
ALLURE_RESULT_PATTERNS = ("*-result.json", "*-container.json", "*-attachment*",
                          "environment.properties", "categories.json", "executor.json",
                          "mcuqual-allure3.json")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mcuqual", "microcontroller deployment qualification (mcuqual)")
    group.addoption("--board", action="append", default=None, metavar="NAME",
                    help=f"board to qualify on (repeatable; 'all': every board folder; default "
                         f"{DEFAULT_BOARD})")
    group.addoption("--probe", default="virtual", metavar="virtual|auto|UID",
                    help="virtual board (default), the one connected probe, or a pyOCD unique id")
    group.addoption("--power-monitor", default="auto", metavar="auto|none|virtual|ppk2:DEVICE",
                    help="energy instrument: the virtual board's modelled monitor (auto with "
                         "--probe virtual), a Nordic PPK2 on a serial port, or none (energy then "
                         "modelled from the inference time)")
    group.addoption("--baseline", default=None, metavar="PATH",
                    help="regression baseline (default: the mcuqual_baseline ini value, "
                         "qualification/baseline.json); a model slower or less accurate than it "
                         "beyond its tolerance fails")
    group.addoption("--update-baseline", action="store_true", default=False,
                    help="write this run's cycles and top-1 into the baseline file")
    group.addoption("--model", action="append", default=None, metavar="NAME",
                    help="model of the zoo to qualify (repeatable; default: every model, or "
                         "none when --tflite is given)")
    group.addoption("--tflite", action="append", default=None, metavar="PATH",
                    help="qualify an INT8 .tflite outside the zoo (repeatable); needs "
                         "--preprocessing")
    group.addoption("--preprocessing", default=None, metavar="SPEC",
                    help="the float preprocessing the --tflite models were trained with: "
                         "'pixel / 255', 'pixel', 'pixel / 127.5 - 1', or '(pixel - mean) / std; "
                         "mean=R,G,B; std=R,G,B' (pixel units); add '; order=BGR' for BGR input")
    group.addoption("--samples", default="10", metavar="N|all",
                    help="test images to run on the target (default 10; the first 3 with cycle "
                         "accounting); top-1 always covers all 10,000 test images through the "
                         "host reference and the host twin")
    group.addoption("--train", action="store_true", default=False,
                    help="retrain the selected models from their recipes before qualifying")
    group.addoption("--requirements", default=None, metavar="PATH",
                    help="requirements TOML (default: qualification/requirements.toml)")
    group.addoption("--evidence", default="host", metavar="LEVEL",
                    help="weakest evidence a passing figure may have: host (default), modelled, "
                         "emulated or measured")
    group.addoption("--dataset-dir", default=None, metavar="PATH",
                    help="CIFAR-10 folder (binary or Python format); also MCUQUAL_DATASET_DIR")
    group.addoption("--allow-download", action="store_true", default=False,
                    help="download CIFAR-10 with Keras if it is not found")
    group.addoption("--no-verify-dataset", action="store_true", default=False,
                    help="accept dataset files whose MD5 differs from the official release")
    parser.addini("mcuqual_models_dir", "model zoo folder", default="models")
    parser.addini("mcuqual_boards_dir", "this project's own board folders (beside the built-in "
                  "ones)", default="firmware/boards")
    parser.addini("mcuqual_requirements", "requirements file",
                  default="qualification/requirements.toml")
    parser.addini("mcuqual_reports_dir", "where results are written", default="reports")
    parser.addini("mcuqual_baseline", "regression baseline file",
                  default="qualification/baseline.json")


def _settings(config: pytest.Config) -> "Settings":
    from mcuqual.common.errors import ConfigError
    from mcuqual.common.evidence import Evidence
    from mcuqual.common.paths import find_repo_root
    from mcuqual.qualify.run import Settings, parse_samples

    root = Path(config.rootpath)
    def ini_path(name: str) -> Path:
        return (root / config.getini(name)).resolve()
    requirements = config.getoption("requirements")
    try:
        evidence = Evidence.parse(config.getoption("evidence"))
    except ValueError as exc:
        raise ConfigError(f"--evidence: {exc}") from None
    return Settings(
        repo_root=find_repo_root(root), models_dir=ini_path("mcuqual_models_dir"),
        boards_dir=ini_path("mcuqual_boards_dir"),
        requirements_path=Path(requirements).resolve() if requirements
        else ini_path("mcuqual_requirements"),
        reports_dir=ini_path("mcuqual_reports_dir"),
        board_names=config.getoption("board") or [DEFAULT_BOARD],
        probe=config.getoption("probe"), power_monitor=config.getoption("power_monitor"),
        model_names=config.getoption("model"),
        tflite_paths=config.getoption("tflite") or [],
        preprocessing=config.getoption("preprocessing"),
        samples=parse_samples(config.getoption("samples")), train=config.getoption("train"),
        evidence=evidence, dataset_dir=config.getoption("dataset_dir"),
        allow_download=config.getoption("allow_download"),
        verify_dataset=not config.getoption("no_verify_dataset"),
        baseline_path=Path(config.getoption("baseline")).resolve() if config.getoption("baseline")
        else ini_path("mcuqual_baseline"),
        update_baseline=config.getoption("update_baseline"))


def _explicit_options(config: pytest.Config) -> bool:
    return any(config.getoption(name) for name in ("board", "model", "requirements", "train",
                                                    "tflite"))


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SESSION_KEY] = None
    root = Path(config.rootpath)
    if not ((root / config.getini("mcuqual_boards_dir")).is_dir()
            or (root / config.getini("mcuqual_requirements")).is_file()
            or _explicit_options(config)):
        return  # not a qualification project: stay out of the way (and import nothing)
    from mcuqual.common.errors import ConfigError
    from mcuqual.qualify.run import QualificationRun

    try:
        session = QualificationRun.build(_settings(config))
    except ConfigError as exc:
        raise pytest.UsageError(f"mcuqual: {exc}") from None
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        session.live_output = capman.global_and_fixture_disabled
    config.stash[SESSION_KEY] = session
    worker = _xdist_worker(config)
    if worker is not None:       # a pytest-xdist worker drives its own unit of each virtual board
        from mcuqual.target.probes import VIRTUAL_UNIT_ENV
        os.environ[VIRTUAL_UNIT_ENV] = worker
    _stop_on_sigterm(config)


def _xdist_worker(config: pytest.Config) -> str | None:
    """This process's pytest-xdist worker id ('gw0', ...), None outside a worker."""
    workerinput = getattr(config, "workerinput", None)
    return workerinput.get("workerid") if workerinput else None


def _xdist_controller(config: pytest.Config) -> bool:
    return _xdist_worker(config) is None and getattr(config.option, "dist", "no") != "no"


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """pytest-xdist controller: with the default distribution (load, or loadgroup and
    worksteal, which would split a model too) a model's tests all go to one worker."""
    qual = config.stash.get(SESSION_KEY, None)
    if qual is None or config.getoption("dist") not in ("load", "loadgroup", "worksteal"):
        return None                                 # xdist's own choice
    from mcuqual.plugin.xdist_scheduling import ModelScheduling
    return ModelScheduling(config, log, boards=[b.name for b in qual.boards],
                           models=[m.name for m in qual.models])


def _stop_on_sigterm(config: pytest.Config) -> None:
    """SIGTERM (a CI runner's cancel, `kill`) ends the run as Ctrl-C does: workers are
    killed, what was measured is written, the run is reported as interrupted."""
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")
    config.stash[_SIGTERM_KEY] = signal.signal(signal.SIGTERM, interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = config.stash.get(_SIGTERM_KEY, None)
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if DEPLOYMENT_FIXTURE in metafunc.fixturenames:       # a test on the public fixtures
        session = metafunc.config.stash.get(SESSION_KEY, None)
        if session is None:
            raise pytest.UsageError("mcuqual: a test uses mcuqual's fixtures, but this is not a "
                                    "qualification project (no "
                                    f"{metafunc.config.getini('mcuqual_requirements')}).")
        pairs = [(board.name, model.name) for board in session.boards for model in session.models]
        metafunc.parametrize(DEPLOYMENT_FIXTURE, pairs, ids=[f"{b}-{m}" for b, m in pairs],
                             indirect=True)
        return
    if REGRESSION_FIXTURE in metafunc.fixturenames:
        session = metafunc.config.stash.get(SESSION_KEY, None)
        if session is not None:
            _generate_regression_tests(metafunc, session)
        return
    if CASE_FIXTURE not in metafunc.fixturenames:
        return
    session = metafunc.config.stash.get(SESSION_KEY, None)
    if session is None:
        raise pytest.UsageError("mcuqual: qualification tests found, but this is not a "
                                "qualification project (no "
                                f"{metafunc.config.getini('mcuqual_requirements')}).")
    params, ids = [], []
    for board in session.boards:
        for model in session.models:
            for requirement in session.requirements:
                params.append((board.name, model.name, requirement.id))
                ids.append(f"{board.name}-{model.name}-{requirement.id}")
    metafunc.parametrize(CASE_FIXTURE, params, ids=ids, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A regression test with no baseline figures to compare is not a test: deselect it
    (pytest would otherwise show an empty parameter set as a skip)."""
    empty = [item for item in items if REGRESSION_FIXTURE in getattr(item, "fixturenames", ())
             and not isinstance(getattr(item, "callspec", None) and
                                item.callspec.params.get(REGRESSION_FIXTURE), tuple)]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [item for item in items if item not in empty]
    qual = config.stash.get(SESSION_KEY, None)
    if qual is not None:
        qual.planned = [item.callspec.params[CASE_FIXTURE] for item in items
                        if CASE_FIXTURE in getattr(item, "fixturenames", ())
                        and hasattr(item, "callspec")]


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """A run that will execute tests starts a fresh Allure results folder; --help,
    --fixtures, --collect-only and usage errors never reach here, and leave it alone."""
    config = session.config
    alluredir = getattr(config.option, "allure_report_dir", None)
    if (not getattr(config.option, "mcuqual_fresh_alluredir", False) or not alluredir
            or config.option.collectonly or _xdist_worker(config) is not None
            or not (session.items or _xdist_controller(config))):
        return          # pytest-xdist: the controller (which collects nothing) empties it
    for pattern in ALLURE_RESULT_PATTERNS:
        for path in Path(alluredir).glob(pattern):
            if path.is_file():
                path.unlink()


def _generate_regression_tests(metafunc: pytest.Metafunc, session: "QualificationRun") -> None:
    from mcuqual.qualify.regression import probe_kind

    params, ids = [], []
    for board in session.boards:
        kind = probe_kind(session.probes[board.name].is_virtual)
        for model in session.models:
            if session.baseline.entry(board.name, kind, model.name) is not None:
                params.append((board.name, model.name))
                ids.append(f"{board.name}-{model.name}")
    metafunc.parametrize(REGRESSION_FIXTURE, params, ids=ids, indirect=True)


@pytest.fixture
def regression_case(request: pytest.FixtureRequest) -> "RegressionCase":
    """A (board, model) with baseline figures for this kind of probe."""
    from mcuqual.plugin.cases import RegressionCase, hide_case_parameter

    board, model = request.param
    hide_case_parameter(REGRESSION_FIXTURE, request.param)
    return RegressionCase(request.config.stash[SESSION_KEY], board, model)


@pytest.fixture
def qualification_case(request: pytest.FixtureRequest) -> "QualificationCase":
    """The requirement x model x board under test (parametrized from the files)."""
    from mcuqual.plugin.cases import QualificationCase, hide_case_parameter, label_allure_result

    session = request.config.stash[SESSION_KEY]
    board, model, requirement = request.param
    case = QualificationCase(session, board, model, requirement)
    request.node.stash[_CASE_KEY] = case
    label_allure_result(case)
    hide_case_parameter(CASE_FIXTURE, request.param)
    return case


def _is_error(call: pytest.CallInfo, case: "QualificationCase | None") -> bool:
    """A failure that is not a verdict: setup/teardown errors, any exception but an assertion
    or pytest.fail in a test, and ERROR / NOT MEASURABLE verdicts."""
    from mcuqual.qualify.verdicts import Status

    if call.when != "call":
        return True
    if case is not None and case.verdict is not None:
        return case.verdict.status in (Status.ERROR, Status.NOT_MEASURABLE)
    return not isinstance(call.excinfo.value, (AssertionError, pytest.fail.Exception))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is None or not report.failed:
        return
    case = item.stash.get(_CASE_KEY, None)
    exc = call.excinfo.value
    if call.when == "call" and case is not None and case.verdict is None:
        case.record_error(exc)
    qual = item.config.stash.get(SESSION_KEY, None)
    if qual is not None and not (call.when == "call" and case is not None):
        # a requirement test's verdict is counted from its record; everything else here
        (qual.outcome.errors if _is_error(call, case) else qual.outcome.failures).append(
            item.nodeid)
    from mcuqual.common.errors import McuqualError
    if isinstance(exc, McuqualError):
        # a user-facing error: the message says what to do; a traceback would bury it
        report.longrepr = f"{type(exc).__name__}: {exc}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    """A test cut short by Ctrl-C/SIGTERM has no report; allure-pytest would close it as it
    stood after setup, "passed". Mark it broken and say so."""
    outcome = yield
    if outcome.excinfo is None or not issubclass(outcome.excinfo[0], KeyboardInterrupt):
        return
    qual = item.config.stash.get(SESSION_KEY, None)
    if qual is not None:
        qual.outcome.interrupted_at = item.nodeid
    listener = item.config.pluginmanager.get_plugin("allure_listener")
    try:
        from allure_commons.model2 import Status as AllureStatus, StatusDetails
        result = listener.allure_logger.get_test(listener._cache.get(item.nodeid))
    except Exception:                     # noqa: BLE001 - no Allure, or another version
        return
    if result is not None:
        result.status = AllureStatus.BROKEN
        result.statusDetails = StatusDetails(
            message=f"INTERRUPTED: the run was stopped during this test "
                    f"({outcome.excinfo[1] or 'KeyboardInterrupt'}); it has no verdict.")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """pytest-xdist controller: a worker is done; fold its verdicts into this run's, which
    writes the one report. A worker that died takes its results with it: an error."""
    qual = node.config.stash.get(SESSION_KEY, None)
    if qual is None:
        return
    from mcuqual.qualify.workers import WorkerResults, merge

    blob = getattr(node, "workeroutput", {}).get("mcuqual")
    if blob is not None:
        merge(qual, WorkerResults.loads(blob))
    if error is not None:
        qual.outcome.errors.append(f"worker {node.gateway.id} went down: "
                                   f"{str(error).splitlines()[0] if str(error) else 'crashed'}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    qual = session.config.stash.get(SESSION_KEY, None)
    if qual is None:
        return
    if _xdist_worker(session.config) is not None:
        # the controller writes the report from every worker's results
        from mcuqual.qualify.workers import WorkerResults
        session.config.workeroutput["mcuqual"] = WorkerResults.of(qual).dumps()
        return
    from mcuqual.qualify.run import update_baseline
    from mcuqual.qualify.verdicts import Status
    from mcuqual.report.results import write_allure_extras, write_qualification_json
    from mcuqual.report.summary import write_allure_summary, write_summary

    outcome = qual.outcome
    outcome.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        statuses = {record.verdict.status for record in qual.records}
        if outcome.errors or statuses & {Status.ERROR, Status.NOT_MEASURABLE}:
            session.exitstatus = EXIT_ERROR           # an error is never hidden by a failure
        elif (outcome.failures or qual.regressions
              or statuses & {Status.NOT_MET, Status.INSUFFICIENT_EVIDENCE}):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    outcome.exit_code = int(session.exitstatus)
    if not qual.records and not outcome.interrupted:
        return
    path = write_qualification_json(qual.settings.reports_dir / "latest" / "qualification.json", qual)
    qual.results_path = path
    summary = write_summary(qual, path.parent)
    alluredir = getattr(session.config.option, "allure_report_dir", None)
    if alluredir:
        write_allure_extras(Path(alluredir), qual)
        write_allure_summary(qual, Path(alluredir), summary)
    if qual.settings.update_baseline and not outcome.interrupted:
        qual.updated_baseline = update_baseline(qual)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    qual = config.stash.get(SESSION_KEY, None)
    if qual is None or (not qual.records and not qual.outcome.interrupted):
        return
    from mcuqual.report.results import error_lines, matrix_lines, outcome_lines

    probes = ", ".join(f"{b} via {p.unique_id}" for b, p in qual.probes.items())
    terminalreporter.write_sep("=", f"mcuqual qualification ({probes})")
    for line in matrix_lines(qual):
        terminalreporter.write_line(line)
    for line in error_lines(qual):
        terminalreporter.write_line(line, red=True)
    if len(qual.boards) > 1:
        from mcuqual.report.boards import which_board
        terminalreporter.write_line("which board?")
        for choice in which_board(qual):
            terminalreporter.write_line(f"  {choice.sentence()}", green=bool(choice.qualifying))
    for line in qual.regressions:
        terminalreporter.write_line(line, red=True)
    for line in outcome_lines(qual):
        terminalreporter.write_line(line, bold=True,
                                    red=qual.outcome.exit_code not in (0, None))
    if qual.updated_baseline:
        terminalreporter.write_line(f"baseline updated: {qual.updated_baseline}")
    if qual.results_path:
        terminalreporter.write_line(f"results: {qual.results_path}")
