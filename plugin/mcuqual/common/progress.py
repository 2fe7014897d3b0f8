"""Progress bars for long work (training, reference runs), quiet when not on a terminal."""
from __future__ import annotations

import os
import sys

from tqdm import tqdm


def progress_bar(total: int, desc: str, unit: str = "it") -> tqdm:
    disable = os.environ.get("MCUQUAL_PROGRESS", "auto") == "off"
    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=disable,
                file=sys.stderr, mininterval=1.0, dynamic_ncols=True)
