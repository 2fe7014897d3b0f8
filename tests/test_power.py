"""Power monitors: the PPK2 protocol driver, energy per marked window, the modelled monitor."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from mcuqual.boards.profile import select_boards
from mcuqual.common.evidence import Evidence
from mcuqual.power import PowerTrace, energy_windows
from mcuqual.power.modelled import ModelledMonitor
from mcuqual.power.ppk2 import (
    AVERAGE_START,
    AVERAGE_STOP,
    GET_METADATA,
    REGULATOR_SET,
    SET_POWER_MODE,
    Calibration,
    Ppk2Monitor,
    PowerMonitorError,
    regulator_bytes,
)

REPO = Path(__file__).resolve().parent.parent
BOARD = select_boards(None, ["stm32l4r9"])[0]

# NOT a capture from hardware: a byte stream built here by the documented PPK2 protocol
# (metadata text ending in END, then 32-bit samples: ADC bits 0-13, range bits 14-16,
# logic inputs bits 24-31), to test the driver's framing and arithmetic.
METADATA = ("Calibrated: 0\nR0: 1000.0\nR1: 100.0\nR2: 10.0\nR3: 1.0\nR4: 0.05\n"
            + "".join(f"GS{i}: 0\nGI{i}: 1\nO{i}: 0\nS{i}: 0\nI{i}: 0\nUG{i}: 1\n" for i in range(5))
            + "HW: 9173\nmode: 2\nIA: 56\nEND\n").encode()


def sample(adc: int, range_: int, logic: int) -> bytes:
    return struct.pack("<I", adc | (range_ << 14) | (logic << 24))


class ScriptedPort:
    """A serial port that answers GET_METADATA and then plays a sample stream."""

    def __init__(self, stream: bytes, metadata: bytes = METADATA) -> None:
        self.written: list[bytes] = []
        self.metadata, self.stream, self._out = metadata, stream, b""

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))
        if data[0] == GET_METADATA:
            self._out += self.metadata
        elif data[0] == AVERAGE_START:
            self._out += self.stream

    def read(self, size: int) -> bytes:
        chunk, self._out = self._out[:size], self._out[size:]
        return chunk


def test_ppk2_driver_speaks_the_protocol_and_converts_samples():
    idle, busy = sample(100, 2, 0), sample(1000, 2, 1)           # D0 = the firmware's marker
    stream = idle * 10 + busy * 50 + idle * 10 + busy[:2]          # a torn last sample
    port = ScriptedPort(stream)
    monitor = Ppk2Monitor(port, supply_mv=3300)
    assert port.written[1] == bytes([SET_POWER_MODE, 1])           # ampere meter
    assert port.written[2] == bytes([REGULATOR_SET, *regulator_bytes(3300)])
    assert regulator_bytes(800) == (3, 32) and regulator_bytes(3300) == (12, 228)
    monitor.start()
    monitor.stop()
    assert port.written[-1] == bytes([AVERAGE_STOP])
    trace = monitor.trace()
    assert trace.evidence is Evidence.MEASURED and len(trace.current_a) == 70
    expected_busy_a = 1000 * 4 * (1.8 / 163840) / 10.0            # range 2: R2 = 10 ohm
    assert trace.current_a[20] == pytest.approx(expected_busy_a)
    (window,) = energy_windows(trace)
    assert window.duration_s == pytest.approx(50e-5)
    assert window.energy_mj == pytest.approx(1000 * expected_busy_a * 3.3 * 50e-5)


def test_ppk2_without_metadata_is_a_clear_error():
    port = ScriptedPort(b"", metadata=b"garbage")
    with pytest.raises(PowerMonitorError, match="no metadata"):
        Ppk2Monitor(port, supply_mv=3300, timeout_s=0.2)
    with pytest.raises(PowerMonitorError, match="not a PPK2"):
        Calibration.parse("R0: 1\n")


def test_energy_counts_complete_marked_windows_only():
    marker = np.array([1, 1, 0, 0, 1, 1, 1, 0, 0, 1], dtype=bool)     # cut at both ends
    current = np.arange(10, dtype=float) / 1000
    trace = PowerTrace(1e-3, current, marker, 2.0, Evidence.MEASURED, "test")
    (window,) = energy_windows(trace)
    assert window.start_s == pytest.approx(4e-3) and window.duration_s == pytest.approx(3e-3)
    assert window.energy_mj == pytest.approx(1000 * (0.004 + 0.005 + 0.006) * 1e-3 * 2.0)


def test_modelled_monitor_follows_the_marker_pin_edges():
    clock = BOARD.clock_hz
    edges = [(1_000_000, "PB2", 1), (1_000_000 + clock // 100, "PB2", 0),        # 10 ms
             (5_000_000, "PA5", 1),                                              # another pin
             (9_000_000, "PB2", 1), (9_000_000 + clock // 50, "PB2", 0)]         # 20 ms
    log = [(0, "PB2", 1), (10, "PB2", 0)]                          # before the monitor started
    monitor = ModelledMonitor(BOARD, log, "PB2")
    monitor.start()
    log.extend(edges)                                              # what the firmware does
    monitor.stop()
    windows = energy_windows(monitor.trace())
    power_w = BOARD.power.run_power_mw(clock) / 1000
    assert [w.duration_s for w in windows] == pytest.approx([0.01, 0.02], abs=1e-5)
    assert [w.energy_mj for w in windows] == pytest.approx([10 * power_w, 20 * power_w], rel=1e-3)
    assert monitor.trace().evidence is Evidence.MODELLED
