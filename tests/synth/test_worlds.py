"""Unseen worlds: seeded, varied, in the data contract, with an exact truth at every snapshot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from winmodel.data.dataset import load_crm_data
from winmodel.data.io import write_table_atomic
from winmodel.data.mapping import Mapping
from winmodel.features.rows import build_training_rows
from winmodel.settings import TrainConfig
from winmodel.synth.worlds import NEW_COMPETITOR, draw_world_spec, generate_world


@pytest.fixture(scope="module")
def snapshot_world():
    return generate_world(
        draw_world_spec(
            5, deals=2_000, snapshots=True, win_rate=0.4, label_noise=0.05, missing_share=0.2
        )
    )


def test_a_seed_gives_the_same_world_and_another_seed_another(snapshot_world) -> None:
    again = generate_world(snapshot_world.spec)
    pd.testing.assert_frame_equal(again.opportunities, snapshot_world.opportunities)
    pd.testing.assert_frame_equal(again.truth_snapshots, snapshot_world.truth_snapshots)
    other = generate_world(draw_world_spec(6, deals=2_000, snapshots=True))
    assert other.effects != snapshot_world.effects


def test_truth_starts_at_the_prior_and_is_calibrated_at_every_snapshot(snapshot_world) -> None:
    truth = snapshot_world.truth_snapshots
    first = truth.groupby("opportunity_id", sort=False).head(1).set_index("opportunity_id")
    prior = snapshot_world.truth.set_index("opportunity_id")["prior_probability"]
    # No milestone path yet on the day a deal is created: the truth is the prior.
    np.testing.assert_allclose(first["true_probability"], prior.reindex(first.index), rtol=1e-9)
    status = snapshot_world.opportunities.set_index("opportunity_id")["status"]
    closed = truth[truth["opportunity_id"].map(status).ne("open")]
    won = closed["opportunity_id"].map(status).eq("won").to_numpy()
    probability = closed["true_probability"].to_numpy()
    # Each closed deal's truth at its last snapshot matches the outcomes (within 3 s.e.).
    deals = snapshot_world.truth[snapshot_world.truth["status"].ne("open")]
    p = deals["true_probability"].to_numpy()
    deal_won = deals["status"].eq("won").to_numpy()
    assert abs(deal_won.mean() - p.mean()) < 3 * np.sqrt((p * (1 - p)).sum()) / len(p)
    # The path is informative: the truth separates won from lost far better than the prior.
    later = probability[won].mean() - probability[~won].mean()
    start = prior[status.ne("open")]
    start_gap = start[status.eq("won")].mean() - start[status.eq("lost")].mean()
    assert later > start_gap


def test_knobs_shape_the_world() -> None:
    flat = generate_world(
        draw_world_spec(
            8, deals=3_000, snapshots=False, win_rate=0.2, label_noise=0.0,
            drift="new_competitor", high_cardinality=True, missing_share=0.0,
        )
    )  # fmt: skip
    assert flat.snapshots is None and flat.truth_snapshots is None
    closed = flat.opportunities[flat.opportunities["status"].ne("open")]
    assert abs(closed["status"].eq("won").mean() - 0.2) < 0.05
    column, value, since = flat.drifted
    assert (column, value) == ("primary_competitor", NEW_COMPETITOR)
    newcomer = flat.opportunities[flat.opportunities["primary_competitor"].eq(NEW_COMPETITOR)]
    assert len(newcomer) > 0 and (newcomer["created_date"] >= since).all()
    wide = max(flat.opportunities[c].nunique() for c in ("industry", "primary_competitor"))
    assert wide > 50
    assert not flat.opportunities[["industry", "region", "deal_type"]].isna().any().any()


def test_missing_fields_are_blank_in_at_most_one_field_a_deal(snapshot_world) -> None:
    static = snapshot_world.opportunities[list(snapshot_world.fixed_fields)]
    blanks = static.isna().sum(axis=1)
    assert blanks.max() == 1
    assert 0.1 < (blanks > 0).mean() < 0.3


def test_unknown_knob_is_refused() -> None:
    with pytest.raises(TypeError, match="deal_count"):
        draw_world_spec(1, deal_count=10)


def test_a_world_is_a_valid_export_that_trains(tmp_path: Path, snapshot_world) -> None:
    write_table_atomic(snapshot_world.opportunities, tmp_path / "opportunities.parquet")
    write_table_atomic(snapshot_world.snapshots, tmp_path / "snapshots.parquet")
    crm = load_crm_data(tmp_path, Mapping(fixed_fields=list(snapshot_world.fixed_fields)))
    rows, _ = build_training_rows(crm, TrainConfig())
    closed = snapshot_world.opportunities["status"].ne("open").sum()
    assert rows["opportunity_id"].nunique() == closed
    assert (rows["as_of_date"] < rows["close_date"]).all()
