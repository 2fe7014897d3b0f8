"""Nordic Power Profiler Kit II over its USB serial port (pyserial), ampere-meter mode.

The PPK2 protocol as Nordic's nRF Connect Power Profiler and its open-source
clients use it: single-byte commands (some with arguments), a text metadata
block with the per-range calibration ending in "END", then a stream of 32-bit
little-endian samples at 100 kHz. A sample holds the ADC count (bits 0-13), the
measurement range (bits 14-16) and the eight logic inputs D0-D7 (bits 24-31); the
firmware's marker pin goes to D0.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from mcuqual.common.errors import McuqualError
from mcuqual.common.evidence import Evidence
from mcuqual.power.monitor import PowerTrace

GET_METADATA, AVERAGE_START, AVERAGE_STOP = 0x19, 0x06, 0x07
DEVICE_RUNNING_SET, REGULATOR_SET, SET_POWER_MODE = 0x0C, 0x0D, 0x11
AMPERE_MODE = 1
SAMPLE_RATE_HZ = 100_000
ADC_VOLTS_PER_COUNT = 1.8 / 163_840     # after the x4 scaling of the 14-bit count
RANGES = 5
MIN_MV, MAX_MV = 800, 5000


class PowerMonitorError(McuqualError):
    """The power monitor did not answer as its protocol says."""


@dataclass
class Calibration:
    """Per-range calibration from the metadata (keys R0..R4, O, GS, GI, S, I, UG)."""

    values: dict[str, list[float]] = field(default_factory=lambda: {
        "R": [1031.64, 101.65, 10.15, 0.94, 0.043], "O": [0.0] * RANGES, "GS": [1.0] * RANGES,
        "GI": [1.0] * RANGES, "S": [0.0] * RANGES, "I": [0.0] * RANGES, "UG": [1.0] * RANGES})

    @classmethod
    def parse(cls, text: str) -> "Calibration":
        if "END" not in text:
            raise PowerMonitorError("PPK2 metadata did not end with END: not a PPK2, or the "
                                    "serial port is wrong.")
        calibration = cls()
        for line in text.splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            name, index = key[:-1], key[-1:]
            if name in calibration.values and index.isdigit() and int(index) < RANGES:
                number = float(value)
                if name == "R" and number == 0:      # some units report 0: keep the default
                    continue
                calibration.values[name][int(index)] = number
        return calibration

    def current_a(self, adc: np.ndarray, ranges: np.ndarray, supply_v: float) -> np.ndarray:
        """ADC counts to amperes, per sample's range, as the instrument's calibration defines."""
        v = {k: np.asarray(vals)[ranges] for k, vals in self.values.items()}
        raw = (adc * 4 - v["O"]) * (ADC_VOLTS_PER_COUNT / v["R"])
        return v["UG"] * (raw * (v["GS"] * raw + v["GI"]) + (v["S"] * supply_v + v["I"]))


def regulator_bytes(millivolts: int) -> tuple[int, int]:
    """REGULATOR_SET's two argument bytes: 800 mV is (3, 32), rising by one per mV."""
    clamped = min(MAX_MV, max(MIN_MV, millivolts))
    steps = clamped - MIN_MV + 32
    return 3 + steps // 256, steps % 256


def decode_samples(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(adc count, range, logic byte) per whole 32-bit sample in `data`."""
    words = np.frombuffer(data[: len(data) // 4 * 4], dtype="<u4")
    return ((words & 0x3FFF).astype(np.int64), np.minimum((words >> 14) & 0x7, RANGES - 1),
            (words >> 24).astype(np.uint8))


class Ppk2Monitor:
    """A PPK2 in ampere-meter mode in series with the board's supply."""

    evidence = Evidence.MEASURED

    def __init__(self, port, supply_mv: int, marker_input: int = 0, timeout_s: float = 5.0) -> None:
        self.port, self.supply_mv = port, supply_mv
        self.marker_input, self.timeout_s = marker_input, timeout_s
        self._buffer = bytearray()
        self._stopping = threading.Event()
        self._reader: threading.Thread | None = None
        self.calibration = self._read_calibration()
        self.port.write(bytes([SET_POWER_MODE, AMPERE_MODE]))
        self.port.write(bytes([REGULATOR_SET, *regulator_bytes(supply_mv)]))
        self.port.write(bytes([DEVICE_RUNNING_SET, 1]))

    @classmethod
    def open(cls, device: str, supply_mv: int) -> "Ppk2Monitor":
        import serial
        try:
            return cls(serial.Serial(device, timeout=0.1), supply_mv)
        except serial.SerialException as exc:
            raise PowerMonitorError(f"cannot open the PPK2 at {device}: {exc}") from exc

    def _read_calibration(self) -> Calibration:
        self.port.write(bytes([GET_METADATA]))
        text, deadline = b"", time.monotonic() + self.timeout_s
        while b"END" not in text:
            if time.monotonic() > deadline:
                raise PowerMonitorError(f"no metadata from the PPK2 within {self.timeout_s:.0f} s.")
            text += self.port.read(4096)
        return Calibration.parse(text.decode(errors="replace"))

    def start(self) -> None:
        """Start streaming; a reader thread drains the port (400 kB/s would overflow it)."""
        self._buffer.clear()
        self._stopping.clear()
        self.port.write(bytes([AVERAGE_START]))
        self._reader = threading.Thread(target=self._read_until_stopped, name="ppk2-reader",
                                        daemon=True)
        self._reader.start()

    def _read_until_stopped(self) -> None:
        while not self._stopping.is_set():
            chunk = self.port.read(65536)
            if chunk:
                self._buffer.extend(chunk)
            else:
                time.sleep(0.001)

    def stop(self) -> None:
        self._stopping.set()
        if self._reader is not None:
            self._reader.join(timeout=self.timeout_s)
            self._reader = None
        self.port.write(bytes([AVERAGE_STOP]))
        self._buffer.extend(self.port.read(65536))      # what was in flight

    def trace(self) -> PowerTrace:
        adc, ranges, logic = decode_samples(bytes(self._buffer))
        supply_v = self.supply_mv / 1000.0
        return PowerTrace(1.0 / SAMPLE_RATE_HZ, self.calibration.current_a(adc, ranges, supply_v),
                          (logic >> self.marker_input) & 1 == 1, supply_v, self.evidence,
                          "Nordic PPK2, ampere-meter mode")
