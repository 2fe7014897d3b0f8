"""The compiled half of the Cortex-M4 cycle model: per-block accumulation inside unicorn.

`native/m4_cycles.c` adds up block costs, taken-branch extras and the ART caches in
unicorn's own hook call; the Python model (`cycles.CompiledCycleModel`) still costs each
new block once and hands it over. This module only builds that file (with the host C
compiler, once per source, cached like the host twin), holds its state and registers its
hooks; it knows nothing of the rules.

Lifecycle of an `M4Accumulator`: create it (the state is zeroed), set `wait_states`,
`refill` and the cache enables, `install(uc, miss, flash_start, flash_end)` (returns the
callable that removes the hooks again), run; `put` stores a block from inside `miss`;
`forget_all` after code changed.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from unicorn import UC_HOOK_BLOCK, UC_HOOK_MEM_READ, UcError
from unicorn.unicorn_py3.unicorn import uc_hook_h, uclib

from mcuqual.common.cache import CACHE_ENV, content_hash
from mcuqual.common.errors import McuqualError

SOURCE = Path(__file__).with_name("native") / "m4_cycles.c"
CFLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared")
MISS_FUNCTION = ctypes.CFUNCTYPE(None, ctypes.c_uint64, ctypes.c_uint32)


class _Settings(ctypes.Structure):
    """The leading fields of `mq_m4_state` (the C file's layout, checked on load)."""
    _fields_ = [("cycles", ctypes.c_uint64), ("cycles_low", ctypes.c_uint64),
                ("cycles_high", ctypes.c_uint64), ("stop_at_cycles", ctypes.c_uint64),
                ("wait_states", ctypes.c_int32), ("refill_nominal", ctypes.c_int32),
                ("refill_low", ctypes.c_int32), ("refill_high", ctypes.c_int32),
                ("icache_enabled", ctypes.c_int32), ("dcache_enabled", ctypes.c_int32),
                ("missing", ctypes.c_int32), ("pad", ctypes.c_int32),
                ("miss", ctypes.c_void_p), ("emu_stop", ctypes.c_void_p)]


_FIELDS_IN_C_ORDER = ("cycles", "cycles_low", "cycles_high", "stop_at_cycles", "wait_states",
                      "refill_nominal", "icache_enabled", "missing", "miss", "emu_stop")
_library: ctypes.CDLL | None = None


def _cache_folder() -> Path:
    """MCUQUAL_CACHE_DIR, else ~/.cache/mcuqual, else (no writable home) the temp folder."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root)
    home = Path.home() / ".cache" / "mcuqual"
    try:
        home.mkdir(parents=True, exist_ok=True)
        return home
    except OSError:
        return Path(tempfile.gettempdir()) / f"mcuqual-{os.getuid()}"


def build_library(compiler: str = "cc") -> Path:
    """Compile (or reuse) the shared library; keyed by the source, flags and compiler."""
    key = content_hash(SOURCE.read_bytes(), " ".join(CFLAGS), compiler)
    folder = _cache_folder() / "native"
    library = folder / f"m4_cycles-{key}.so"
    if library.is_file():
        return library
    if shutil.which(compiler) is None:
        raise McuqualError(f"the virtual board's cycle model needs a host C compiler "
                           f"('{compiler}' is not on PATH; install gcc).")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = library.with_name(library.name + f".tmp{os.getpid()}")
    result = subprocess.run([compiler, *CFLAGS, str(SOURCE), "-o", str(tmp)],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise McuqualError(f"{SOURCE.name} failed to compile:\n{result.stderr[-4000:]}")
    os.replace(tmp, library)
    return library


def load_library() -> ctypes.CDLL:
    """The library, built on first use; its state layout checked against `_Settings`."""
    global _library
    if _library is None:
        lib = ctypes.CDLL(str(build_library()))
        lib.mq_m4_state_bytes.restype = ctypes.c_size_t
        lib.mq_m4_offset.restype = ctypes.c_size_t
        lib.mq_m4_offset.argtypes = [ctypes.c_int]
        lib.mq_m4_put.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32,
                                  *[ctypes.c_int32] * 6, *[ctypes.c_uint32] * 3, ctypes.c_int32]
        lib.mq_m4_put.restype = None
        for name in ("mq_m4_forget_all", "mq_m4_clear_icache", "mq_m4_clear_dcache"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name).restype = None
        for index, name in enumerate(_FIELDS_IN_C_ORDER):
            if lib.mq_m4_offset(index) != getattr(_Settings, name).offset:
                raise McuqualError(f"{SOURCE.name}: field {name} is not where "
                                   "cycles_native._Settings expects it")
        _library = lib
    return _library


class M4Accumulator:
    """The compiled accumulation state of one virtual core (see the module docstring)."""

    def __init__(self) -> None:
        self._lib = load_library()
        self._buffer = ctypes.create_string_buffer(self._lib.mq_m4_state_bytes())
        self.state = _Settings.from_buffer(self._buffer)
        self.state.stop_at_cycles = 1 << 62
        self.state.icache_enabled = self.state.dcache_enabled = 1
        self._miss: ctypes._CFuncPtr | None = None     # kept alive while hooked

    def put(self, address: int, size: int, nominal: int, low: int, high: int,
            taken_extra: int, refill: bool, ends_in_branch: bool, fallthrough: int,
            lines: tuple[int, ...], wide_unaligned: bool) -> None:
        """Store one block's costs (`lines`: consecutive flash line numbers, or empty)."""
        self._lib.mq_m4_put(self._buffer, address, size, nominal, low, high, taken_extra,
                            int(refill), int(ends_in_branch), fallthrough,
                            lines[0] if lines else 0, len(lines), int(wide_unaligned))

    def forget_all(self) -> None:
        self._lib.mq_m4_forget_all(self._buffer)

    def clear_icache(self) -> None:
        self._lib.mq_m4_clear_icache(self._buffer)

    def clear_dcache(self) -> None:
        self._lib.mq_m4_clear_dcache(self._buffer)

    def install(self, uc, miss: Callable[[int, int], None], flash_start: int,
                flash_end: int) -> Callable[[], None]:
        """Register the block hook (every block) and the flash read hook on `uc`; `miss`
        (address, size) must `put` that block. Returns what removes both hooks."""
        self._miss = MISS_FUNCTION(miss)
        self.state.miss = ctypes.cast(self._miss, ctypes.c_void_p).value
        self.state.emu_stop = ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value
        user_data = ctypes.c_void_p(ctypes.addressof(self._buffer))
        handles = []
        for kind, function, begin, end in (
                (UC_HOOK_BLOCK, self._lib.mq_m4_on_block, 1, 0),
                (UC_HOOK_MEM_READ, self._lib.mq_m4_on_read, flash_start, flash_end - 1)):
            handle = uc_hook_h()
            status = uclib.uc_hook_add(uc._uch, ctypes.byref(handle), kind,
                                       ctypes.cast(function, ctypes.c_void_p), user_data,
                                       begin, end)
            if status != 0:
                raise UcError(status)
            handles.append(handle)

        def remove() -> None:
            for handle in handles:
                uclib.uc_hook_del(uc._uch, handle)
        return remove
