"""What a run leaves behind: qualification.json, Allure environment and categories, the matrix."""
from __future__ import annotations

import hashlib
import json
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from mcuqual.firmware.build import OPTIMIZATION, toolchain_version
from mcuqual.common.evidence import format_value
from mcuqual.qualify.run import QualificationRun, model_hash_or_reason
from mcuqual.qualify.verdicts import PREFIX, Status
from mcuqual.report.boards import headline

# The report's defect categories, first match wins. Patterns are searched for anywhere in
# the message (or trace), as Allure 3 does (JavaScript RegExp.test); Allure 2's
# categories.json wants whole-message matches and gets them wrapped (`allure2_categories`).
CATEGORIES = [
    {"name": "Requirement not met", "statuses": ["failed"], "message": PREFIX[Status.NOT_MET]},
    {"name": "Regression against the baseline", "statuses": ["failed"], "message": "^REGRESSION"},
    {"name": "Not measurable with this probe", "statuses": ["failed", "broken"],
     "message": PREFIX[Status.NOT_MEASURABLE]},
    {"name": "Insufficient evidence level", "statuses": ["failed"],
     "message": PREFIX[Status.INSUFFICIENT_EVIDENCE]},
    {"name": "Interrupted (no verdict)", "statuses": ["broken"], "message": "^INTERRUPTED"},
    {"name": "Model not trained", "statuses": ["broken", "failed"],
     "trace": "MissingArtifactError"},
    {"name": "Target fault", "statuses": ["broken", "failed"], "trace": "TargetFaultError"},
    {"name": "Error (no figure produced)", "statuses": ["broken", "failed"]},
]


def allure2_categories() -> list[dict[str, Any]]:
    """categories.json for Allure 2 (Java regular expressions matching the whole text)."""
    found = []
    for category in CATEGORIES:
        entry: dict[str, Any] = {"name": category["name"], "matchedStatuses": category["statuses"]}
        for key, field in (("message", "messageRegex"), ("trace", "traceRegex")):
            if key in category:
                pattern = category[key].removeprefix("^")
                lead = "" if category[key].startswith("^") else ".*"
                entry[field] = f"(?s){lead}{pattern}.*"
        found.append(entry)
    return found


def allure3_categories() -> list[dict[str, Any]]:
    """The same categories as Allure 3's configuration takes them (`categories.rules`)."""
    return [{"name": c["name"], "matchedStatuses": c["statuses"],
             **({"messageRegex": c["message"]} if "message" in c else {}),
             **({"traceRegex": c["trace"]} if "trace" in c else {})} for c in CATEGORIES]


ALLURE3_SETTINGS = "mcuqual-allure3.json"

SYMBOL = {Status.PASS: "PASS", Status.NOT_MET: "FAIL", Status.NOT_MEASURABLE: "n/m",
          Status.INSUFFICIENT_EVIDENCE: "weak", Status.ERROR: "ERROR"}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _target_origin(name: str) -> str:
    try:
        from mcuqual.target.pyocd.targets import target_origin
        return target_origin(name)
    except Exception as exc:      # e.g. no toolchain for the flash algorithm
        return f"unavailable: {exc}".splitlines()[0][:200]


def environment(session: QualificationRun) -> dict[str, str]:
    """environment.properties: what a reviewer needs to reproduce the run."""
    props: dict[str, str] = {
        "mcuqual": _version("mcuqual"),
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow-cpu") if _version("tensorflow-cpu") != "not installed"
        else _version("tensorflow"),
        "tflite_micro": _version("tflite-micro"),
        "pyocd": _version("pyocd"),
        "allure_pytest": _version("allure-pytest"),
        "host": f"{platform.system()} {platform.machine()}",
        "requirements_file": str(session.settings.requirements_path),
        "requirements sha256": session.requirements_hash(),
        "evidence_required": session.settings.evidence.label,
        "samples_on_target": "all" if session.settings.samples is None else str(session.settings.samples),
        "toolchain": toolchain_version(),
        "firmware_optimization": OPTIMIZATION,
    }
    try:
        data = session.data.get()
        props["dataset"] = f"{data.directory} ({data.format})"
        props["dataset fingerprint (16 hex digits)"] = data.fingerprint
    except Exception as exc:  # a missing dataset must not hide the rest of the report
        props["dataset"] = f"unavailable: {exc}".splitlines()[0][:200]
    # keys say what differs first (Allure's environment widget cuts long keys short)
    for board in session.boards:
        props[f"{board.name} MCU"] = f"{board.mcu} ({board.title})"
        props[f"{board.name} core"] = f"{board.core} @ {board.clock_hz / 1e6:g} MHz"
        props[f"{board.name} probe"] = session.probes[board.name].unique_id
        props[f"{board.name} pyOCD target"] = (f"{board.pyocd_target} "
                                               f"({_target_origin(board.pyocd_target)})")
    for deployment in session.deployments.values():
        model = deployment.model.name
        props[f"{model} .tflite sha256"] = model_hash_or_reason(deployment)
        firmware = deployment.firmware_summary()
        if firmware is not None:
            digest = hashlib.sha256(Path(firmware["elf"]).read_bytes()).hexdigest()
            props[f"{model} firmware ({deployment.board.name}) sha256"] = digest
    return props


def write_allure_extras(alluredir: Path, session: QualificationRun) -> None:
    alluredir.mkdir(parents=True, exist_ok=True)
    lines = [f"{key}={str(value).replace(chr(10), ' ')}" for key, value in environment(session).items()]
    (alluredir / "environment.properties").write_text("\n".join(lines) + "\n")
    (alluredir / "categories.json").write_text(json.dumps(allure2_categories(), indent=1) + "\n")
    # what allurerc.mjs gives Allure 3: the categories, the tree (board > requirement > model)
    # and the report's name, which opens with the verdict
    (alluredir / ALLURE3_SETTINGS).write_text(json.dumps(
        {"name": f"mcuqual: {headline(session)}", "categories": allure3_categories(),
         "groupBy": ["parentSuite", "suite", "subSuite"]}, indent=1) + "\n")


EXIT_MEANING = {0: "every requirement met", 1: "some requirement not met (no errors)",
                2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected",
                6: "error: some figure could not be produced (see the errors above)"}


def verdict_counts(session: QualificationRun) -> dict[str, int]:
    counts = {status.value: 0 for status in Status}
    for record in session.records:
        counts[record.verdict.status.value] += 1
    return counts


def not_run(session: QualificationRun) -> list[str]:
    """Planned requirement x model x board cases without a verdict (an interrupted run)."""
    judged = {(r.deployment.board.name, r.deployment.model.name, r.verdict.requirement.id)
              for r in session.records}
    return [f"{req} {model} on {board}" for board, model, req in session.planned
            if (board, model, req) not in judged]


def run_status(session: QualificationRun) -> dict[str, Any]:
    outcome = session.outcome
    return {"status": "interrupted" if outcome.interrupted else "complete",
            "interrupted_during": outcome.interrupted_at,
            "exit_code": outcome.exit_code,
            "exit_meaning": EXIT_MEANING.get(outcome.exit_code, "") if outcome.exit_code is not None
            else None,
            "verdicts": verdict_counts(session), "not_run": not_run(session),
            "errored_tests": outcome.errors, "failed_tests": outcome.failures}


def outcome_lines(session: QualificationRun) -> list[str]:
    """The run's bottom line: verdicts counted by kind, an interrupt, the exit code."""
    counts = {k: v for k, v in verdict_counts(session).items() if v}
    lines = [f"answer: {headline(session)}",
             "verdicts: " + (", ".join(f"{v} {k}" for k, v in counts.items()) or "none")]
    other = session.outcome.errors
    if other:
        more = f", +{len(other) - 3} more" if len(other) > 3 else ""
        lines.append(f"errors outside the requirement verdicts: {len(other)} "
                     f"({', '.join(other[:3])}{more})")
    if session.outcome.interrupted:
        missing = not_run(session)
        lines.append(f"INTERRUPTED during {session.outcome.interrupted_at or 'the run'}: "
                     f"{len(missing)} of {len(session.planned)} requirement verdicts not reached; "
                     "the figures above were measured before the stop.")
    code = session.outcome.exit_code
    if code is not None:
        lines.append(f"exit code {code}: {EXIT_MEANING.get(code, 'see pytest')}")
    return lines


def qualification_document(session: QualificationRun) -> dict[str, Any]:
    models: dict[str, Any] = {}
    for deployment in session.deployments.values():
        entry = models.setdefault(deployment.model.name, {
            "title": deployment.model.title, "trained": deployment.model.trained,
            "card_results": deployment.model.results(), "boards": {}})
        board_entry = {"probe": deployment.probe.unique_id,
                       "steps": [{"name": s.name, "seconds": round(s.seconds, 2), "detail": s.detail}
                                 for s in deployment.steps],
                       "tflite_sha256": model_hash_or_reason(deployment)}
        firmware = deployment.firmware_summary()
        if firmware is not None:
            board_entry["firmware"] = firmware
        if deployment.model.trained:
            try:
                board_entry["tflite_origin"] = deployment.tflite_origin()
            except Exception:  # noqa: BLE001 - descriptive only
                pass
        entry["boards"][deployment.board.name] = board_entry
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "run": run_status(session),
        "environment": environment(session),
        "requirements": [{"id": r.id, "title": r.title, "metric": r.metric, "op": r.op,
                          "threshold": r.threshold, "unit": r.unit, "source": r.source}
                         for r in all_requirements(session)],
        "models": models,
        "results": [record.as_dict() for record in session.records],
    }


def write_qualification_json(path: Path, session: QualificationRun) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(qualification_document(session), indent=1, default=str) + "\n")
    return path


def all_requirements(session: QualificationRun) -> list:
    """The run's requirements file, then those that users' own tests judged, by id."""
    found = {r.id: r for r in session.requirements}
    for record in session.records:
        found.setdefault(record.verdict.requirement.id, record.verdict.requirement)
    return list(found.values())


def matrix_lines(session: QualificationRun) -> list[str]:
    """requirement x (board, model): value, evidence, verdict."""
    if not session.records:
        return []
    requirements = all_requirements(session)
    req_ids = [r.id for r in requirements]
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for record in session.records:
        d, v = record.deployment, record.verdict
        if v.measurement is not None:
            band = f" {v.measurement.band_text()}" if v.measurement.band is not None else ""
            text = (f"{format_value(v.measurement.value, v.measurement.unit)}{band} "
                    f"{v.measurement.evidence.label} {SYMBOL[v.status]}")
        else:
            text = SYMBOL[v.status]
        cells.setdefault((d.board.name, d.model.name), {})[v.requirement.id] = text
    head = ["board", "model", *req_ids]
    rows = [[b, m, *(row.get(r, "-") for r in req_ids)] for (b, m), row in cells.items()]
    widths = [max(len(str(x)) for x in column) for column in zip(head, *rows)]
    def fmt(row: Iterable[str]) -> str:
        return "  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip()
    lines = [fmt(head), fmt("-" * w for w in widths), *(fmt(r) for r in rows)]
    thresholds = ", ".join(f"{r.id} {r.describe_threshold()}" for r in requirements)
    lines.append(f"thresholds: {thresholds}")
    lines.append("n/m = not measurable with this probe; evidence: measured > emulated > modelled > host")
    return lines


def error_lines(session: QualificationRun) -> list[str]:
    """Each distinct error once, with the models it hit: the user's to-do list."""
    hits: dict[str, list[str]] = {}
    for record in session.records:
        if record.verdict.status is Status.ERROR:
            models = hits.setdefault(record.verdict.message, [])
            if record.deployment.model.name not in models:
                models.append(record.deployment.model.name)
    return [f"{', '.join(models)}: {message}" for message, models in hits.items()]
