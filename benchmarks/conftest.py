"""Kernel benchmark session: options, shared fixtures, and the table of cycles against the
stored ones (kernel_cycles.json) at the end of the run.

Run explicitly (pyproject's testpaths is tests/): `.venv/bin/pytest benchmarks`.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import kernel_cycles

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MCUQUAL_PROGRESS", "off")

REPO = Path(__file__).resolve().parent.parent
FIGURES_KEY = pytest.StashKey[list]()
UPDATED_KEY = pytest.StashKey[str]()
BEFORE_KEY = pytest.StashKey[dict]()         # stored cycles as the run found them


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kernel benchmark")
    group.addoption("--kernel-board", default="stm32l4r9", metavar="NAME",
                    help="board whose virtual twin runs the kernel benchmark (default stm32l4r9)")
    group.addoption("--kernel-cycles-update", action="store_true", default=False,
                    help="rewrite benchmarks/kernel_cycles.json with this run's cycles "
                         "(bit-exact cases only; cases not run keep their figures)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kernel_ci: the kernel benchmark's cheap subset that CI runs")
    config.stash[FIGURES_KEY] = []


@pytest.fixture(scope="session")
def cifar():
    """The real CIFAR-10 (calibration draws from train, inputs from test)."""
    from mcuqual.data.cifar10 import load_cifar10, resolve_directory

    directory, looked = resolve_directory(None, REPO)
    if directory is None:
        pytest.fail("the kernel benchmark reads the real CIFAR-10: set MCUQUAL_DATASET_DIR; "
                    "looked in " + ", ".join(map(str, looked)), pytrace=False)
    return load_cifar10(directory)


@pytest.fixture(scope="session")
def board(pytestconfig):
    from mcuqual.boards.profile import select_boards

    return select_boards(None, [pytestconfig.getoption("kernel_board")])[0]


@pytest.fixture(scope="session")
def firmware_cache(tmp_path_factory):
    from mcuqual.common.cache import Cache

    return Cache(tmp_path_factory.mktemp("kernel-firmware"))


@pytest.fixture
def record_figures(pytestconfig):
    """Call with a case's KernelFigures: they join the end-of-run table (and the stored
    file with --kernel-cycles-update)."""
    return pytestconfig.stash[FIGURES_KEY].append


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Remember the stored cycles as the run found them (an update rewrites the file)."""
    board = session.config.getoption("kernel_board")
    session.config.stash[BEFORE_KEY] = kernel_cycles.stored_cycles(kernel_cycles.load(), board)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    figures = config.stash.get(FIGURES_KEY, [])
    if (config.getoption("kernel_cycles_update") and figures
            and exitstatus != pytest.ExitCode.INTERRUPTED):
        document = kernel_cycles.merge(kernel_cycles.load(), figures,
                                       kernel_cycles.recording_commit(REPO))
        kernel_cycles.save(document)
        config.stash[UPDATED_KEY] = str(kernel_cycles.STORED_PATH.relative_to(REPO))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    figures = config.stash.get(FIGURES_KEY, [])
    if not figures:
        return
    board = figures[0].board
    stored = config.stash.get(BEFORE_KEY, {})       # before this run's update, if any
    terminalreporter.write_sep("=", f"kernel benchmark: emulated cycles on the virtual {board}")
    for line in kernel_cycles.format_table(kernel_cycles.compare(figures, stored)):
        terminalreporter.write_line(line)
    updated = config.stash.get(UPDATED_KEY, None)
    terminalreporter.write_line(f"stored cycles updated: {updated}" if updated else
                                "stored: benchmarks/kernel_cycles.json (--kernel-cycles-update "
                                "rewrites it); changes are reported, not asserted")

