"""`make bench-quality --quick` end to end on tiny worlds: the report has every method and half."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _quality_module():
    spec = importlib.util.spec_from_file_location(
        "bench_quality", ROOT / "benchmarks" / "quality.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_benchmark_writes_the_report(tmp_path: Path) -> None:
    quality = _quality_module()
    out = tmp_path / "quality.md"
    # One shape: the report is under test here, not the search (its six shapes triple the time).
    one_shape = "model.candidates=[{num_leaves: 7, max_depth: 3}]"
    # Two of the three quick worlds: one per half, the first with drift (the report's sections).
    arguments = ["--quick", "--worlds", "101", "102", "--max-deals", "300", "--set", one_shape]
    arguments += ["--out", str(out)]
    assert quality.main(arguments) == 0
    report = out.read_text()
    for heading in ("total wall time", "Tuning half", "Confirm half", "Drift worlds"):
        assert heading in report
    results = pd.read_csv(out.with_suffix(".csv"))
    assert set(results["method"]) == set(quality.METHODS)
    assert results["world"].nunique() == 2
    assert set(results["half"]) == {"tuning", "confirm"}
    # Every method is measured against the truth on every world (oracle share is a number).
    assert results["oracle_share"].notna().all()
    assert results["log_loss"].between(0.05, 5).all()
