"""Where the project's folders are, so the plugin works from any current directory."""
from __future__ import annotations

import sysconfig
from pathlib import Path

from mcuqual.common.errors import McuqualError


def find_repo_root(start: Path) -> Path:
    """The nearest folder upwards holding `models/` and `qualification/`, else `start`."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if (folder / "models").is_dir() and (folder / "qualification").is_dir():
            return folder
    return start


def _shipped(name: str, marker: str) -> Path | None:
    """A folder mcuqual ships beside its code: in a checkout (or an editable install) the
    repository's own, in an installed wheel the copy under <prefix>/share/mcuqual."""
    here = Path(__file__).resolve()
    for folder in here.parents:
        if (folder / name / marker).exists():
            return folder / name
    installed = Path(sysconfig.get_path("data")) / "share" / "mcuqual" / name
    return installed if (installed / marker).exists() else None


def firmware_dir() -> Path:
    """The firmware sources (kernels, runtime, app, cores, built-in boards)."""
    found = _shipped("firmware", "kernels")
    if found is None:
        raise McuqualError("mcuqual's firmware sources are missing: neither a checkout's "
                           "firmware/ nor <prefix>/share/mcuqual/firmware; reinstall mcuqual.")
    return found


def suite_dir() -> Path:
    """The qualification suite a project starts from (tests, conftest, requirements.toml)."""
    found = _shipped("qualification", "test_requirements.py")
    if found is None:
        raise McuqualError("mcuqual's qualification suite files are missing; reinstall mcuqual.")
    return found
