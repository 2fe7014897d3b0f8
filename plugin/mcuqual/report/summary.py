"""The deployment summary: the study's results table and a Pareto plot, for a reviewer.

One row per model and board with top-1, latency, weights, working RAM and
energy, each as value, evidence level and verdict; the plot puts every model's
top-1 against its latency with the requirements' box drawn in. Written as
Markdown and HTML under reports/latest, and into the Allure results as an entry
of its own ("Deployment summary"), which fails when any requirement is not met.
"""
from __future__ import annotations

import base64
import html
import json
import time
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from pathlib import Path

from mcuqual.report.boards import (headline, matrix_html, matrix_markdown, what_it_takes_markdown,
                                   which_board)
from mcuqual.report.results import all_requirements, outcome_lines
from mcuqual.qualify.metrics import METRICS
from mcuqual.qualify.run import QualificationRun
from mcuqual.qualify.verdicts import PREFIX, Status

# The study's table: the registry's summary metrics first, in its order; any other
# requirement (another metric, or a user's own test) follows under its id.
COLUMNS = tuple((m.name, m.title) for m in METRICS.values() if m.summary_column)
VERDICT_WORD = {Status.PASS: "pass", Status.NOT_MET: "FAIL", Status.NOT_MEASURABLE: "n/m",
                Status.INSUFFICIENT_EVIDENCE: "weak evidence", Status.ERROR: "error"}


@dataclass(frozen=True)
class Cell:
    text: str
    status: Status


def _column_key(verdict) -> str:
    metric = verdict.requirement.metric
    return metric if metric in dict(COLUMNS) else verdict.requirement.id


def columns(session: QualificationRun) -> list[tuple[str, str]]:
    """(key, title) of every column: the summary metrics, then other requirements by id."""
    extra = dict.fromkeys(_column_key(r.verdict) for r in session.records
                          if _column_key(r.verdict) not in dict(COLUMNS))
    return [*COLUMNS, *((key, key) for key in extra)]


def table(session: QualificationRun) -> tuple[list[tuple[str, str]],
                                               dict[tuple[str, str, str], dict[str, Cell]]]:
    """The columns, and per (board, model, probe) the cell of each column."""
    rows: dict[tuple[str, str, str], dict[str, Cell]] = {}
    for record in session.records:
        d, v = record.deployment, record.verdict
        m = v.measurement
        text = f"{m.formatted()} " if m is not None else ""
        rows.setdefault((d.board.name, d.model.name, d.probe.unique_id), {})[
            _column_key(v)] = Cell(text + VERDICT_WORD[v.status], v.status)
    return columns(session), rows


def markdown(session: QualificationRun) -> str:
    shown, rows = table(session)
    titles = [title for _, title in shown]
    lines = ["# Deployment summary", "", *(f"- {line}" for line in outcome_lines(session)), "",
             "| model | board | probe | " + " | ".join(titles) + " |",
             "|---|---|---|" + "---|" * len(titles)]
    for (board, model, probe), cells in rows.items():
        values = [cells[key].text if key in cells else "-" for key, _ in shown]
        lines.append(f"| {model} | {board} | {probe} | " + " | ".join(values) + " |")
    thresholds = "; ".join(f"{r.id} {r.describe_threshold()}" for r in all_requirements(session))
    lines += ["", *matrix_markdown(session)]
    lines += ["", *what_it_takes_markdown(session)]
    lines += ["", f"Requirements: {thresholds}.",
              "Evidence: measured (physical board) > emulated (virtual board) > modelled > host."]
    return "\n".join(lines) + "\n"


def brief_markdown(session: QualificationRun) -> str:
    """What the report's summary entry says without a wide table (a reviewer's window is
    narrow): the answer, which board, what it would take; the tables are its attachments."""
    lines = [f"**{headline(session)}**", "", "### Which board?", "",
             *(f"- {choice.sentence()}" for choice in which_board(session)), "",
             *what_it_takes_markdown(session), "",
             "Every figure, the models x boards matrix and the Pareto plot: see the attachments."]
    return "\n".join(lines).replace("## What would it take", "### What would it take") + "\n"


def pareto_points(session: QualificationRun) -> list[tuple[str, float, float, str, str]]:
    """(model, top-1, latency ms, latency evidence, board) for every model x board with both
    figures."""
    found: dict[tuple[str, str], dict[str, object]] = {}
    for record in session.records:
        m = record.verdict.measurement
        if m is not None and m.metric in ("top1", "latency_ms"):
            key = (record.deployment.board.name, record.deployment.model.name)
            found.setdefault(key, {})[m.metric] = m
    return [(model, figures["top1"].value, figures["latency_ms"].value,
             figures["latency_ms"].evidence.label, board)
            for (board, model), figures in found.items() if len(figures) == 2]


def _label_points(fig, axis, labels: list[tuple[str, float, float]]) -> None:
    """Put each label beside its point where it overlaps no label already placed and stays
    inside the axes; models close in accuracy and latency would otherwise print over each other."""
    renderer = fig.canvas.get_renderer()
    inside = axis.get_window_extent(renderer)
    legend = axis.get_legend()
    taken = [legend.get_window_extent(renderer)] if legend is not None else []
    # every point's marker too: a label must not sit on another model's point
    from matplotlib.transforms import Bbox
    for _, x, y in labels:
        px, py = axis.transData.transform((x, y))
        taken.append(Bbox.from_extents(px - 5, py - 5, px + 5, py + 5))
    candidates = ((5, 4, "left"), (-5, 4, "right"), (5, -11, "left"), (-5, -11, "right"),
                  (5, 12, "left"), (-5, 12, "right"), (5, -19, "left"), (-5, -19, "right"))
    for text, x, y in sorted(labels, key=lambda label: -label[2]):
        for dx, dy, align in candidates:
            note = axis.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy),
                                 ha=align, fontsize=8)
            box = note.get_window_extent(renderer)
            fits = (inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0
                    and box.y1 <= inside.y1)
            if fits and not any(box.overlaps(other) for other in taken):
                break
            if (dx, dy, align) != candidates[-1]:
                note.remove()
        taken.append(box)


def pareto_chart(session: QualificationRun) -> bytes | None:
    points = pareto_points(session)
    if not points:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mcuqual.report.plots import figure_png

    limits = {r.metric: r for r in session.requirements}
    fig, axis = plt.subplots(figsize=(7, 4.5))
    latencies = [p[2] for p in points]
    lo = min(latencies + [limits["latency_ms"].threshold if "latency_ms" in limits else 1]) / 2
    hi = max(latencies) * 2
    axis.set_xscale("log")
    axis.set_xlim(lo, hi)
    tops = [100 * p[1] for p in points]
    axis.set_ylim(min(tops + [80]) - 2, 100)
    if "latency_ms" in limits and "top1" in limits:
        max_ms, min_top1 = limits["latency_ms"].threshold, 100 * limits["top1"].threshold
        axis.axvspan(lo, max_ms, ymin=(min_top1 - axis.get_ylim()[0]) /
                     (axis.get_ylim()[1] - axis.get_ylim()[0]), color="#3a9a4a", alpha=0.15,
                     label=f"requirements: top-1 >= {min_top1:g} %, latency <= {max_ms:g} ms")
    boards = list(dict.fromkeys(p[4] for p in points))
    markers = "os^Dv<>"
    for index, board in enumerate(boards):
        mine = [p for p in points if p[4] == board]
        axis.scatter([p[2] for p in mine], [100 * p[1] for p in mine], s=40,
                     marker=markers[index % len(markers)], color=f"C{index}", label=board, zorder=3)
    if len(boards) > 1 or "latency_ms" in limits:
        axis.legend(loc="upper right", fontsize=8)
    _label_points(fig, axis, [(f"{name} ({evidence})" if len(boards) == 1 else name,
                               latency, 100 * top1)
                              for name, top1, latency, evidence, _ in points])
    axis.set_xlabel("latency per inference, ms (log scale)")
    axis.set_ylabel("INT8 top-1, %")
    axis.set_title("Accuracy against latency", fontsize=10)
    axis.grid(alpha=0.3, which="both")
    return figure_png(fig)


def _list_html(lines: list[str]) -> str:
    """A Markdown heading and bullet list (what_it_takes_markdown) as HTML."""
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line[2:])}</li>" for line in lines if line.startswith("- "))
    return f"<h2>{html.escape(lines[0].lstrip('# '))}</h2><ul>{items}</ul>"


def html_page(session: QualificationRun, chart: bytes | None) -> str:
    shown, rows = table(session)
    titles = [title for _, title in shown]
    colour = {Status.PASS: "#d8f0dc", Status.NOT_MET: "#f8d4d0", Status.ERROR: "#f0e0a0",
              Status.NOT_MEASURABLE: "#e4e4e4", Status.INSUFFICIENT_EVIDENCE: "#f0e0a0"}
    head = "".join(f"<th>{html.escape(t)}</th>" for t in ("model", "board", "probe", *titles))
    body = []
    for (board, model, probe), cells in rows.items():
        tds = [f"<td>{html.escape(x)}</td>" for x in (model, board, probe)]
        for key, _ in shown:
            cell = cells.get(key)
            tds.append(f'<td style="background:{colour[cell.status]}">{html.escape(cell.text)}</td>'
                       if cell else "<td>-</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    image = (f'<img alt="Pareto plot" src="data:image/png;base64,'
             f'{base64.b64encode(chart).decode()}">' if chart else "")
    thresholds = "; ".join(f"{r.id} {r.describe_threshold()}" for r in all_requirements(session))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Deployment summary</title>"
            "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
            "td,th{border:1px solid #999;padding:4px 8px;font-size:13px;vertical-align:top}"
            ".wide{overflow-x:auto;max-width:100%}</style></head><body>"
            f"<h1>Deployment summary</h1><p><b>{html.escape(headline(session))}</b></p>"
            f"{matrix_html(session)}{_list_html(what_it_takes_markdown(session))}"
            f"<h2>Every figure</h2><div class='wide'><table><tr>{head}</tr>{''.join(body)}"
            "</table></div>"
            f"<p>Requirements: {html.escape(thresholds)}.</p>{image}</body></html>\n")


def write_summary(session: QualificationRun, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    chart = pareto_chart(session)
    paths = {"md": folder / "summary.md", "html": folder / "summary.html"}
    paths["md"].write_text(markdown(session))
    paths["html"].write_text(html_page(session, chart))
    if chart:
        paths["png"] = folder / "pareto.png"
        paths["png"].write_bytes(chart)
    return paths


def write_allure_summary(session: QualificationRun, alluredir: Path, paths: dict[str, Path]) -> None:
    """One Allure result per board: the summary, failed when any requirement is not met."""
    alluredir.mkdir(parents=True, exist_ok=True)
    now = int(time.time() * 1000)
    for board in session.boards:
        statuses = {r.verdict.status for r in session.records if r.deployment.board.name == board.name}
        status = ("passed" if statuses == {Status.PASS} else
                  "broken" if Status.ERROR in statuses else "failed")
        attachments = []
        for kind, mime in (("html", "text/html"), ("md", "text/markdown"), ("png", "image/png")):
            if kind in paths:
                source = f"{uuid.uuid4()}-attachment.{kind}"
                (alluredir / source).write_bytes(paths[kind].read_bytes())
                name = ("Pareto plot: top-1 against latency" if kind == "png" else
                        f"deployment summary, every table ({kind})")
                attachments.append({"name": name, "source": source, "type": mime})
        mine = [r for r in session.records if r.deployment.board.name == board.name]
        answer = headline(SimpleNamespace(records=mine))
        message = (answer if status == "passed" else
                   f"{PREFIX[Status.ERROR]}: some figures could not be produced; {answer}"
                   if status == "broken" else f"{PREFIX[Status.NOT_MET]}: {answer}")
        result = {
            "uuid": str(uuid.uuid4()), "historyId": f"mcuqual-summary-{board.name}",
            "statusDetails": {"message": message},
            "name": f"Deployment summary · {board.name}", "fullName": f"mcuqual.summary.{board.name}",
            "status": status, "stage": "finished", "start": now, "stop": now,
            "description": brief_markdown(session),
            "labels": [{"name": "parentSuite", "value": f"{board.name} ({board.title}, {board.mcu})"},
                       {"name": "suite", "value": "Deployment summary"},
                       {"name": "epic", "value": f"{board.name} ({board.title}, {board.mcu})"},
                       {"name": "feature", "value": "Deployment summary"},
                       {"name": "severity", "value": "critical"}],
            "attachments": attachments,
        }
        (alluredir / f"{result['uuid']}-result.json").write_text(json.dumps(result, indent=1))
