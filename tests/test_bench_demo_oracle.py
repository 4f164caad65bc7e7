"""`make bench-demo-oracle` end to end on a small demo: every method is measured against the truth."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _demo_oracle_module():
    spec = importlib.util.spec_from_file_location(
        "bench_demo_oracle", ROOT / "benchmarks" / "demo_oracle.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first, as an import would: its dataclass looks its module up while being built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_small_demo_writes_the_report(tmp_path: Path) -> None:
    demo_oracle = _demo_oracle_module()
    out = tmp_path / "demo_oracle.md"
    arguments = ["--deals", "1200", "--months", "18", "--replicates", "100", "--out", str(out)]
    setting = "segment_shift.enabled=false"
    # One shape: the report is under test here, not the search (its shapes multiply the time).
    one_shape = "model.candidates=[{num_leaves: 7, max_depth: 3}]"
    assert demo_oracle.main([*arguments, "--set", setting, "--set", one_shape]) == 0
    report = out.read_text()
    assert f"`TrainConfig` with {setting}" in report  # a training setting is overridden, and said
    for heading in ("wall time", "P(won eventually), by deal age", "P(won by the end of month 5)"):
        assert heading in report
    results = pd.read_csv(out.with_suffix(".csv"))
    overall = results[results["deals"].eq("all open deals") | results["deals"].isna()]
    shares = overall.groupby(["target", "method"])["oracle share"].first()
    eventual = shares["won eventually"]
    assert {"winmodel", "hist_gradient_boosting (defaults)", "CRM stage probability"} <= set(
        eventual.index
    )
    assert eventual["oracle (q)"] == 1.0 and eventual["base rate (training)"] == 0.0
    # A trained model is far nearer the truth than the base rate, and not better than the truth.
    assert 0.3 < eventual["winmodel"] < 1.0
    assert 0.0 < shares["won by the end of month 5"]["winmodel (horizon model)"] < 1.0
    # Every open deal falls in one age band.
    bands = results[results["target"].eq("won eventually") & results["method"].eq("winmodel")]
    assert bands.loc[bands["deals"] != "all open deals", "n"].sum() == bands["n"].iloc[0]
