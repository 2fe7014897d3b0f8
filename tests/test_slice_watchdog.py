"""The wall-time bound of plain emulation slices (mcuqual.target.virtual.watchdog)."""
from __future__ import annotations

import threading
import time

from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc

from mcuqual.target.virtual.watchdog import RETRY_S, SliceWatchdog


def test_a_slice_of_an_endless_loop_ends_when_its_time_is_up():
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    uc.mem_map(0x0800_0000, 0x1000)
    uc.mem_write(0x0800_0000, b"\xfe\xe7")           # b . (Thumb): never ends by itself
    watchdog = SliceWatchdog(uc)
    try:
        for _ in range(20):                             # many slices, one thread
            watchdog.arm(0.002)
            uc.emu_start(0x0800_0000 | 1, 0)
            watchdog.disarm()
    finally:
        watchdog.close()
    assert not watchdog._thread.is_alive()


class _Deaf:
    """An emulator whose first two stop requests are lost (the race the watchdog covers)."""

    def __init__(self) -> None:
        self.requests = 0
        self.stopped = threading.Event()

    def emu_stop(self) -> None:
        self.requests += 1
        if self.requests >= 3:
            self.stopped.set()


def test_a_lost_stop_is_asked_again_until_the_slice_returns():
    uc = _Deaf()
    watchdog = SliceWatchdog(uc)
    try:
        watchdog.arm(0.001)
        assert uc.stopped.wait(timeout=5.0), f"only {uc.requests} stop requests"
        watchdog.disarm()
        asked = uc.requests
        time.sleep(10 * RETRY_S)
        assert uc.requests == asked                     # a returned slice is left alone
    finally:
        watchdog.close()
