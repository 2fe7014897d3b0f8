"""The pytest layer's requirement and regression cases: measure through the engine, judge,
record, and label the Allure result. Imported on first use, so that a pytest run that does
not qualify anything never loads the engine."""
from __future__ import annotations

import time
from dataclasses import dataclass

from mcuqual.common.errors import NotMeasurableError
from mcuqual.common.evidence import format_value
from mcuqual.firmware.build import ModelTooLargeError
from mcuqual.firmware.codegen.graph import CodegenError
from mcuqual.qualify.regression import compare, probe_kind
from mcuqual.qualify.run import QualificationRun
from mcuqual.qualify.verdicts import Verdict, error, judge, not_measurable, undeployable
from mcuqual.report.attachments import attach_evidence
from mcuqual.report.boards import what_it_takes


@dataclass
class QualificationCase:
    """One requirement x model x board: measures, judges and records."""

    session: QualificationRun
    board_name: str
    model_name: str
    requirement_id: str
    verdict: Verdict | None = None

    def __repr__(self) -> str:
        return f"<{self.requirement_id} {self.model_name} on {self.board_name}>"

    def __post_init__(self) -> None:
        self.board = next(b for b in self.session.boards if b.name == self.board_name)
        self.model = next(m for m in self.session.models if m.name == self.model_name)
        self.requirement = next(r for r in self.session.requirements if r.id == self.requirement_id)
        self.deployment = self.session.deployment(self.board, self.model)

    def judge(self) -> Verdict:
        try:
            with self.session.live_output():
                measurement = self.deployment.measure(self.requirement.metric)
        except (NotMeasurableError, CodegenError) as exc:     # the suite cannot run it
            self.verdict = not_measurable(self.requirement, str(exc))
        except ModelTooLargeError as exc:     # nothing deployed, so nothing meets it
            self.verdict = undeployable(self.requirement, str(exc))
        else:
            self.verdict = judge(self.requirement, measurement, self.session.settings.evidence)
        self.session.record(self.deployment, self.verdict)
        _allure_verdict(self)
        return self.verdict

    def record_error(self, exc: BaseException) -> None:
        self.verdict = error(self.requirement, f"{type(exc).__name__}: {exc}")
        self.session.record(self.deployment, self.verdict)


def _allure():
    try:
        import allure
        return allure
    except ImportError:  # allure-pytest is a dependency, but reporting must never break a run
        return None


def label_allure_result(case: QualificationCase) -> None:
    allure = _allure()
    if allure is None:
        return
    req = case.requirement
    # the tree a reviewer navigates: board > requirement > model
    allure.dynamic.parent_suite(f"{case.board.name} ({case.board.title}, {case.board.mcu})")
    allure.dynamic.suite(f"{req.id} {req.title}")
    allure.dynamic.sub_suite(case.model.name)
    allure.dynamic.epic(f"{case.board.name} ({case.board.title}, {case.board.mcu})")
    allure.dynamic.feature(f"{req.id} {req.title}")
    allure.dynamic.story(case.model.name)
    allure.dynamic.title(f"{req.id} · {case.model.name} on {case.board.name}")
    allure.dynamic.severity(allure.severity_level.CRITICAL)
    allure.dynamic.label("requirement", req.id)
    allure.dynamic.id(f"{req.id}/{case.model.name}/{case.board.name}")   # the report's ID field
    allure.dynamic.parameter("board", case.board.name)
    allure.dynamic.parameter("model", case.model.name)
    allure.dynamic.parameter("probe", case.deployment.probe.unique_id)
    allure.dynamic.parameter("threshold", req.describe_threshold())
    allure.dynamic.description(f"{req.title}. Requirement: {req.describe_threshold()}. "
                               f"Source: {req.source}.")


def _allure_verdict(case: QualificationCase) -> None:
    allure = _allure()
    verdict = case.verdict
    if allure is None or verdict is None:
        return
    req = case.requirement
    if verdict.measurement is not None:
        shown = format_value(verdict.measurement.value, verdict.measurement.unit)
        relation = "meets" if verdict.passed else "fails"
        m = verdict.measurement
        evidence = m.evidence.label + (f", {m.band_text()}" if m.band is not None else "")
        allure.dynamic.title(f"{req.id} · {case.model.name} on {case.board.name}: {shown} "
                             f"({evidence}) {relation} {req.describe_threshold()}")
    else:
        allure.dynamic.title(f"{req.id} · {case.model.name} on {case.board.name}: "
                             f"{verdict.status.value}")
    takes = what_it_takes(verdict, case.session, case.model.name, case.board.name,
                          other_boards=False)
    # the verdict's own words: a pass whose threshold lies inside the figure's band says
    # so there, and Allure shows a passed test no failure message that could carry it
    parts = [f"{req.title}. Requirement: {req.describe_threshold()}. Source: {req.source}.",
             f"Verdict: {verdict.message}"]
    if takes:
        parts.append(f"What would it take: {takes}.")
    allure.dynamic.description("\n\n".join(parts))
    steps = case.deployment.steps            # the fixture chain behind the figure, with timings
    for step in steps:
        with allure.step(f"{step.name}{': ' + step.detail if step.detail else ''}"):
            pass
    _give_steps_their_durations(steps)
    attach_evidence(allure, case)


def _allure_test_result():
    """allure-pytest's result of the running test (None outside allure-pytest)."""
    try:
        import allure_commons
    except ImportError:
        return None
    for plugin in allure_commons.plugin_manager.get_plugins():
        logger = getattr(plugin, "allure_logger", None)
        if logger is not None:
            return logger.get_test(None)
    return None


def _give_steps_their_durations(steps) -> None:
    """Allure times a step by its `with` block; the pipeline's steps ran earlier (and may be
    shared by several tests), so their recorded durations are written in, laid end to end
    up to now."""
    result = _allure_test_result()
    if result is None or len(result.steps) < len(steps):
        return
    stop_ms = int(time.time() * 1000)
    for allure_step, step in zip(reversed(result.steps), reversed(steps)):
        allure_step.stop = stop_ms
        allure_step.start = stop_ms - int(round(step.seconds * 1000))
        stop_ms = allure_step.start


def hide_case_parameter(name: str, value: object) -> None:
    """Hide the fixture's own parameter (an internal tuple) in the report: the board, model,
    probe and threshold parameters say the same in words. Declared before allure-pytest
    adds it after setup, with the value it would give, so the history id does not change."""
    allure = _allure()
    if allure is not None:
        allure.dynamic.parameter(name, value, mode=allure.parameter_mode.HIDDEN)


@dataclass
class RegressionCase:
    """One model on one board against its baseline figures."""

    session: QualificationRun
    board_name: str
    model_name: str

    def check(self) -> list[str]:
        board = next(b for b in self.session.boards if b.name == self.board_name)
        model = next(m for m in self.session.models if m.name == self.model_name)
        deployment = self.session.deployment(board, model)
        kind = probe_kind(deployment.probe.is_virtual)
        entry = self.session.baseline.entry(board.name, kind, model.name)
        with self.session.live_output():
            latency = deployment.measure("latency_ms")
            top1 = deployment.measure("top1")
        cycles = latency.details["median_cycles"]
        worse = compare(entry, self.session.baseline.tolerance, cycles, top1.value)
        _label_regression(board, model.name, entry, cycles, top1.value, worse)
        if worse:
            self.session.regressions.append(
                f"REGRESSION: {model.name} on {board.name}: " + "; ".join(worse))
        return worse


def _label_regression(board, model: str, entry: dict, cycles: int, top1: float,
                      worse: list[str]) -> None:
    """The regression test in the report: board > regression > model, titled with the
    figures it compares, baseline against now."""
    allure = _allure()
    if allure is None:
        return
    allure.dynamic.parent_suite(f"{board.name} ({board.title}, {board.mcu})")
    allure.dynamic.suite("Regression against the baseline")
    allure.dynamic.sub_suite(model)
    change = 100 * (cycles / entry["median_cycles"] - 1)
    allure.dynamic.title(
        f"Regression · {model} on {board.name}: {cycles:,} cycles vs baseline "
        f"{entry['median_cycles']:,} ({change:+.2f} %), top-1 {100 * top1:.2f} % vs "
        f"{100 * entry['top1']:.2f} %{' — worse' if worse else ''}")
    allure.dynamic.parameter("baseline cycles", f"{entry['median_cycles']:,}")
    allure.dynamic.parameter("cycles now", f"{cycles:,}")
    allure.dynamic.parameter("baseline top-1", f"{100 * entry['top1']:.2f} %")
    allure.dynamic.parameter("top-1 now", f"{100 * top1:.2f} %")
