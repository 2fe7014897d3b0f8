"""The compiled half of the cycle models: per-block accumulation inside unicorn.

`native/m4_cycles.c` (Cortex-M4: ART caches, taken-branch extras and refill) and
`native/set_assoc_cycles.c` (Cortex-M33 and M7: set-associative caches, taken-branch extras
or 2-bit prediction) add up block costs in unicorn's own hook calls; the Python models still
cost each new block once and hand it over. This module builds those files (with the host C
compiler, once per source, cached), holds their state and registers their hooks
(`NativeAccumulator`), and gives a model class its compiled totals (`CompiledTotals`); it
knows nothing of the rules.

Lifecycle of an accumulator: create it (the state is zeroed), set its settings,
`install(uc, miss, data_ranges)` (returns the callable that removes the hooks again), run;
`put` stores a block from inside `miss`; `forget_all` after code changed.
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

NATIVE = Path(__file__).with_name("native")
CFLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared")
MISS_FUNCTION = ctypes.CFUNCTYPE(None, ctypes.c_uint64, ctypes.c_uint32)
_I32, _U32, _U64, _PTR = ctypes.c_int32, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_void_p
_libraries: dict[str, ctypes.CDLL] = {}


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


def build_library(source: Path, compiler: str = "cc") -> Path:
    """Compile (or reuse) `source` as a shared library; keyed by it, the headers beside it,
    the flags and the compiler."""
    headers = sorted(source.parent.glob("*.h"))
    key = content_hash(source.read_bytes(), *(h.read_bytes() for h in headers),
                       " ".join(CFLAGS), compiler)
    folder = _cache_folder() / "native"
    library = folder / f"{source.stem}-{key}.so"
    if library.is_file():
        return library
    if shutil.which(compiler) is None:
        raise McuqualError(f"the virtual board's cycle model needs a host C compiler "
                           f"('{compiler}' is not on PATH; install gcc).")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = library.with_name(library.name + f".tmp{os.getpid()}")
    result = subprocess.run([compiler, *CFLAGS, str(source), "-o", str(tmp)],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise McuqualError(f"{source.name} failed to compile:\n{result.stderr[-4000:]}")
    os.replace(tmp, library)
    return library


class NativeAccumulator:
    """One virtual core's compiled accumulation state. Subclasses name their C file
    (`SOURCE`, functions prefixed `PREFIX`), the leading fields of its state (`Settings`,
    checked against the C file's `<prefix>offset` on load, in `CHECKED` order) and the
    argument types of `<prefix>put`."""

    SOURCE: Path
    PREFIX: str
    Settings: type[ctypes.Structure]
    CHECKED: tuple[str, ...]
    PUT_ARGUMENTS: tuple[type, ...]

    def __init__(self) -> None:
        self._lib = self._load()
        size = getattr(self._lib, f"{self.PREFIX}state_bytes")()
        self._buffer = ctypes.create_string_buffer(size)
        self.state = self.Settings.from_buffer(self._buffer)
        self.state.stop_at_cycles = 1 << 62
        self._miss: ctypes._CFuncPtr | None = None     # kept alive while hooked

    @classmethod
    def _load(cls) -> ctypes.CDLL:
        lib = _libraries.get(cls.PREFIX)
        if lib is not None:
            return lib
        lib = ctypes.CDLL(str(build_library(cls.SOURCE)))
        p = cls.PREFIX
        getattr(lib, f"{p}state_bytes").restype = ctypes.c_size_t
        offset = getattr(lib, f"{p}offset")
        offset.restype, offset.argtypes = ctypes.c_size_t, [ctypes.c_int]
        put = getattr(lib, f"{p}put")
        put.argtypes, put.restype = [_PTR, *cls.PUT_ARGUMENTS], None
        getattr(lib, f"{p}forget_all").argtypes = [_PTR]
        for index, name in enumerate(cls.CHECKED):
            if offset(index) != getattr(cls.Settings, name).offset:
                raise McuqualError(f"{cls.SOURCE.name}: field {name} is not where "
                                   f"{cls.__name__}.Settings expects it")
        _libraries[p] = lib
        return lib

    def call(self, name: str, *arguments) -> int:
        """The C function `<prefix><name>` on this state."""
        return getattr(self._lib, f"{self.PREFIX}{name}")(self._buffer, *arguments)

    def put(self, *fields) -> None:
        self.call("put", *fields)

    def total(self, index: int) -> int:
        """Cycles so far: 0 nominal, 1 every ranged rule at its low end, 2 at its high end."""
        raise NotImplementedError

    def set_total(self, index: int, value: int) -> None:
        raise NotImplementedError

    def forget_all(self) -> None:
        self.call("forget_all")

    def install(self, uc, miss: Callable[[int, int], None],
                data_ranges: list[tuple[int, int]]) -> Callable[[], None]:
        """Register the block hook (every block) and a read hook per [start, end) data
        range on `uc`; `miss` (address, size) must `put` that block. Returns what removes
        the hooks."""
        self._miss = MISS_FUNCTION(miss)
        self.state.miss = ctypes.cast(self._miss, _PTR).value
        self.state.emu_stop = ctypes.cast(uclib.uc_emu_stop, _PTR).value
        user_data = _PTR(ctypes.addressof(self._buffer))
        on_block = getattr(self._lib, f"{self.PREFIX}on_block")
        on_read = getattr(self._lib, f"{self.PREFIX}on_read")
        handles = []
        for kind, function, begin, end in (
                (UC_HOOK_BLOCK, on_block, 1, 0),
                *((UC_HOOK_MEM_READ, on_read, start, end - 1) for start, end in data_ranges)):
            handle = uc_hook_h()
            status = uclib.uc_hook_add(uc._uch, ctypes.byref(handle), kind,
                                       ctypes.cast(function, _PTR), user_data, begin, end)
            if status != 0:
                raise UcError(status)
            handles.append(handle)

        def remove() -> None:
            for handle in handles:
                uclib.uc_hook_del(uc._uch, handle)
        return remove


class M4Accumulator(NativeAccumulator):
    """`native/m4_cycles.c`: the Cortex-M4 model's totals, taken-branch extras and the
    STM32L4+ ART caches."""

    class Settings(ctypes.Structure):
        _fields_ = [("cycles", _U64), ("cycles_low", _U64), ("cycles_high", _U64),
                    ("stop_at_cycles", _U64), ("wait_states", _I32), ("refill_nominal", _I32),
                    ("refill_low", _I32), ("refill_high", _I32), ("icache_enabled", _I32),
                    ("dcache_enabled", _I32), ("missing", _I32), ("pad", _I32),
                    ("miss", _PTR), ("emu_stop", _PTR)]

    SOURCE = NATIVE / "m4_cycles.c"
    PREFIX = "mq_m4_"
    CHECKED = ("cycles", "cycles_low", "cycles_high", "stop_at_cycles", "wait_states",
               "refill_nominal", "icache_enabled", "missing", "miss", "emu_stop")
    # address, size, nominal, low, high, taken_extra, refill, ends_in_branch,
    # fallthrough, first_line, line_count, wide_unaligned
    PUT_ARGUMENTS = (_U32, _U32, _I32, _I32, _I32, _I32, _I32, _I32, _U32, _U32, _U32, _I32)

    _TOTALS = ("cycles", "cycles_low", "cycles_high")

    def __init__(self) -> None:
        super().__init__()
        self.state.icache_enabled = self.state.dcache_enabled = 1

    def total(self, index: int) -> int:
        return getattr(self.state, self._TOTALS[index])

    def set_total(self, index: int, value: int) -> None:
        setattr(self.state, self._TOTALS[index], value)


class SetAssociativeAccumulator(NativeAccumulator):
    """`native/set_assoc_cycles.c`: totals, taken-branch extras or 2-bit prediction, and
    two set-associative caches (cache 0 for instructions; data reads through `data_cache`)."""

    class Settings(ctypes.Structure):
        _fields_ = [("cycles", _U64 * 3), ("stop_at_cycles", _U64), ("wait_states", _I32),
                    ("miss_multiplier", _I32), ("miss_add", _I32 * 3), ("data_cache", _I32),
                    ("taken_cost", _I32 * 3), ("mispredict_cost", _I32 * 3),
                    ("flash_start", _U32), ("flash_end", _U32), ("missing", _I32),
                    ("pad", _I32), ("miss", _PTR), ("emu_stop", _PTR)]

    SOURCE = NATIVE / "set_assoc_cycles.c"
    PREFIX = "mq_sa_"
    CHECKED = ("cycles", "stop_at_cycles", "wait_states", "miss_add", "taken_cost",
               "flash_start", "missing", "miss", "emu_stop")
    # address, size, nominal, low, high, taken nominal/low/high, branch, fallthrough,
    # first_line, line_count
    PUT_ARGUMENTS = (_U32, _U32, _I32, _I32, _I32, _I32, _I32, _I32, _U32, _U32, _U32, _U32)
    NONE, TAKEN_EXTRA, DIRECT, CONDITIONAL, INDIRECT = range(5)

    def total(self, index: int) -> int:
        return self.state.cycles[index]

    def set_total(self, index: int, value: int) -> None:
        self.state.cycles[index] = value

    def cache_geometry(self, which: int, sets: int, ways: int, line_bytes: int) -> None:
        if not self.call("cache_geometry", which, sets, ways, line_bytes):
            raise McuqualError(f"a cache of {sets} sets x {ways} ways of {line_bytes}-byte "
                               f"lines does not fit {self.SOURCE.name}'s arrays")


class CompiledTotals:
    """Mixin for a cycle model class whose per-block accumulation runs compiled: its
    `cycles`, `cycles_low`, `cycles_high` and `stop_at_cycles` live in the accumulator's
    state (`self._native`, set before the model's own __init__), `install_hooks` replaces
    the board's Python hooks, and `_store(address, size, cost)` hands a costed block over.
    The model keeps its Python `on_block`/`on_data_read` (the reference the tests compare
    against); the board does not call them."""

    _native: NativeAccumulator

    def _total(index: int) -> property:         # noqa: N805 - a property factory
        return property(lambda self: self._native.total(index),
                        lambda self, value: self._native.set_total(index, value))

    cycles = _total(0)
    cycles_low = _total(1)
    cycles_high = _total(2)
    del _total

    def _start_native(self, accumulator: NativeAccumulator) -> None:
        self._native = accumulator
        self._error: BaseException | None = None
        self._fetch: Callable[[int, int], bytes] | None = None

    @property
    def stop_at_cycles(self) -> int:
        """The block hook stops emulation at the first block boundary at or past this."""
        return self._native.state.stop_at_cycles

    @stop_at_cycles.setter
    def stop_at_cycles(self, value: int) -> None:
        self._native.state.stop_at_cycles = value
        self._native.state.wait_states = self.wait_states()    # a slice starts current

    def install_hooks(self, uc) -> Callable[[], None]:
        """Hook the compiled accumulation into `uc`; returns what unhooks it."""
        self._fetch = uc.mem_read
        self._native.state.wait_states = self.wait_states()
        return self._native.install(uc, self._on_miss, self.data_ranges)

    def _on_miss(self, address: int, size: int) -> None:
        try:
            cost = self._blocks.get((address, size)) or \
                self.cost(address, bytes(self._fetch(address, size)))
            self._store(address, size, cost)
        except BaseException as exc:          # noqa: BLE001 - raised after the slice
            self._error = exc

    def _store(self, address: int, size: int, cost) -> None:
        raise NotImplementedError

    def raise_pending(self) -> None:
        """Raise what went wrong inside a hook call during the last slice, if anything."""
        error, self._error = self._error, None
        missing, self._native.state.missing = self._native.state.missing, 0
        if error is not None:
            raise error
        if missing:
            raise McuqualError("the compiled cycle accumulation stopped: "
                               + ("a block its costing did not store" if missing == 1
                                  else "more branch sites than its predictor table holds"))

    def forget_code(self, start: int, end: int) -> None:
        super().forget_code(start, end)
        self._native.forget_all()
