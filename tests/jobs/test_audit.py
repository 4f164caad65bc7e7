"""Tests of ``winmodel audit``: the leakage guard over every column and the data-sufficiency check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from winmodel.jobs.audit import run_audit

ROOT = Path(__file__).parents[2]
MAVEN = ROOT.parent / "shared" / "datasets" / "maven_crm"


def _winmodel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the command line in a fresh interpreter, with MLflow pointed into ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "winmodel", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}",
        },
    )


def _flat_export(won: int, lost: int, open_deals: int = 20, *, seed: int = 4) -> pd.DataFrame:
    """Give a flat export (one row a deal) over 18 months with honest columns and five planted leaks."""
    rng = np.random.default_rng(seed)
    status = np.array(["won"] * won + ["lost"] * lost + ["open"] * open_deals)
    rng.shuffle(status)
    n = len(status)
    is_won, closed = status == "won", status != "open"
    created = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 480, n), unit="D")
    cycle = rng.integers(20, 120, n)
    close = created + pd.to_timedelta(cycle, unit="D")
    words = np.array(
        ["budget", "demo", "pricing", "security", "legal", "timeline", "renewal", "pilot"]
    )
    notes = [
        f"call {i}: {' '.join(rng.choice(words, 3))}"
        + (" - won" if w and rng.random() < 0.7 else "")
        for i, w in enumerate(is_won)
    ]
    return pd.DataFrame(
        {
            "opportunity_id": [f"D-{i:05d}" for i in range(n)],
            "created_date": created,
            "close_date": close,
            "status": status,
            "amount": rng.integers(5, 200, n) * 1000.0,
            "industry": rng.choice(["retail", "finance", "software"], n),
            "honest_score": rng.normal(size=n) + 0.4 * is_won,
            # The CRM sets its probability to 100 on won and 0 on lost deals at close.
            "crm_probability": np.where(
                closed, np.where(is_won, 100.0, 0.0), rng.choice([10.0, 30.0, 60.0], n)
            ),
            # The booked value: 0 on every lost deal (a neutral name, so the data must give it away).
            "value_usd": np.where(is_won, rng.integers(5, 200, n) * 1000.0, 0.0),
            # Durations and counts measured through close.
            "days_identification_to_close": cycle - rng.integers(0, 10, n),
            "stage_change_count": rng.integers(2, 7, n),
            # A milestone checkbox that the CRM fills only when a deal is won.
            "contract_signed": np.where(is_won & (rng.random(n) < 0.6), "yes", ""),
            # Free text that states the outcome.
            "notes": notes,
        }
    )


@pytest.fixture(scope="module")
def leaky_export(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("leaky")
    path = folder / "deals.csv"
    _flat_export(won=400, lost=500).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def leaky_report(leaky_export):
    return run_audit(data=leaky_export)


@pytest.mark.skipif(
    not (MAVEN / "sales_pipeline.csv").exists(), reason="shared/datasets/maven_crm is absent"
)
def test_maven_close_value_is_named_as_a_leak(tmp_path):
    done = _winmodel(
        "audit",
        "--data",
        str(MAVEN / "sales_pipeline.csv"),
        "--mapping",
        str(ROOT / "pipelines" / "mappings" / "maven_crm.yaml"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    leak_lines = [line for line in done.stdout.splitlines() if "LEAK" in line]
    assert [line.split()[0] for line in leak_lines] == ["close_value"]
    assert "a value known only at close" in done.stdout
    assert "4,238 won, 2,473 lost" in done.stdout and "ENOUGH" in done.stdout
    assert list(tmp_path.iterdir()) == []  # the audit writes nothing, not even an MLflow store


@pytest.mark.parametrize(
    ("column", "checks", "words"),
    [
        # A flat export's CRM probability changes during a deal and is known only at close.
        ("crm_probability", {"final_state"}, "the final state"),
        ("amount", {"final_state"}, "the final state"),
        ("value_usd", {"univariate_auc", "one_class_value"}, "won from lost"),
        ("days_identification_to_close", {"name"}, "a duration, count or ratio through close"),
        ("stage_change_count", {"name"}, "a duration, count or ratio through close"),
        ("contract_signed", {"univariate_auc", "one_class_value"}, "yes"),
        ("notes", {"outcome_text"}, "'won'"),
    ],
)
def test_the_guard_catches_and_names_each_planted_leak(leaky_report, column, checks, words):
    report = leaky_report
    finding = next(finding for finding in report.leakage.findings if finding.feature == column)
    assert finding.action == "excluded" and finding.check in checks, finding
    assert words in finding.detail
    line = next(line for line in report.render().splitlines() if line.strip().startswith(column))
    assert "LEAK" in line


def test_honest_columns_pass_and_keys_and_dates_are_not_judged(leaky_report):
    report = leaky_report
    assert set(report.leaks) == {
        "crm_probability",
        "amount",
        "value_usd",
        "days_identification_to_close",
        "stage_change_count",
        "contract_signed",
        "notes",
    }
    checked = set(report.leakage.checked)
    assert {"honest_score", "industry"} <= checked
    assert not checked & {"opportunity_id", "status", "created_date", "close_date"}
    assert report.ok and report.sufficiency.verdict == "enough"
    # Name-refused columns also show how much the data gives away.
    probability = next(f for f in report.leakage.findings if f.feature == "crm_probability")
    assert "AUC 1.000" in probability.detail


def test_the_config_sets_thresholds_and_allowed_columns(tmp_path, leaky_export):
    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": {"path": str(leaky_export), "generate_demo_if_missing": False},
                "training": {"min_deals_per_class": 450, "warn_deals_per_class": 1000},
                "leakage": {"allow": ["notes"]},
            }
        ),
        encoding="utf-8",
    )
    report = run_audit(config=config)
    notes = next(f for f in report.leakage.findings if f.feature == "notes")
    assert notes.action == "allowed" and "notes" in report.leaks
    assert "kept (leakage.allow)" in report.render()
    assert not report.ok and report.sufficiency.verdict == "insufficient"  # 400 won < 450
    assert "too few won (400)" in report.render()


def test_too_few_deals_exit_1_with_the_counts_and_nothing_written(tmp_path):
    data = tmp_path / "thin.csv"
    _flat_export(won=300, lost=30).to_csv(data, index=False)
    before = sorted(tmp_path.iterdir())
    done = _winmodel("audit", "--data", str(data), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "300 won, 30 lost (minimum 40 of each" in done.stdout
    assert "INSUFFICIENT: too few lost (30) deals" in done.stdout
    assert "months of closes" in done.stdout or "month(s) of closes" in done.stdout
    assert "maturity cut-off" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert sorted(tmp_path.iterdir()) == before


def test_one_class_only_is_insufficient_and_does_not_crash_the_guard(tmp_path):
    data = tmp_path / "won_only.csv"
    _flat_export(won=300, lost=0).to_csv(data, index=False)
    report = run_audit(data=data)
    assert not report.ok and report.sufficiency.lost == 0
    assert "too few lost (0)" in report.render()
    assert "crm_probability" in report.leaks  # the name check needs no second class


def test_no_closed_deal_at_all(tmp_path):
    data = tmp_path / "open_only.csv"
    _flat_export(won=0, lost=0, open_deals=30).to_csv(data, index=False)
    report = run_audit(data=data)
    assert not report.ok and "0 won, 0 lost" in report.render()


def test_bad_input_and_usage_exit_codes(monkeypatch, capsys, tmp_path):
    from winmodel import cli

    def main(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["winmodel", *args])
        with pytest.raises(SystemExit) as done:
            cli.main()
        printed = capsys.readouterr()
        return done.value.code, printed.out + printed.err

    code, printed = main("audit")
    assert code == 2 and "--data" in printed
    code, printed = main("audit", "--data", str(tmp_path / "missing.csv"))
    assert code == 1 and "missing.csv" in printed and "Traceback" not in printed
    config = tmp_path / "train.yaml"
    config.write_text("training:\n  min_deals_per_clas: 10\n", encoding="utf-8")
    code, printed = main("audit", "--config", str(config))
    assert code == 1 and "min_deals_per_clas" in printed


def test_the_audit_agrees_with_training_on_every_feature_training_judged(trained_project):
    """Same rows, same guard: each feature training checked gets the same verdict from the audit."""
    report = run_audit(config=trained_project.config)
    training = trained_project.outcome.result.leakage
    audited = {finding.feature: finding for finding in report.leakage.findings}
    for finding in training.findings:
        assert audited[finding.feature].action == finding.action, finding.feature
        assert audited[finding.feature].check == finding.check, finding.feature
        assert audited[finding.feature].figure == pytest.approx(finding.figure), finding.feature
    assert set(training.checked) <= set(report.leakage.checked)
