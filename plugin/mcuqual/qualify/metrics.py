"""The metric registry: every figure a requirement can be written on, in one entry each.

An entry says the metric's canonical unit and the units a requirements file may use
for it, how it is shown (a title and whether it is a column of the deployment summary),
what kind of evidence picture the report draws for it, and which `Deployment` method
produces its `Measurement`. Requirements validate against it, a deployment measures
through it, and the report lays out its columns and pictures from it: adding a metric
is one entry here and one producer on `Deployment`.

    [[requirement]]                      # qualification/requirements.toml
    id = "REQ-STACK"
    title = "Stack high-water mark"
    metric = "stack_bytes"               # a key of METRICS
    op = "<="
    threshold = 8
    unit = "KB"                          # one of the metric's units
    source = "our own budget"
"""
from __future__ import annotations

from dataclasses import dataclass, field

BYTE_UNITS = {"B": 1.0, "KB": 0.0, "MB": 0.0}       # KB and MB follow the file's kilobyte_bytes
FRACTION_UNITS = {"fraction": 1.0, "%": 0.01}


@dataclass(frozen=True)
class Metric:
    """One measurable figure (see the module docstring)."""

    name: str
    unit: str                                  # canonical: every Measurement is in this unit
    units: dict[str, float] = field(hash=False)  # accepted unit -> factor to the canonical unit
    title: str = ""                            # as a column / chart label
    producer: str = ""                         # the Deployment method that measures it
    picture: str | None = None                 # evidence picture: accuracy, memory, timing, energy
    summary_column: bool = True                # a column of the deployment summary


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("top1", "fraction", FRACTION_UNITS, "top-1", "measure_top1", "accuracy"),
    Metric("latency_ms", "ms", {"ms": 1.0, "s": 1000.0, "us": 0.001}, "latency",
           "measure_latency_ms", "timing"),
    Metric("weights_bytes", "B", BYTE_UNITS, "weights", "measure_weights_bytes", "memory"),
    Metric("arena_bytes", "B", BYTE_UNITS, "working RAM", "measure_arena_bytes", "memory"),
    Metric("energy_mj", "mJ", {"mJ": 1.0, "J": 1000.0, "uJ": 0.001}, "energy",
           "measure_energy_mj", "energy"),
    Metric("stack_bytes", "B", BYTE_UNITS, "stack", "measure_stack_bytes", "memory",
           summary_column=False),
    Metric("min_class_top1", "fraction", FRACTION_UNITS, "worst class", "measure_min_class_top1",
           "accuracy", summary_column=False),
)}


def metric(name: str) -> Metric:
    """The registry entry; KeyError names the known metrics."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None
