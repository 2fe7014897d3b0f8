"""The package's shape: layers that follow the data flow, and imports that work cold."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_hold():
    """pyproject.toml [tool.importlinter]: each stage imports only the stages below it."""
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


@pytest.mark.parametrize("module", ["mcuqual.target.pyocd.probe_plugin",
                                    "mcuqual.target.pyocd.entry", "mcuqual.target.connection",
                                    "mcuqual.plugin", "mcuqual.report.render"])
def test_modules_import_cold(module):
    """A fresh interpreter imports each entry point on its own (pyOCD loads our probe entry
    point while it imports itself: no half-imported module may be re-entered)."""
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_pytest_entry_point_loads_nothing_heavy():
    """Every pytest run in the environment loads the plugin: it must not pull in the engine."""
    code = ("import sys; import pytest; before = set(sys.modules); import mcuqual.plugin; "
            "print(' '.join(sorted(m for m in set(sys.modules) - before "
            "if m.split('.')[0] in ('numpy', 'unicorn', 'capstone', 'tensorflow', 'pyocd', "
            "'elftools', 'matplotlib') or m.startswith('mcuqual.qualify'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", f"the pytest11 entry point imported {done.stdout}"
