"""Tests of winmodel.data.mapping: the YAML, applying it, and the shipped mappings on their sample exports."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from winmodel.data.dataset import load_crm_data
from winmodel.data.mapping import (
    Mapping,
    apply_mapping,
    contract_markdown,
    load_mapping,
    snake_case,
)
from winmodel.data.validate import validate_tables
from winmodel.errors import InputError, ValidationReport

ROOT = Path(__file__).parents[2]
MAPPINGS = ROOT / "pipelines" / "mappings"
DATA = Path(__file__).parents[1] / "fixtures"
MAVEN = Path(__file__).parents[2] / "../shared/datasets/maven_crm"


def _mapping_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def _load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(InputError) as error:
        load_mapping(_mapping_file(tmp_path, text))
    return error.value.report.render()


def _frame(data: dict[str, list[str]], first_line: int = 2) -> pd.DataFrame:
    frame = pd.DataFrame(data)
    frame = frame.set_axis(pd.RangeIndex(first_line, first_line + len(frame), name="line"), axis=0)
    frame.attrs["source"] = "export.csv"
    return frame


# --------------------------------------------------------------------------- YAML


@pytest.mark.parametrize("name", ["salesforce", "hubspot", "maven_crm"])
def test_shipped_mappings_load(name):
    mapping = load_mapping(MAPPINGS / f"{name}.yaml")
    assert mapping.name == name and mapping.description


def test_unknown_top_level_key_is_named_with_its_line(tmp_path):
    text = _load_error(
        tmp_path,
        """
        name: x
        colums:
          opportunities: {opportunity_id: Id}
        """,
    )
    assert "line 2" in text and "unknown key 'colums'" in text and "did you mean 'columns'" in text


def test_unknown_key_inside_a_lookup_is_named_with_its_line(tmp_path):
    text = _load_error(
        tmp_path,
        """
        name: x
        lookups:
          - file: accounts.csv
            on: {account: account}
            columns: {industry: sector}
            jion: left
        """,
    )
    assert "line 6" in text and "'jion' in lookups[0]" in text and "file, on, columns" in text


def test_yaml_syntax_error_gives_line_and_column(tmp_path):
    text = _load_error(
        tmp_path,
        """
        name: x
        columns:
          opportunities:
            opportunity_id: Id
           amount: Amount
        """,
    )
    assert "line 5, column" in text and "mapping.yaml" in text


def test_unclosed_bracket_names_the_line_it_opened_on(tmp_path):
    text = _load_error(
        tmp_path,
        """
        name: x
        values:
          status: [won, lost
        as_of: 2024-01-31
        """,
    )
    assert "starts on line 3" in text


def test_mapping_not_in_utf8_names_the_line(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_bytes("name: x\nvalues:\n  status: {Gewünscht: open}\n".encode("latin-1"))
    with pytest.raises(InputError) as error:
        load_mapping(path)
    assert "line 3" in error.value.report.render() and "not UTF-8" in error.value.report.render()


def test_key_given_twice_is_an_error(tmp_path):
    text = _load_error(
        tmp_path,
        """
        name: x
        scale: {amount: 2}
        scale: {amount: 3}
        """,
    )
    assert "line 3" in text and "given twice (first on line 2)" in text


def test_wrong_value_is_named_with_its_line(tmp_path):
    text = _load_error(
        tmp_path,
        """
        name: x
        read:
          decimal: ";"
        scale:
          amount: lots
        """,
    )
    assert "line 3" in text and "read.decimal" in text
    assert "line 5" in text and "scale.amount" in text


def test_fill_from_as_of_needs_as_of(tmp_path):
    assert "as_of" in _load_error(tmp_path, "fill: {created_date: as_of}\n")


def test_yes_and_no_stay_text_in_yaml(tmp_path):
    mapping = load_mapping(
        _mapping_file(
            tmp_path,
            """
        values:
          urgency: {Yes: high, No: none, 1: low}
        constants: {pe_backed: false}
        """,
        )
    )
    assert mapping.values["urgency"] == {"Yes": "high", "No": "none", "1": "low"}
    assert mapping.constants == {"pe_backed": "false"}


def test_missing_and_empty_mapping_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_mapping(tmp_path / "nope.yaml")
    assert load_mapping(_mapping_file(tmp_path, "\n")) == Mapping()


def test_mapping_is_frozen():
    with pytest.raises(ValueError):
        Mapping().name = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------- applying


def test_columns_values_constants_fill_and_extras(tmp_path):
    export = _frame(
        {
            "Id": ["a", "b", "c"],
            "Stage": ["Closed Won", "Closed Lost", "Demo"],
            "Created": ["2024-01-01", "", "2024-02-01"],
            "Expected": ["", "2024-03-01", "2024-04-01"],
            "Deal Value": ["1,000", "2,000", "3,000"],
            "Lead Source": ["Web", "Event", ""],
            "Seats": ["10", "x", "30"],
            "Notes": ["n1", "n2", "n3"],
        }
    )
    before = export.copy()
    mapping = Mapping.model_validate(
        {
            "as_of": "2024-06-30",
            "columns": {
                "opportunities": {
                    "opportunity_id": "Id",
                    "status": "Stage",
                    "stage": "Stage",
                    "created_date": "Created",
                    "close_date": "Expected",
                    "amount": "Deal Value",
                }
            },
            "values": {"status": {"closed won": "won", "Closed Lost": "lost", "*": "open"}},
            "constants": {"region": "emea"},
            "fill": {"created_date": "as_of", "close_date": "Created"},
            "extra_features": {"categorical": ["Lead Source"], "numeric": ["Seats"]},
        }
    )
    frames, problems = apply_mapping({"opportunities": export}, mapping, base_dir=tmp_path)
    result = frames["opportunities"]
    pd.testing.assert_frame_equal(export, before)
    assert result["status"].tolist() == ["won", "lost", "open"]
    assert result["stage"].tolist() == ["Closed Won", "Closed Lost", "Demo"]
    assert result["created_date"].tolist() == ["2024-01-01", "2024-06-30", "2024-02-01"]
    assert result["close_date"].tolist() == ["2024-01-01", "2024-03-01", "2024-04-01"]
    assert result["region"].tolist() == ["emea"] * 3
    assert (
        "Notes" in result.columns and "Id" not in result.columns and "Stage" not in result.columns
    )
    assert result["lead_source"].tolist()[:2] == ["Web", "Event"] and pd.isna(
        result["lead_source"].iloc[2]
    )
    assert result["seats"].tolist()[0] == 10.0
    assert result.index.tolist() == [2, 3, 4]
    seats = next(problem for problem in problems if problem.column == "Seats")
    assert "'x'" in seats.problem and seats.examples == ("line 3 (id b)",)


def test_missing_source_column_is_an_error_for_required_and_a_warning_for_optional(tmp_path):
    export = _frame({"Id": ["a"], "Stge": ["won"]})
    mapping = Mapping.model_validate(
        {
            "columns": {
                "opportunities": {
                    "opportunity_id": "Id",
                    "status": "Stage",
                    "industry": "Industry__c",
                }
            }
        }
    )
    _, problems = apply_mapping({"opportunities": export}, mapping, base_dir=tmp_path)
    status = next(problem for problem in problems if problem.column == "Stage")
    industry = next(problem for problem in problems if problem.column == "Industry__c")
    assert status.severity == "error" and "closest is 'Stge'" in status.problem
    assert industry.severity == "warning" and "industry is left out" in industry.problem


def test_status_flags(tmp_path):
    export = _frame({"IsClosed": ["true", "true", "false", "maybe"], "IsWon": ["1", "0", "0", "0"]})
    mapping = Mapping.model_validate({"status_flags": {"closed": "IsClosed", "won": "IsWon"}})
    frames, problems = apply_mapping({"opportunities": export}, mapping, base_dir=tmp_path)
    status = frames["opportunities"]["status"]
    assert status.tolist()[:3] == ["won", "lost", "open"] and pd.isna(status.iloc[3])
    assert "IsWon" not in frames["opportunities"].columns
    assert problems[0].column == "IsClosed" and problems[0].examples == ("line 5",)


def test_lookup_joins_fixes_keys_and_warns_on_unmatched(tmp_path):
    (tmp_path / "products.csv").write_text("product,price\nGTX Pro,4821\nMG Special,55\n")
    export = _frame(
        {"opportunity_id": ["a", "b", "c", "d"], "product": ["GTXPro", "MG Special", "Unknown", ""]}
    )
    mapping = Mapping.model_validate(
        {
            "lookups": [
                {
                    "file": "products.csv",
                    "on": {"product": "product"},
                    "columns": {"amount": "price"},
                    "values": {"product": {"GTXPro": "GTX Pro"}},
                }
            ]
        }
    )
    frames, problems = apply_mapping({"opportunities": export}, mapping, base_dir=tmp_path)
    result = frames["opportunities"]
    assert result["product"].tolist()[:3] == ["GTX Pro", "MG Special", "Unknown"]
    assert (
        result["amount"].tolist()[:2] == ["4821", "55"] and result["amount"].iloc[2:].isna().all()
    )
    [unmatched] = problems
    assert unmatched.severity == "warning" and "'Unknown' (1)" in unmatched.problem
    assert unmatched.examples == ("line 4 (id c)",)


def test_lookup_with_duplicate_keys_or_missing_file_is_an_error(tmp_path):
    (tmp_path / "accounts.csv").write_text("account,sector\nAcme,retail\nAcme,software\n")
    export = _frame({"opportunity_id": ["a"], "account": ["Acme"]})
    duplicated = Mapping.model_validate(
        {
            "lookups": [
                {
                    "file": "accounts.csv",
                    "on": {"account": "account"},
                    "columns": {"industry": "sector"},
                },
                {"file": "missing.csv", "on": {"account": "account"}, "columns": {"region": "x"}},
            ]
        }
    )
    frames, problems = apply_mapping({"opportunities": export}, duplicated, base_dir=tmp_path)
    assert frames["opportunities"]["industry"].tolist() == ["retail"]
    assert any(
        "appear more than once" in problem.problem
        and "'Acme'" in problem.problem
        and problem.severity == "error"
        for problem in problems
    )
    assert any(
        "missing.csv" in problem.file and "does not exist" in problem.problem
        for problem in problems
    )


def test_settings_naming_no_column_warn(tmp_path):
    mapping = Mapping.model_validate({"scale": {"anual_revenue": 1000}})
    export = _frame({"opportunity_id": ["a"], "annual_revenue": ["1"]})
    _, problems = apply_mapping({"opportunities": export}, mapping, base_dir=tmp_path)
    assert (
        problems[0].severity == "warning" and "did you mean 'annual_revenue'" in problems[0].problem
    )


def test_snake_case():
    assert snake_case("Deal Name") == "deal_name"
    assert snake_case("NumberOfEmployees") == "number_of_employees"
    assert snake_case("Primary_Pain__c") == "primary_pain_c"
    assert snake_case(" Lead-Source ") == "lead_source"


# --------------------------------------------------------------------------- shipped mappings


def test_salesforce_mapping_on_its_sample_export():
    data = load_crm_data(DATA / "salesforce" / "opportunities.csv", MAPPINGS / "salesforce.yaml")
    deals = data.opportunities.set_index("opportunity_id")
    assert data.report.facts[1] == "8 deals: 3 won, 2 lost, 3 open"
    assert deals.loc["0065g00000AbCd1AAF", "status"] == "won"
    assert deals.loc["0065g00000AbCd3AAF", "amount"] == 210_000.0  # "210,000.00"
    assert deals.loc["0065g00000AbCd1AAF", "created_date"] == pd.Timestamp("2024-01-08")
    assert deals.loc["0065g00000AbCd1AAF", "services_share"] == pytest.approx(0.15)
    assert deals.loc["0065g00000AbCd3AAF", "champion_role"] == "c_level"
    assert deals.loc["0065g00000AbCd8AAF", "trigger_event"] == "m_and_a"
    assert [feature.name for feature in data.extra_features] == ["type", "lead_source"]
    assert any("leak" in warning.problem for warning in data.report.warnings)


def test_hubspot_mapping_on_its_sample_export():
    data = load_crm_data(DATA / "hubspot", MAPPINGS / "hubspot.yaml")
    deals = data.opportunities.set_index("opportunity_id")
    assert data.report.facts[1] == "6 deals: 2 won, 1 lost, 3 open"
    assert deals.loc["9003", "amount"] == 1200.0  # "$1,200"
    assert deals.loc["9003", "crm_probability"] == 90.0  # 0.9 scaled to percent
    assert deals.loc["9005", "status"] == "won"  # the label "Closed Won" as well as "closedwon"
    assert deals.loc["9001", "deal_type"] == "greenfield"
    assert data.report.ok and [feature.name for feature in data.extra_features] == ["pipeline"]


@pytest.mark.skipif(
    not (MAVEN / "sales_pipeline.csv").exists(), reason="shared/datasets/maven_crm is absent"
)
def test_maven_mapping_on_the_real_files():
    data = load_crm_data(MAVEN / "sales_pipeline.csv", MAPPINGS / "maven_crm.yaml")
    assert "8,800 deals: 4,238 won, 2,473 lost, 2,089 open" in data.report.facts
    assert data.report.ok and data.as_of == pd.Timestamp("2017-12-31")
    deals = data.opportunities
    assert deals["amount"].notna().all()  # every product found once GTXPro is fixed
    assert "technolgy" not in set(deals["industry"].dropna()) and "technology" in set(
        deals["industry"]
    )
    assert deals["created_date"].notna().all()
    assert deals.loc[deals["status"] == "open", "close_date"].isna().all()
    assert "close_value" in deals.columns  # kept for the audit, not a feature
    assert "close_value" not in {feature.name for feature in data.extra_features}
    assert deals["annual_revenue"].min() > 1e6  # millions scaled to units


def test_docs_contract_table_is_generated_from_contract():
    assert (ROOT / "docs" / "contract.md").read_text() == contract_markdown() + "\n"


# --------------------------------------------------------------------------- properties

_COLUMNS = [
    "opportunity_id",
    "created_date",
    "close_date",
    "status",
    "amount",
    "urgency",
    "pe_backed",
    "discount_pct",
    "services_share",
    "competitor_count",
    "Id",
    "Stage",
    "notes",
]
_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "2024-01-31",
            "31/01/2024",
            "won",
            "lost",
            "open",
            "Closed Won",
            "1,200.50",
            "-3",
            "1e13",
            "0.5",
            "50",
            "yes",
            "no",
            "high",
            "x",
            "NaN",
            "=1+1",
            "  ",
        ]
    ),
    st.text(max_size=6),
)


@st.composite
def _exports(draw):
    columns = draw(st.lists(st.sampled_from(_COLUMNS), min_size=1, max_size=8, unique=True))
    rows = draw(st.integers(min_value=1, max_value=6))
    data = {column: draw(st.lists(_VALUES, min_size=rows, max_size=rows)) for column in columns}
    return _frame(data)


_MAPPINGS = st.sampled_from(
    [
        Mapping(),
        Mapping.model_validate(
            {
                "columns": {"opportunities": {"opportunity_id": "Id", "status": "Stage"}},
                "values": {"status": {"Closed Won": "won", "*": "open"}},
            }
        ),
        Mapping.model_validate(
            {
                "as_of": "2024-06-30",
                "fill": {"created_date": "as_of", "close_date": "notes"},
                "constants": {"region": "emea"},
                "read": {"decimal": ","},
                "extra_features": {"numeric": ["notes"]},
                "scale": {"services_share": 0.01},
            }
        ),
    ]
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(export=_exports(), snapshot_export=st.one_of(st.none(), _exports()), mapping=_MAPPINGS)
def test_random_exports_validate_or_report_but_never_crash(
    tmp_path, export, snapshot_export, mapping
):
    frames = {"opportunities": export}
    if snapshot_export is not None:
        frames["snapshots"] = snapshot_export.rename(columns={"created_date": "snapshot_date"})
    try:
        mapped, problems = apply_mapping(frames, mapping, base_dir=tmp_path)
        opportunities, snapshots, report = validate_tables(
            mapped["opportunities"],
            mapped.get("snapshots"),
            files={},
            parse=mapping.parse_options(),
        )
    except InputError:
        return
    assert isinstance(report, ValidationReport)
    assert isinstance(report.render(), str)
    if report.ok and not [problem for problem in problems if problem.severity == "error"]:
        assert opportunities["created_date"].dtype == "datetime64[ns]"
        assert opportunities["amount"].dtype == "float64"
        assert set(opportunities["status"].dropna()) <= {"open", "won", "lost"}
        if snapshots is not None:
            assert snapshots["snapshot_date"].dtype == "datetime64[ns]"


# --------------------------------------------------------------------------- an export without ids


def test_generated_ids_hash_the_named_columns_and_survive_a_re_export(tmp_path):
    mapping = Mapping.model_validate({"generate_id": {"columns": ["Account", "Deal"]}})
    export = _frame({"Account": ["Acme", "Acme", "Beta"], "Deal": ["CRM", "ERP", "CRM"]})
    frames, problems = apply_mapping({"opportunities": export}, mapping, base_dir=tmp_path)
    ids = frames["opportunities"]["opportunity_id"]
    assert not problems and ids.nunique() == 3 and all(ids.str.startswith("H-"))
    # Next month: rows in another order and one more deal; the same deals keep their ids.
    again = _frame(
        {"Account": ["Gamma", "Beta", "Acme", "Acme"], "Deal": ["X", "CRM", "ERP", "CRM"]}
    )
    later, _ = apply_mapping({"opportunities": again}, mapping, base_dir=tmp_path)
    old = dict(zip(export["Account"] + "/" + export["Deal"], ids, strict=True))
    new = dict(
        zip(
            again["Account"] + "/" + again["Deal"],
            later["opportunities"]["opportunity_id"],
            strict=True,
        )
    )
    assert all(new[key] == value for key, value in old.items())


def test_generated_ids_that_repeat_name_the_rows_and_row_numbers_are_flat_only(tmp_path):
    export = _frame({"Account": ["Acme", "Acme", "Beta"]})
    mapping = Mapping.model_validate({"generate_id": {"columns": ["Account"]}})
    _, problems = apply_mapping({"opportunities": export}, mapping, base_dir=tmp_path)
    assert problems[0].severity == "error" and "2 rows share their Account" in problems[0].problem
    assert problems[0].examples == ("line 2", "line 3")
    by_row = Mapping.model_validate({"generate_id": {"row_number": True}})
    frames, problems = apply_mapping({"opportunities": export}, by_row, base_dir=tmp_path)
    assert not problems
    assert frames["opportunities"]["opportunity_id"].tolist() == ["R-2", "R-3", "R-4"]
    snapshots = _frame({"Account": ["Acme"]})
    _, problems = apply_mapping(
        {"opportunities": export, "snapshots": snapshots}, by_row, base_dir=tmp_path
    )
    assert any("cannot link snapshots" in problem.problem for problem in problems)
    with pytest.raises(ValueError, match="either columns"):
        Mapping.model_validate({"generate_id": {"columns": ["A"], "row_number": True}})
    with pytest.raises(ValueError, match="either with generate_id"):
        Mapping.model_validate(
            {
                "generate_id": {"row_number": True},
                "columns": {"opportunities": {"opportunity_id": "Id"}},
            }
        )


def test_an_excel_export_with_serial_dates_and_no_ids_loads_through_a_mapping(tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.title = "Readme"
    workbook.active.append(["exported from the CRM"])
    workbook.active.append(["2026-11-30"])
    deals = workbook.create_sheet("Deals")
    deals.append(["Account", "Deal", "Created", "Close", "Stage", "Value"])
    for number in range(6):
        stage = ("Closed Won", "Closed Lost", "Open")[number % 3]
        deals.append([f"Acc {number}", "CRM", 45292 + number, 45350 + number, stage, None])
    workbook.save(tmp_path / "export.xlsx")
    (tmp_path / "mapping.yaml").write_text(
        textwrap.dedent(
            """\
            name: excel-crm
            read: {sheets: {opportunities: Deals}}
            generate_id: {columns: [Account, Deal]}
            columns:
              opportunities: {created_date: Created, close_date: Close, status: Stage, amount: Value}
            values:
              status: {Closed Won: won, Closed Lost: lost, Open: open}
            dates:
              formats: {created_date: excel, close_date: excel}
            """
        ),
        encoding="utf-8",
    )
    data = load_crm_data(tmp_path / "export.xlsx", tmp_path / "mapping.yaml")
    opportunities = data.opportunities
    assert opportunities["created_date"].iloc[0] == pd.Timestamp("2024-01-01")
    assert opportunities["opportunity_id"].is_unique and opportunities["amount"].isna().all()
    assert any("no amount" in problem.problem for problem in data.report.warnings)
