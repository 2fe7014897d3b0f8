"""Which board? Boards that meet everything ranked by energy; otherwise the closest board
and what it misses, in the requirement's own terms (the study's last chapter)."""
from __future__ import annotations

from types import SimpleNamespace

from mcuqual.common.evidence import Evidence, Measurement
from mcuqual.qualify.requirements import Requirement
from mcuqual.qualify.verdicts import Status, judge
from mcuqual.report.boards import gap, matrix_markdown, which_board

REQS = {
    "top1": Requirement("REQ-ACC", "top-1", "top1", ">=", 0.86, "fraction", "study", 0.86),
    "weights_bytes": Requirement("REQ-WEIGHTS", "weights", "weights_bytes", "<=", 160, "KB",
                                 "study", 160 * 1024),
    "latency_ms": Requirement("REQ-LATENCY", "latency", "latency_ms", "<=", 12.6, "ms", "study",
                              12.6),
    "energy_mj": Requirement("REQ-ENERGY", "energy", "energy_mj", "<", 1.0, "mJ", "study", 1.0),
}
UNITS = {"top1": "fraction", "weights_bytes": "B", "latency_ms": "ms", "energy_mj": "mJ"}


def _records(model: str, board: str, **figures: float):
    records = []
    for metric, value in figures.items():
        evidence = Evidence.HOST if metric in ("top1", "weights_bytes") else Evidence.EMULATED
        band = (0.05, 0.10) if metric in ("latency_ms", "energy_mj") else None
        verdict = judge(REQS[metric], Measurement(metric, value, UNITS[metric], evidence, "test",
                                                  band=band))
        deployment = SimpleNamespace(model=SimpleNamespace(name=model),
                                     board=SimpleNamespace(name=board))
        records.append(SimpleNamespace(deployment=deployment, verdict=verdict))
    return records


def _session(*groups):
    return SimpleNamespace(records=[r for group in groups for r in group])


def test_boards_that_meet_everything_are_ranked_by_energy():
    session = _session(
        _records("tiny", "m4", top1=0.87, weights_bytes=50_000, latency_ms=30.0, energy_mj=1.2),
        _records("tiny", "m33", top1=0.87, weights_bytes=50_000, latency_ms=10.0, energy_mj=0.3),
        _records("tiny", "m7", top1=0.87, weights_bytes=50_000, latency_ms=2.0, energy_mj=0.6))
    (choice,) = which_board(session)
    assert [c.board for c in choice.qualifying] == ["m33", "m7"]
    assert choice.sentence().startswith("tiny: meets every requirement on m33 (0.3 mJ -5/+10 %")


def test_no_board_passes_names_the_closest_and_its_gaps():
    session = _session(
        _records("big", "m4", top1=0.80, weights_bytes=200 * 1024, latency_ms=290.0, energy_mj=11.0),
        _records("big", "m7", top1=0.80, weights_bytes=100 * 1024, latency_ms=29.0, energy_mj=3.0))
    (choice,) = which_board(session)
    assert not choice.qualifying and choice.closest.board == "m7"
    sentence = choice.sentence()
    assert "top-1 -6.0 points" in sentence
    assert "latency 2.30x over" in sentence and "energy 3.00x over" in sentence
    assert "weights" not in sentence                       # met on m7
    assert "1 of 4 requirements met" in sentence


def test_gap_of_bytes_and_of_an_error():
    over = judge(REQS["weights_bytes"], Measurement("weights_bytes", 172 * 1024, "B", Evidence.HOST,
                                                    "t"))
    assert gap(over) == "weights 12.0 KB over"
    broken = SimpleNamespace(status=Status.ERROR, measurement=None, requirement=REQS["latency_ms"],
                             passed=False)
    assert gap(broken) == "latency error"


def test_a_threshold_inside_the_band_is_said_in_the_verdict():
    near = judge(REQS["latency_ms"], Measurement("latency_ms", 12.0, "ms", Evidence.EMULATED, "t",
                                                 band=(0.05, 0.10)))
    assert near.status is Status.PASS                      # the figure decides, the band warns
    assert "inside the figure's uncertainty band" in near.message
    far = judge(REQS["latency_ms"], Measurement("latency_ms", 5.0, "ms", Evidence.EMULATED, "t",
                                                band=(0.05, 0.10)))
    assert "band" not in far.message.split("(")[0] and "inside" not in far.message


def test_matrix_has_a_column_per_board_and_a_which_board_section():
    session = _session(
        _records("a", "m4", top1=0.87, latency_ms=30.0),
        _records("a", "m7", top1=0.87, latency_ms=3.0),
        _records("b", "m7", top1=0.70, latency_ms=3.0))
    lines = matrix_markdown(session)
    assert "| model | m4 | m7 |" in lines
    row_b = next(line for line in lines if line.startswith("| b |"))
    assert row_b.split("|")[2].strip() == "-"              # b never ran on m4
    assert "## Which board?" in lines
    assert any(line.startswith("- a: meets every requirement on m7") for line in lines)


def test_what_it_takes_gives_speedup_mac_budget_and_the_boards_that_pass():
    # 25.2 ms at 100 MHz = 2.52 M cycles for 1.26 M MACs: 0.5 MAC/cycle
    latency = Measurement("latency_ms", 25.2, "ms", Evidence.EMULATED, "t",
                          details={"macs": 1_260_000, "macs_per_cycle": 0.5})
    slow = judge(REQS["latency_ms"], latency)
    deployment = SimpleNamespace(model=SimpleNamespace(name="m"), board=SimpleNamespace(name="m4"))
    session = _session([SimpleNamespace(deployment=deployment, verdict=slow)],
                       _records("m", "m7", latency_ms=3.0))
    from mcuqual.report.boards import what_it_takes
    text = what_it_takes(slow, session, "m", "m4")
    # 12.6 ms at 100 MHz = 1.26 M cycles, x 0.5 MAC/cycle = 0.63 M MACs
    assert text == ("latency 2.00x over; a MAC budget of about 0.63 M MACs at the 0.50 "
                    "MAC/cycle measured here (emulated); met on m7")
    assert what_it_takes(slow, session, "m", "m4", other_boards=False).endswith(
        "(emulated)")
    assert what_it_takes(judge(REQS["latency_ms"], Measurement("latency_ms", 3.0, "ms",
                                                              Evidence.EMULATED, "t")),
                         session, "m", "m7") == ""
