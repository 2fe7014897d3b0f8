"""Building the project's own flash algorithm into the FLM form pyOCD loads.

pyOCD 0.46 has no STM32L4R9 target and packs cannot be fetched offline, so the
algorithm is compiled from `firmware/flash_algo/` with arm-none-eabi-gcc at
first use and cached by content hash. pyOCD's own FLM loader turns it into the
algorithm dictionary it runs, exactly as it does for a vendor pack's FLM.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection

from mcuqual.common.cache import Cache, content_hash
from mcuqual.firmware.build import TOOLCHAIN, toolchain_version
from mcuqual.firmware.host_twin import BuildError, firmware_dir

ALGO_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-std=c99", "-Os", "-Wall", "-Wextra", "-Werror",
              "-ffreestanding", "-fno-common", "-fno-jump-tables", "-nostdlib", "-nostartfiles")


def _check_position_independent(obj: Path) -> None:
    """pyOCD loads the algorithm anywhere in SRAM without relocating it."""
    with open(obj, "rb") as handle:
        elf = ELFFile(handle)
        for section in elf.iter_sections():
            if isinstance(section, RelocationSection) and section.num_relocations():
                target = elf.get_section(section["sh_info"]).name
                if target != "DevDscr":
                    raise BuildError(f"the flash algorithm needs relocations in {target}: it must "
                                     "not use globals or take absolute addresses.")


def build_flash_algo(chip: str, cache: Cache | None = None) -> Path:
    """The FLM (ELF) for `chip`, e.g. "stm32l4r9"; built once per source change."""
    source_dir = firmware_dir() / "flash_algo"
    source = source_dir / f"flash_{chip}.c"
    script = source_dir / "flash_algo.ld"
    if not source.is_file():
        raise BuildError(f"no flash algorithm source for {chip} ({source}).")
    if shutil.which(TOOLCHAIN) is None:
        raise BuildError(f"{TOOLCHAIN} not found: install the Debian packages gcc-arm-none-eabi "
                         "and libnewlib-arm-none-eabi (scripts/setup.sh does).")
    cache = cache or Cache.default(firmware_dir().parent)
    key = content_hash(source.read_bytes(), script.read_bytes(), " ".join(ALGO_FLAGS),
                       toolchain_version())
    out_dir = cache.path("flash_algo", f"{chip}-{key}", "")
    flm = out_dir / f"{chip}.FLM"
    if flm.is_file():
        return flm
    out_dir.mkdir(parents=True, exist_ok=True)
    obj = out_dir / f"{chip}.o"
    for command in ([TOOLCHAIN, *ALGO_FLAGS, "-c", str(source), "-o", str(obj)],
                    [TOOLCHAIN, *ALGO_FLAGS, f"-T{script}", str(obj), "-o", str(flm) + ".tmp"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise BuildError(f"flash algorithm for {chip} failed to build:\n{result.stderr[-3000:]}")
        if command[-1] == str(obj):
            _check_position_independent(obj)
    Path(str(flm) + ".tmp").replace(flm)
    return flm
