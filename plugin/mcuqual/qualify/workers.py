"""A qualification run spread over worker processes (pytest-xdist, `pytest -n 2`).

Each worker qualifies whole models (every board and requirement of a model in one process,
so no two workers quantize, evaluate or build the same thing, nor write the same cache
entry) and, when its tests are over, hands the controller a `WorkerResults`; the controller
folds every worker's results into its own `QualificationRun` with `merge`, and writes the
one qualification.json, summary and report from it, as a single process would.

A worker's `Deployment` holds the dataset, the caches and the memoised stages, none of
which crosses a process boundary; `FinishedDeployment` keeps what the reports read of it.

    results = WorkerResults.of(run)          # in the worker, at the end of its session
    blob = results.dumps()                   # bytes: what pytest-xdist carries back
    merge(controller_run, WorkerResults.loads(blob))
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

from mcuqual.boards.profile import Board
from mcuqual.common.errors import NotMeasurableError
from mcuqual.common.evidence import Measurement
from mcuqual.model.zoo import ZooModel
from mcuqual.qualify.deployment import Deployment, Step
from mcuqual.qualify.run import QualificationRun, Record, model_hash_or_reason
from mcuqual.qualify.verdicts import Verdict
from mcuqual.target.probes import ProbeChoice


@dataclass
class FinishedDeployment:
    """A deployment whose tests have run, detached from the engine: its identity, the
    steps it took, its firmware figures and the figures its verdicts were judged on.
    Answers the calls the reports make of a `Deployment`, without computing anything."""

    model: ZooModel
    board: Board
    probe: ProbeChoice
    steps: list[Step]
    firmware: dict[str, Any] | None
    origin: str | None
    hash_text: str
    measurements: dict[str, Measurement] = field(default_factory=dict)

    @classmethod
    def of(cls, deployment: Deployment, verdicts: list[Verdict]) -> "FinishedDeployment":
        try:
            origin = deployment.tflite_origin() if deployment.model.trained else None
        except Exception:          # noqa: BLE001 - descriptive only, as in the report
            origin = None
        return cls(deployment.model, deployment.board, deployment.probe, list(deployment.steps),
                   deployment.firmware_summary(), origin, model_hash_or_reason(deployment),
                   {v.requirement.metric: v.measurement for v in verdicts
                    if v.measurement is not None})

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.board.name, self.model.name, self.probe.unique_id)

    def firmware_summary(self) -> dict[str, Any] | None:
        return self.firmware

    def tflite_origin(self) -> str:
        if self.origin is None:
            raise NotMeasurableError(f"{self.model.name}: no .tflite origin recorded")
        return self.origin

    def model_hash(self) -> str:
        """The SHA-256 the worker computed (or why it could not)."""
        return self.hash_text

    def measure(self, metric: str) -> Measurement:
        """A figure a verdict of the worker was judged on; nothing is measured again."""
        if metric not in self.measurements:
            raise NotMeasurableError(f"{metric} of {self.model.name} on {self.board.name} was "
                                     "not measured by the worker that ran it")
        return self.measurements[metric]


@dataclass
class WorkerResults:
    """What one worker hands the controller: its deployments and verdicts, and the rest of
    its run's outcome (tests that errored or failed outside a verdict, regressions, the
    cases it planned, where an interrupt caught it)."""

    deployments: list[FinishedDeployment]
    records: list[tuple[tuple[str, str], Verdict]]      # (board, model), verdict
    regressions: list[str]
    errors: list[str]
    failures: list[str]
    planned: list[tuple[str, str, str]]
    interrupted_at: str | None

    @classmethod
    def of(cls, run: QualificationRun) -> "WorkerResults":
        verdicts: dict[tuple[str, str], list[Verdict]] = {}
        for record in run.records:
            key = (record.deployment.board.name, record.deployment.model.name)
            verdicts.setdefault(key, []).append(record.verdict)
        deployments = [FinishedDeployment.of(deployment, verdicts.get(key, []))
                       for key, deployment in run.deployments.items()]
        return cls(deployments,
                   [((r.deployment.board.name, r.deployment.model.name), r.verdict)
                    for r in run.records],
                   list(run.regressions), list(run.outcome.errors), list(run.outcome.failures),
                   list(run.planned), run.outcome.interrupted_at)

    def dumps(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def loads(blob: bytes) -> "WorkerResults":
        results = pickle.loads(blob)
        if not isinstance(results, WorkerResults):
            raise TypeError(f"not a worker's results: {type(results).__name__}")
        return results


def merge(run: QualificationRun, results: WorkerResults) -> None:
    """Fold one worker's results into the controller's run; records and deployments are
    kept in the plan's order, whichever worker finishes first."""
    by_key: dict[tuple[str, str], FinishedDeployment] = {}
    for deployment in results.deployments:
        key = (deployment.board.name, deployment.model.name)
        by_key[key] = deployment
        run.deployments[key] = deployment        # type: ignore[assignment] - same interface
    for key, verdict in results.records:
        run.records.append(Record(by_key[key], verdict))      # type: ignore[arg-type]
    run.regressions.extend(results.regressions)
    run.outcome.errors.extend(results.errors)
    run.outcome.failures.extend(results.failures)
    # every worker collects every case: the plan is the same list from each
    if not run.planned:
        run.planned.extend(results.planned)
    if results.interrupted_at and not run.outcome.interrupted_at:
        run.outcome.interrupted_at = results.interrupted_at
    # verdicts in the plan's order, as one process would have recorded them
    order = {case: index for index, case in enumerate(run.planned)}
    run.records.sort(key=lambda r: order.get((r.deployment.board.name, r.deployment.model.name,
                                              r.verdict.requirement.id), len(order)))
    run.deployments = dict(sorted(run.deployments.items(), key=lambda item: min(
        (index for (board, model, _), index in order.items() if (board, model) == item[0]),
        default=len(order))))
