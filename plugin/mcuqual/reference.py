"""Golden outputs from the tflite_micro interpreter: the oracle every other figure is checked against.

tflite_micro runs TFLM's reference kernels, the arithmetic our firmware must
reproduce bit for bit. It runs in worker processes so that a model that crashes
the native interpreter becomes a clear error instead of killing the test run.
"""
from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import re
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .cache import Cache, content_hash
from .errors import InterpreterError

CHUNK_IMAGES = 500
_ARENA_RE = re.compile(r"Arena allocation total (\d+) bytes")


def _interpreter(flatbuffer: bytes):
    from tflite_micro import runtime
    return runtime.Interpreter.from_bytes(flatbuffer, arena_size=max(len(flatbuffer) * 10, 1 << 21))


def _run_chunk(flatbuffer: bytes, inputs: np.ndarray) -> np.ndarray:
    interpreter = _interpreter(flatbuffer)
    outputs = []
    for image in inputs:
        interpreter.set_input(image[None], 0)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0)).reshape(-1))
    return np.stack(outputs)


def _arena_report(flatbuffer: bytes, sample: np.ndarray) -> str:
    from .capture import captured_fds

    interpreter = _interpreter(flatbuffer)
    interpreter.set_input(sample[None], 0)
    interpreter.invoke()
    with captured_fds(1, 2) as log:
        interpreter.print_allocations()
    return log.text


def _pool(workers: int) -> futures.ProcessPoolExecutor:
    # spawn: the parent may hold TensorFlow threads, which fork would copy mid-flight
    return futures.ProcessPoolExecutor(max_workers=workers,
                                       mp_context=multiprocessing.get_context("spawn"))


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class ArenaFigure:
    total_bytes: int
    report: str


def tflm_arena(flatbuffer: bytes, sample_input: np.ndarray, label: str = "model") -> ArenaFigure:
    """TFLM's own arena figure: what print_allocations() reports after one invoke."""
    try:
        with _pool(1) as pool:
            text = pool.submit(_arena_report, flatbuffer, sample_input).result(timeout=300)
    except futures.process.BrokenProcessPool as exc:
        raise InterpreterError(f"{label}: tflite_micro crashed while allocating the model; the "
                               ".tflite is corrupt or uses something TFLM cannot run.") from exc
    except Exception as exc:
        raise InterpreterError(f"{label}: tflite_micro could not run the model: {exc}") from exc
    match = _ARENA_RE.search(text)
    if not match:
        raise InterpreterError(f"{label}: print_allocations() printed no arena total:\n{text}")
    return ArenaFigure(int(match.group(1)), text)


def run_reference(flatbuffer: bytes, inputs: np.ndarray, label: str = "model",
                  workers: int | None = None,
                  progress: Callable[[int], None] | None = None,
                  timeout_s: float = 3600.0) -> np.ndarray:
    """int8 outputs [N, classes] for int8 inputs [N, H, W, C], in input order."""
    workers = workers or default_workers()
    chunks = [inputs[i:i + CHUNK_IMAGES] for i in range(0, len(inputs), CHUNK_IMAGES)]
    results: list[np.ndarray | None] = [None] * len(chunks)
    deadline = time.monotonic() + timeout_s
    try:
        with _pool(workers) as pool:
            pending = {pool.submit(_run_chunk, flatbuffer, chunk): i for i, chunk in enumerate(chunks)}
            for future in futures.as_completed(pending, timeout=max(1.0, deadline - time.monotonic())):
                index = pending[future]
                results[index] = future.result()
                if progress:
                    progress(len(chunks[index]))
    except futures.process.BrokenProcessPool as exc:
        raise InterpreterError(f"{label}: tflite_micro crashed on the model; the .tflite is corrupt "
                               "or uses something TFLM cannot run.") from exc
    except futures.TimeoutError as exc:
        raise InterpreterError(f"{label}: the reference run exceeded {timeout_s:.0f} s.") from exc
    except RuntimeError as exc:
        raise InterpreterError(f"{label}: tflite_micro failed: {exc}") from exc
    return np.concatenate(results)  # type: ignore[arg-type]


def reference_cached(flatbuffer: bytes, inputs: np.ndarray, cache: Cache, label: str = "model",
                     progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, bool]:
    """Golden outputs, cached under the hash of the model and the exact inputs."""
    key = content_hash(flatbuffer, inputs.tobytes())
    path = cache.path("reference", key, ".npy")
    if path.is_file():
        return np.load(path), True
    outputs = run_reference(flatbuffer, inputs, label=label, progress=progress)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}.npy")
    np.save(tmp, outputs)
    os.replace(tmp, path)
    return outputs, False
