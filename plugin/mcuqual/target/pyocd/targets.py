"""Board profiles as pyOCD targets, with flash algorithms built from the boards' own C.

pyOCD 0.46 ships no STM32L4R9 (nor STM32U5) target and packs cannot be downloaded
offline. For a board whose `pyocd_target` pyOCD does not know, a target is made from its
profile: the memory map of its `[[memory]]` regions, the flash algorithm built from its
folder's `flash_algo/flash.c`, and the register writes its `[pyocd] connect_writes` asks
for. Where an installed CMSIS pack or pyOCD itself provides the target, that one is used.
`target_origin()` says which, for the report.
"""
from __future__ import annotations

from pyocd.core.memory_map import FlashRegion, MemoryMap, RamRegion
from pyocd.coresight.coresight_target import CoreSightTarget
from pyocd.target import TARGET

from mcuqual.boards.profile import Board
from mcuqual.target.pyocd.flash_algo import build_flash_algo

_origin: dict[str, str] = {}
BUILT_IN = "mcuqual built-in (flash algorithm from the board folder's flash_algo/flash.c)"


def memory_map(board: Board, flm: str) -> MemoryMap:
    """The board's memories as pyOCD regions; flash programmed with the algorithm at `flm`."""
    regions = []
    for region in sorted(board.memory, key=lambda r: r.start):
        if region.kind == "flash":
            page = region.page_size or 0x1000
            regions.append(FlashRegion(name=region.name, start=region.start, length=region.size,
                                       sector_size=page, page_size=page,
                                       is_boot_memory=region.start == board.flash_window()[0],
                                       flm=flm))
        else:
            regions.append(RamRegion(name=region.name, start=region.start, length=region.size))
    return MemoryMap(*regions)


def target_class(board: Board) -> type[CoreSightTarget]:
    """A pyOCD target class for `board`, made from its profile."""

    class BoardTarget(CoreSightTarget):
        VENDOR = "mcuqual board profile"

        def __init__(self, session) -> None:
            super().__init__(session, memory_map(board, str(build_flash_algo(board))))

        def post_connect_hook(self) -> None:
            for address, value in board.connect_writes:    # e.g. keep debug alive in sleep
                self.write32(address, value)

    BoardTarget.__name__ = BoardTarget.__qualname__ = f"Target_{board.name}"
    BoardTarget.__doc__ = f"{board.mcu} on the {board.title}, from {board.path / 'board.toml'}."
    return BoardTarget


def register_target(board: Board) -> None:
    """Put `board`'s target in pyOCD's table unless pyOCD or an installed pack has it."""
    name = board.pyocd_target
    if name in _origin:
        return
    if name not in TARGET:
        try:
            from pyocd.target.pack.pack_target import ManagedPacks
            ManagedPacks.populate_target(name)
        except Exception:          # a broken pack cache must not break the built-in target
            pass
    if name in TARGET:
        _origin[name] = "pyOCD built-in or CMSIS-Pack"
    else:
        TARGET[name] = target_class(board)
        _origin[name] = BUILT_IN


def register_targets() -> None:
    """The targets of every board this process can see (pyOCD's command line uses these)."""
    from mcuqual.target.pyocd.probe_plugin import virtual_boards

    for board in virtual_boards().values():
        register_target(board)


def target_origin(name: str) -> str:
    register_targets()
    if name in _origin:
        return _origin[name]
    return "pyOCD built-in" if name in TARGET else "unknown"
