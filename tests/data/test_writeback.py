"""Scores back into the CRM: the upsert table in the CRM's field names and limits."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from winmodel.data.dataset import load_crm_data
from winmodel.data.mapping import load_mapping
from winmodel.data.writeback import WriteBack, crm_upsert, shorten
from winmodel.errors import InputError

ROOT = Path(__file__).parents[2]
FIXTURES = Path(__file__).parents[1] / "fixtures"
REASONS = "; ".join(
    f"Reason number {i} about the executive sponsor with budget authority (+{i} pts)"
    for i in range(1, 8)
)


def _scored(ids: list[str]) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            "opportunity_id": ids,
            "win_probability": [0.123456] * n,
            "band": ["D"] * n,
            "reasons_for": [REASONS] * n,
            "reasons_against": [""] * n,
            "next_best_milestone": ["Confirm the budget"] * n,
            "recommendation": ["qualify"] * n,
            "model_version": ["7"] * n,
        }
    )


@pytest.mark.parametrize(
    ("crm", "fixture", "id_column"),
    [
        ("salesforce", FIXTURES / "salesforce" / "opportunities.csv", "Id"),
        ("hubspot", FIXTURES / "hubspot" / "deals.csv", "Record ID"),
    ],
)
def test_the_upsert_file_carries_the_crms_own_ids_and_field_names(crm, fixture, id_column):
    """Round trip: the ids the mapping read from the CRM are the ids the upsert file gives back."""
    mapping = load_mapping(ROOT / "pipelines" / "mappings" / f"{crm}.yaml")
    assert mapping.write_back is not None
    deals = load_crm_data(fixture, mapping).opportunities
    upsert = crm_upsert(_scored(list(deals["opportunity_id"])), mapping.write_back, file="s.csv")
    export = pd.read_csv(fixture, dtype=str)
    assert upsert.columns[0] == id_column == mapping.write_back.id_field
    assert set(upsert[id_column]) == set(export[id_column])
    assert list(upsert.columns[1:]) == list(mapping.write_back.fields)
    probability = next(c for c in upsert.columns if c.lower().startswith("win_probability"))
    assert upsert[probability].iloc[0] == 12.3  # a percent field, rounded to one decimal
    recommendation = next(c for c in upsert.columns if "ecommendation" in c)
    assert upsert[recommendation].iloc[0] == "Qualify"  # the picklist's label


def test_salesforce_text_fields_stay_within_255_characters_cut_at_a_reason():
    mapping = load_mapping(ROOT / "pipelines" / "mappings" / "salesforce.yaml")
    assert mapping.write_back is not None
    upsert = crm_upsert(_scored(["0065g00000AbCdEAAV"]), mapping.write_back, file="s.csv")
    reasons = upsert["Win_Reasons__c"].iloc[0]
    assert len(REASONS) > 255 and len(reasons) <= 255 and reasons.endswith("…")
    assert reasons[:-1] in REASONS and reasons[:-1].endswith("pts)")  # whole reasons only
    assert shorten("short", 255) == "short" and shorten("abcdef", 4) == "abc…"


def test_ids_the_crm_cannot_match_are_refused_with_their_rows():
    write_back = WriteBack.model_validate(
        {
            "crm": "salesforce",
            "id_field": "Id",
            "id_pattern": "^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$",
            "fields": {"Win_Probability__c": {"from": "win_probability", "scale": 100}},
        }
    )
    scored = _scored(["0065g00000AbCdEAAV", "H-0123456789abcdef", "OPP-1", ""])
    with pytest.raises(InputError) as raised:
        crm_upsert(scored, write_back, file="scored.csv")
    text = str(raised.value)
    assert "1 scored deal(s) have an id winmodel generated" in text and "line 3" in text
    assert "1 scored deal(s) have an opportunity_id that is not a salesforce record id" in text
    assert "1 scored deal(s) have no opportunity_id" in text and "line 5" in text
    with pytest.raises(InputError, match="has no column 'win_chance'"):
        crm_upsert(
            _scored(["0065g00000AbCdEAAV"]),
            WriteBack.model_validate({"id_field": "Id", "fields": {"X": {"from": "win_chance"}}}),
            file="scored.csv",
        )
    with pytest.raises(ValueError, match="both the id_field"):
        WriteBack.model_validate({"id_field": "Id", "fields": {"Id": {"from": "band"}}})
