"""Requirements as data: what a deployment must meet, loaded and checked from TOML."""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mcuqual.common.errors import ConfigError
from mcuqual.common.tomlfile import read_toml

# metric -> (canonical unit, {accepted unit: factor to canonical}); "KB" is filled per file.
METRICS: dict[str, tuple[str, dict[str, float]]] = {
    "top1": ("fraction", {"fraction": 1.0, "%": 0.01}),
    "weights_bytes": ("B", {"B": 1.0, "KB": 0.0, "MB": 0.0}),
    "arena_bytes": ("B", {"B": 1.0, "KB": 0.0, "MB": 0.0}),
    "latency_ms": ("ms", {"ms": 1.0, "s": 1000.0, "us": 0.001}),
    "energy_mj": ("mJ", {"mJ": 1.0, "J": 1000.0, "uJ": 0.001}),
}
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

    @property
    def canonical_unit(self) -> str:
        return METRICS[self.metric][0]

    def met_by(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold_canonical)

    def describe_threshold(self) -> str:
        return f"{self.op} {self.threshold:g} {self.unit}"


def _unit_factor(metric: str, unit: str, kilobyte: int, where: str) -> float:
    table = dict(METRICS[metric][1])
    if "KB" in table:
        table["KB"], table["MB"] = float(kilobyte), float(kilobyte * kilobyte)
    if unit not in table:
        raise ConfigError(f"{where}: unit {unit!r} does not fit metric {metric!r}; "
                          f"use one of {', '.join(table)}.")
    return table[unit]


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
        if entry["metric"] not in METRICS:
            raise ConfigError(f"{where}: unknown metric {entry['metric']!r}; "
                              f"known: {', '.join(METRICS)}.")
        if entry["op"] not in OPS:
            raise ConfigError(f"{where}: bad op {entry['op']!r}; use one of {', '.join(OPS)}.")
        threshold = entry["threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
                or not math.isfinite(threshold):
            raise ConfigError(f"{where}: threshold must be a finite number, not {threshold!r}.")
        factor = _unit_factor(entry["metric"], entry["unit"], kilobyte, where)
        result.append(Requirement(
            id=str(entry["id"]), title=str(entry["title"]), metric=entry["metric"],
            op=entry["op"], threshold=float(threshold), unit=entry["unit"],
            source=str(entry["source"]), threshold_canonical=float(threshold) * factor))
    ids = [r.id for r in result]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ConfigError(f"{path}: duplicate requirement id(s) {', '.join(duplicated)}.")
    return result
