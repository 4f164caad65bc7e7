"""Batch scoring: the output a rep reads, written safely and reproducibly."""

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from winmodel.errors import InputError
from winmodel.features.drift import drift_report, population_stability
from winmodel.features.rows import open_deal_rows
from winmodel.jobs.score import run_score
from winmodel.scoring.reasons import item_polarity, load_catalogue, points_text, sentences

QUIET = Console(stderr=True, quiet=True)
MILESTONE_AND_QUALIFICATION = {
    "problem_confirmed",
    "evaluation_criteria",
    "stakeholders",
    "budget_timeline",
    "champion_engagement",
    "executive_awareness",
    "business_case",
    "momentum",
    "executive_sponsor",
    "buying_process",
    "qualification",
    "champion_role",
    "urgency",
    "deal_type",
    "competition",
    "customisation",
}


@pytest.fixture(scope="module")
def scored(trained_project, tmp_path_factory):
    output = tmp_path_factory.mktemp("scored") / "scored.csv"
    outcome = run_score(
        config_path=None,
        input_path=trained_project.data,
        output=output,
        model_uri=str(trained_project.export_dir),
        console=QUIET,
        log_to_mlflow=False,
    )
    return outcome, output, (trained_project.export_dir / "WINMODEL_VERSION").read_text()


def test_every_open_deal_is_scored_with_the_full_schema(scored, small_history):
    outcome, output, exported_version = scored
    frame = pd.read_csv(output)
    open_ids = set(small_history.opportunities.query("status == 'open'")["opportunity_id"])
    assert set(frame["opportunity_id"]) == open_ids
    assert outcome.skipped_closed == len(small_history.opportunities) - len(open_ids)
    for column in (
        "win_probability",
        "score",
        "band",
        "percentile",
        "reasons_for",
        "reasons_against",
        "next_best_milestone",
        "next_best_milestone_uplift",
        "expected_value",
        "recommendation",
        "recommendation_reason",
        "deal_desk_flags",
        "data_warnings",
        "model_version",
    ):
        assert column in frame
    assert frame["win_probability"].between(0, 1).all()
    assert frame["score"].between(1, 99).all()
    assert set(frame["band"]) <= set("ABCD")
    assert frame["percentile"].between(0, 100).all()
    assert set(frame["recommendation"]) <= {"pursue", "qualify", "decline"}
    assert (frame["model_version"].astype(str) == exported_version).all()  # later tests may retrain
    assert frame["reasons_for"].str.contains(r"\(\+\d", regex=True).mean() > 0.9


def test_reasons_are_sentences_not_column_names(scored, trained_model):
    frame = scored[0].scored
    text = " ".join(frame["reasons_for"].fillna("") + " " + frame["reasons_against"].fillna(""))
    for name in trained_model.feature_names:
        if "_" in name:
            assert name not in text, name


@pytest.fixture(scope="module")
def open_rows(trained_project):
    from winmodel.data.dataset import load_crm_data

    return open_deal_rows(load_crm_data(trained_project.data))[0]


def test_reasons_reflect_what_the_generator_rewards(trained_model, open_rows):
    from winmodel.scoring.explain import item_matrix, points_from_contributions, top_items

    assert len(open_rows) > 100
    model = trained_model
    grouping, items = item_matrix(model)
    points, _, _ = points_from_contributions(model.contributions(model.matrix(open_rows)), grouping)
    positive, _ = top_items(points, 3)
    chosen = pd.Series([items[i] for i in positive.ravel() if i >= 0])
    most_frequent = chosen.value_counts().head(5).index
    assert len(set(most_frequent) & MILESTONE_AND_QUALIFICATION) >= 3, list(most_frequent)
    activity_share = (
        (positive == items.index("activity")).any(axis=1).mean() if "activity" in items else 0.0
    )
    assert activity_share < 0.10


def test_scoring_twice_gives_byte_identical_output(scored, trained_project, tmp_path):
    again = tmp_path / "again.csv"
    run_score(
        config_path=None,
        input_path=trained_project.data,
        output=again,
        model_uri=str(trained_project.export_dir),
        console=QUIET,
        log_to_mlflow=False,
    )
    assert again.read_bytes() == scored[1].read_bytes()


def test_a_failed_scoring_leaves_the_existing_output_untouched(trained_project, tmp_path):
    output = tmp_path / "scored.csv"
    output.write_text("previous run\n", encoding="utf-8")
    broken = tmp_path / "broken.csv"
    broken.write_text("opportunity_id,status\nA,open\n", encoding="utf-8")
    with pytest.raises(InputError):
        run_score(
            config_path=None,
            input_path=broken,
            output=output,
            model_uri=str(trained_project.export_dir),
            console=QUIET,
            log_to_mlflow=False,
        )
    assert output.read_text(encoding="utf-8") == "previous run\n"
    assert {p.name for p in tmp_path.iterdir()} == {"scored.csv", "broken.csv"}  # no temp file left


def test_previous_scores_give_change_and_trend(scored, trained_project, tmp_path):
    previous = scored[0].scored[["opportunity_id", "score"]].copy()
    previous.loc[0, "score"] = previous.loc[0, "score"] - 20
    previous = previous.iloc[:-1]  # the last deal is new
    previous_file = tmp_path / "previous.csv"
    previous.to_csv(previous_file, index=False)
    outcome = run_score(
        config_path=None,
        input_path=trained_project.data,
        output=tmp_path / "now.parquet",
        model_uri=str(trained_project.export_dir),
        previous=previous_file,
        console=QUIET,
        log_to_mlflow=False,
    )
    frame = outcome.scored.set_index("opportunity_id")
    first = previous["opportunity_id"].iloc[0]
    assert frame.loc[first, "score_change"] == 20 and frame.loc[first, "trend"] == "up"
    assert frame["trend"].iloc[-1] == "new" or (frame["trend"] == "new").sum() == 1


def test_spreadsheet_formulas_are_neutralised_in_csv(trained_project, small_history, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    opportunities = small_history.opportunities.copy()
    first_open = opportunities.index[opportunities["status"] == "open"][0]
    opportunities.loc[first_open, "primary_competitor"] = '=HYPERLINK("http://x")'
    opportunities.loc[first_open, "owner_id"] = "@SUM(A1)"
    opportunities.to_parquet(data / "opportunities.parquet")
    small_history.snapshots.to_parquet(data / "snapshots.parquet")
    output = tmp_path / "scored.csv"
    run_score(
        config_path=None,
        input_path=data,
        output=output,
        model_uri=str(trained_project.export_dir),
        console=QUIET,
        log_to_mlflow=False,
    )
    text = output.read_text(encoding="utf-8")
    assert "'@SUM(A1)" in text
    assert ",@SUM" not in text and ",=HYPERLINK" not in text and '"=HYPERLINK' not in text


def test_drift_is_zero_on_training_like_data_and_large_on_shifted_data(trained_model):
    stored = trained_model.reference["features"]
    name = next(n for n in trained_model.feature_names if stored[n]["edges"])
    shares = np.asarray(stored[name]["shares"])
    assert population_stability(shares, shares) == pytest.approx(0.0, abs=1e-9)
    shifted = np.roll(shares, 3)
    assert population_stability(shares, shifted) > 0.25


def test_drift_report_on_open_deals(scored, trained_model, open_rows):
    rows = open_rows
    table, summary = drift_report(
        trained_model.reference,
        trained_model.feature_builder,
        trained_model.matrix(rows),
        rows,
        scored[0].scored["win_probability"].to_numpy(),
    )
    assert set(table.columns) == {"feature", "psi", "unseen_share"}
    assert len(table) == len(trained_model.feature_names)
    assert summary["unseen_category_share"] == 0.0
    assert 0 < summary["mean_predicted"] < 1


def test_sentences_come_from_the_catalogue():
    catalogue = load_catalogue("en")
    rows = pd.DataFrame(
        {
            "competitive_position": ["parity", "strength", None],
            "primary_competitor": ["Contoso", "Fabrikam", None],
            "competitor_count": [1, 2, None],
        }
    )
    assert sentences("competitive_position", rows, catalogue).tolist() == [
        "Feature parity with the competition",
        "Strong position against the competition",
        "Competitive position unknown",
    ]
    assert sentences("competition", rows, catalogue).tolist() == [
        "Competing against Contoso",
        "Competing against Fabrikam",
        "Competitors unknown",
    ]
    services = pd.DataFrame(
        {"services_share": [0.34, 0.2, None], "third_party_share": [0.1, None, 0.1]}
    )
    assert sentences("services", services, catalogue).tolist() == [
        "Services 34% and third-party 10% of the deal value",
        "Services 20% of the deal value",  # no third-party share: not "third-party unknown"
        "Services share unknown",
    ]
    assert sentences("services", services[["services_share"]], catalogue).tolist()[0] == (
        "Services 34% of the deal value"  # an export without the column
    )
    # No one and the whole group identified have a direction: read backwards, they are hidden.
    buying_group = pd.DataFrame({"stakeholders_identified": [0.0, 0.35, 1.0, None]})
    assert sentences("stakeholders", buying_group, catalogue).tolist() == [
        "No one in the buying group identified yet",
        "35% of the buying group identified",
        "The whole buying group identified",
        "Buying group unknown",
    ]
    assert item_polarity(buying_group, ["stakeholders"], catalogue).ravel().tolist() == [
        -1,
        0,
        1,
        0,
    ]
    counted = pd.DataFrame(
        {
            "close_date_pushes": [0, 1, 11],
            "deal_age_days": [1, 2, 361],
            "days_to_expected_close": [0, 1, -5],
        }
    )
    assert sentences("close_date_pushes", counted, catalogue).tolist() == [
        "Close date never pushed",
        "Close date pushed once",
        "Close date pushed 11 times",
    ]
    assert sentences("deal_age", counted, catalogue).tolist() == [
        "Open 1 day",
        "Open 2 days",
        "Open 361 days",
    ]
    ages = pd.DataFrame({"deal_age_days": [0.0, 0.4, 0.6, None]})
    assert sentences("deal_age", ages, catalogue).tolist() == [
        "Opened today",
        "Opened today",
        "Open 1 day",
        "Deal age unknown",
    ]
    assert sentences("expected_close", counted, catalogue).tolist() == [
        "Expected to close today",
        "Expected to close in 1 day",
        "Expected close date passed 5 days ago",
    ]
    assert points_text(np.array([11.24, -7.6, 0.44]), catalogue).tolist() == [
        "(+11.2 pts)",
        "(\u22127.6 pts)",
        "(+0.4 pts)",
    ]
    note = "against the usual rule: in your closed deals red flags went with winning"
    assert points_text(
        np.array([3.04, 3.04, -1.0]), catalogue, np.array([note, "", ""])
    ).tolist() == [
        f"(+3.0 pts, {note})",
        "(+3.0 pts)",
        "(\u22121.0 pts)",
    ]
    with pytest.raises(InputError, match="no message catalogue"):
        load_catalogue("xx")
