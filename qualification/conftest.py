"""Defaults for runs of the qualification suite."""
from pathlib import Path

import pytest

REPORTS = Path(__file__).resolve().parent.parent / "reports"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # The Allure results are the deployment report: write them unless told elsewhere.
    if hasattr(config.option, "allure_report_dir") and not config.option.allure_report_dir:
        config.option.allure_report_dir = str(REPORTS / "allure-results")
        # one run, one report (trends live in history): the mcuqual plugin empties the folder
        # when tests start running, so --help, --fixtures or a usage error never wipe it
        config.option.mcuqual_fresh_alluredir = True
