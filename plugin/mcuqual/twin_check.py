"""Does the firmware's C compute what tflite_micro computes? Checked on every test image."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .cache import Cache, content_hash
from .errors import McuqualError
from .host_twin import HostTwin, run_parallel


class BitExactnessError(McuqualError):
    """The firmware's kernels disagree with the reference: no figure from them can be trusted."""


@dataclass(frozen=True)
class TwinCheck:
    model: str
    images: int
    mismatched_images: int
    first_mismatch: int | None
    from_cache: bool

    def require_bit_exact(self) -> None:
        if self.mismatched_images:
            raise BitExactnessError(
                f"model {self.model}: the firmware's C (host twin) differs from tflite_micro on "
                f"{self.mismatched_images} of {self.images} test images (first: image "
                f"{self.first_mismatch}); its accuracy is not the reference's.")


def compare_with_reference(twin: HostTwin, inputs: np.ndarray, golden: np.ndarray, cache: Cache,
                           label: str) -> TwinCheck:
    key = content_hash(twin.library_path.read_bytes(), inputs.tobytes(), golden.tobytes())
    marker = cache.path("twin_check", key, ".npy")
    if marker.is_file():
        mismatched = np.load(marker)
        cached = True
    else:
        outputs = run_parallel(twin, inputs, workers=max(1, min(4, os.cpu_count() or 1)))
        mismatched = np.flatnonzero((outputs != golden).any(axis=1))
        np.save(marker, mismatched)
        cached = False
    return TwinCheck(label, len(inputs), int(mismatched.size),
                     int(mismatched[0]) if mismatched.size else None, cached)
