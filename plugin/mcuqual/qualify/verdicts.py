"""Comparing a figure with a requirement. Anything short of a clean pass is a failure."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from mcuqual.common.evidence import Evidence, Measurement, format_value
from mcuqual.qualify.requirements import Requirement


class Status(str, enum.Enum):
    PASS = "pass"
    NOT_MET = "not met"
    NOT_MEASURABLE = "not measurable"
    INSUFFICIENT_EVIDENCE = "insufficient evidence"
    ERROR = "error"


# Message prefixes the Allure categories match on (see report.CATEGORIES).
PREFIX = {
    Status.NOT_MET: "REQUIREMENT NOT MET",
    Status.NOT_MEASURABLE: "NOT MEASURABLE WITH THIS PROBE",
    Status.INSUFFICIENT_EVIDENCE: "INSUFFICIENT EVIDENCE",
    Status.ERROR: "ERROR",
}


@dataclass(frozen=True)
class Verdict:
    requirement: Requirement
    status: Status
    message: str
    measurement: Measurement | None = None

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS

    def as_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "requirement": self.requirement.id, "title": self.requirement.title,
            "metric": self.requirement.metric, "op": self.requirement.op,
            "threshold": self.requirement.threshold, "threshold_unit": self.requirement.unit,
            "threshold_canonical": self.requirement.threshold_canonical,
            "verdict": self.status.value, "message": self.message,
            "value": None, "unit": self.requirement.canonical_unit, "evidence": None,
        }
        if self.measurement is not None:
            m = self.measurement
            record.update(value=m.value, unit=m.unit, evidence=m.evidence.label, method=m.method,
                          samples=m.samples, details=m.details,
                          band=list(m.band) if m.band is not None else None)
        return record


def judge(requirement: Requirement, measurement: Measurement,
          minimum: Evidence = Evidence.HOST) -> Verdict:
    if measurement.unit != requirement.canonical_unit:
        raise ValueError(f"{requirement.id}: figure in {measurement.unit}, requirement in "
                         f"{requirement.canonical_unit}")
    shown = format_value(measurement.value, measurement.unit)
    limit = format_value(requirement.threshold_canonical, requirement.canonical_unit)
    comparison = f"{shown} {requirement.op} {limit}"
    band = measurement.band_range
    within = ""
    if band is not None and band[0] <= requirement.threshold_canonical <= band[1]:
        within = (f"; the threshold lies inside the figure's uncertainty band "
                  f"({format_value(band[0], measurement.unit)} to "
                  f"{format_value(band[1], measurement.unit)}, {measurement.band_text()}): "
                  "the real board may decide otherwise")
    evidence = measurement.evidence.label + (f", {measurement.band_text()}" if band else "")
    if not requirement.met_by(measurement.value):
        return Verdict(requirement, Status.NOT_MET,
                       f"{PREFIX[Status.NOT_MET]}: {shown} ({evidence}) does not "
                       f"satisfy {requirement.op} {limit}{within}", measurement)
    if measurement.evidence < minimum:
        return Verdict(requirement, Status.INSUFFICIENT_EVIDENCE,
                       f"{PREFIX[Status.INSUFFICIENT_EVIDENCE]}: {comparison} holds, but the figure "
                       f"is {measurement.evidence.label} and --evidence requires "
                       f"{minimum.label}", measurement)
    return Verdict(requirement, Status.PASS, f"{comparison} ({evidence}){within}", measurement)


def not_measurable(requirement: Requirement, reason: str) -> Verdict:
    return Verdict(requirement, Status.NOT_MEASURABLE,
                   f"{PREFIX[Status.NOT_MEASURABLE]}: {reason}")


def undeployable(requirement: Requirement, reason: str) -> Verdict:
    """Nothing was deployed (the model does not fit the board): no figure, and not met."""
    return Verdict(requirement, Status.NOT_MET,
                   f"{PREFIX[Status.NOT_MET]}: the model cannot be deployed, so nothing meets "
                   f"{requirement.describe_threshold()}: {reason}")


def error(requirement: Requirement, reason: str) -> Verdict:
    return Verdict(requirement, Status.ERROR, f"{PREFIX[Status.ERROR]}: {reason}")
