"""Board profiles as data: a new board is a TOML file, not code."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mcuqual.common.errors import ConfigError
from mcuqual.common.tomlfile import read_toml


@dataclass(frozen=True)
class MemoryRegion:
    name: str
    kind: str          # "flash" | "ram"
    start: int
    size: int
    page_size: int | None = None
    alias: int | None = None     # a second address the same memory answers at
    banks: int = 1

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(frozen=True)
class PowerProfile:
    supply_v: float
    run_current_ua_per_mhz: float
    source: str

    def run_power_mw(self, clock_hz: int) -> float:
        return self.supply_v * self.run_current_ua_per_mhz * clock_hz / 1e6 / 1000.0


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    mcu: str
    core: str
    fpu: str | None
    clock_hz: int
    pyocd_target: str
    swo_clock_hz: int
    memory: tuple[MemoryRegion, ...]
    power: PowerProfile
    power_monitors: tuple[str, ...]
    path: Path
    marker_pin: str | None = None      # the firmware's inference-window pin, e.g. "PB2"

    def total_bytes(self, kind: str) -> int:
        return sum(region.size for region in self.memory if region.kind == kind)

    @property
    def flash_bytes(self) -> int:
        return self.total_bytes("flash")

    @property
    def ram_bytes(self) -> int:
        return self.total_bytes("ram")


_REQUIRED = ("name", "title", "mcu", "core", "clock_hz", "pyocd_target", "memory", "power")


def load_board(path: Path) -> Board:
    path = Path(path)
    data = read_toml(path)
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise ConfigError(f"{path}: board profile lacks {', '.join(missing)}.")
    if data["name"] != path.stem:
        raise ConfigError(f"{path}: name {data['name']!r} differs from the file name {path.stem!r}.")
    regions = []
    for entry in data["memory"]:
        try:
            region = MemoryRegion(name=entry["name"], kind=entry["kind"], start=int(entry["start"]),
                                  size=int(entry["size"]), page_size=entry.get("page_size"),
                                  alias=entry.get("alias"), banks=int(entry.get("banks", 1)))
        except KeyError as exc:
            raise ConfigError(f"{path}: a [[memory]] region lacks {exc.args[0]!r}.") from exc
        if region.kind not in ("flash", "ram") or region.size <= 0:
            raise ConfigError(f"{path}: region {region.name}: kind must be flash or ram and size > 0.")
        regions.append(region)
    ordered = sorted(regions, key=lambda r: r.start)
    for first, second in zip(ordered, ordered[1:]):
        if second.start < first.end:
            raise ConfigError(f"{path}: regions {first.name} and {second.name} overlap.")
    power = data["power"]
    try:
        profile = PowerProfile(supply_v=float(power["supply_v"]),
                               run_current_ua_per_mhz=float(power["run_current_ua_per_mhz"]),
                               source=str(power["source"]))
    except KeyError as exc:
        raise ConfigError(f"{path}: [power] lacks {exc.args[0]!r}.") from exc
    return Board(name=data["name"], title=data["title"], mcu=data["mcu"], core=data["core"],
                 fpu=data.get("fpu"), clock_hz=int(data["clock_hz"]),
                 pyocd_target=data["pyocd_target"], swo_clock_hz=int(data.get("swo_clock_hz", 0)),
                 memory=tuple(regions), power=profile,
                 power_monitors=tuple(data.get("power_monitors", ())), path=path,
                 marker_pin=data.get("marker_pin"))


def available_boards(boards_dir: Path) -> dict[str, Path]:
    boards_dir = Path(boards_dir)
    return {p.stem: p for p in sorted(boards_dir.glob("*.toml"))} if boards_dir.is_dir() else {}


def select_boards(boards_dir: Path, names: list[str]) -> list[Board]:
    found = available_boards(boards_dir)
    unknown = [n for n in names if n not in found]
    if unknown:
        raise ConfigError(f"unknown board {', '.join(unknown)}; valid: "
                          f"{', '.join(found) or 'none'} (files in {boards_dir}).")
    return [load_board(found[n]) for n in dict.fromkeys(names)]
