"""The kernel benchmark's stored cycles (benchmarks/kernel_cycles.py): merge, compare, format.

No emulation here: the benchmark itself runs with `pytest benchmarks`.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load_kernel_cycles():
    """benchmarks/ is no package: load its module by path, once per interpreter (a run of
    tests and benchmarks together shares the one benchmarks/conftest.py imported)."""
    if "kernel_cycles" not in sys.modules:
        spec = importlib.util.spec_from_file_location("kernel_cycles",
                                                      REPO / "benchmarks" / "kernel_cycles.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["kernel_cycles"] = module       # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["kernel_cycles"]


kc = _load_kernel_cycles()


def _conv(cycles: int, case: str = "conv3x3-32x32-16x16", bit_exact: bool = True):
    return kc.KernelFigures(case, "CONV_2D", "mq_conv2d_s8", (1, 32, 32, 16), (1, 32, 32, 16),
                            2_359_296, cycles, "stm32l4r9", bit_exact)


ADD = kc.KernelFigures("add-32x32x16", "ADD", "mq_add_s8", (1, 32, 32, 16), (1, 32, 32, 16),
                       0, 1_638_400, "stm32l4r9")


def test_figures_derive_mac_per_cycle_and_cycles_per_output_element():
    conv = _conv(4_718_592)
    assert conv.macs_per_cycle == 0.5
    assert conv.cycles_per_output_element == 4_718_592 / 16_384 == 288.0
    assert ADD.macs_per_cycle is None                # no MACs: the per-element figure counts
    assert ADD.cycles_per_output_element == 100.0


def test_compare_reports_the_change_against_the_stored_cycles():
    rows = kc.compare([_conv(4_400_000), ADD], {"conv3x3-32x32-16x16": 4_000_000})
    assert [r.case for r in rows] == ["conv3x3-32x32-16x16", "add-32x32x16"]
    assert rows[0].stored_cycles == 4_000_000 and rows[0].change_pct == pytest.approx(10.0)
    assert rows[1].stored_cycles is None and rows[1].change_pct is None     # a new case


def test_table_shows_every_column_and_flags_a_wrong_output():
    rows = kc.compare([_conv(3_600_000), _conv(5_000_000, "conv-bad", bit_exact=False), ADD],
                      {"conv3x3-32x32-16x16": 4_000_000})
    header, conv, bad, add = kc.format_table(rows)
    assert header.split() == ["case", "MACs", "stored", "cycles", "cycles", "now", "change",
                              "MAC/cycle", "cycles/output"]
    assert conv.split() == ["conv3x3-32x32-16x16", "2,359,296", "4,000,000", "3,600,000",
                            "-10.0", "%", "0.655", "219.73"]
    assert "(NOT BIT-EXACT)" in bad and "new" in bad
    assert add.split() == ["add-32x32x16", "0", "-", "1,638,400", "new", "-", "100.00"]
    assert len({len(line) for line in (header, conv)}) == 1      # columns line up


def test_merge_updates_the_cases_run_and_keeps_the_others(tmp_path):
    path = tmp_path / "kernel_cycles.json"
    assert kc.load(path)["boards"] == {}                          # no file yet
    kc.save(kc.merge(kc.load(path), [_conv(4_000_000), ADD], "abc1234"), path)
    kc.save(kc.merge(kc.load(path), [_conv(3_000_000), _conv(9, "conv-bad", bit_exact=False)],
                     "def5678"), path)
    document = json.loads(path.read_text())
    cases = document["boards"]["stm32l4r9"]
    assert set(cases) == {"add-32x32x16", "conv3x3-32x32-16x16"}  # the wrong output not stored
    assert cases["conv3x3-32x32-16x16"]["cycles"] == 3_000_000
    assert cases["conv3x3-32x32-16x16"]["commit"] == "def5678"
    assert cases["add-32x32x16"] == {"op": "ADD", "kernel": "mq_add_s8",
                                     "input_shape": "1x32x32x16", "output_shape": "1x32x32x16",
                                     "macs": 0, "cycles": 1_638_400, "macs_per_cycle": None,
                                     "cycles_per_output_element": 100.0, "commit": "abc1234"}
    assert kc.stored_cycles(document, "stm32l4r9") == {"add-32x32x16": 1_638_400,
                                                       "conv3x3-32x32-16x16": 3_000_000}
    assert kc.stored_cycles(document, "stm32u585") == {}


def test_recording_commit_names_head_and_marks_changed_cycle_sources(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "firmware").mkdir()
    (tmp_path / "firmware" / "k.c").write_text("int x;\n")
    (tmp_path / "notes.txt").write_text("a\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / "notes.txt").write_text("b\n")                   # not a cycle source
    assert kc.recording_commit(tmp_path) == head
    (tmp_path / "firmware" / "k.c").write_text("int y;\n")
    assert kc.recording_commit(tmp_path) == head + "-dirty"
    assert kc.recording_commit(tmp_path / "firmware" / "nowhere") == "unknown"


def test_stored_file_in_the_repo_is_well_formed():
    document = kc.load()
    assert document["boards"], "benchmarks/kernel_cycles.json holds no board"
    for cases in document["boards"].values():
        for case, entry in cases.items():
            assert entry["cycles"] > 0 and entry["commit"], case
