"""Which target a run talks to: the virtual board, or a physical probe through pyOCD.

Only the probe *choice* lives here. Listing connected probes never blocks: with
nothing plugged in, the user gets an immediate error, not pyOCD's wait.
"""
from __future__ import annotations

from dataclasses import dataclass

from mcuqual.common.errors import ConfigError

VIRTUAL = "virtual"
AUTO = "auto"
# Which unit of each virtual board this process drives (as two physical boards of one kind
# on two probes): each unit keeps its own flash. Parallel workers (pytest-xdist) set it.
VIRTUAL_UNIT_ENV = "MCUQUAL_VIRTUAL_BOARD_UNIT"


@dataclass(frozen=True)
class ProbeChoice:
    kind: str            # "virtual" | "physical"
    unique_id: str       # "virtual-<board>" or the pyOCD unique id
    description: str

    @property
    def is_virtual(self) -> bool:
        return self.kind == VIRTUAL


def connected_probes() -> list[tuple[str, str]]:
    """(unique id, description) of every physical probe pyOCD sees right now (the virtual
    boards, which pyOCD lists too through our probe plugin, are not among them)."""
    try:
        from pyocd.core.helpers import ConnectHelper
        probes = ConnectHelper.get_all_connected_probes(blocking=False, print_wait_message=False)
    except Exception as exc:  # USB stack problems are environment errors
        raise ConfigError(f"pyOCD could not enumerate debug probes: {exc}") from exc
    return [(p.unique_id, p.description) for p in probes
            if not p.unique_id.startswith(f"{VIRTUAL}-")]     # our own plugin's virtual boards


def choose_probe(option: str, board_name: str) -> ProbeChoice:
    if option == VIRTUAL:
        return ProbeChoice(VIRTUAL, f"virtual-{board_name}", f"virtual {board_name} board")
    found = connected_probes()
    listing = ", ".join(f"{uid} ({desc})" for uid, desc in found) or "none"
    if option == AUTO:
        if len(found) != 1:
            raise ConfigError(f"--probe auto needs exactly one connected debug probe; connected: "
                              f"{listing}. Pass --probe <unique id>, or --probe virtual.")
        uid, desc = found[0]
        return ProbeChoice("physical", uid, desc)
    for uid, desc in found:
        if uid == option:
            return ProbeChoice("physical", uid, desc)
    raise ConfigError(f"no debug probe with unique id {option!r}; connected: {listing}. "
                      "Use --probe virtual for the virtual board.")
