"""Tests of the metrics (winmodel.modeling.evaluate): the expected-Brier oracle share on open deals, and the figures of closed ones."""

from __future__ import annotations

import numpy as np
import pytest

from winmodel.modeling.evaluate import (
    binary_log_loss,
    classification_metrics,
    expected_brier,
    expected_brier_oracle_share,
    reliability_table,
)

TRUTH = np.array([0.2, 0.8])


def test_the_truth_itself_reaches_the_whole_oracle_share() -> None:
    assert expected_brier_oracle_share(TRUTH, TRUTH, 0.5) == pytest.approx(1.0)


def test_the_base_rate_reaches_none_of_it() -> None:
    assert expected_brier_oracle_share(np.full(2, 0.5), TRUTH, 0.5) == pytest.approx(0.0)


def test_a_hand_case() -> None:
    # mean((p - q)^2) = (0.1^2 + 0.2^2) / 2 = 0.025; mean((b - q)^2) = (0.3^2 + 0.3^2) / 2 = 0.09.
    probability = np.array([0.3, 0.6])
    assert expected_brier_oracle_share(probability, TRUTH, 0.5) == pytest.approx(1 - 0.025 / 0.09)
    # E[Brier] = mean((p - q)^2 + q (1 - q)) = 0.025 + 0.16.
    assert expected_brier(probability, TRUTH) == pytest.approx(0.185)
    # Worse than the base rate: negative.
    assert expected_brier_oracle_share(np.array([0.9, 0.1]), TRUTH, 0.5) < 0


def test_expected_brier_is_the_mean_brier_over_simulated_outcomes() -> None:
    rng = np.random.default_rng(0)
    q, p = rng.uniform(0, 1, 50), rng.uniform(0, 1, 50)
    outcomes = rng.random((200_000, 50)) < q
    assert expected_brier(p, q) == pytest.approx(np.mean((p - outcomes) ** 2), abs=2e-4)


def test_noise_of_a_simulated_truth_is_taken_out() -> None:
    """With q estimated from 50 futures per deal, the corrected share is near the exact one; the raw one is low."""
    rng = np.random.default_rng(1)
    q = rng.beta(1.5, 3.0, 4_000)
    p = np.clip(q + rng.normal(0.0, 0.08, q.size), 0, 1)
    exact = expected_brier_oracle_share(p, q, 0.35)
    replicates = 50
    estimated = rng.binomial(replicates, q) / replicates
    corrected = expected_brier_oracle_share(p, estimated, 0.35, replicates=replicates)
    raw = expected_brier_oracle_share(p, estimated, 0.35)
    assert abs(corrected - exact) < 0.015
    assert raw < exact - 0.03


def test_refuses_misaligned_or_empty_inputs() -> None:
    with pytest.raises(ValueError, match="one length"):
        expected_brier_oracle_share(np.array([0.1]), TRUTH, 0.5)
    with pytest.raises(ValueError, match="one length"):
        expected_brier(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="replicates"):
        expected_brier_oracle_share(TRUTH, TRUTH, 0.5, replicates=1)
    assert np.isnan(expected_brier_oracle_share(np.full(2, 0.5), np.full(2, 0.5), 0.5))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_metrics_equal_scikit_learns(weighted: bool, ties: bool) -> None:
    """The numpy metrics give scikit-learn's figures: tied scores, weights, probabilities at 0 and 1."""
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    rng = np.random.default_rng(7)
    probability = rng.uniform(0, 1, 3_000)
    if ties:  # a booster's few distinct scores
        probability = np.round(probability * 12) / 12
    won = (rng.random(3_000) < probability).astype(int)
    weight = rng.uniform(0.1, 3, 3_000) if weighted else None
    metrics = classification_metrics(won, probability, weight)
    clipped = np.clip(probability, 1e-6, 1 - 1e-6)
    expected = {
        "roc_auc": roc_auc_score(won, clipped, sample_weight=weight),
        "pr_auc": average_precision_score(won, clipped, sample_weight=weight),
        "brier": brier_score_loss(won, clipped, sample_weight=weight),
        "log_loss": log_loss(won, clipped, sample_weight=weight, labels=[0, 1]),
        "ece": (
            lambda t: (
                (t["weight"] * (t["predicted"] - t["observed"]).abs()).sum() / t["weight"].sum()
            )
        )(reliability_table(won, clipped, weight)),
    }
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name
    # The log loss unclipped and summed, as the segment shift's evidence uses it.
    assert binary_log_loss(won, probability, normalize=False) == pytest.approx(
        log_loss(won, probability, normalize=False, labels=[0, 1]), rel=1e-12
    )


def test_a_single_class_has_no_ranking_figures() -> None:
    metrics = classification_metrics(np.ones(5, dtype=int), np.full(5, 0.7))
    assert np.isnan(metrics["roc_auc"]) and np.isnan(metrics["pr_auc"])
    assert metrics["brier"] == pytest.approx(0.09)
    assert metrics["log_loss"] == pytest.approx(-np.log(0.7))


def test_rows_that_weigh_nothing_leave_the_figures_alone() -> None:
    """The top-scored deals weighing 0 (a last_snapshot_share of 1 gives earlier snapshots no weight)."""
    won = np.array([1, 1, 0, 1, 0, 0] * 5)
    probability = np.array([0.95, 0.8, 0.6, 0.5, 0.3, 0.2] * 5)
    weight = np.where(probability == 0.95, 0.0, 1.0)
    kept = weight > 0
    with_zeros = classification_metrics(won, probability, weight)
    without = classification_metrics(won[kept], probability[kept])
    for name in ("roc_auc", "pr_auc", "brier", "log_loss", "ece", "top_decile_lift"):
        assert with_zeros[name] == pytest.approx(without[name], rel=1e-12), name
    # Only weightless rows above the first tenth of the weight: the lift is still a number.
    few = np.r_[np.zeros(5), np.ones(25)]
    assert classification_metrics(won, probability, few)["top_decile_lift"] == pytest.approx(
        classification_metrics(won[5:], probability[5:])["top_decile_lift"]
    )


def test_a_nan_probability_is_refused() -> None:
    with pytest.raises(ValueError, match="1 probabilities are NaN"):
        classification_metrics(np.array([0, 1]), np.array([0.3, np.nan]))
