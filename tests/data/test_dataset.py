"""Tests of winmodel.dataset: finding, reading, mapping and validating an export in one call."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from winmodel.data.dataset import CRMData, ExtraFeature, find_data_files, load_crm_data
from winmodel.data.io import write_table_atomic
from winmodel.data.mapping import Mapping
from winmodel.errors import InputError

CANONICAL = Path(__file__).parents[1] / "fixtures" / "canonical"


@pytest.fixture
def export_folder(tmp_path) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(CANONICAL, folder)
    (folder / "truth.csv").write_text("not,a,table\n\x00")  # ignored
    return folder


def test_folder_of_canonical_csv_loads(export_folder):
    data = load_crm_data(export_folder)
    assert isinstance(data, CRMData) and data.has_snapshots
    assert data.report.ok and not data.report.problems, data.report.render()
    assert data.files == {
        "opportunities": str(export_folder / "opportunities.csv"),
        "snapshots": str(export_folder / "snapshots.csv"),
    }
    assert isinstance(data.opportunities.index, pd.RangeIndex) and data.opportunities.index[0] == 0
    assert data.as_of == data.snapshots["snapshot_date"].max()
    assert data.extra_features == ()
    assert "forecast_category" in data.opportunities.columns


def test_canonical_parquet_with_generator_extras_loads_clean(export_folder, tmp_path):
    typed = load_crm_data(export_folder)
    folder = tmp_path / "demo"
    write_table_atomic(typed.opportunities, folder / "opportunities.parquet")
    write_table_atomic(typed.snapshots, folder / "snapshots.parquet")
    write_table_atomic(pd.DataFrame({"opportunity_id": ["x"]}), folder / "truth.parquet")
    data = load_crm_data(folder)
    assert data.report.ok and not data.report.problems, data.report.render()
    assert data.files["opportunities"].endswith("opportunities.parquet")
    pd.testing.assert_frame_equal(data.opportunities, typed.opportunities)
    assert {"stage", "crm_probability", "forecast_category"} <= set(data.opportunities.columns)


def test_single_flat_file_has_no_snapshots_and_warns_of_leakage(export_folder):
    data = load_crm_data(export_folder / "opportunities.csv")
    assert not data.has_snapshots and data.snapshots is None
    assert any("leak" in warning.problem for warning in data.report.warnings)
    closed = data.opportunities["status"].isin(["won", "lost"])
    assert data.as_of == max(
        data.opportunities["created_date"].max(), data.opportunities.loc[closed, "close_date"].max()
    )


def test_as_of_comes_from_the_mapping_first(export_folder):
    data = load_crm_data(export_folder, Mapping.model_validate({"as_of": "2030-01-31"}))
    assert data.as_of == pd.Timestamp("2030-01-31")
    assert "as of 2030-01-31 (from the mapping's as_of)" in data.report.facts


def test_errors_carry_the_full_report_with_file_lines(export_folder):
    path = export_folder / "opportunities.csv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("won", "Closed Won", 1).replace("lost", "Closed Lost", 1)  # line 4
    lines[5] = lines[5].replace("2024-", "20x4-", 1)  # line 6: created_date
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as error:
        load_crm_data(export_folder)
    report = error.value.report
    assert {problem.column for problem in report.errors} >= {"status", "created_date"}
    status = next(problem for problem in report.errors if problem.column == "status")
    assert status.examples == ("line 4 (id OPP-003)",) and status.file == str(path)
    assert any(fact.startswith("8 deals") for fact in report.facts)  # facts come with the errors


def test_problems_name_the_export_column_behind_a_canonical_one(tmp_path):
    (tmp_path / "deals.csv").write_text(
        "Id,Created,Closed,Stage,Value\nA,2024-01-01,2024-02-01,won,1\nB,2024-01-01,2024-02-01,won,oops\n"
    )
    mapping = Mapping.model_validate(
        {
            "columns": {
                "opportunities": {
                    "opportunity_id": "Id",
                    "created_date": "Created",
                    "close_date": "Closed",
                    "status": "Stage",
                    "amount": "Value",
                }
            }
        }
    )
    with pytest.raises(InputError) as error:
        load_crm_data(tmp_path / "deals.csv", mapping)
    [problem] = error.value.report.errors
    assert problem.column == "amount" and "(from the export column 'Value')" in problem.problem
    assert problem.examples == ("line 3 (id B)",)


def test_extra_features_from_the_mapping(tmp_path):
    (tmp_path / "deals.csv").write_text(
        "opportunity_id,created_date,close_date,status,amount,Lead Source,Seats\n"
        "A,2024-01-01,2024-02-01,won,1,Web,10\n"
    )
    mapping = Mapping.model_validate(
        {"extra_features": {"categorical": ["Lead Source"], "numeric": ["Seats"]}}
    )
    data = load_crm_data(tmp_path / "deals.csv", mapping)
    assert data.extra_features == (
        ExtraFeature("lead_source", "categorical"),
        ExtraFeature("seats", "numeric"),
    )
    assert data.opportunities["seats"].dtype == "float64"


def test_mapping_given_as_a_path_and_files_named_in_it(export_folder):
    (export_folder / "opportunities.csv").rename(export_folder / "deals.csv")
    mapping_file = export_folder / "m.yaml"
    mapping_file.write_text(
        "name: renamed\nfiles: {opportunities: deals.csv, snapshots: snapshots.csv}\n"
    )
    data = load_crm_data(export_folder, mapping_file)
    assert (
        data.files["opportunities"].endswith("deals.csv")
        and "mapping: renamed" in data.report.facts
    )


def test_folder_without_opportunities_lists_what_it_has(tmp_path):
    (tmp_path / "deals.csv").write_text("a\n1\n")
    with pytest.raises(InputError) as error:
        find_data_files(tmp_path, Mapping())
    assert (
        "deals.csv" in error.value.report.render()
        and "files: {opportunities" in error.value.report.render()
    )


def test_missing_files_are_reported(tmp_path, export_folder):
    with pytest.raises(InputError, match="does not exist"):
        load_crm_data(tmp_path / "nowhere")
    with pytest.raises(InputError, match="snapshots file named in the mapping does not exist"):
        load_crm_data(
            export_folder / "opportunities.csv",
            Mapping.model_validate({"files": {"snapshots": "history.csv"}}),
        )


def test_unreadable_tables_are_all_reported(export_folder):
    (export_folder / "opportunities.csv").write_text("opportunity_id,amount\n")
    (export_folder / "snapshots.csv").write_bytes(b"")
    with pytest.raises(InputError) as error:
        load_crm_data(export_folder)
    text = error.value.report.render()
    assert "header but no rows" in text and "empty" in text
