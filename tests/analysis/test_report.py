"""The pipeline review page: self-contained, and rendered by a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from winmodel.analysis.report import deal_records, render_report, summary_table

QUIET = Console(stderr=True, quiet=True)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Offline, sandbox-free, nothing phoned home (known to work on Debian's package in a container).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=10000",
)


def _scored() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "opportunity_id": ["A1", "B2"],
            "owner_id": ["REP-1", "REP-2"],
            "amount": [120_000.0, 30_000.0],
            "close_date": ["2026-11-20", "2026-12-05"],
            "win_probability": [0.62, 0.08],
            "band": ["A", "D"],
            "recommendation": ["pursue", "decline"],
            "decision_rule": ["pursue.expected_margin", "decline.negative_value"],
            "recommendation_reason": ["Pursue (expected margin above the pursue line): ...", "x"],
            "expected_margin": [52_080.0, 1_680.0],
            "reasons_for": [
                "Budget and timeline confirmed (+8.1 pts); </script><b>x</b> (+1.0 pts)",
                "",
            ],
            "reasons_against": [
                "Weak position against the competition (\u22123.2 pts); Executive sponsor with "
                "budget authority confirmed (\u22122.5 pts, against the usual rule: in your "
                "closed deals an executive sponsor went with losing)",
                "",
            ],
            "points_balance": [
                "Baseline 30.0 pts; other factors +26.1 pts; calibration +0.0 pts; = 62.0%",
                # As scored since 0.2.0: the reasons' sums in the line (the first row: before).
                "Baseline 30.0 pts; reasons for +0.0 pts; reasons against +0.0 pts; "
                "other factors \u221220.0 pts; calibration \u22122.0 pts; = 8.0%",
            ],
        }
    )


def test_the_page_is_self_contained_and_its_data_cannot_break_out():
    page = render_report(_scored(), pd.DataFrame(columns=["period"]))
    assert "<link" not in page and not re.search(r"\bsrc=", page)
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page
    assert page.count("</script>") == 2  # the data's "</script>" is escaped
    assert 'data-deals="2"' in page
    record = deal_records(_scored())[0]
    assert record["for"][0] == ["Budget and timeline confirmed", 8.1]
    assert record["against"][0][1] == pytest.approx(-3.2)
    assert record["against"][1] == [  # a reason's note stays with its sentence
        "Executive sponsor with budget authority confirmed (against the usual rule: in your "
        "closed deals an executive sponsor went with losing)",
        -2.5,
    ]
    assert record["balance"] == {"baseline": 30.0, "other": 26.1, "calibration": 0.0}
    assert deal_records(_scored())[1]["balance"] == {
        "baseline": 30.0,
        "other": -20.0,
        "calibration": -2.0,
    }
    table = summary_table(_scored()).set_index("band")
    assert table.loc["A", "pursue_deals"] == 1 and table.loc["all", "all_amount"] == 150_000


def render_in_chromium(page: Path, screenshot: Path, profile: Path) -> tuple[str, list[str]]:
    """Give the page's DOM after its scripts ran and every console message, and save a screenshot."""
    assert CHROMIUM is not None
    common = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run(
        [*common, "--dump-dom", page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    subprocess.run(
        [*common, "--window-size=1400,1600", f"--screenshot={screenshot}", page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    return dom.stdout, console


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")
def test_the_report_renders_every_deal_in_a_real_browser(trained_project, tmp_path):
    from winmodel.jobs.report import run_report
    from winmodel.jobs.score import run_score

    scored = tmp_path / "scored.csv"
    outcome = run_score(
        config_path=None,
        input_path=trained_project.data,
        output=scored,
        model_uri=str(trained_project.export_dir),
        console=QUIET,
        log_to_mlflow=False,
    )
    page = tmp_path / "pipeline.html"
    report = run_report(scored, page, model_dir=trained_project.export_dir, console=QUIET)
    assert report.deals == len(outcome.scored)
    screenshot = tmp_path / "pipeline.png"
    dom, console = render_in_chromium(page, screenshot, tmp_path / "profile")
    assert console == [], console  # no error, no message at all
    assert f'data-rendered="{len(outcome.scored)}"' in dom
    assert len(re.findall(r'<tr class="deal[ "]', dom)) == len(outcome.scored)
    assert 'id="reason-chart"' in dom and 'id="forecast-chart"' in dom
    assert screenshot.stat().st_size > 10_000
