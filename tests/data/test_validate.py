"""Tests of winmodel.validate: each fault in a corrupted copy of a small valid export is reported."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from winmodel.data.contract import OPPORTUNITIES
from winmodel.data.validate import (
    ParseOptions,
    coerce_table,
    parse_booleans,
    parse_dates,
    parse_numbers,
    validate_tables,
)

DATA = Path(__file__).parents[1] / "fixtures" / "canonical"
FILES = {"opportunities": "opportunities.csv", "snapshots": "snapshots.csv"}


def _read(name: str) -> pd.DataFrame:
    frame = pd.read_csv(DATA / name, dtype=str, keep_default_na=False)
    return frame.set_axis(pd.RangeIndex(2, len(frame) + 2, name="line"), axis=0)


@pytest.fixture
def opportunities() -> pd.DataFrame:
    return _read("opportunities.csv")


@pytest.fixture
def snapshots() -> pd.DataFrame:
    return _read("snapshots.csv")


def _with(frame: pd.DataFrame, line: int, column: str, value: str) -> pd.DataFrame:
    changed = frame.copy()
    changed.loc[line, column] = value
    return changed


def _only(report, column: str, severity: str = "error"):
    found = [
        problem
        for problem in report.problems
        if problem.column == column and problem.severity == severity
    ]
    assert found, report.render()
    return found[0]


def test_the_valid_sample_has_no_problem_and_canonical_dtypes(opportunities, snapshots):
    opps, snaps, report = validate_tables(opportunities, snapshots, files=FILES)
    assert report.problems == (), report.render()
    assert opps["created_date"].dtype == "datetime64[ns]"
    assert opps["amount"].dtype == "float64"
    assert opps["pe_backed"].dtype == "boolean"
    assert opps["status"].dtype == "str"
    assert snaps["calls"].dtype == "float64"
    assert opps["forecast_category"].tolist()[0] == "closed"  # extra columns kept as they are
    assert "8 deals: 3 won, 2 lost, 3 open" in report.facts


def test_validation_does_not_change_its_inputs(opportunities, snapshots):
    before = opportunities.copy()
    validate_tables(_with(opportunities, 3, "amount", "-5"), snapshots, files=FILES)
    validate_tables(opportunities, snapshots, files=FILES)
    pd.testing.assert_frame_equal(opportunities, before)


def test_already_typed_frames_validate_the_same(opportunities, snapshots):
    opps, snaps, _ = validate_tables(opportunities, snapshots, files=FILES)
    again, again_snapshots, report = validate_tables(opps, snaps, files=FILES)
    assert report.ok and not report.problems, report.render()
    pd.testing.assert_frame_equal(again, opps)
    pd.testing.assert_frame_equal(again_snapshots, snaps)


def test_missing_required_column_suggests_the_closest_export_column(opportunities, snapshots):
    renamed = opportunities.rename(columns={"close_date": "Deal Close Date"})
    _, _, report = validate_tables(renamed, snapshots, files=FILES)
    problem = _only(report, "close_date")
    assert "missing" in problem.problem and "'Deal Close Date'" in problem.problem
    assert "close_date: 'Deal Close Date'" in problem.fix


def test_the_suggested_column_has_values_of_the_missing_columns_kind(opportunities, snapshots):
    """A text column named like a date column is not offered for it; a column of dates is."""
    renamed = opportunities.rename(columns={"close_date": "Closing Date"}).assign(
        close_date_comment="ask the rep", Closing_Date_Note="see notes"
    )
    _, _, report = validate_tables(renamed, snapshots, files=FILES)
    problem = _only(report, "close_date")
    assert "'Closing Date'" in problem.problem and "Note" not in problem.problem
    text_only = opportunities.drop(columns=["close_date"]).assign(close_date_note="see notes")
    _, _, report = validate_tables(text_only, snapshots, files=FILES)
    problem = _only(report, "close_date")
    assert "closest" not in problem.problem and "close_date_note" not in problem.fix


def test_amount_is_optional_with_a_note_and_never_zero(opportunities, snapshots):
    _, _, report = validate_tables(opportunities.drop(columns=["amount"]), snapshots, files=FILES)
    assert report.ok
    note = _only(report, "amount", "warning")
    assert "no amount column" in note.problem and "never taken as 0" in note.problem
    blanks = opportunities.assign(amount=["", *opportunities["amount"].iloc[1:]])
    coerced, _, report = validate_tables(blanks, snapshots, files=FILES)
    assert report.ok and pd.isna(coerced["amount"].iloc[0])  # blank stays missing, not 0
    assert "1 deal(s) have no amount" in _only(report, "amount", "warning").problem


def test_created_on_the_close_date_for_every_deal_is_an_error(opportunities, snapshots):
    same = opportunities.assign(created_date=opportunities["close_date"])
    _, _, report = validate_tables(same, None, files=FILES)
    problem = _only(report, "created_date, close_date")
    assert "5 of 5 closed deals (every one) were created on the day they closed" in problem.problem
    assert "map created_date" in problem.fix
    most = opportunities.copy()
    most.loc[most.index[:4], "created_date"] = most.loc[most.index[:4], "close_date"]
    closed = most["status"].isin(["won", "lost"])
    same_share = (most["created_date"] == most["close_date"])[closed].mean()
    _, _, report = validate_tables(most, None, files=FILES)
    found = [p for p in report.problems if p.column == "created_date, close_date"]
    assert (found[0].severity == "warning") if same_share >= 0.9 else not found


def test_excel_serial_dates_parse_with_the_excel_format_and_are_hinted_otherwise():
    frame = pd.DataFrame({"opportunity_id": ["a", "b"], "created_date": ["45292", "45323.5"]})
    coerced, problems = coerce_table(
        frame, OPPORTUNITIES, file="f", parse=ParseOptions(date_formats={"created_date": "excel"})
    )
    assert coerced["created_date"].tolist() == [
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-02-01"),
    ]
    assert "created_date" not in {problem.column for problem in problems}
    _, problems = coerce_table(frame, OPPORTUNITIES, file="f")
    hint = next(problem for problem in problems if problem.column == "created_date")
    assert "Excel serial day numbers" in hint.fix
    assert "`dates: {formats: {created_date: excel}}`" in hint.fix
    bad = frame.assign(created_date=["45292", "12"])
    _, problems = coerce_table(
        bad, OPPORTUNITIES, file="f", parse=ParseOptions(date_formats={"created_date": "excel"})
    )
    problem = next(problem for problem in problems if problem.column == "created_date")
    assert problem.rows == 1 and "'12'" in problem.problem


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("created_date", "2024-02-31", "not dates"),
        ("close_date", "next week", "not dates"),
        ("amount", "12k", "not numbers"),
        ("pe_backed", "maybe", "not yes/no"),
    ],
)
def test_unparseable_values_name_column_rows_and_values(
    opportunities, snapshots, column, value, words
):
    _, _, report = validate_tables(_with(opportunities, 4, column, value), snapshots, files=FILES)
    problem = _only(report, column)
    assert words in problem.problem and repr(value) in problem.problem
    assert problem.rows == 1
    assert problem.examples == ("line 4 (id OPP-003)",)
    # A value that did not parse is not also reported as blank.
    assert not any("blank" in other.problem for other in report.problems if other.column == column)


def test_amounts_with_currency_and_thousands_parse_by_default():
    parsed = parse_numbers(pd.Series(["$1,200.50", "1,200", "USD 3,000", "(250)", "12%", " 7 "]))
    assert parsed.values.tolist() == [1200.5, 1200.0, 3000.0, -250.0, 12.0, 7.0]
    assert not parsed.failed.any()


def test_decimal_comma_amounts_parse_when_the_mapping_says_so():
    parsed = parse_numbers(pd.Series(["1.200,50 €", "3.000", "0,5", "1 234,5"]), decimal=",")
    assert parsed.values.tolist() == [1200.5, 3000.0, 0.5, 1234.5]
    refused = parse_numbers(pd.Series(["1,5"]))
    assert refused.failed.all() and "decimal" in refused.hint


def test_dates_in_common_formats_parse_and_day_first_is_suggested():
    parsed = parse_dates(
        pd.Series(
            [
                "2024-03-31",
                "2024-03-31T23:10:00.000+0000",
                "03/31/2024",
                "31.03.2024",
                "31-Mar-2024",
                "Mar 31, 2024",
                "",
            ]
        )
    )
    assert parsed.values.dropna().nunique() == 1 and not parsed.failed.any()
    assert parsed.values.dtype == "datetime64[ns]"
    day_first = parse_dates(pd.Series(["31/12/2024"]))
    assert day_first.failed.all() and "dayfirst: true" in day_first.hint
    assert parse_dates(pd.Series(["31/12/2024"]), dayfirst=True).values[0] == pd.Timestamp(
        "2024-12-31"
    )
    assert parse_dates(pd.Series(["1800-01-01", "2017"])).failed.all()


def test_booleans_accept_the_usual_words():
    parsed = parse_booleans(pd.Series(["Yes", "1", "TRUE", "X", "y", "No", "0", "false", "", "n"]))
    assert parsed.values.tolist() == [True] * 5 + [False] * 5
    own_words = parse_booleans(
        pd.Series(["ja", "nein", ""]), true_values=["ja"], false_values=["nein"]
    )
    assert own_words.values.tolist()[:2] == [True, False] and pd.isna(own_words.values[2])
    assert not own_words.failed.any()


def test_value_outside_a_closed_set_lists_the_offending_values(opportunities, snapshots):
    broken = _with(_with(opportunities, 3, "urgency", "Urgent!"), 5, "urgency", "Urgent!")
    _, _, report = validate_tables(broken, snapshots, files=FILES)
    problem = _only(report, "urgency")
    assert "'Urgent!' (2)" in problem.problem and problem.rows == 2
    assert problem.examples == ("line 3 (id OPP-002)", "line 5 (id OPP-004)")


def test_closed_set_values_are_normalised_before_checking(opportunities, snapshots):
    friendly = _with(
        _with(opportunities, 2, "champion_role", "C-Level"), 3, "deal_type", "Legacy Replacement"
    )
    opps, _, report = validate_tables(friendly, snapshots, files=FILES)
    assert report.ok, report.render()
    assert opps.loc[2, "champion_role"] == "c_level"


def test_status_outside_open_won_lost_suggests_a_values_mapping(opportunities, snapshots):
    _, _, report = validate_tables(
        _with(opportunities, 2, "status", "Closed Won"), snapshots, files=FILES
    )
    problem = _only(report, "status")
    assert "'Closed Won'" in problem.problem and "values: {status:" in problem.fix
    assert problem.examples == ("line 2 (id OPP-001)",)


def test_duplicate_opportunity_ids_list_every_copy(opportunities, snapshots):
    _, _, report = validate_tables(
        _with(opportunities, 3, "opportunity_id", "OPP-001"), snapshots, files=FILES
    )
    problem = _only(report, "opportunity_id")
    assert "'OPP-001'" in problem.problem and problem.rows == 2
    assert problem.examples == ("line 2 (id OPP-001)", "line 3 (id OPP-001)")


def test_duplicate_snapshot_keys(opportunities, snapshots):
    broken = _with(snapshots, 3, "snapshot_date", snapshots.loc[2, "snapshot_date"])
    _, _, report = validate_tables(opportunities, broken, files=FILES)
    problem = _only(report, "opportunity_id, snapshot_date")
    assert problem.file == "snapshots.csv" and problem.rows == 2
    assert problem.examples[:2] == ("line 2 (id OPP-001)", "line 3 (id OPP-001)")


def test_close_before_created(opportunities, snapshots):
    _, _, report = validate_tables(
        _with(opportunities, 6, "close_date", "2023-01-01"), snapshots, files=FILES
    )
    problem = _only(report, "close_date")
    assert "close before they were created" in problem.problem
    assert problem.examples == ("line 6 (id OPP-005)",)


def test_negative_and_absurd_amounts(opportunities, snapshots):
    broken = _with(_with(opportunities, 2, "amount", "-100"), 3, "amount", "5e12")
    _, _, report = validate_tables(broken, snapshots, files=FILES)
    messages = {problem.problem: problem for problem in report.errors if problem.column == "amount"}
    negative = next(problem for text, problem in messages.items() if "negative" in text)
    absurd = next(problem for text, problem in messages.items() if "no deal is" in text)
    assert negative.examples == ("line 2 (id OPP-001)",)
    assert absurd.examples == ("line 3 (id OPP-002)",) and "units" in absurd.fix


def test_number_out_of_contract_range(opportunities, snapshots):
    _, _, report = validate_tables(
        _with(opportunities, 4, "discount_pct", "150"), snapshots, files=FILES
    )
    problem = _only(report, "discount_pct")
    assert "above 100" in problem.problem and problem.examples == ("line 4 (id OPP-003)",)


def test_counts_must_be_whole_numbers(opportunities, snapshots):
    _, _, report = validate_tables(opportunities, _with(snapshots, 5, "calls", "2.5"), files=FILES)
    assert "whole" in _only(report, "calls").problem


def test_share_given_as_0_100_is_an_error_naming_the_scale_key(opportunities, snapshots):
    broken = opportunities.assign(services_share=["5", "10", "0", "35", "", "", "20", "15"])
    _, _, report = validate_tables(broken, snapshots, files=FILES)
    problem = _only(report, "services_share")
    assert "looks like 0–100" in problem.problem and "scale: {services_share: 0.01}" in problem.fix
    assert (
        len([p for p in report.problems if p.column == "services_share"]) == 1
    )  # no range error on top


def test_percent_given_as_shares_is_a_warning(opportunities, snapshots):
    broken = opportunities.assign(discount_pct=["0.05", "0.1", "0", "0.2", "", "", "0.15", "0.1"])
    _, _, report = validate_tables(broken, snapshots, files=FILES)
    assert report.ok
    assert "scale: {discount_pct: 100}" in _only(report, "discount_pct", "warning").fix


def test_snapshot_after_the_close_of_a_closed_deal(opportunities, snapshots):
    broken = _with(snapshots, 4, "snapshot_date", "2025-01-01")  # line 4 is OPP-001, won 2024-03-09
    _, _, report = validate_tables(opportunities, broken, files=FILES)
    problem = _only(report, "snapshot_date")
    assert "after their deal's close_date" in problem.problem
    assert problem.examples == ("line 4 (id OPP-001)",)


def test_snapshot_of_an_unknown_deal(opportunities, snapshots):
    _, _, report = validate_tables(
        opportunities, _with(snapshots, 7, "opportunity_id", "GHOST"), files=FILES
    )
    problem = _only(report, "opportunity_id")
    assert "'GHOST'" in problem.problem and problem.examples == ("line 7 (id GHOST)",)


def test_blank_required_values(opportunities, snapshots):
    _, _, report = validate_tables(
        _with(opportunities, 5, "created_date", ""), snapshots, files=FILES
    )
    problem = _only(report, "created_date")
    assert "blank" in problem.problem and "fill: {created_date: as_of}" in problem.fix


def test_blank_close_date_is_a_warning_on_open_deals_and_an_error_on_closed_ones(
    opportunities, snapshots
):
    open_line = int(opportunities.index[opportunities["status"] == "open"][0])
    _, _, report = validate_tables(
        _with(opportunities, open_line, "close_date", ""), snapshots, files=FILES
    )
    assert report.ok and "no expected close date" in _only(report, "close_date", "warning").problem
    _, _, report = validate_tables(
        _with(opportunities, 2, "close_date", ""), snapshots, files=FILES
    )
    assert "won or lost" in _only(report, "close_date").problem


def test_flat_export_with_progress_columns_warns_of_leakage(opportunities):
    flat = opportunities.assign(budget_confirmed="true")
    _, snaps, report = validate_tables(flat, None, files=FILES)
    assert snaps is None and report.ok
    warning = next(problem for problem in report.warnings if "leak" in problem.problem)
    assert "budget_confirmed" in warning.column and "stage" in warning.column


def test_every_fault_is_listed_in_one_report(opportunities, snapshots):
    broken = _with(opportunities, 2, "amount", "-1")
    broken = _with(broken, 3, "urgency", "soon")
    broken = _with(broken, 4, "created_date", "yesterday")
    broken = _with(broken, 5, "status", "pending")
    broken = _with(broken, 6, "opportunity_id", "OPP-001").drop(columns=["owner_id"])
    broken_snapshots = _with(snapshots, 9, "opportunity_id", "NOPE")
    _, _, report = validate_tables(broken, broken_snapshots, files=FILES)
    columns = {problem.column for problem in report.errors}
    assert {"amount", "urgency", "created_date", "status", "opportunity_id"} <= columns
    assert any(problem.file == "snapshots.csv" for problem in report.errors)
    assert len(report.errors) >= 6
    rendered = report.render()
    assert "line 4 (id OPP-003)" in rendered
    assert (
        rendered.splitlines()[-1]
        == f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    )


def test_coerce_table_uses_given_row_labels():
    frame = pd.DataFrame({"opportunity_id": ["a", "b"], "amount": ["1", "x"]})
    labels = pd.Series(["deal a", "deal b"])
    coerced, problems = coerce_table(frame, OPPORTUNITIES, file="f.csv", row_labels=labels)
    amount = next(problem for problem in problems if problem.column == "amount")
    assert amount.examples == ("deal b",)
    assert np.isnan(coerced.loc[1, "amount"])
    assert {problem.column for problem in problems} >= {"created_date", "close_date", "status"}


def test_scale_and_date_formats_from_parse_options():
    frame = pd.DataFrame(
        {"opportunity_id": ["a"], "annual_revenue": ["2,5"], "created_date": ["05|01|2024"]}
    )
    options = ParseOptions(
        decimal=",", scale={"annual_revenue": 1e6}, date_formats={"created_date": "%d|%m|%Y"}
    )
    coerced, problems = coerce_table(frame, OPPORTUNITIES, file="f", parse=options)
    assert coerced.loc[0, "annual_revenue"] == 2_500_000
    assert coerced.loc[0, "created_date"] == pd.Timestamp("2024-01-05")
    assert {problem.column for problem in problems} == {
        "close_date",
        "status",
    }  # only the missing ones (amount is optional)


def test_twenty_thousand_deals_and_400k_snapshots_validate_in_seconds():
    rng = np.random.default_rng(1)
    deals, rows = 20_000, 400_000
    created = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, deals), unit="D")
    opportunities = pd.DataFrame(
        {
            "opportunity_id": [f"D{i}" for i in range(deals)],
            "created_date": created.strftime("%Y-%m-%d"),
            "close_date": (created + pd.Timedelta(days=300)).strftime("%Y-%m-%d"),
            "status": rng.choice(["won", "lost", "open"], deals),
            "amount": rng.integers(1_000, 90_000, deals).astype(str),
            "urgency": rng.choice(["none", "low", "high"], deals),
        }
    )
    deal = np.repeat(np.arange(deals), rows // deals)
    day = np.tile(np.arange(rows // deals), deals) * 7
    snapshots = pd.DataFrame(
        {
            "opportunity_id": opportunities["opportunity_id"].to_numpy()[deal],
            "snapshot_date": (created[deal] + pd.to_timedelta(day, unit="D")).strftime("%Y-%m-%d"),
            "stakeholders_identified": rng.random(rows).round(2).astype(str),
            "budget_confirmed": rng.choice(["true", "false"], rows),
            "calls": rng.integers(0, 30, rows).astype(str),
        }
    )
    start = time.perf_counter()
    _, _, report = validate_tables(opportunities, snapshots, files=FILES)
    elapsed = time.perf_counter() - start
    assert report.ok, report.render()
    assert elapsed < 15, f"validation took {elapsed:.1f} s"
