"""Which power monitor a run uses, from `--power-monitor`."""
from __future__ import annotations

from mcuqual.boards.profile import Board
from mcuqual.common.errors import ConfigError
from mcuqual.target.probes import ProbeChoice

CHOICES = "auto, none, virtual or ppk2:DEVICE"


def check_power_monitor(spec: str, probe: ProbeChoice) -> None:
    """Refuse combinations that cannot measure anything, before any work starts."""
    if spec in ("auto", "none"):
        return
    if spec == "virtual":
        if not probe.is_virtual:
            raise ConfigError("--power-monitor virtual models the virtual board's supply; with a "
                              f"physical probe ({probe.unique_id}) use ppk2:DEVICE or none.")
        return
    if spec.startswith("ppk2:") and len(spec) > 5:
        if probe.is_virtual:
            raise ConfigError("--power-monitor ppk2 measures a physical board; the virtual board "
                              "has no supply to measure (use virtual or auto).")
        return
    raise ConfigError(f"--power-monitor must be {CHOICES}, not {spec!r}.")


def open_power_monitor(spec: str, probe: ProbeChoice, board: Board, pin_edges=None):
    """The monitor for this run, or None (energy is then modelled from the inference time)."""
    if spec == "none" or not board.marker_pin:
        return None
    if probe.is_virtual:
        from mcuqual.power.modelled import ModelledMonitor
        return ModelledMonitor(board, pin_edges, board.marker_pin)
    if spec.startswith("ppk2:"):
        from mcuqual.power.ppk2 import Ppk2Monitor
        return Ppk2Monitor.open(spec[5:], round(board.power.supply_v * 1000))
    return None
