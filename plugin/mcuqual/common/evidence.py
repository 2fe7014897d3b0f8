"""A figure is a value with its unit, its evidence level and how it was obtained."""
from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Evidence(enum.IntEnum):
    """How directly a figure was observed; higher is stronger."""

    HOST = 1       # computed on the development host (reference interpreter, file analysis)
    MODELLED = 2   # computed from a model (e.g. energy = cycles x datasheet power)
    EMULATED = 3   # observed on the virtual board
    MEASURED = 4   # observed on a physical board

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> "Evidence":
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown evidence level {text!r}; use one of "
                             f"{', '.join(e.label for e in cls)}") from None


@dataclass(frozen=True)
class Measurement:
    metric: str
    value: float
    unit: str
    evidence: Evidence
    method: str
    samples: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # (low, high) relative uncertainty of an emulated or modelled figure: the real value is
    # expected within [value * (1 - low), value * (1 + high)] (the cycle model's band)
    band: tuple[float, float] | None = None

    @property
    def band_range(self) -> tuple[float, float] | None:
        if self.band is None:
            return None
        return self.value * (1 - self.band[0]), self.value * (1 + self.band[1])

    def band_text(self) -> str:
        """'-5/+12 %' for a figure with a band, '' without."""
        if self.band is None:
            return ""
        return f"-{100 * self.band[0]:.0f}/+{100 * self.band[1]:.0f} %"

    def as_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["evidence"] = self.evidence.label
        return record

    def formatted(self) -> str:
        band = f", {self.band_text()}" if self.band is not None else ""
        return f"{format_value(self.value, self.unit)} ({self.evidence.label}{band})"


def format_value(value: float, unit: str) -> str:
    if unit == "fraction":
        return f"{100 * value:.2f} %"
    if unit == "B":
        return f"{value / 1024:.1f} KB" if value >= 1024 else f"{value:.0f} B"
    return f"{value:.4g} {unit}"
