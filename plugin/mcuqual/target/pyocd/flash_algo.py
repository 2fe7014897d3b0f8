"""Building the project's own flash algorithm into the FLM form pyOCD loads.

pyOCD 0.46 has no STM32L4R9 target and packs cannot be fetched offline, so the
algorithm is compiled from the board folder's `flash_algo/flash.c` with
arm-none-eabi-gcc at first use and cached by content hash. pyOCD's own FLM loader turns it into the
algorithm dictionary it runs, exactly as it does for a vendor pack's FLM.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection

from mcuqual.boards.profile import Board
from mcuqual.common.cache import Cache, content_hash
from mcuqual.firmware.build import TOOLCHAIN, toolchain_version
from mcuqual.common.paths import find_repo_root, firmware_dir
from mcuqual.firmware.host_twin import BuildError

ALGO_FLAGS = ("-std=c99", "-Os", "-Wall", "-Wextra", "-Werror", "-ffreestanding", "-fno-common",
              "-fno-jump-tables", "-nostdlib", "-nostartfiles")   # after the core's plain flags


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


def build_flash_algo(board: Board, cache: Cache | None = None) -> Path:
    """The FLM (ELF) of `board`'s flash algorithm (its folder's flash_algo/flash.c, linked
    with firmware/flash_algo/flash_algo.ld); built once per source change."""
    chip = board.name
    source = board.folder / "flash_algo" / "flash.c"
    script = firmware_dir() / "flash_algo" / "flash_algo.ld"
    if not source.is_file():
        raise BuildError(f"board {chip} has no flash algorithm ({source}) and pyOCD no target "
                         f"named {board.pyocd_target!r}.")
    if shutil.which(TOOLCHAIN) is None:
        raise BuildError(f"{TOOLCHAIN} not found: install the Debian packages gcc-arm-none-eabi "
                         "and libnewlib-arm-none-eabi (scripts/setup.sh does).")
    cache = cache or Cache.default(find_repo_root(Path.cwd()))
    flags = (*board.core_description.plain_cflags, *ALGO_FLAGS)
    key = content_hash(source.read_bytes(), script.read_bytes(), " ".join(flags),
                       toolchain_version())
    out_dir = cache.path("flash_algo", f"{chip}-{key}", "")
    flm = out_dir / f"{chip}.FLM"
    if flm.is_file():
        return flm
    out_dir.mkdir(parents=True, exist_ok=True)
    obj = out_dir / f"{chip}.o"
    for command in ([TOOLCHAIN, *flags, "-c", str(source), "-o", str(obj)],
                    [TOOLCHAIN, *flags, f"-T{script}", str(obj), "-o", str(flm) + ".tmp"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise BuildError(f"flash algorithm for {chip} failed to build:\n{result.stderr[-3000:]}")
        if command[-1] == str(obj):
            _check_position_independent(obj)
    Path(str(flm) + ".tmp").replace(flm)
    return flm
