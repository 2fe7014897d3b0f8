"""The evidence attached to each verdict in the Allure report: records, pictures, logs.

What a reviewer needs beside a figure to believe it: the measurement record
itself, and where it helps, a picture (confusion matrix and training curves for
accuracy, the flash/RAM breakdown for weights and arena, per-layer time for
latency, the marked energy windows for energy) and the target's SWO log.
"""
from __future__ import annotations

import json
import re
from typing import Any

from mcuqual.common.evidence import Evidence
from mcuqual.qualify.metrics import METRICS
from mcuqual.report import layers, plots


def attach_evidence(allure: Any, case: Any) -> None:
    verdict, deployment = case.verdict, case.deployment
    allure.attach(json.dumps(verdict.as_record(), indent=1, default=str), name="measurement",
                  attachment_type=allure.attachment_type.JSON)
    measurement = verdict.measurement
    if measurement is None:
        return
    where = f"{case.model.name} on {case.board.name}"
    png = allure.attachment_type.PNG
    entry = METRICS.get(measurement.metric)
    picture = entry.picture if entry is not None else None
    if picture == "accuracy":
        allure.attach(plots.confusion_chart(deployment.evaluation().confusion(),
                                            f"{where}: INT8 confusion matrix (% of each class)"),
                      name="confusion matrix", attachment_type=png)
        curves = case.model.folder / "history.png"
        if curves.is_file():
            allure.attach.file(str(curves), name="training curves", attachment_type=png)
    elif picture == "memory" and "firmware" not in measurement.details:   # an ELF exists
        elf = deployment.elf()
        where_kept = {"weights_bytes": "flash", "arena_bytes": "ram", "stack_bytes": "ram"}
        limits = {r.id: (where_kept[r.metric], int(r.threshold * 1024))
                  for r in case.session.requirements if r.metric in where_kept and r.unit == "KB"}
        flash = {"weights": elf.weights_bytes, "code": elf.code_bytes,
                 "other constants": elf.rodata_bytes, "RAM initializers": elf.data_bytes}
        # the stack as the target used it (its high-water mark) where a run measured it,
        # and the rest of its reserve apart, so the picture does not pass a reserve for use
        high_water = _stack_high_water(deployment)
        ram = ({"arena": elf.arena_bytes, "stack used (high-water)": high_water,
                "stack reserve unused": max(0, elf.stack_bytes - high_water)}
               if high_water is not None else
               {"arena": elf.arena_bytes, "stack (reserve, not measured)": elf.stack_bytes})
        ram["other data"] = max(0, elf.ram_used_bytes - elf.arena_bytes - elf.stack_bytes)
        allure.attach(plots.memory_chart(flash, case.board.flash_bytes, ram, case.board.ram_bytes,
                                         f"{where}: what fills flash and RAM", limits),
                      name="flash and RAM", attachment_type=png)
    elif picture == "timing" and measurement.details.get("layers"):
        rows = layers.layer_rows(measurement, case.board.clock_hz)
        evidence = measurement.evidence.label + (f", {measurement.band_text()}"
                                                 if measurement.band is not None else "")
        allure.attach(layers.layer_html(rows, f"{where}: per-layer cycles", evidence),
                      name="per-layer table", attachment_type=allure.attachment_type.HTML)
        allure.attach(layers.layer_csv(rows), name="per-layer table (csv)",
                      attachment_type=allure.attachment_type.CSV)
        allure.attach(plots.layer_cycles_chart(measurement.details["layers"], case.board.clock_hz,
                                               f"{where}: time per layer", evidence),
                      name="latency per layer", attachment_type=png)
        swo = deployment.swo_log()
        if swo:
            allure.attach("\n".join(swo_for_reading(swo)), name="SWO log",
                          attachment_type=allure.attachment_type.TEXT)
    trace = deployment.power_trace()
    # a modelled trace is the latency times a constant current: its picture would only
    # restate the latency; a measured one shows what the instrument saw
    if picture == "energy" and trace is not None and trace.evidence is Evidence.MEASURED:
        allure.attach(plots.energy_window_chart(trace, f"{where}: supply current and inference "
                                                       "windows"),
                      name="energy windows", attachment_type=png)


NOT_TIMED = "cycles=not timed"


def swo_for_reading(lines: list[str]) -> list[str]:
    """The SWO log as a reader should see it: an inference run without cycle accounting
    (the virtual board's fast path, where DWT stands still) logs cycles=0, which would read
    as a measured zero; it says "not timed" instead."""
    return [re.sub(r"cycles=0(?!\d)", NOT_TIMED, line) for line in lines]


def _stack_high_water(deployment: Any) -> int | None:
    """The stack high-water mark of the target run, if one has already happened."""
    run = deployment.target_run_if_done()
    value = getattr(run, "stack_high_water_bytes", None) if run is not None else None
    return int(value) if value else None
