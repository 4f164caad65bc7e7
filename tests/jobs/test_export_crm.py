"""`winmodel export-crm` through the command line: an upsert file, or a clear refusal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).parents[2]


def _winmodel(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "winmodel", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )


def test_export_crm_writes_the_salesforce_upsert_file(tmp_path):
    scored = pd.DataFrame(
        {
            "opportunity_id": ["0065g00000AbCdEAAV", "0065g00000AbCdF"],
            "win_probability": [0.81234, 0.05],
            "band": ["A", "D"],
            "reasons_for": ['=HYPERLINK("x") sponsor (+11 pts)', ""],
            "reasons_against": ["", "No champion (-9 pts)"],
            "next_best_milestone": ["Business case built", ""],
            "recommendation": ["pursue", "decline"],
            "model_version": ["3", "3"],
        }
    )
    scored.to_csv(tmp_path / "scored.csv", index=False)
    done = _winmodel(
        [
            "export-crm",
            "--input",
            "scored.csv",
            "--mapping",
            str(ROOT / "pipelines" / "mappings" / "salesforce.yaml"),
            "--out",
            "upsert.csv",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    upsert = pd.read_csv(tmp_path / "upsert.csv", dtype=str, keep_default_na=False)
    assert list(upsert.columns[:3]) == ["Id", "Win_Probability__c", "Win_Band__c"]
    assert upsert["Win_Probability__c"].tolist() == ["81.2", "5.0"]
    assert upsert["Recommendation__c"].tolist() == ["Pursue", "Decline"]
    assert upsert["Win_Reasons__c"].iloc[0].startswith("'=")  # no formula runs if opened in Excel
    assert "wrote upsert.csv: 2 salesforce records" in done.stderr


def test_export_crm_without_a_write_back_section_says_how_to_add_one(tmp_path):
    pd.DataFrame({"opportunity_id": ["1"], "win_probability": [0.5]}).to_csv(
        tmp_path / "scored.csv", index=False
    )
    done = _winmodel(
        [
            "export-crm",
            "--input",
            "scored.csv",
            "--mapping",
            str(ROOT / "pipelines" / "mappings" / "maven_crm.yaml"),
            "--out",
            "upsert.csv",
        ],
        tmp_path,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "maven_crm.yaml" in done.stderr and "no `write_back:` section" in done.stderr
    assert not (tmp_path / "upsert.csv").exists()
