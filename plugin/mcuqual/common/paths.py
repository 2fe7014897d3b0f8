"""Where the project's folders are, so the plugin works from any current directory."""
from __future__ import annotations

from pathlib import Path

from mcuqual.common.errors import McuqualError


def find_repo_root(start: Path) -> Path:
    """The nearest folder upwards holding `models/` and `qualification/`, else `start`."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if (folder / "models").is_dir() and (folder / "qualification").is_dir():
            return folder
    return start


def firmware_dir() -> Path:
    """The firmware sources (kernels, runtime, app, cores, built-in boards) beside the package."""
    here = Path(__file__).resolve()
    for folder in here.parents:
        if (folder / "firmware" / "kernels").is_dir():
            return folder / "firmware"
    raise McuqualError("firmware sources not found beside the mcuqual package.")
