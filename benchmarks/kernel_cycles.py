"""The kernel benchmark's stored figures (kernel_cycles.json): read, merge, compare, format.

The stored file holds, per board and per benchmark case, the emulated cycles of the case's
operator and the git commit they were recorded on. A run compares its cycles with them and
prints the change; `--kernel-cycles-update` merges the run's figures into the file. Changes
are reported, never asserted: this is a benchmark.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STORED_PATH = Path(__file__).resolve().parent / "kernel_cycles.json"
# What decides a case's cycles: a recording made with changes here is marked "-dirty".
CYCLE_SOURCES = ("firmware", "plugin/mcuqual/firmware", "plugin/mcuqual/target/virtual",
                 "plugin/mcuqual/quantize", "benchmarks/test_kernels.py")
ABOUT = ("Emulated cycles of one operator per case of benchmarks/test_kernels.py on the "
         "virtual board (cycle model), first test image; rewritten by `pytest benchmarks "
         "--kernel-cycles-update`.")


@dataclass(frozen=True)
class KernelFigures:
    """One case's figures from this run: the operator under test and its emulated cycles."""
    case: str
    op: str                              # TFLite operator, e.g. CONV_2D
    kernel: str                          # C function the firmware calls
    input_shape: tuple[int, ...]         # the operator's first input, batch included
    output_shape: tuple[int, ...]
    macs: int                            # 0 for operators that multiply by no weight
    cycles: int                          # emulated, this operator's layer only
    board: str
    bit_exact: bool = True               # firmware output == tflite_micro's

    @property
    def macs_per_cycle(self) -> float | None:
        return self.macs / self.cycles if self.macs and self.cycles else None

    @property
    def output_elements(self) -> int:
        count = 1
        for size in self.output_shape:
            count *= size
        return count

    @property
    def cycles_per_output_element(self) -> float:
        return self.cycles / self.output_elements

    def stored(self, commit: str) -> dict[str, Any]:
        """The entry this case gets in kernel_cycles.json."""
        mpc = self.macs_per_cycle
        return {"op": self.op, "kernel": self.kernel,
                "input_shape": "x".join(map(str, self.input_shape)),
                "output_shape": "x".join(map(str, self.output_shape)), "macs": self.macs,
                "cycles": self.cycles, "macs_per_cycle": None if mpc is None else round(mpc, 4),
                "cycles_per_output_element": round(self.cycles_per_output_element, 3),
                "commit": commit}


@dataclass(frozen=True)
class Row:
    """One line of the comparison table."""
    case: str
    macs: int
    stored_cycles: int | None            # None: the case has no stored figure yet
    cycles: int
    macs_per_cycle: float | None
    cycles_per_output_element: float
    bit_exact: bool

    @property
    def change_pct(self) -> float | None:
        if not self.stored_cycles:
            return None
        return 100.0 * (self.cycles - self.stored_cycles) / self.stored_cycles


def load(path: Path = STORED_PATH) -> dict[str, Any]:
    """The stored document; an empty one when the file does not exist yet."""
    if not path.is_file():
        return {"about": ABOUT, "boards": {}}
    return json.loads(path.read_text())


def stored_cycles(document: dict[str, Any], board: str) -> dict[str, int]:
    """Case id -> stored cycles on `board`."""
    cases = document.get("boards", {}).get(board, {})
    return {case: int(entry["cycles"]) for case, entry in cases.items()}


def merge(document: dict[str, Any], figures: list[KernelFigures], commit: str) -> dict[str, Any]:
    """A copy of `document` with this run's bit-exact figures replacing their cases' entries;
    cases not run keep theirs, and a case whose output was wrong is never recorded."""
    boards = {board: dict(cases) for board, cases in document.get("boards", {}).items()}
    for figure in figures:
        if figure.bit_exact:
            boards.setdefault(figure.board, {})[figure.case] = figure.stored(commit)
    ordered = {board: dict(sorted(cases.items())) for board, cases in sorted(boards.items())}
    return {"about": ABOUT, "boards": ordered}


def save(document: dict[str, Any], path: Path = STORED_PATH) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n")


def compare(figures: list[KernelFigures], stored: dict[str, int]) -> list[Row]:
    """This run's figures beside the stored cycles, in run order."""
    return [Row(f.case, f.macs, stored.get(f.case), f.cycles, f.macs_per_cycle,
                f.cycles_per_output_element, f.bit_exact) for f in figures]


def format_table(rows: list[Row]) -> list[str]:
    """Fixed-width lines: case, MACs, stored cycles, cycles now, change %, MAC/cycle now,
    cycles per output element (the figure of operators without MACs)."""
    header = ("case", "MACs", "stored cycles", "cycles now", "change", "MAC/cycle",
              "cycles/output")
    cells = []
    for row in rows:
        change = "new" if row.change_pct is None else f"{row.change_pct:+.1f} %"
        cells.append((row.case + ("" if row.bit_exact else " (NOT BIT-EXACT)"),
                      f"{row.macs:,}",
                      "-" if row.stored_cycles is None else f"{row.stored_cycles:,}",
                      f"{row.cycles:,}", change,
                      "-" if row.macs_per_cycle is None else f"{row.macs_per_cycle:.3f}",
                      f"{row.cycles_per_output_element:.2f}"))
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()
    return [line(header), *(line(c) for c in cells)]


def recording_commit(repo: Path) -> str:
    """The short commit the figures are recorded on, "-dirty" when the sources that decide
    cycles (CYCLE_SOURCES) have uncommitted changes; "unknown" outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", *CYCLE_SOURCES)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")
