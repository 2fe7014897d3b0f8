"""Building the qualification firmware for a board with arm-none-eabi-gcc.

The generated model, the kernel library, the runtime, the board support and the
application are compiled into one ELF whose linker script holds the board's
real memories, so a model that does not fit fails here, with a message in the
board's terms rather than a linker dump.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mcuqual.boards.profile import Board
from mcuqual.common.cache import Cache, content_hash
from mcuqual.firmware.codegen import GeneratedModel
from mcuqual.common.errors import McuqualError
from mcuqual.firmware.host_twin import BuildError, firmware_dir

TOOLCHAIN = "arm-none-eabi-gcc"
CORE_FLAGS = {"cortex-m4": ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")}
# -O2, -O3 and -Os measured on the virtual board: README "Firmware optimization level".
OPTIMIZATION = "-O2"
OPTIMIZATIONS = ("-O2", "-O3", "-Os")
CFLAGS = ("-std=c99", "-g", "-Wall", "-Wextra", "-Werror", "-ffunction-sections",
          "-fdata-sections", "-fno-common")
LDFLAGS = ("-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections")


class ModelTooLargeError(McuqualError):
    """The model does not fit the board's flash or RAM."""


@dataclass(frozen=True)
class FirmwareImage:
    elf: Path
    map_file: Path
    board: str
    model: str
    toolchain: str


def toolchain_version() -> str:
    try:
        first = subprocess.run([TOOLCHAIN, "--version"], capture_output=True, text=True,
                               timeout=30).stdout.splitlines()
    except FileNotFoundError:
        return "not installed"
    return first[0] if first else "unknown"


def _sources(board_dir: Path, firmware: Path) -> list[Path]:
    return (sorted((firmware / "kernels").glob("*.c")) + sorted((firmware / "runtime").glob("*.c"))
            + sorted(board_dir.glob("*.c")) + sorted((firmware / "app").glob("*.c")))


_OVERFLOW = re.compile(r"region [`']?(\w+)'? overflowed by (\d+) bytes")


def _explain_overflow(stderr: str, model: GeneratedModel, board: Board) -> str | None:
    found = {m.group(1): int(m.group(2)) for m in _OVERFLOW.finditer(stderr)}
    if not found:
        return None
    parts = []
    for region, excess in found.items():
        capacity = board.flash_bytes if region == "FLASH" else board.ram_bytes
        kind = "flash" if region == "FLASH" else "RAM"
        parts.append(f"model {model.name} needs {(capacity + excess) / 1024:.0f} KB of {kind}, "
                     f"board {board.name} has {capacity / 1024:.0f} KB "
                     f"(weights {model.constant_bytes / 1024:.0f} KB, arena "
                     f"{model.arena_bytes / 1024:.0f} KB)")
    return "; ".join(parts) + "."


def build_firmware(model: GeneratedModel, board: Board, cache: Cache,
                   optimization: str = OPTIMIZATION) -> FirmwareImage:
    """Compile and link (or reuse) the ELF for `board`; cached by every input's hash."""
    if optimization not in OPTIMIZATIONS:
        raise BuildError(f"optimization {optimization!r}: expected one of "
                         f"{', '.join(OPTIMIZATIONS)}.")
    if shutil.which(TOOLCHAIN) is None:
        raise BuildError(f"{TOOLCHAIN} not found: install the Debian packages gcc-arm-none-eabi "
                         "and libnewlib-arm-none-eabi (scripts/setup.sh does).")
    if board.core not in CORE_FLAGS:
        raise BuildError(f"board {board.name}: no compiler flags for core {board.core}.")
    firmware = firmware_dir()
    board_dir = firmware / "boards" / board.name
    if not board_dir.is_dir():
        raise BuildError(f"board {board.name} has no firmware support in {board_dir}.")
    sources = _sources(board_dir, firmware)
    headers = [p for d in ("kernels", "runtime", "app") for p in sorted((firmware / d).glob("*.h"))]
    scripts = sorted(board_dir.glob("*.ld")) + sorted(board_dir.glob("*.h"))
    flags = (*CORE_FLAGS[board.core], optimization, *CFLAGS)
    key = content_hash(*(p.read_bytes() for p in sources + headers + scripts),
                       *model.sources.values(), " ".join(flags + LDFLAGS), toolchain_version())
    out_dir = cache.path("firmware", f"{board.name}-{model.name}-{key}", "")
    elf = out_dir / "firmware.elf"
    map_file = out_dir / "firmware.map"
    if elf.is_file():
        return FirmwareImage(elf, map_file, board.name, model.name, toolchain_version())
    out_dir.mkdir(parents=True, exist_ok=True)
    generated = []
    for name, text in model.sources.items():
        (out_dir / name).write_text(text)
        if name.endswith(".c"):
            generated.append(out_dir / name)
    includes = [f"-I{p}" for p in (out_dir, firmware / "kernels", firmware / "runtime", board_dir)]
    tmp = out_dir / "firmware.elf.tmp"
    command = [TOOLCHAIN, *flags, *includes, *map(str, sources + generated), *LDFLAGS,
               f"-L{board_dir}", f"-T{board_dir / 'sections.ld'}", f"-Wl,-Map={map_file}",
               "-o", str(tmp)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        explained = _explain_overflow(result.stderr, model, board)
        if explained:
            raise ModelTooLargeError(explained)
        raise BuildError(f"firmware for {model.name} on {board.name} failed to build:\n"
                         f"{result.stderr[-4000:]}")
    tmp.replace(elf)
    return FirmwareImage(elf, map_file, board.name, model.name, toolchain_version())
