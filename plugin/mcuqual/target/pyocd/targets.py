"""The STM32L4R9 as a pyOCD target, with the project's own flash algorithm.

pyOCD 0.46 ships no STM32L4R9 and packs cannot be downloaded offline. Where the
official Keil.STM32L4xx_DFP pack is installed (cmsis-pack-manager), pyOCD's pack
target is used; otherwise this one, whose flash algorithm is built from
`firmware/flash_algo/`. `target_origin()` says which, for the report.
"""
from __future__ import annotations

from pyocd.coresight.coresight_target import CoreSightTarget
from pyocd.core.memory_map import FlashRegion, MemoryMap, RamRegion
from pyocd.target import TARGET

from mcuqual.target.pyocd.flash_algo import build_flash_algo

TARGET_NAME = "stm32l4r9aiix"
DBGMCU_CR = 0xE004_2004
DBGMCU_CR_LOW_POWER_DEBUG = 0x7        # DBG_SLEEP | DBG_STOP | DBG_STANDBY

_origin: dict[str, str] = {}


def stm32l4r9_memory_map(flm: str) -> MemoryMap:
    """Flash with the algorithm at `flm`, and the three SRAMs, as RM0432 lays them out."""
    return MemoryMap(
        FlashRegion(name="flash", start=0x0800_0000, length=0x20_0000, sector_size=0x1000,
                    page_size=0x1000, is_boot_memory=True, flm=flm),
        RamRegion(name="sram1", start=0x2000_0000, length=0x3_0000),
        RamRegion(name="sram2", start=0x2003_0000, length=0x1_0000),
        RamRegion(name="sram3", start=0x2004_0000, length=0x6_0000),
    )


class STM32L4R9xI(CoreSightTarget):
    """STM32L4R9AII6: Cortex-M4F, 2 MB dual-bank flash (4 KB pages), 640 KB SRAM (RM0432)."""

    VENDOR = "STMicroelectronics"

    def __init__(self, session) -> None:
        super().__init__(session, stm32l4r9_memory_map(str(build_flash_algo("stm32l4r9"))))

    def post_connect_hook(self) -> None:
        # keep the debug link alive in low-power modes, as ST's own targets do
        self.write32(DBGMCU_CR, DBGMCU_CR_LOW_POWER_DEBUG)


def register_targets() -> None:
    """Put our target in pyOCD's table unless an installed pack already provides it."""
    if TARGET_NAME in _origin:
        return
    if TARGET_NAME not in TARGET:
        try:
            from pyocd.target.pack.pack_target import ManagedPacks
            ManagedPacks.populate_target(TARGET_NAME)
        except Exception:          # a broken pack cache must not break the built-in target
            pass
    if TARGET_NAME in TARGET and TARGET[TARGET_NAME] is not STM32L4R9xI:
        _origin[TARGET_NAME] = "CMSIS-Pack (installed with cmsis-pack-manager)"
    else:
        TARGET[TARGET_NAME] = STM32L4R9xI
        _origin[TARGET_NAME] = "mcuqual built-in (flash algorithm from firmware/flash_algo)"


def target_origin(name: str) -> str:
    register_targets()
    if name in _origin:
        return _origin[name]
    return "pyOCD built-in" if name in TARGET else "unknown"
