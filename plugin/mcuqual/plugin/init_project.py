"""`mcuqual-init`: make the current folder a qualification project.

Copies the suite (`qualification/`: the requirement and regression tests, their conftest
and the study's requirements.toml) from the installed package and creates `models/`,
where each model is a folder with its INT8 .tflite and a card (README "Qualify your own
model"). Files that exist are left alone.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from mcuqual.common.paths import suite_dir

SUITE_FILES = ("conftest.py", "test_requirements.py", "test_regressions.py", "requirements.toml")


def init_project(folder: Path) -> list[Path]:
    """Create qualification/ and models/ in `folder`; the files it wrote."""
    source, written = suite_dir(), []
    (folder / "models").mkdir(parents=True, exist_ok=True)
    target = folder / "qualification"
    target.mkdir(parents=True, exist_ok=True)
    for name in SUITE_FILES:
        if not (target / name).exists():
            shutil.copyfile(source / name, target / name)
            written.append(target / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcuqual-init", description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    for path in init_project(args.folder.resolve()):
        print(f"mcuqual-init: wrote {path}")
    print("mcuqual-init: put each model in models/<name>/ (its .tflite and a card.toml), then "
          "run: pytest qualification --board=stm32l4r9")
    return 0


if __name__ == "__main__":
    sys.exit(main())
