"""Which board? The models x boards matrix, and per model the boards that meet everything.

The study's last step, "select another microcontroller", as data: for each model the
boards on which every requirement is met, ranked by energy per inference; where none is,
the closest board and what it misses ("latency 2.3x over; everything else met"). Every
figure keeps its evidence level and, for an emulated one, its uncertainty band.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass

from mcuqual.common.evidence import format_value
from mcuqual.qualify.metrics import METRICS
from mcuqual.qualify.run import QualificationRun
from mcuqual.qualify.verdicts import Status, Verdict

# the figures a matrix cell shows besides the verdicts
CELL_METRICS = ("latency_ms", "energy_mj")
MARK = {Status.PASS: "✓", Status.NOT_MET: "✗", Status.NOT_MEASURABLE: "n/m",
        Status.INSUFFICIENT_EVIDENCE: "weak", Status.ERROR: "error"}


def _metric_title(verdict: Verdict) -> str:
    metric = verdict.requirement.metric
    return METRICS[metric].title if metric in METRICS else verdict.requirement.id


def gap(verdict: Verdict) -> str:
    """What a verdict that is not a pass lacks, in the requirement's own terms:
    "top-1 -13.4 points", "latency 2.31x over", "weights +12.5 KB over"."""
    name = _metric_title(verdict)
    m, req = verdict.measurement, verdict.requirement
    if verdict.status is Status.PASS:
        return f"{name} met"
    if verdict.status is not Status.NOT_MET or m is None:
        return f"{name} {verdict.status.value}"
    limit = req.threshold_canonical
    if m.unit == "fraction":
        return f"{name} {100 * (m.value - limit):+.1f} points"
    if m.unit == "B":
        return f"{name} {format_value(abs(m.value - limit), 'B')} {'over' if m.value > limit else 'under'}"
    if limit > 0 and m.value > 0:
        ratio = m.value / limit
        return f"{name} {ratio:.2f}x {'over' if ratio > 1 else 'under'}"
    return f"{name} {format_value(m.value, m.unit)} vs {req.op} {format_value(limit, m.unit)}"


def _shortfall(verdict: Verdict) -> float:
    """How far a verdict is from a pass, for ranking boards: 0 for a pass, the log of the
    ratio to the threshold for a figure not met, a large constant for no figure."""
    if verdict.status is Status.PASS:
        return 0.0
    m = verdict.measurement
    limit = verdict.requirement.threshold_canonical
    if verdict.status is not Status.NOT_MET or m is None or m.value <= 0 or limit <= 0:
        return 10.0
    return abs(math.log(m.value / limit))


@dataclass(frozen=True)
class Cell:
    """One model on one board: its verdicts by requirement id."""

    model: str
    board: str
    verdicts: dict[str, Verdict]

    @property
    def all_met(self) -> bool:
        return bool(self.verdicts) and all(v.passed for v in self.verdicts.values())

    def figure(self, metric: str):
        for verdict in self.verdicts.values():
            if verdict.requirement.metric == metric and verdict.measurement is not None:
                return verdict.measurement
        return None

    def figure_text(self, metric: str) -> str:
        m = self.figure(metric)
        if m is None:
            return "-"
        band = f" {m.band_text()}" if m.band is not None else ""
        return f"{format_value(m.value, m.unit)}{band} ({m.evidence.label})"

    @property
    def misses(self) -> list[Verdict]:
        return [v for v in self.verdicts.values() if not v.passed]

    @property
    def shortfall(self) -> tuple[int, float]:
        return len(self.misses), sum(_shortfall(v) for v in self.misses)


def cells(session: QualificationRun) -> dict[tuple[str, str], Cell]:
    """(model, board) -> Cell, in the run's order."""
    found: dict[tuple[str, str], dict[str, Verdict]] = {}
    for record in session.records:
        d = record.deployment
        found.setdefault((d.model.name, d.board.name), {})[record.verdict.requirement.id] = \
            record.verdict
    return {key: Cell(key[0], key[1], verdicts) for key, verdicts in found.items()}


@dataclass(frozen=True)
class Choice:
    """The answer for one model: boards meeting everything (best energy first), or the
    closest board and what it misses."""

    model: str
    qualifying: list[Cell]
    closest: Cell | None

    def sentence(self) -> str:
        if self.qualifying:
            ranked = ", ".join(f"{c.board} ({c.figure_text('energy_mj')})" for c in self.qualifying)
            return f"{self.model}: meets every requirement on {ranked}"
        if self.closest is None:
            return f"{self.model}: no verdicts"
        missing = "; ".join(gap(v) for v in self.closest.misses)
        met = len(self.closest.verdicts) - len(self.closest.misses)
        return (f"{self.model}: no board meets every requirement; closest {self.closest.board}: "
                f"{missing}; {met} of {len(self.closest.verdicts)} requirements met")


def which_board(session: QualificationRun) -> list[Choice]:
    by_model: dict[str, list[Cell]] = {}
    for cell in cells(session).values():
        by_model.setdefault(cell.model, []).append(cell)
    choices = []
    for model, model_cells in by_model.items():
        def energy(cell: Cell) -> float:
            m = cell.figure("energy_mj")
            return m.value if m is not None else math.inf
        qualifying = sorted((c for c in model_cells if c.all_met), key=energy)
        closest = None if qualifying else min(model_cells, key=lambda c: c.shortfall)
        choices.append(Choice(model, qualifying, closest))
    return choices


def _boards_and_models(found: dict[tuple[str, str], Cell]) -> tuple[list[str], list[str]]:
    models = list(dict.fromkeys(model for model, _ in found))
    boards = list(dict.fromkeys(board for _, board in found))
    return models, boards


def _cell_summary(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    marks = " ".join(f"{rid.removeprefix('REQ-')} {MARK[v.status]}" for rid, v in cell.verdicts.items())
    figures = "; ".join(cell.figure_text(m) for m in CELL_METRICS if cell.figure(m) is not None)
    head = "**all met**" if cell.all_met else f"{len(cell.misses)} missed"
    return f"{head}: {marks}" + (f"<br>{figures}" if figures else "")


def matrix_markdown(session: QualificationRun) -> list[str]:
    """The models x boards matrix and the "Which board?" answers, as Markdown lines."""
    found = cells(session)
    if not found:
        return []
    models, boards = _boards_and_models(found)
    lines = ["## Models x boards", "",
             "| model | " + " | ".join(boards) + " |", "|---|" + "---|" * len(boards)]
    for model in models:
        lines.append(f"| {model} | " + " | ".join(_cell_summary(found.get((model, board)))
                                                  for board in boards) + " |")
    lines += ["", "## Which board?", ""]
    lines += [f"- {choice.sentence()}" for choice in which_board(session)]
    lines += ["", "Ranking: boards meeting every requirement by energy per inference; otherwise "
              "the board with the fewest misses, then the smallest gaps. Emulated figures carry "
              "their cycle model's uncertainty band (-low/+high %)."]
    return lines


def matrix_html(session: QualificationRun) -> str:
    found = cells(session)
    if not found:
        return ""
    models, boards = _boards_and_models(found)
    colour = {True: "#d8f0dc", False: "#f8d4d0"}
    head = "".join(f"<th>{html.escape(b)}</th>" for b in boards)
    rows = []
    for model in models:
        tds = [f"<th>{html.escape(model)}</th>"]
        for board in boards:
            cell = found.get((model, board))
            if cell is None:
                tds.append("<td>-</td>")
                continue
            marks = " ".join(f"<span title='{html.escape(v.message)}'>"
                             f"{html.escape(rid.removeprefix('REQ-'))} {MARK[v.status]}</span>"
                             for rid, v in cell.verdicts.items())
            figures = "<br>".join(html.escape(cell.figure_text(m)) for m in CELL_METRICS
                                  if cell.figure(m) is not None)
            tds.append(f'<td style="background:{colour[cell.all_met]}">{marks}<br>{figures}</td>')
        rows.append("<tr>" + "".join(tds) + "</tr>")
    answers = "".join(f"<li>{html.escape(c.sentence())}</li>" for c in which_board(session))
    return (f"<h2>Models x boards</h2><div class='wide'><table><tr><th>model</th>{head}</tr>"
            f"{''.join(rows)}</table></div>"
            f"<h2>Which board?</h2><ul>{answers}</ul>")


def headline(session: QualificationRun) -> str:
    """The run's answer in one line, what the report opens with: how many model x board
    pairs meet every requirement and which, or the closest miss and its gaps."""
    found = list(cells(session).values())
    if not found:
        return "no requirement was judged"
    met = [c for c in found if c.all_met]
    pairs = f"{len(found)} model x board pair{'s' if len(found) != 1 else ''}"
    if met:
        names = ", ".join(f"{c.model} on {c.board}" for c in met)
        verb = "meets" if len(met) == 1 else "meet"
        return f"{len(met)} of {pairs} {verb} every requirement: {names}"
    closest = min(found, key=lambda c: c.shortfall)
    gaps = "; ".join(gap(v) for v in closest.misses)
    return (f"0 of {pairs} meet every requirement; closest: {closest.model} on "
            f"{closest.board} ({gaps})")


def what_it_takes(verdict: Verdict, session: QualificationRun, model: str, board: str,
                  other_boards: bool = True) -> str:
    """For a requirement not met: what would make it pass, from the measured figures.
    Latency and energy: the gap, the MAC budget at the efficiency measured on this board
    (the model's MACs over the speed-up needed: both figures scale with the cycles), and the
    boards of the run on which the requirement holds; top-1: the gap in points; bytes: how
    many are over. Empty for any other verdict. `other_boards=False` while the run is still
    going (the other boards' verdicts may not exist yet)."""
    m, req = verdict.measurement, verdict.requirement
    if verdict.status is not Status.NOT_MET or m is None:
        return ""
    parts = [gap(verdict)]
    if req.metric in ("latency_ms", "energy_mj") and m.value > 0:
        speedup = m.value / req.threshold_canonical          # gap() says it: "2.30x over"
        own = cells(session).get((model, board))
        latency = m if req.metric == "latency_ms" else (
            own.figure("latency_ms") if own is not None else None)
        details = latency.details if latency is not None else {}
        if details.get("macs") and details.get("macs_per_cycle"):
            parts.append(f"a MAC budget of about {details['macs'] / speedup / 1e6:.2f} M MACs at "
                         f"the {details['macs_per_cycle']:.2f} MAC/cycle measured here "
                         f"({m.evidence.label})")
        if not other_boards:
            return "; ".join(parts)
        elsewhere = [c.board for (mm, bb), c in cells(session).items()
                     if mm == model and bb != board and req.id in c.verdicts
                     and c.verdicts[req.id].passed]
        parts.append(f"met on {', '.join(elsewhere)}" if elsewhere else
                     "met on no other board of this run")
    return "; ".join(parts)


def what_it_takes_markdown(session: QualificationRun) -> list[str]:
    """One line per requirement not met: what it would take (see `what_it_takes`)."""
    lines = []
    for record in session.records:
        d, v = record.deployment, record.verdict
        text = what_it_takes(v, session, d.model.name, d.board.name)
        if text:
            lines.append(f"- {v.requirement.id} {d.model.name} on {d.board.name}: {text}")
    return ["## What would it take", "", *lines] if lines else []
