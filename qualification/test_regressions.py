"""The regression gate: each model's cycles and top-1 against the stored baseline.

Parametrized by the mcuqual plugin over the models the baseline file
(qualification/baseline.json, written by --update-baseline) has figures for on
this kind of probe. A model slower or less accurate than its baseline beyond
the tolerance fails, even when its absolute requirement already fails.
"""
import pytest


def test_no_regression(regression_case):
    worse = regression_case.check()
    if worse:
        pytest.fail(f"REGRESSION: {regression_case.model_name} on {regression_case.board_name}: "
                    + "; ".join(worse), pytrace=False)
