"""Host-side work in child processes: every job has a time budget and a name, and stops fast.

The tflite_micro reference and the host twin run native code that can crash (a
corrupt model, a kernel bug) or never return (a kernel that loops). Run in the
pytest process, either would take the whole run down or hang it with no report.
Here each job runs in a spawned worker; a crash or an overrun becomes a
`WorkerError` that names the model, the stage and the images, and on any exit
that is not a clean one (an error, Ctrl-C, SIGTERM) the workers are killed at
once rather than waited for.

    outputs = run_jobs(_run_chunk, [(flatbuffer, chunk) for chunk in chunks],
                       label="resnet8", stage="tflite_micro reference",
                       describe=lambda i: f"images {500 * i}..{500 * i + 499}",
                       budget_s=lambda i: 60.0)
"""
from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import signal
import time
from typing import Any, Callable, Sequence

from mcuqual.common.errors import McuqualError


class WorkerError(McuqualError):
    """A host worker crashed or overran its budget; the message names model, stage and input."""


# Budgets: a job may take JOB_FLOOR_S (start a worker, import the interpreter) plus its
# MACs at HOST_FLOOR_MACS_PER_S and IMAGE_FLOOR_S per image. The floor rate is ~40x
# below what this project's 2-core machines measure (tflite_micro: 290-930 M MAC/s, the
# host twin: 1,150-1,600 M MAC/s on ds_cnn_xs, ds_cnn_lite and resnet8), so only a job
# that hangs or crashes ever meets it.
JOB_FLOOR_S = 30.0
HOST_FLOOR_MACS_PER_S = 20e6
IMAGE_FLOOR_S = 0.002


def budget_s(images: int, macs_per_image: int, floor_s: float | None = None) -> float:
    """Seconds a host job over `images` images of a `macs_per_image` model may take."""
    floor = JOB_FLOOR_S if floor_s is None else floor_s
    return floor + images * (macs_per_image / HOST_FLOOR_MACS_PER_S + IMAGE_FLOOR_S)


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group: the parent alone decides, and kills us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _exit_codes(processes: Sequence[Any]) -> str:
    """How the workers ended; the ones the pool itself terminated after the first death
    (SIGTERM) are left out when another cause is there."""
    for process in processes:             # reap them, or their exit codes are not known yet
        try:
            process.join(timeout=2)
        except Exception:                  # noqa: BLE001 - not ours to join
            pass
    codes = [code for code in (getattr(p, "exitcode", None) for p in processes) if code]
    causes = [code for code in codes if code != -signal.SIGTERM] or codes
    return ", ".join(dict.fromkeys(
        f"killed by {signal.Signals(-code).name}" if code < 0 and
        -code in signal.Signals._value2member_map_ else f"exit code {code}"
        for code in causes)) or "it died"


def _kill(pool: futures.ProcessPoolExecutor, processes: Sequence[Any]) -> None:
    for process in processes:
        try:
            process.kill()
        except Exception:              # noqa: BLE001 - already gone
            pass
    pool.shutdown(wait=False, cancel_futures=True)


def run_jobs(function: Callable[..., Any], jobs: Sequence[tuple], *, label: str, stage: str,
             describe: Callable[[int], str], budget_s: Callable[[int], float],
             workers: int | None = None,
             on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    """`function(*job)` for every job, in worker processes; results in job order.

    Each job must finish within `budget_s(index)` seconds of starting. A job that raises
    an exception has it re-raised here (McuqualErrors as they are); a worker that dies
    or overruns raises WorkerError naming `label`, `stage` and `describe(index)`.
    """
    workers = max(1, min(workers or default_workers(), len(jobs) or 1))
    results: list[Any] = [None] * len(jobs)
    if not jobs:
        return results
    pool = futures.ProcessPoolExecutor(max_workers=workers, initializer=_ignore_sigint,
                                       mp_context=multiprocessing.get_context("spawn"))
    processes: list[Any] = []
    running: dict[futures.Future, tuple[int, float]] = {}
    queue = list(range(len(jobs)))
    clean = False
    try:
        while queue or running:
            while queue and len(running) < workers:
                index = queue.pop(0)
                running[pool.submit(function, *jobs[index])] = (index, time.monotonic())
                processes = list(getattr(pool, "_processes", {}).values()) or processes
            deadline = min(start + budget_s(i) for i, start in running.values())
            done, _ = futures.wait(running, timeout=max(0.05, deadline - time.monotonic()),
                                   return_when=futures.FIRST_COMPLETED)
            for future in done:
                index, _ = running.pop(future)
                try:
                    results[index] = future.result()
                except futures.process.BrokenProcessPool:
                    raise WorkerError(
                        f"model {label}: the {stage} worker crashed ({_exit_codes(processes)}) "
                        f"on {describe(index)}; the model is corrupt or uses something the "
                        f"{stage} cannot run.") from None
                if on_result is not None:
                    on_result(index, results[index])
            now = time.monotonic()
            for index, start in running.values():
                if now - start > budget_s(index):
                    raise WorkerError(
                        f"model {label}: the {stage} did not finish {describe(index)} within "
                        f"{budget_s(index):.0f} s (a budget from the model's size); it hangs or "
                        f"the host is far slower than expected. Stopped.")
        clean = True
    finally:
        if clean:
            pool.shutdown(wait=True)
        else:
            _kill(pool, processes)
    return results
