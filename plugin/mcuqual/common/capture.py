"""Capturing what native code writes straight to file descriptors 1 and 2.

TFLM's print_allocations() and the TFLite converter write from C++, below
Python's sys.stdout, so only a descriptor-level redirect catches them.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator


class Captured:
    text: str = ""


@contextlib.contextmanager
def captured_fds(*fds: int) -> Iterator[Captured]:
    fds = fds or (1, 2)
    result = Captured()
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = {fd: os.dup(fd) for fd in fds}
        try:
            for fd in fds:
                os.dup2(sink.fileno(), fd)
            yield result
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            result.text = sink.read().decode(errors="replace")
