"""Requirements as data: what a deployment must meet, loaded and checked from TOML."""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mcuqual.common.errors import ConfigError
from mcuqual.common.tomlfile import read_toml
from mcuqual.qualify.metrics import METRICS

CUSTOM_METRIC = "custom"          # a figure a user's own test computes (see plugin.fixtures)

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
}
FIELDS = ("id", "title", "metric", "op", "threshold", "unit", "source")


@dataclass(frozen=True)
class Requirement:
    id: str
    title: str
    metric: str
    op: str
    threshold: float          # as written, in `unit`
    unit: str
    source: str
    threshold_canonical: float  # in the metric's canonical unit
    custom_unit: str = ""       # the canonical unit of a CUSTOM_METRIC requirement

    @property
    def canonical_unit(self) -> str:
        return METRICS[self.metric].unit if self.metric in METRICS else self.custom_unit

    def met_by(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold_canonical)

    def describe_threshold(self) -> str:
        """The threshold as a reader expects it: ">= 86.00 %", "<= 12.6 ms", "<= 160 KB"."""
        if self.unit == "fraction":
            return f"{self.op} {100 * self.threshold:.2f} %"
        return f"{self.op} {self.threshold:g} {self.unit}"


def _unit_table(units: dict[str, float], kilobyte: int) -> dict[str, float]:
    table = dict(units)
    if "KB" in table:
        table["KB"], table["MB"] = float(kilobyte), float(kilobyte * kilobyte)
    return table


def _unit_factor(metric: str, unit: str, kilobyte: int, where: str) -> float:
    table = _unit_table(METRICS[metric].units, kilobyte)
    if unit not in table:
        raise ConfigError(f"{where}: unit {unit!r} does not fit metric {metric!r}; "
                          f"use one of {', '.join(table)}.")
    return table[unit]


def _custom_factor(unit: str, unit_of_value: str, kilobyte: int, where: str) -> float:
    """Threshold unit -> the unit a custom figure is given in, within one family of units."""
    if unit == unit_of_value:
        return 1.0
    for entry in METRICS.values():
        table = _unit_table(entry.units, kilobyte)
        if unit in table and unit_of_value in table:
            return table[unit] / table[unit_of_value]
    raise ConfigError(f"{where}: a threshold in {unit!r} cannot be compared with a figure in "
                      f"{unit_of_value!r}.")


def make_requirement(requirement_id: str, title: str, metric: str | None, op: str,
                     threshold: float, unit: str, source: str, *, where: str = "",
                     kilobyte: int = 1024, unit_of_value: str | None = None) -> Requirement:
    """One requirement, checked as a requirements file's entries are; `metric=None` with
    `unit_of_value` for a figure computed by a user's own test."""
    where = where or f"requirement {requirement_id}"
    if metric is not None and metric not in METRICS:
        raise ConfigError(f"{where}: unknown metric {metric!r}; known: {', '.join(METRICS)}.")
    if op not in OPS:
        raise ConfigError(f"{where}: bad op {op!r}; use one of {', '.join(OPS)}.")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not math.isfinite(threshold):
        raise ConfigError(f"{where}: threshold must be a finite number, not {threshold!r}.")
    if metric is None:
        if not unit_of_value:
            raise ConfigError(f"{where}: a custom requirement needs the unit of its figure.")
        factor = _custom_factor(unit, unit_of_value, kilobyte, where)
        return Requirement(str(requirement_id), str(title), CUSTOM_METRIC, op, float(threshold),
                           unit, str(source), float(threshold) * factor, unit_of_value)
    factor = _unit_factor(metric, unit, kilobyte, where)
    return Requirement(str(requirement_id), str(title), metric, op, float(threshold), unit,
                       str(source), float(threshold) * factor)


def load_requirements(path: Path) -> list[Requirement]:
    """Read and validate; every problem names the file and the requirement."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"requirements file {path} not found (--requirements PATH).")
    data = read_toml(path)
    kilobyte = data.get("kilobyte_bytes", 1024)
    if kilobyte not in (1000, 1024):
        raise ConfigError(f"{path}: kilobyte_bytes must be 1000 or 1024, not {kilobyte!r}.")
    entries = data.get("requirement")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: no [[requirement]] tables found.")
    result: list[Requirement] = []
    for index, entry in enumerate(entries, start=1):
        where = f"{path}: requirement #{index} ({entry.get('id', 'no id')})"
        missing = [f for f in FIELDS if f not in entry]
        if missing:
            raise ConfigError(f"{where}: missing {', '.join(missing)}.")
        unknown = sorted(set(entry) - set(FIELDS))
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}.")
        result.append(make_requirement(entry["id"], entry["title"], entry["metric"], entry["op"],
                                       entry["threshold"], entry["unit"], entry["source"],
                                       where=where, kilobyte=kilobyte))
    ids = [r.id for r in result]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ConfigError(f"{path}: duplicate requirement id(s) {', '.join(duplicated)}.")
    return result
