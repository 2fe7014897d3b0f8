"""Boards and cores as data: a new board of a known core is one folder of files.

A board folder (`firmware/boards/<name>/`, or one of your own in the project's boards
folder, `mcuqual_boards_dir`) holds everything of that board: `board.toml` (the profile
below: MCU, clock, memories, SWO, marker pin, power, pyOCD target), its board support
C (startup, clock tree, marker and trace pins, `board.h`, vendor register header),
`sections.ld` (the linker's memory is generated from the profile), and `flash_algo.c`
when pyOCD has no target for it. A core description (`firmware/cores/<core>.toml`)
holds what every board of that core shares: compiler flags, the debug port's IDs, the
emulator's CPU model and cycle model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mcuqual.common.errors import ConfigError
from mcuqual.common.paths import firmware_dir
from mcuqual.common.tomlfile import read_toml

PROFILE_FILE = "board.toml"


@dataclass(frozen=True)
class Core:
    """A Cortex-M core as the suite needs to know it (firmware/cores/<name>.toml)."""

    name: str
    architecture: str
    cflags: tuple[str, ...]
    plain_cflags: tuple[str, ...]
    header: str
    dpidr: int
    ahb_ap_idr: int
    unicorn_cpu: str
    cycle_model: str
    path: Path
    cpuid: int = 0x410FC241                  # SCB CPUID the virtual core reports (M4F r0p1)
    # CoreSight component IDs (PIDR0..PIDR4) by component, where they differ from the M4's
    coresight: dict[str, tuple[int, ...]] = field(default_factory=dict, hash=False)
    # SCS identification registers by offset (ID_PFR, ID_ISAR, MVFR, CLIDR, CCSIDR...)
    # where they differ from the Cortex-M4F's
    scs_features: dict[int, int] = field(default_factory=dict, hash=False)


def cores_dir() -> Path:
    return firmware_dir() / "cores"


def load_core(name: str) -> Core:
    path = cores_dir() / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in cores_dir().glob("*.toml")))
        raise ConfigError(f"no core description for {name!r} ({path}); known cores: {known}.")
    data = read_toml(path)
    try:
        return Core(name=data["name"], architecture=data["architecture"],
                    cflags=tuple(data["cflags"]), plain_cflags=tuple(data["plain_cflags"]),
                    header=data["header"], dpidr=int(data["dpidr"]),
                    ahb_ap_idr=int(data["ahb_ap_idr"]), unicorn_cpu=data["unicorn_cpu"],
                    cycle_model=data["cycle_model"], path=path,
                    cpuid=int(data.get("cpuid", Core.cpuid)),
                    coresight={name: tuple(int(v) for v in ids)
                               for name, ids in data.get("coresight", {}).items()},
                    scs_features={int(offset, 0): int(value)
                                  for offset, value in data.get("scs_features", {}).items()})
    except KeyError as exc:
        raise ConfigError(f"{path}: core description lacks {exc.args[0]!r}.") from exc


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
    path: Path                         # the board folder
    marker_pin: str | None = None      # the firmware's inference-window pin, e.g. "PB2"
    connect_writes: tuple[tuple[int, int], ...] = ()   # [pyocd] (address, value) on connect
    virtual_soc: str | None = None     # the SoC family model of the virtual board, "stm32l4"
    ram_window_start: str | None = None   # region the linker's RAM starts at (default: lowest)
    arena_regions: tuple[str, ...] = ()   # where the arena may go, fastest first
    boot_alias: bool = True            # flash also answers at 0x0 (the boot alias)
    cycle_params: dict = field(default_factory=dict, hash=False)   # [cycle_model]: the core model's knobs

    @property
    def folder(self) -> Path:
        return self.path

    @property
    def core_description(self) -> Core:
        return load_core(self.core)

    def region(self, name: str) -> MemoryRegion:
        for region in self.memory:
            if region.name == name:
                return region
        raise ConfigError(f"board {self.name}: no memory region {name!r} (regions: "
                          f"{', '.join(r.name for r in self.memory)}).")

    def ram_window(self) -> tuple[int, int]:
        """(start, bytes) of the contiguous RAM the linker places data and stack in: the
        profile's `ram_window` region (default: the lowest RAM region) and the RAM regions
        that follow it without a gap."""
        regions = sorted((r for r in self.memory if r.kind == "ram"), key=lambda r: r.start)
        first = self.region(self.ram_window_start) if self.ram_window_start else regions[0]
        start, end = first.start, first.end
        for region in regions[regions.index(first) + 1:]:
            if region.start != end:
                break
            end = region.end
        return start, end - start

    def flash_window(self) -> tuple[int, int]:
        regions = sorted((r for r in self.memory if r.kind == "flash"), key=lambda r: r.start)
        return regions[0].start, regions[0].size

    def total_bytes(self, kind: str) -> int:
        return sum(region.size for region in self.memory if region.kind == kind)

    @property
    def flash_bytes(self) -> int:
        return self.total_bytes("flash")

    @property
    def ram_bytes(self) -> int:
        return self.total_bytes("ram")


_REQUIRED = ("name", "title", "mcu", "core", "clock_hz", "pyocd_target", "memory", "power")


def load_board(folder: Path) -> Board:
    """The board of a board folder (or of the folder's board.toml)."""
    folder = Path(folder)
    path = folder if folder.suffix == ".toml" else folder / PROFILE_FILE
    folder = path.parent
    if not path.is_file():
        raise ConfigError(f"{folder}: a board folder needs {PROFILE_FILE}.")
    data = read_toml(path)
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise ConfigError(f"{path}: board profile lacks {', '.join(missing)}.")
    if data["name"] != folder.name:
        raise ConfigError(f"{path}: name {data['name']!r} differs from the folder name "
                          f"{folder.name!r}.")
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
    if not any(r.kind == "flash" for r in regions) or not any(r.kind == "ram" for r in regions):
        raise ConfigError(f"{path}: a board needs at least one flash and one ram region.")
    power = data["power"]
    try:
        profile = PowerProfile(supply_v=float(power["supply_v"]),
                               run_current_ua_per_mhz=float(power["run_current_ua_per_mhz"]),
                               source=str(power["source"]))
    except KeyError as exc:
        raise ConfigError(f"{path}: [power] lacks {exc.args[0]!r}.") from exc
    board = Board(name=data["name"], title=data["title"], mcu=data["mcu"], core=data["core"],
                  fpu=data.get("fpu"), clock_hz=int(data["clock_hz"]),
                  pyocd_target=data["pyocd_target"], swo_clock_hz=int(data.get("swo_clock_hz", 0)),
                  memory=tuple(regions), power=profile,
                  power_monitors=tuple(data.get("power_monitors", ())), path=folder,
                  marker_pin=data.get("marker_pin"),
                  virtual_soc=data.get("virtual_soc"),
                  ram_window_start=data.get("ram_window"),
                  arena_regions=tuple(data.get("arena_regions", ())),
                  boot_alias=bool(data.get("boot_alias", True)),
                  cycle_params=dict(data.get("cycle_model", {})),
                  connect_writes=tuple((int(a), int(v)) for a, v in
                                       data.get("pyocd", {}).get("connect_writes", ())))
    board.core_description                     # an unknown core is this board's error, now
    for name in (*board.arena_regions, *([board.ram_window_start] if board.ram_window_start
                                         else [])):
        if board.region(name).kind != "ram":
            raise ConfigError(f"{path}: {name} is not a RAM region.")
    return board


def builtin_boards_dir() -> Path:
    return firmware_dir() / "boards"


def available_boards(*boards_dirs: Path) -> dict[str, Path]:
    """Board folders by name: the given folders first (a project's own boards), then the
    built-in ones; the first folder of a name wins."""
    found: dict[str, Path] = {}
    for directory in (*boards_dirs, builtin_boards_dir()):
        directory = Path(directory)
        if directory.is_dir():
            for folder in sorted(p.parent for p in directory.glob(f"*/{PROFILE_FILE}")):
                found.setdefault(folder.name, folder)
    return found


def select_boards(boards_dir: Path | None, names: list[str]) -> list[Board]:
    """The boards named (`all`: every board folder the project and the suite have)."""
    found = available_boards(*([boards_dir] if boards_dir is not None else []))
    if "all" in names:
        names = [n for n in names if n != "all"] + sorted(found)
    unknown = [n for n in names if n not in found]
    if unknown:
        where = f"{boards_dir} and {builtin_boards_dir()}" if boards_dir else str(builtin_boards_dir())
        raise ConfigError(f"unknown board {', '.join(unknown)}; valid: "
                          f"{', '.join(found) or 'none'} (board folders in {where}).")
    return [load_board(found[n]) for n in dict.fromkeys(names)]
