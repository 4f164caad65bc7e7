"""Tests of the profile: win rates with intervals, scenarios stronger than their parts, the report and the command."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from winmodel import cli
from winmodel.analysis.profile import (
    banded,
    condition_text,
    find_scenarios,
    format_conditions,
    parse_conditions,
    render_profile_report,
    scenarios_matching,
    wilson_interval,
    win_rates_by_dimension,
)
from winmodel.errors import InputError
from winmodel.jobs.profile import run_profile


def _deals(**columns) -> pd.DataFrame:
    size = len(next(iter(columns.values())))
    return pd.DataFrame(
        {
            "opportunity_id": [f"O{i}" for i in range(size)],
            "close_date": pd.Timestamp("2026-01-01"),
            **columns,
        }
    )


def test_wilson_interval_matches_known_values_and_stays_in_0_1():
    low, high = wilson_interval(np.array([0, 5, 10]), np.array([10, 10, 10]))
    assert low[0] == 0 and high[2] == pytest.approx(1)
    assert low[1] == pytest.approx(0.2366, abs=1e-3) and high[1] == pytest.approx(0.7634, abs=1e-3)
    assert np.all(low <= high)


def test_banded_gives_readable_bands_and_blanks():
    values = pd.Series([1_000.0, 2_000, 3_000, 4_000, 50_000, 60_000, 70_000, 80_000, np.nan])
    bands = banded(values, "amount")
    assert bands.iloc[-1] == "(blank)"
    assert bands.nunique() == 5  # four quartile bands and the blank
    assert bands.iloc[-2].endswith("to 80,000")
    assert banded(pd.Series([0.0, 1, 2, 1]), "competitor_count").tolist() == ["0", "1", "2", "1"]
    assert banded(pd.Series([True, False, None], dtype="boolean"), "pe_backed").tolist() == [
        "True",
        "False",
        "(blank)",
    ]


def test_win_rates_by_dimension_counts_closed_deals_only():
    deals = _deals(
        status=["won", "lost", "won", "open", "lost"],
        deal_type=["greenfield", "greenfield", "renewal", "renewal", "renewal"],
    )
    table = win_rates_by_dimension(deals, ["deal_type"]).set_index("value")
    assert table.loc["greenfield", "deals"] == 2 and table.loc["renewal", "deals"] == 2
    assert table.loc["renewal", "win_rate"] == 0.5
    assert table.loc["greenfield", "lift"] == pytest.approx(0.5 / 0.5)
    assert (table["ci_low"] <= table["win_rate"]).all() and (
        table["win_rate"] <= table["ci_high"]
    ).all()


def test_condition_text_reads_like_a_seller():
    assert condition_text("deal_type", "legacy_replacement") == "deal type legacy replacement"
    assert condition_text("pe_backed", "True") == "private-equity backed"
    assert condition_text("custom_dev_required", "False") == "not custom development required"
    assert condition_text("champion_role", "c_level") == "champion's level C-level"
    pairs = (("deal_type", "legacy_replacement"), ("amount", "31,400 to 69,300"))
    assert parse_conditions(format_conditions(pairs)) == pairs


@pytest.fixture(scope="module")
def planted_frame() -> pd.DataFrame:
    """Give 6,000 closed deals: one strong single value, one pure interaction, one irrelevant column."""
    rng = np.random.default_rng(5)
    n = 6000
    frame = _deals(
        strong=rng.choice(["yes", "no"], n),  # wins on its own
        trigger=rng.choice(["a", "b"], n),  # only matters together with pain
        pain=rng.choice(["x", "y"], n),
        noise=rng.choice(["p", "q", "r"], n),  # matters not at all
        status="lost",
    )
    logit = (
        -1.0
        + 1.2 * (frame["strong"] == "yes")
        + 1.6 * ((frame["trigger"] == "a") & (frame["pain"] == "x"))
    )
    won = rng.random(n) < 1 / (1 + np.exp(-logit))
    return frame.assign(status=np.where(won, "won", "lost"))


def test_scenarios_find_the_interaction_not_supersets_of_a_strong_value(planted_frame):
    scenarios = find_scenarios(
        planted_frame, ["strong", "trigger", "pain", "noise"], min_deals=100, top=None
    )
    wins = scenarios[scenarios["direction"] == "win"]
    assert not scenarios_matching(wins, [("trigger", "a"), ("pain", "x")]).empty
    # "strong = yes" plus an irrelevant value is no stronger than "strong = yes" alone: never listed.
    for noise in ("p", "q", "r"):
        assert (
            scenarios_matching(scenarios, [("strong", "yes"), ("noise", noise)])
            .query("size == 2")
            .empty
        )
    # Every listed scenario beats each of its parts by the minimum gain, in its direction.
    signed = np.where(scenarios["direction"] == "win", 1, -1) * scenarios["gain_over_best_part"]
    assert (signed >= 0.05 - 1e-12).all()
    assert (scenarios["z_over_parts"] >= 3).all()
    assert scenarios.groupby("direction")["rank"].apply(lambda r: r.is_monotonic_increasing).all()
    assert wins.iloc[0]["sentence"].endswith(f"vs {wins.iloc[0]['overall_rate']:.0%} overall")


def test_scenarios_respect_the_support_and_since(planted_frame):
    assert find_scenarios(planted_frame, ["strong", "trigger", "pain"], min_deals=10_000).empty
    assert find_scenarios(planted_frame, ["strong", "trigger"], since="2027-01-01").empty
    scenarios = find_scenarios(
        planted_frame, ["strong", "trigger", "pain"], min_deals=1000, top=None
    )
    assert (scenarios["deals"] >= 1000).all()


@pytest.fixture(scope="module")
def demo_scenarios() -> pd.DataFrame:
    """Give the scenarios of the demo history (20,000 deals, seed 7: what `winmodel generate` writes)."""
    from winmodel.synth.generator import generate_history

    history = generate_history(20_000, seed=7)
    return find_scenarios(history.opportunities, top=10)


def test_profile_finds_the_generators_planted_patterns_in_its_top_ten(demo_scenarios):
    from winmodel.synth.generator import PLANTED_PATTERNS

    found = []
    for pattern in PLANTED_PATTERNS:
        same_direction = demo_scenarios[demo_scenarios["direction"] == pattern.direction]
        wanted = {(column, str(value)) for column, value in pattern.conditions}
        if any(set(parse_conditions(text)) == wanted for text in same_direction["conditions"]):
            found.append(pattern.description)
    assert len(found) >= 3, f"planted patterns found in the top ten: {found}"


def test_report_lists_scenarios_and_every_dimension(demo_scenarios):
    dimensions = pd.DataFrame(
        {
            "dimension": ["urgency", "urgency"],
            "group": ["problem", "problem"],
            "value": ["high", "none"],
            "deals": [60, 40],
            "wins": [40, 10],
            "win_rate": [40 / 60, 0.25],
            "ci_low": [0.5, 0.1],
            "ci_high": [0.8, 0.4],
            "lift": [1.33, 0.5],
        }
    )
    report = render_profile_report(
        dimensions,
        demo_scenarios,
        closed=100,
        won=50,
        figures={"scenarios_win": "figures/scenarios_win.png"},
    )
    assert report.startswith("# Where we win")
    assert "![Win scenarios: where we win](figures/scenarios_win.png)" in report
    assert demo_scenarios.iloc[0]["sentence"] in report
    assert "| high | 60 | 67% | 50%–80% | 1.33 |" in report


def test_profile_command_writes_report_tables_and_charts(
    small_data_dir, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "profile"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "winmodel",
            "profile",
            "--data",
            str(small_data_dir),
            "--out",
            str(out),
            "--since",
            "2024-06-01",
            "--top",
            "5",
        ],
    )
    with pytest.raises(SystemExit) as done:
        cli.main()
    printed = capsys.readouterr().out
    assert done.value.code == 0
    assert "Win scenarios" in printed and "Loss scenarios" in printed
    report = (out / "report.md").read_text(encoding="utf-8")
    images = [
        line[line.index("(") + 1 : -1] for line in report.splitlines() if line.startswith("![")
    ]
    assert "figures/scenarios_win.png" in images and len(images) > 10
    assert all((out / image).is_file() for image in images)
    written = pd.read_csv(out / "scenarios.csv")
    assert set(written["direction"]) == {"win", "loss"}
    assert (
        written.groupby("direction")
        .head(5)["sentence"]
        .isin([line.split("**")[1] for line in report.splitlines() if line[:1].isdigit()])
        .all()
    )
    assert (out / "win_rates_by_dimension.csv").is_file()


def test_profile_refuses_a_date_it_cannot_read(small_data_dir, tmp_path):
    with pytest.raises(InputError, match="not a date"):
        run_profile(small_data_dir, since="last spring", out=tmp_path / "bad")


def test_training_records_the_scenarios_and_the_report(trained_project):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=trained_project.tracking_uri)
    run_id = trained_project.outcome.run_id
    tables = {item.path for item in client.list_artifacts(run_id, "tables")}
    assert {"tables/scenarios.csv", "tables/win_rate_by_dimension.csv"} <= tables
    assert "profile.md" in {item.path for item in client.list_artifacts(run_id)}


def test_profile_refuses_an_out_that_is_a_file(small_data_dir, tmp_path):
    from winmodel.jobs.profile import run_profile

    taken = tmp_path / "report"
    taken.write_text("not a folder")
    with pytest.raises(InputError, match="names a file"):
        run_profile(small_data_dir, out=taken, charts=False)
    assert taken.read_text() == "not a folder"
