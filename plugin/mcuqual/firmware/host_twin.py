"""The host twin: generated model + kernel library built as a shared library for this machine.

It runs the very C the firmware runs, so comparing it with tflite_micro on all
10,000 test images proves the arithmetic bit-exact in seconds rather than hours
of emulation.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from mcuqual.common.cache import Cache, content_hash
from mcuqual.firmware.codegen import GeneratedModel
from mcuqual.common.errors import McuqualError
from mcuqual.common.paths import firmware_dir
from mcuqual.common.workers import budget_s, run_jobs

# The twin needs no interpreter to start: a worker is up in about a second.
TWIN_JOB_FLOOR_S = 10.0

HOST_CFLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared")


class BuildError(McuqualError):
    """A compiler failed; the message carries its diagnostics."""


def kernel_sources(firmware: Path) -> list[Path]:
    return sorted((firmware / "kernels").glob("*.c"))


def build_host_twin(model: GeneratedModel, cache: Cache, compiler: str = "cc") -> Path:
    """Compile (or reuse) the twin; cached by the hash of every source and flag."""
    firmware = firmware_dir()
    if shutil.which(compiler) is None:
        raise BuildError(f"no host C compiler '{compiler}' on PATH (install gcc).")
    sources = kernel_sources(firmware) + [firmware / "host" / "twin.c"]
    headers = sorted((firmware / "kernels").glob("*.h")) + sorted((firmware / "runtime").glob("*.h"))
    key = content_hash(*(p.read_bytes() for p in sources + headers),
                       *model.sources.values(), " ".join(HOST_CFLAGS), compiler)
    library = cache.path("host_twin", key, ".so")
    if library.is_file():
        return library
    work = cache.path("host_twin", key, ".src")
    work.mkdir(exist_ok=True)
    generated = []
    for name, text in model.sources.items():
        (work / name).write_text(text)
        if name.endswith(".c"):
            generated.append(work / name)
    tmp = library.with_name(library.name + f".tmp{os.getpid()}")
    command = [compiler, *HOST_CFLAGS, f"-I{work}", f"-I{firmware / 'kernels'}",
               f"-I{firmware / 'runtime'}",
               *map(str, sources + generated), "-o", str(tmp)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise BuildError(f"host twin of {model.name} failed to compile:\n{result.stderr[-4000:]}")
    os.replace(tmp, library)
    return library


class HostTwin:
    def __init__(self, library: Path, input_bytes: int, output_bytes: int) -> None:
        self.library_path = Path(library)
        self.input_bytes, self.output_bytes = input_bytes, output_bytes
        self._lib = ctypes.CDLL(str(library))
        self._lib.mq_twin_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
        self._lib.mq_twin_layer.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                            ctypes.c_void_p, ctypes.c_int]

    def run(self, inputs: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(inputs, dtype=np.int8).reshape(len(inputs), -1)
        if batch.shape[1] != self.input_bytes:
            raise ValueError(f"expected {self.input_bytes} bytes per input, got {batch.shape[1]}")
        outputs = np.zeros((len(batch), self.output_bytes), dtype=np.int8)
        self._lib.mq_twin_run(batch.ctypes.data, outputs.ctypes.data, len(batch))
        return outputs

    def layer_output(self, image: np.ndarray, layer: int, elements: int) -> np.ndarray:
        single = np.ascontiguousarray(image, dtype=np.int8).reshape(-1)
        output = np.zeros(self.output_bytes, dtype=np.int8)
        captured = np.zeros(elements, dtype=np.int8)
        self._lib.mq_twin_layer(single.ctypes.data, output.ctypes.data, layer,
                                captured.ctypes.data, elements)
        return captured


def _run_chunk(library: str, input_bytes: int, output_bytes: int, inputs: np.ndarray) -> np.ndarray:
    return HostTwin(Path(library), input_bytes, output_bytes).run(inputs)


def run_parallel(twin: HostTwin, inputs: np.ndarray, label: str, macs_per_image: int,
                 workers: int = 2, chunk: int = 500) -> np.ndarray:
    """Outputs for many inputs, in worker processes (the twin's arena is a global, and a
    kernel that crashes or never returns must not take the test run with it); each chunk
    within a budget from the model's MACs."""
    starts = range(0, len(inputs), chunk)
    pieces = [inputs[i:i + chunk] for i in starts]
    results = run_jobs(
        _run_chunk, [(str(twin.library_path), twin.input_bytes, twin.output_bytes, piece)
                     for piece in pieces],
        label=label, stage="host twin", workers=workers,
        describe=lambda i: f"test images {starts[i]}..{starts[i] + len(pieces[i]) - 1}",
        budget_s=lambda i: budget_s(len(pieces[i]), macs_per_image, TWIN_JOB_FLOOR_S))
    return np.concatenate(results) if results else np.zeros((0, twin.output_bytes), np.int8)
