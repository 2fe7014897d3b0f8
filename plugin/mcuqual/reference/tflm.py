"""Golden outputs from the tflite_micro interpreter: the oracle every other figure is checked against.

tflite_micro runs TFLM's reference kernels, the arithmetic our firmware must
reproduce bit for bit. It runs in worker processes so that a model that crashes
the native interpreter becomes a clear error instead of killing the test run.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from mcuqual.common.cache import Cache, content_hash
from mcuqual.common.errors import InterpreterError
from mcuqual.common.workers import budget_s, default_workers, run_jobs

CHUNK_IMAGES = 500
# Budgets when the caller does not say how big the model is: as if it were 4x resnet8.
DEFAULT_MACS = 50_000_000
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
    from mcuqual.common.capture import captured_fds

    interpreter = _interpreter(flatbuffer)
    interpreter.set_input(sample[None], 0)
    interpreter.invoke()
    with captured_fds(1, 2) as log:
        interpreter.print_allocations()
    return log.text


@dataclass(frozen=True)
class ArenaFigure:
    total_bytes: int
    report: str


def tflm_arena(flatbuffer: bytes, sample_input: np.ndarray, label: str = "model",
               macs_per_image: int | None = None) -> ArenaFigure:
    """TFLM's own arena figure: what print_allocations() reports after one invoke."""
    macs = macs_per_image if macs_per_image is not None else DEFAULT_MACS
    try:
        [text] = run_jobs(_arena_report, [(flatbuffer, sample_input)], label=label,
                          stage="tflite_micro arena", describe=lambda _: "one image",
                          budget_s=lambda _: budget_s(1, macs))
    except RuntimeError as exc:
        raise InterpreterError(f"{label}: tflite_micro could not run the model: {exc}") from exc
    match = _ARENA_RE.search(text)
    if not match:
        raise InterpreterError(f"{label}: print_allocations() printed no arena total:\n{text}")
    return ArenaFigure(int(match.group(1)), text)


def run_reference(flatbuffer: bytes, inputs: np.ndarray, label: str = "model",
                  workers: int | None = None,
                  progress: Callable[[int], None] | None = None,
                  macs_per_image: int | None = None) -> np.ndarray:
    """int8 outputs [N, classes] for int8 inputs [N, H, W, C], in input order.

    Chunks of CHUNK_IMAGES run in worker processes, each within a budget from
    `macs_per_image` (the model's size); a crash or an overrun names the images.
    """
    macs = macs_per_image if macs_per_image is not None else DEFAULT_MACS
    starts = range(0, len(inputs), CHUNK_IMAGES)
    chunks = [inputs[i:i + CHUNK_IMAGES] for i in starts]
    try:
        results = run_jobs(
            _run_chunk, [(flatbuffer, chunk) for chunk in chunks], label=label,
            stage="tflite_micro reference", workers=workers or default_workers(),
            describe=lambda i: f"test images {starts[i]}..{starts[i] + len(chunks[i]) - 1}",
            budget_s=lambda i: budget_s(len(chunks[i]), macs),
            on_result=(lambda i, _: progress(len(chunks[i]))) if progress else None)
    except RuntimeError as exc:
        raise InterpreterError(f"{label}: tflite_micro failed: {exc}") from exc
    return np.concatenate(results) if results else np.zeros((0, 0), dtype=np.int8)


def reference_cached(flatbuffer: bytes, inputs: np.ndarray, cache: Cache, label: str = "model",
                     progress: Callable[[int], None] | None = None,
                     macs_per_image: int | None = None) -> tuple[np.ndarray, bool]:
    """Golden outputs, cached under the hash of the model and the exact inputs."""
    key = content_hash(flatbuffer, inputs.tobytes())
    path = cache.path("reference", key, ".npy")
    if path.is_file():
        return np.load(path), True
    outputs = run_reference(flatbuffer, inputs, label=label, progress=progress,
                            macs_per_image=macs_per_image)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}.npy")
    np.save(tmp, outputs)
    os.replace(tmp, path)
    return outputs, False
