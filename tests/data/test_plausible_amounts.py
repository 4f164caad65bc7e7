"""Implausible amounts (a typing or unit slip) are warned by validation, never silently accepted."""

from __future__ import annotations

import numpy as np
import pandas as pd

from winmodel.data.validate import implausible_amounts, validate_tables


def _opportunities(amounts: list[float]) -> pd.DataFrame:
    n = len(amounts)
    return pd.DataFrame(
        {
            "opportunity_id": [f"D{i}" for i in range(n)],
            "created_date": ["2026-01-05"] * n,
            "close_date": ["2026-06-30"] * n,
            "status": ["open"] * n,
            "amount": [str(a) for a in amounts],
        }
    )


def test_ten_times_the_99_9th_percentile_is_implausible():
    amounts = pd.Series([10_000.0 * (1 + i % 50) for i in range(2_000)] + [2_000_000_000.0])
    flagged, limit = implausible_amounts(amounts)
    assert limit == 10 * np.quantile(amounts, 0.999, method="lower")
    assert flagged.tolist() == [False] * 2_000 + [True]
    # In a small export the largest amount never sets its own limit.
    small, small_limit = implausible_amounts(pd.Series([50_000.0] * 99 + [2_000_000_000.0]))
    assert small[-1] and small_limit == 500_000
    none, no_limit = implausible_amounts(pd.Series([np.nan, 5.0]))
    assert not none.any() and no_limit is None


def test_validation_warns_and_names_the_deal():
    opportunities = _opportunities([40_000.0] * 300 + [2_000_000_000.0])
    _, _, report = validate_tables(opportunities, None, files={"opportunities": "deals.csv"})
    assert report.ok  # a warning, not an error
    (warning,) = [p for p in report.warnings if p.column == "amount"]
    assert "above 400,000" in warning.problem and "2,000,000,000" in warning.problem
    assert warning.rows == 1 and "D300" in " ".join(warning.examples)
    _, _, clean = validate_tables(
        _opportunities([40_000.0] * 301), None, files={"opportunities": "deals.csv"}
    )
    assert not [p for p in clean.warnings if p.column == "amount"]
