"""The regression gate: today's cycles and top-1 against a stored baseline.

A requirement that already fails (ResNet-8 at 669 ms against 12.6 ms) says
nothing about a change that makes it 10 % slower; this gate does. The baseline
is a JSON file in the repository, written by `--update-baseline` from a run and
reviewed like code, the way snapshot files are. Figures are compared only with
a baseline from the same kind of probe (emulated cycles are not measured ones).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcuqual.common.errors import ConfigError

DEFAULT_TOLERANCE = {"cycles_fraction": 0.01, "top1_points": 0.005}


def probe_kind(is_virtual: bool) -> str:
    return "virtual" if is_virtual else "physical"


@dataclass
class Baseline:
    path: Path
    tolerance: dict[str, float]
    figures: dict[str, dict[str, dict[str, dict[str, Any]]]]     # board -> probe kind -> model

    @classmethod
    def load(cls, path: Path) -> "Baseline":
        if not path.is_file():
            return cls(path, dict(DEFAULT_TOLERANCE), {})
        try:
            data = json.loads(path.read_text())
            return cls(path, {**DEFAULT_TOLERANCE, **data.get("tolerance", {})},
                       data.get("figures", {}))
        except (json.JSONDecodeError, AttributeError) as exc:
            raise ConfigError(f"baseline {path} is not a baseline file: {exc}") from None

    def entry(self, board: str, kind: str, model: str) -> dict[str, Any] | None:
        return self.figures.get(board, {}).get(kind, {}).get(model)

    def record(self, board: str, kind: str, model: str, median_cycles: int, top1: float) -> None:
        self.figures.setdefault(board, {}).setdefault(kind, {})[model] = {
            "median_cycles": int(median_cycles), "top1": round(float(top1), 4)}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({
            "about": "mcuqual regression baseline: written by --update-baseline, compared on "
                     "every run; review changes like code.",
            "tolerance": self.tolerance, "figures": self.figures}, indent=1, sort_keys=True) + "\n")


def compare(entry: dict[str, Any], tolerance: dict[str, float], median_cycles: int,
            top1: float) -> list[str]:
    """What got worse beyond the tolerance, as sentences; empty when nothing did."""
    worse = []
    limit = entry["median_cycles"] * (1 + tolerance["cycles_fraction"])
    if median_cycles > limit:
        worse.append(f"{median_cycles:,} cycles, baseline {entry['median_cycles']:,} "
                     f"(+{100 * (median_cycles / entry['median_cycles'] - 1):.2f} %, tolerance "
                     f"{100 * tolerance['cycles_fraction']:g} %)")
    if top1 < entry["top1"] - tolerance["top1_points"]:
        worse.append(f"top-1 {100 * top1:.2f} %, baseline {100 * entry['top1']:.2f} % "
                     f"(tolerance {100 * tolerance['top1_points']:g} points)")
    return worse
