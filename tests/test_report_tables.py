"""The latency evidence a reviewer reads: the per-layer table (HTML and CSV)."""
from __future__ import annotations

import csv
import io

from mcuqual.common.evidence import Evidence, Measurement
from mcuqual.report.layers import layer_csv, layer_html, layer_rows


def _latency() -> Measurement:
    details = {"layers": {"0:CONV_2D": 100, "1:DEPTHWISE_CONV_2D": 300, "2:SOFTMAX": 600},
               "layer_macs": {"0:CONV_2D": 50, "1:DEPTHWISE_CONV_2D": 600, "2:SOFTMAX": 0},
               "layer_shapes": {"0:CONV_2D": [[1, 32, 32, 3], [1, 16, 16, 8]]},
               "layer_kernels": {"0:CONV_2D": "mq_conv2d_s8"}}
    return Measurement("latency_ms", 1.0, "ms", Evidence.EMULATED, "test", details=details,
                       band=(0.1, 0.2))


def test_rows_carry_share_cumulative_share_mac_per_cycle_and_band():
    rows = layer_rows(_latency(), clock_hz=1_000_000)          # 1 cycle = 1 us
    assert [r.index for r in rows] == [0, 1, 2]
    assert [r.op for r in rows] == ["CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"]
    assert [round(r.ms, 6) for r in rows] == [0.1, 0.3, 0.6]
    assert [round(r.share, 6) for r in rows] == [0.1, 0.3, 0.6]
    assert [round(r.cumulative, 6) for r in rows] == [0.1, 0.4, 1.0]
    assert rows[0].macs_per_cycle == 0.5 and rows[1].macs_per_cycle == 2.0
    assert rows[2].macs_per_cycle is None                      # no MACs: no efficiency
    assert (round(rows[1].ms_low, 6), round(rows[1].ms_high, 6)) == (0.27, 0.36)
    assert rows[0].input_shape == "1x32x32x3" and rows[0].kernel == "mq_conv2d_s8"
    assert rows[1].input_shape == "-" and rows[1].kernel == "-"


def test_csv_and_html_hold_every_layer_and_highlight_the_heaviest():
    rows = layer_rows(_latency(), clock_hz=1_000_000)
    table = list(csv.DictReader(io.StringIO(layer_csv(rows))))
    assert [int(r["cycles"]) for r in table] == [100, 300, 600]
    assert table[2]["macs_per_cycle"] == ""
    page = layer_html(rows, "m on b", "emulated")
    assert page.count("<tr") == 1 + 3 + 1                     # header, layers, total
    assert page.count("font-weight:bold") == 3                 # all three are the heaviest
    assert "<th>650</th>" in page and "<th>1,000</th>" in page
