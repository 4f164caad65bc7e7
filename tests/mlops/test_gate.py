"""Small-data gate: log loss pooled over every time-ordered fold must beat the base rate."""

from __future__ import annotations

import pandas as pd
import pytest

from winmodel.data.mapping import Mapping
from winmodel.mlops.gate import decide_promotion
from winmodel.modeling.evaluate import HEADLINE, pooled_log_loss
from winmodel.modeling.train import train_win_model
from winmodel.settings import GateSettings, TrainConfig
from winmodel.synth.worlds import draw_world_spec, generate_world

CHALLENGER = {"brier": 0.2, "roc_auc": 0.7, "log_loss": 0.6, "ece": 0.02}


def test_pooled_log_loss_weighs_folds_by_their_deals() -> None:
    backtest = pd.DataFrame(
        {
            "slice": ["backtest", "backtest", "holdout", "holdout", "holdout"],
            "method": ["winmodel", "base_rate", "winmodel", "base_rate", "winmodel"],
            "moment": [HEADLINE, HEADLINE, HEADLINE, HEADLINE, "50 % of life"],
            "log_loss": [0.5, 0.6, 0.8, 0.7, 0.1],
            "deals": [100.0, 100.0, 300.0, 300.0, 300.0],
        }
    )
    pooled = pooled_log_loss(backtest)
    assert pooled == pytest.approx({"winmodel": 0.725, "base_rate": 0.675})
    refused = decide_promotion(CHALLENGER, None, GateSettings(), 0.25, pooled)
    assert not refused.promote and "over every time-ordered fold" in refused.reason
    assert decide_promotion(CHALLENGER, None, GateSettings(), 0.25, None).promote


def _small_export_rows(tmp_path, signal: float):
    from winmodel.data.dataset import load_crm_data
    from winmodel.data.io import write_table_atomic
    from winmodel.features.rows import build_training_rows

    world = generate_world(
        draw_world_spec(
            61, deals=300, snapshots=False, win_rate=0.45, signal=signal, months=24,
            label_noise=0.0, drift="none", missing_share=0.0,
        )
    )  # fmt: skip
    write_table_atomic(world.opportunities, tmp_path / "opportunities.parquet")
    crm = load_crm_data(tmp_path, Mapping(fixed_fields=list(world.fixed_fields)))
    rows, _ = build_training_rows(crm, TrainConfig())
    return rows


@pytest.mark.parametrize(("signal", "promoted"), [(0.0, False), (2.5, True)])
def test_a_300_deal_export_is_judged_over_every_fold(tmp_path, signal, promoted) -> None:
    rows = _small_export_rows(tmp_path, signal)
    config = TrainConfig.model_validate(
        {"training": {"min_deals_per_class": 20}, "splits": {"peers": False}}
    )
    said: list[str] = []
    result = train_win_model(rows, config, progress=said.append)
    # Small-data mode: the shapes are chosen on every backtest fold, not only the newest two.
    assert any("the search judges every backtest fold" in line for line in said)
    pooled = pooled_log_loss(result.backtest)
    # More than the one holdout: at least one backtest fold is pooled with it.
    assert (result.backtest["slice"] != "holdout").any()
    holdout = result.holdout_metrics.set_index("method")
    decision = decide_promotion(
        CHALLENGER | {"brier": float(holdout.loc["winmodel", "brier"])},
        None,
        config.gate,
        float(holdout.loc["base_rate", "brier"]),
        pooled,
    )
    assert decision.promote is promoted


def test_a_champion_that_saw_the_holdout_is_not_compared_there() -> None:
    champion = {"too_few_unseen": 1.0, "unseen_deals": 12.0}
    better = {"winmodel": 0.55, "base_rate": 0.66}
    promoted = decide_promotion(CHALLENGER, champion, GateSettings(), 0.25, better)
    assert promoted.promote and "the backtest decides" in promoted.reason
    assert "only 12 holdout deals" in promoted.reason
    worse = {"winmodel": 0.70, "base_rate": 0.66}
    assert not decide_promotion(CHALLENGER, champion, GateSettings(), 0.25, worse).promote


def test_on_the_backtest_a_challenger_worse_than_the_champions_record_is_refused() -> None:
    champion = {
        "too_few_unseen": 1.0,
        "unseen_deals": 3.0,
        "backtest_log_loss": 0.50,
        "backtest_base_rate_log_loss": 0.66,
    }
    base = {"base_rate": 0.66}
    worse = decide_promotion(CHALLENGER, champion, GateSettings(), 0.25, base | {"winmodel": 0.55})
    assert not worse.promote
    assert "worse than the champion: 83.3% of the base rate's log loss" in worse.reason
    assert "the champion's 75.8%" in worse.reason and "the backtest decides" in worse.reason
    within = decide_promotion(
        CHALLENGER, champion, GateSettings(), 0.25, base | {"winmodel": 0.509}
    )
    assert within.promote and "not worse: 77.1% of the base rate's log loss" in within.reason
    strict = GateSettings(max_backtest_log_loss_increase=0.0)
    assert not decide_promotion(
        CHALLENGER, champion, strict, 0.25, base | {"winmodel": 0.509}
    ).promote
    # Another export, another base rate: the shares are compared, not the raw figures.
    harder = {"winmodel": 0.53, "base_rate": 0.70}
    assert decide_promotion(CHALLENGER, champion, GateSettings(), 0.25, harder).promote
    # A champion without a recorded backtest: the base rate alone decides, and the reason says so.
    bare = {"too_few_unseen": 1.0, "unseen_deals": 3.0}
    alone = decide_promotion(CHALLENGER, bare, GateSettings(), 0.25, base | {"winmodel": 0.6})
    assert alone.promote and "the champion recorded no backtest to compare with" in alone.reason
