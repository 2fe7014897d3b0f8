"""Where the project's folders are, so the plugin works from any current directory."""
from __future__ import annotations

from pathlib import Path


def find_repo_root(start: Path) -> Path:
    """The nearest folder upwards holding `models/` and `qualification/`, else `start`."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if (folder / "models").is_dir() and (folder / "qualification").is_dir():
            return folder
    return start
