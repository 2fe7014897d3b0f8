"""Judging figures: boundaries, operators and evidence levels."""
from __future__ import annotations

import pytest
from mcuqual.common.evidence import Evidence, Measurement
from mcuqual.qualify.requirements import Requirement
from mcuqual.qualify.verdicts import Status, judge


def _req(metric, op, threshold, unit):
    return Requirement("R", "t", metric, op, threshold, unit, "s", threshold)


@pytest.mark.parametrize("op,value,status", [
    ("<=", 12.6, Status.PASS), ("<=", 12.61, Status.NOT_MET),
    ("<", 1.0, Status.NOT_MET), ("<", 0.999, Status.PASS),
    (">=", 0.86, Status.PASS), (">=", 0.8599, Status.NOT_MET),
])
def test_operators_at_the_boundary(op, value, status):
    req = _req("latency_ms", op, 12.6 if op == "<=" else (1.0 if op == "<" else 0.86), "ms")
    verdict = judge(req, Measurement("latency_ms", value, "ms", Evidence.MEASURED, "m"))
    assert verdict.status is status


def test_weaker_evidence_than_required_fails_even_when_the_value_is_good():
    req = _req("arena_bytes", "<=", 122880, "B")
    figure = Measurement("arena_bytes", 1000, "B", Evidence.HOST, "m")
    assert judge(req, figure).passed
    verdict = judge(req, figure, minimum=Evidence.MEASURED)
    assert verdict.status is Status.INSUFFICIENT_EVIDENCE and "measured" in verdict.message


def test_a_failing_figure_is_not_met_whatever_its_evidence():
    req = _req("arena_bytes", "<=", 1000, "B")
    figure = Measurement("arena_bytes", 5000, "B", Evidence.HOST, "m")
    verdict = judge(req, figure, minimum=Evidence.MEASURED)
    assert verdict.status is Status.NOT_MET
    assert verdict.message.startswith("REQUIREMENT NOT MET")


def test_unit_mismatch_is_a_bug_not_a_verdict():
    with pytest.raises(ValueError):
        judge(_req("latency_ms", "<=", 1, "ms"), Measurement("latency_ms", 1, "s", Evidence.HOST, "m"))


def test_evidence_levels_order_and_parse():
    assert Evidence.MEASURED > Evidence.EMULATED > Evidence.MODELLED > Evidence.HOST
    assert Evidence.parse("Emulated") is Evidence.EMULATED
    with pytest.raises(ValueError, match="unknown evidence level"):
        Evidence.parse("guessed")
