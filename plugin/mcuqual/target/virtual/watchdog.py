"""Wall-time bounds for plain emulation slices.

Plain emulation (no cycle model) must not ask unicorn to count instructions: counting puts
a helper call on every instruction. A slice is bounded by wall time instead. Unicorn's own
`timeout` does that with a timer thread that calls `uc_emu_stop` once; a stop that lands
before the emulation loop has started (likely on a loaded 2-core machine, where the emulating
thread may not run for the whole timeout) can be lost, and `emu_start` then never returns
(unicorn-engine/unicorn PR #1174 and issue #1418 discuss these races; seen here as a
worker spinning in translated code with no timer thread left).

`SliceWatchdog` is one long-lived thread per board that stops the slice when its time is
up and stops it again every `RETRY_S` until the slice has returned, so a lost stop only
delays the end of a slice. A late stop can at worst end the next slice early (a short
slice: harmless). Usage:

    watchdog = SliceWatchdog(uc)
    watchdog.arm(0.02)          # this slice may run 20 ms
    uc.emu_start(pc, 0)         # returns when stopped (or earlier, by a hook)
    watchdog.disarm()
    ...
    watchdog.close()
"""
from __future__ import annotations

import threading
import time
from typing import Any

RETRY_S = 0.005


class SliceWatchdog:
    """Stops the emulation of `uc` once a slice's wall time is up, until it has stopped."""

    def __init__(self, uc: Any) -> None:
        self._uc = uc
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="mcuqual-slice-watchdog",
                                        daemon=True)
        self._thread.start()

    def arm(self, seconds: float) -> None:
        with self._cond:
            self._deadline = time.monotonic() + seconds
            self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._deadline = None

    def close(self) -> None:
        with self._cond:
            self._closed, self._deadline, self._uc = True, None, None
            self._cond.notify()
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                # time is up and the slice has not returned (else it would be disarmed):
                # stop it, and again after RETRY_S if it is still running then
                self._uc.emu_stop()
                self._deadline = time.monotonic() + RETRY_S
