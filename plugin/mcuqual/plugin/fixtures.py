"""Public fixtures: the stages of a qualification, for requirement tests of your own.

Each fixture is one stage of one model on one board, computed once and shared with the
built-in requirement tests (asking for it never runs a stage twice). A test that uses
any of them runs once per board x model of the run (`--board`, `--model`, `--tflite`),
as the built-in requirement tests do, and `mcuqual_requirement` records its verdict in
the terminal matrix, `qualification.json` and the summary, under its own id:

    # qualification/test_my_budget.py
    def test_stack_fits_8_kb(mcuqual_requirement):
        mcuqual_requirement("REQ-STACK", "Stack high-water mark", "<=", 8, "KB",
                            metric="stack_bytes")

    def test_every_class_reaches_70_percent(mcuqual_evaluation, mcuqual_requirement):
        confusion = mcuqual_evaluation.confusion()
        worst = float((confusion.diagonal() / confusion.sum(axis=1)).min())
        mcuqual_requirement("REQ-CLASS", "Every class", ">=", 70, "%", value=worst,
                            unit_of_value="fraction", evidence="host",
                            method="worst per-class top-1, tflite_micro on the test set")

A requirement that is not met fails its test (exit code 1 when nothing else went
wrong); an exception in a stage is an error (exit code 6), as for the built-in tests.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator

import pytest

if TYPE_CHECKING:
    from mcuqual.firmware.build import FirmwareImage
    from mcuqual.firmware.elf import ElfFigures
    from mcuqual.measure.on_target import OnTargetRun
    from mcuqual.model.zoo import ZooModel
    from mcuqual.qualify.deployment import Deployment
    from mcuqual.qualify.verdicts import Verdict
    from mcuqual.reference.evaluation import Int8Evaluation
    from mcuqual.target.connection import BoardConnection

DEPLOYMENT_FIXTURE = "mcuqual_deployment"


@pytest.fixture
def mcuqual_deployment(request: pytest.FixtureRequest) -> "Deployment":
    """One model on one board through the run's probe: every figure's producer
    (`measure(metric)`) and every stage (flatbuffer, evaluation, firmware, on_target...).
    Free: stages run when a figure or another fixture asks for them."""
    from mcuqual.plugin import SESSION_KEY

    run = request.config.stash[SESSION_KEY]
    board_name, model_name = request.param
    board = next(b for b in run.boards if b.name == board_name)
    model = next(m for m in run.models if m.name == model_name)
    return run.deployment(board, model)


@pytest.fixture
def mcuqual_model(mcuqual_deployment: "Deployment") -> "ZooModel":
    """The model: its folder, card, declared preprocessing (trains it first with --train)."""
    mcuqual_deployment.flatbuffer()
    return mcuqual_deployment.model


@pytest.fixture
def mcuqual_tflite(mcuqual_deployment: "Deployment") -> bytes:
    """The INT8 .tflite (the committed file, or quantized from the float model: seconds)."""
    return mcuqual_deployment.flatbuffer()


@pytest.fixture
def mcuqual_evaluation(mcuqual_deployment: "Deployment") -> "Int8Evaluation":
    """tflite_micro's outputs, predictions and top-1 on all 10,000 test images (cached by the
    model's hash; the first run of a model takes seconds to a minute)."""
    return mcuqual_deployment.evaluation()


@pytest.fixture
def mcuqual_firmware(mcuqual_deployment: "Deployment") -> "FirmwareImage":
    """The firmware ELF built for the board with arm-none-eabi-gcc (cached; ~5 s to build)."""
    return mcuqual_deployment.firmware()


@pytest.fixture
def mcuqual_elf(mcuqual_deployment: "Deployment") -> "ElfFigures":
    """Bytes of weights, arena, code, stack and RAM read from the firmware ELF."""
    return mcuqual_deployment.elf()


@pytest.fixture
def mcuqual_target_run(mcuqual_deployment: "Deployment") -> "OnTargetRun":
    """The run on the target (--samples images; the first 3 timed): cycles per inference and
    per layer, stack and arena high-water marks, outputs compared with tflite_micro, the power
    trace. On the virtual board: ~10 s per timed inference of a 10 M-MAC model."""
    return mcuqual_deployment.on_target()


@pytest.fixture
def mcuqual_swo_log(mcuqual_target_run: "OnTargetRun") -> list[str]:
    """The firmware's ITM log lines, received over SWO during the target run."""
    return mcuqual_target_run.log_lines


@pytest.fixture
def mcuqual_board(mcuqual_deployment: "Deployment") -> Iterator["BoardConnection"]:
    """A pyOCD session on the board with the model's firmware flashed, reset and running
    (the same connection the suite uses: read and write its memory, let it run, read its
    SWO). Closed after the test."""
    from mcuqual.target.connection import BoardConnection

    image = mcuqual_deployment.firmware()
    with BoardConnection(mcuqual_deployment.board, mcuqual_deployment.probe) as connection:
        connection.flash(image.elf)
        connection.start()
        yield connection


@pytest.fixture
def mcuqual_requirement(request: pytest.FixtureRequest,
                        mcuqual_deployment: "Deployment") -> Callable[..., "Verdict"]:
    """Judge and record a requirement of your own on this model and board; fails the test
    when it is not met. Either name a registered metric (`metric="stack_bytes"`; see
    `mcuqual.qualify.metrics`) or give the figure (`value=`, `unit_of_value=`,
    `evidence=`, `method=`); the threshold is in `unit`."""
    from mcuqual.common.evidence import Evidence, Measurement
    from mcuqual.plugin import SESSION_KEY
    from mcuqual.qualify.requirements import make_requirement
    from mcuqual.qualify.verdicts import Status, judge

    run = request.config.stash[SESSION_KEY]

    def require(requirement_id: str, title: str, op: str, threshold: float, unit: str, *,
                metric: str | None = None, value: float | None = None,
                unit_of_value: str | None = None, evidence: str = "host", method: str = "",
                source: str = "") -> "Verdict":
        where = f"{request.node.nodeid}: {requirement_id}"
        if metric is not None:
            requirement = make_requirement(requirement_id, title, metric, op, threshold, unit,
                                           source or request.node.nodeid, where=where)
            with run.live_output():
                measurement = mcuqual_deployment.measure(metric)
        else:
            if value is None or unit_of_value is None:
                raise TypeError("mcuqual_requirement: give metric=..., or value= and "
                                "unit_of_value=")
            requirement = make_requirement(requirement_id, title, None, op, threshold, unit,
                                           source or request.node.nodeid, where=where,
                                           unit_of_value=unit_of_value)
            measurement = Measurement(requirement.metric, float(value), requirement.canonical_unit,
                                      Evidence.parse(evidence), method or request.node.nodeid)
        verdict = judge(requirement, measurement, run.settings.evidence)
        run.record(mcuqual_deployment, verdict)
        if verdict.status is not Status.PASS:
            pytest.fail(verdict.message, pytrace=False)
        return verdict
    return require
