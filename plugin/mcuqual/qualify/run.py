"""The state of one qualification run: what is qualified, and every verdict so far.

Knows nothing of pytest; the plugin builds it from options and feeds it verdicts.
"""
from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager

from mcuqual.boards.profile import Board, select_boards
from mcuqual.common.cache import Cache
from mcuqual.qualify.deployment import DatasetSource, Deployment
from mcuqual.common.errors import ConfigError, McuqualError
from mcuqual.common.evidence import Evidence
from mcuqual.power.choice import check_power_monitor
from mcuqual.model.preprocessing import from_option as preprocessing_from_option
from mcuqual.qualify.regression import Baseline, probe_kind
from mcuqual.target.probes import ProbeChoice, choose_probe
from mcuqual.qualify.requirements import Requirement, load_requirements
from mcuqual.qualify.verdicts import Verdict
from mcuqual.model.zoo import ZooModel, select

ALL = "all"


def parse_samples(text: str) -> int | None:
    """`--samples N|all`: None means all 10,000 test images."""
    if text == ALL:
        return None
    try:
        count = int(text)
    except ValueError:
        raise ConfigError(f"--samples must be a positive number or 'all', not {text!r}.") from None
    if count < 1:
        raise ConfigError(f"--samples must be a positive number or 'all', not {text!r}.")
    return count


@dataclass
class Settings:
    repo_root: Path
    models_dir: Path
    boards_dir: Path
    requirements_path: Path
    reports_dir: Path
    board_names: list[str]
    probe: str
    power_monitor: str
    model_names: list[str] | None
    samples: int | None
    train: bool
    evidence: Evidence
    dataset_dir: str | None
    allow_download: bool
    verify_dataset: bool
    baseline_path: Path | None = None
    update_baseline: bool = False
    tflite_paths: list[str] = field(default_factory=list)
    preprocessing: str | None = None


@dataclass
class RunOutcome:
    """How the run ended, beyond the verdicts: what errored or failed, and an interrupt."""

    # test ids, beyond the requirement verdicts (which are counted from the records):
    errors: list[str] = field(default_factory=list)       # setup errors, crashes in user tests
    failures: list[str] = field(default_factory=list)     # regressions, failed user assertions
    interrupted: bool = False
    interrupted_at: str | None = None                    # the test that was running
    exit_code: int | None = None


@dataclass
class Record:
    deployment: Deployment
    verdict: Verdict

    def as_dict(self) -> dict[str, Any]:
        d = self.deployment
        record = {"board": d.board.name, "model": d.model.name, "probe": d.probe.unique_id}
        record.update(self.verdict.as_record())
        return record


@dataclass
class QualificationRun:
    settings: Settings
    boards: list[Board]
    models: list[ZooModel]
    requirements: list[Requirement]
    probes: dict[str, ProbeChoice]
    cache: Cache
    data: DatasetSource
    records: list[Record] = field(default_factory=list)
    deployments: dict[tuple[str, str], Deployment] = field(default_factory=dict)
    live_output: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    results_path: Path | None = None
    baseline: Baseline = field(default_factory=lambda: Baseline(Path("baseline.json"), {}, {}))
    regressions: list[str] = field(default_factory=list)
    updated_baseline: Path | None = None
    planned: list[tuple[str, str, str]] = field(default_factory=list)   # (board, model, req)
    outcome: RunOutcome = field(default_factory=RunOutcome)
    _trained: set[str] = field(default_factory=set)

    @classmethod
    def build(cls, settings: Settings) -> "QualificationRun":
        """Validate everything that can be checked without heavy work; ConfigError otherwise."""
        boards = select_boards(settings.boards_dir, settings.board_names)
        models = select_models(settings)
        requirements = load_requirements(settings.requirements_path)
        probes = {board.name: choose_probe(settings.probe, board.name) for board in boards}
        for probe in probes.values():
            check_power_monitor(settings.power_monitor, probe)
        data = DatasetSource(settings.dataset_dir, settings.repo_root, settings.allow_download,
                             settings.verify_dataset)
        session = cls(settings, boards, models, requirements, probes,
                      Cache.default(settings.repo_root), data)
        if settings.baseline_path is not None:
            session.baseline = Baseline.load(settings.baseline_path)
        return session

    def deployment(self, board: Board, model: ZooModel) -> Deployment:
        key = (board.name, model.name)
        if key not in self.deployments:
            self.deployments[key] = Deployment(model, board, self.probes[board.name], self.data,
                                               self.cache, before_load=self._maybe_train,
                                               samples=self.settings.samples,
                                               power_monitor=self.settings.power_monitor)
        return self.deployments[key]

    def _maybe_train(self, model: ZooModel) -> None:
        if not self.settings.train or model.name in self._trained:
            return
        from mcuqual.training import artifacts
        from mcuqual.training import train as training

        self._trained.add(model.name)
        data = self.data.get()
        with self.live_output():
            outcome = training.train(model, data, verbose=1)
            artifacts.finalize(model, data, self.cache, epochs=outcome.epochs_total,
                               training_seconds=sum(outcome.history.get("epoch_seconds", [])))

    def record(self, deployment: Deployment, verdict: Verdict) -> None:
        self.records.append(Record(deployment, verdict))

    def requirements_hash(self) -> str:
        return hashlib.sha256(self.settings.requirements_path.read_bytes()).hexdigest()


def select_models(settings: Settings) -> list[ZooModel]:
    """The zoo models named (all of them unless --tflite is given) and the one-off files."""
    models = [] if settings.tflite_paths and not settings.model_names else \
        select(settings.models_dir, settings.model_names)
    if settings.tflite_paths:
        if settings.preprocessing is None:
            raise ConfigError("--tflite needs --preprocessing: how the model's float input was "
                              "made from the pixels, e.g. --preprocessing 'pixel / 255'.")
        try:
            declared = preprocessing_from_option(settings.preprocessing)
        except McuqualError as exc:
            raise ConfigError(str(exc)) from None
        taken = {m.name for m in models}
        for path in settings.tflite_paths:
            model = ZooModel.from_tflite(Path(path), declared)
            if model.name in taken:
                raise ConfigError(f"--tflite {path}: the name {model.name!r} is already a "
                                  "model of this run; rename the file.")
            taken.add(model.name)
            models.append(model)
    elif settings.preprocessing is not None:
        raise ConfigError("--preprocessing applies to --tflite files; a model folder declares "
                          "its preprocessing in card.toml.")
    if not models:
        raise ConfigError(f"no models found in {settings.models_dir}.")
    return models


def model_hash_or_reason(deployment: Deployment) -> str:
    try:
        return deployment.model_hash()
    except McuqualError as exc:
        return f"unavailable ({type(exc).__name__})"


def update_baseline(session: QualificationRun) -> Path | None:
    """Record every deployment's cycles and top-1 that this run measured."""
    recorded = 0
    for deployment in session.deployments.values():
        try:
            latency, top1 = deployment.measure("latency_ms"), deployment.measure("top1")
        except Exception:          # noqa: BLE001 - a figure this run could not make stays as it was
            continue
        session.baseline.record(deployment.board.name, probe_kind(deployment.probe.is_virtual),
                                deployment.model.name, latency.details["median_cycles"], top1.value)
        recorded += 1
    if not recorded:
        return None
    session.baseline.save()
    return session.baseline.path
