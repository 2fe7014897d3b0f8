"""The qualification suite: one test per requirement x model x board.

Parametrized by the mcuqual plugin from qualification/requirements.toml, the
model zoo and --board. A requirement that is not met, or whose figure the chosen
probe cannot produce, fails: this suite reports the truth, not a green bar.
"""
import pytest


def test_requirement(qualification_case):
    verdict = qualification_case.judge()
    if not verdict.passed:
        pytest.fail(verdict.message, pytrace=False)
