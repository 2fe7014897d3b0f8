"""The requirements loader: the study's five, and clear errors for malformed files."""
from __future__ import annotations

from pathlib import Path

import pytest
from mcuqual.common.errors import ConfigError
from mcuqual.qualify.requirements import load_requirements

REPO = Path(__file__).resolve().parent.parent

GOOD = """
[[requirement]]
id = "R1"
title = "t"
metric = "{metric}"
op = "{op}"
threshold = {threshold}
unit = "{unit}"
source = "s"
"""


def _write(tmp_path, text, name="req.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_shipped_file_holds_the_studys_five_requirements():
    reqs = {r.id: r for r in load_requirements(REPO / "qualification" / "requirements.toml")}
    assert set(reqs) == {"REQ-ACC", "REQ-WEIGHTS", "REQ-ARENA", "REQ-LATENCY", "REQ-ENERGY"}
    assert (reqs["REQ-ACC"].metric, reqs["REQ-ACC"].op, reqs["REQ-ACC"].threshold_canonical) == \
        ("top1", ">=", 0.86)
    assert (reqs["REQ-WEIGHTS"].op, reqs["REQ-WEIGHTS"].threshold_canonical) == ("<=", 160 * 1024)
    assert (reqs["REQ-ARENA"].op, reqs["REQ-ARENA"].threshold_canonical) == ("<=", 120 * 1024)
    assert (reqs["REQ-LATENCY"].op, reqs["REQ-LATENCY"].threshold_canonical) == ("<=", 12.6)
    assert (reqs["REQ-ENERGY"].op, reqs["REQ-ENERGY"].threshold_canonical) == ("<", 1.0)
    assert all(r.source for r in reqs.values())


def test_kilobyte_can_be_declared_decimal(tmp_path):
    path = _write(tmp_path, "kilobyte_bytes = 1000\n" +
                  GOOD.format(metric="arena_bytes", op="<=", threshold=120, unit="KB"))
    assert load_requirements(path)[0].threshold_canonical == 120_000


def test_percent_thresholds_are_converted(tmp_path):
    path = _write(tmp_path, GOOD.format(metric="top1", op=">=", threshold=86, unit="%"))
    assert load_requirements(path)[0].threshold_canonical == pytest.approx(0.86)


@pytest.mark.parametrize("metric,op,threshold,unit,message", [
    ("flops", ">=", 1, "fraction", "unknown metric 'flops'"),
    ("top1", "=>", 0.5, "fraction", "bad op '=>'"),
    ("latency_ms", "<=", 12, "KB", "unit 'KB' does not fit metric 'latency_ms'"),
    ("top1", ">=", '"high"', "fraction", "threshold must be a finite number"),
])
def test_bad_entries_are_named(tmp_path, metric, op, threshold, unit, message):
    path = _write(tmp_path, GOOD.format(metric=metric, op=op, threshold=threshold, unit=unit))
    with pytest.raises(ConfigError, match=message) as info:
        load_requirements(path)
    assert "R1" in str(info.value) and str(path) in str(info.value)


def test_missing_field_is_named(tmp_path):
    path = _write(tmp_path, '[[requirement]]\nid = "R9"\nmetric = "top1"\n')
    with pytest.raises(ConfigError, match="missing title, op, threshold, unit, source"):
        load_requirements(path)


def test_duplicate_ids_are_rejected(tmp_path):
    entry = GOOD.format(metric="top1", op=">=", threshold=0.5, unit="fraction")
    with pytest.raises(ConfigError, match="duplicate requirement id"):
        load_requirements(_write(tmp_path, entry + entry))


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_requirements(_write(tmp_path, "[[requirement]\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_requirements(tmp_path / "absent.toml")


@pytest.mark.parametrize("metric,unit,threshold,canonical", [
    ("stack_bytes", "KB", 8, 8192), ("min_class_top1", "%", 70, 0.70)])
def test_the_registry_s_newer_metrics_are_accepted(tmp_path, metric, unit, threshold, canonical):
    path = _write(tmp_path, GOOD.format(metric=metric, op="<=", threshold=threshold, unit=unit))
    requirement = load_requirements(path)[0]
    assert requirement.metric == metric
    assert requirement.threshold_canonical == pytest.approx(canonical)


def test_a_custom_requirement_converts_its_threshold_into_the_figure_s_unit():
    from mcuqual.qualify.requirements import make_requirement

    requirement = make_requirement("R", "t", None, ">=", 70, "%", "s", unit_of_value="fraction")
    assert requirement.canonical_unit == "fraction"
    assert requirement.threshold_canonical == pytest.approx(0.70)
    with pytest.raises(ConfigError, match="cannot be compared"):
        make_requirement("R", "t", None, ">=", 70, "%", "s", unit_of_value="ms")
