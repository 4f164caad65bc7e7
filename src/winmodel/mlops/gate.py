"""The promotion gate: whether a challenger may replace the champion, and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from winmodel.modeling.evaluate import pooled_log_loss
from winmodel.settings import GateSettings

if TYPE_CHECKING:
    import pandas as pd

    from winmodel.modeling.train import TrainingResult


@dataclass(frozen=True)
class GateDecision:
    """Whether the challenger becomes champion, and why."""

    promote: bool
    reason: str
    challenger: dict[str, float]
    champion: dict[str, float] | None


@dataclass(frozen=True)
class GateInputs:
    """What the gate judges a training on, before any champion is compared."""

    #: The challenger's holdout metrics (brier, roc_auc, log_loss, ece).
    challenger: dict[str, float]
    base_rate_brier: float | None
    closed_deals: int
    #: Each method's log loss over every time-ordered fold; None unless the history is small (or
    #: the champion saw the holdout).
    pooled: dict[str, float] | None


def gate_inputs(
    result: TrainingResult,
    rows: pd.DataFrame,
    settings: GateSettings,
    champion_saw_holdout: bool = False,
) -> GateInputs:
    """Give the gate's inputs from a training's result and the rows it was trained on."""
    holdout = result.holdout_metrics.set_index("method")
    # One row of the metrics table: the metric names and their values.
    challenger = cast(
        dict[str, float],
        holdout.loc["winmodel"][["brier", "roc_auc", "log_loss", "ece"]].astype(float).to_dict(),
    )
    briers = holdout["brier"]
    base_rate_brier = float(briers["base_rate"]) if "base_rate" in briers else None
    closed_deals = int(rows.loc[rows["is_last_before_close"], "opportunity_id"].nunique())
    pooled = (
        pooled_log_loss(result.backtest)
        if closed_deals < settings.small_data_deals or champion_saw_holdout
        else None
    )
    return GateInputs(challenger, base_rate_brier, closed_deals, pooled)


def decide_promotion(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    settings: GateSettings,
    base_rate_brier: float | None = None,
    pooled: dict[str, float] | None = None,
) -> GateDecision:
    """Give the gate's decision from holdout metrics of both models on the same deals.

    A challenger whose Brier score is worse than the base rate's on the same holdout
    (``base_rate_brier``) learned nothing usable and is refused, unless
    ``require_beats_base_rate`` is off. Otherwise it is promoted when there is no
    champion, or when its Brier score is not worse than the champion's by more than
    ``max_brier_increase`` (relative) and its AUC not lower by more than ``max_auc_drop``.
    With ``pooled`` (small data: :func:`winmodel.modeling.evaluate.pooled_log_loss` over every time-ordered fold), a
    challenger whose pooled log loss is not below the base rate's is refused as well.
    """
    if (
        settings.require_beats_base_rate
        and pooled
        and "winmodel" in pooled
        and "base_rate" in pooled
        and pooled["winmodel"] >= pooled["base_rate"]
    ):
        return GateDecision(
            False,
            (
                f"over every time-ordered fold the challenger's log loss "
                f"{pooled['winmodel']:.4f} is not better than the base rate's "
                f"{pooled['base_rate']:.4f}; the history is too small or too noisy for a model "
                "to beat always predicting the win rate (set gate.require_beats_base_rate: false "
                "to register it anyway)"
            ),
            challenger,
            champion,
        )
    if (
        settings.require_beats_base_rate
        and base_rate_brier is not None
        and challenger["brier"] > base_rate_brier
    ):
        return GateDecision(
            False,
            (
                f"challenger does not beat the base rate: Brier {challenger['brier']:.4f} vs "
                f"{base_rate_brier:.4f} for always predicting the training win rate; the "
                "data shows no usable signal (set gate.require_beats_base_rate: false to "
                "register it anyway)"
            ),
            challenger,
            champion,
        )
    if champion is not None and champion.get("too_few_unseen"):
        # The champion saw (almost) every holdout deal: comparing there would flatter it.
        unseen = int(champion.get("unseen_deals", 0))
        if pooled and "winmodel" in pooled and "base_rate" in pooled:
            return _decide_on_backtest(challenger, champion, settings, pooled, unseen)
    if champion is None or champion.get("too_few_unseen"):
        return GateDecision(True, "no champion yet", challenger, None)
    if champion.get("unusable"):
        if settings.replace_incompatible_champion:
            return GateDecision(
                True,
                "the champion cannot score today's data and "
                "gate.replace_incompatible_champion is set",
                challenger,
                champion,
            )
        return GateDecision(
            False,
            "the champion cannot score today's data (its input columns differ), so "
            "the two cannot be compared; set gate.replace_incompatible_champion: true to "
            "replace it deliberately",
            challenger,
            champion,
        )
    brier_limit = champion["brier"] * (1 + settings.max_brier_increase)
    auc_limit = champion["roc_auc"] - settings.max_auc_drop
    failures = []
    if challenger["brier"] > brier_limit:
        failures.append(
            f"Brier {challenger['brier']:.4f} > limit {brier_limit:.4f} "
            f"(champion {champion['brier']:.4f} + {settings.max_brier_increase:.0%})"
        )
    if challenger["roc_auc"] < auc_limit:
        failures.append(
            f"AUC {challenger['roc_auc']:.4f} < limit {auc_limit:.4f} "
            f"(champion {champion['roc_auc']:.4f} - {settings.max_auc_drop})"
        )
    if failures:
        return GateDecision(
            False,
            "challenger is worse than the champion: " + "; ".join(failures),
            challenger,
            champion,
        )
    return GateDecision(
        True,
        (
            f"challenger is not worse: Brier {challenger['brier']:.4f} vs "
            f"{champion['brier']:.4f}, AUC {challenger['roc_auc']:.4f} vs "
            f"{champion['roc_auc']:.4f}"
        ),
        challenger,
        champion,
    )


def identity_mismatch(
    challenger: dict[str, str],
    champion: dict[str, str] | None,
    *,
    name: str,
    champion_version: str,
) -> str | None:
    """Give why the champion was trained on other data than the challenger (None when it was not).

    Identities are :func:`winmodel.data.dataset.data_identity`: the mapping's name and the
    contract columns present. A champion without a recorded identity (winmodel 0.2 or older) is
    taken as the same job's. The message says how to register the new model under its own name.
    """
    if champion is None or champion.get("key") == challenger.get("key"):
        return None
    differences = []
    if champion.get("mapping") != challenger.get("mapping"):
        differences.append(
            f"mapping '{challenger.get('mapping')}' vs the champion's '{champion.get('mapping')}'"
        )
    for table in ("opportunities", "snapshots"):
        ours = set(filter(None, challenger.get(f"{table}_columns", "").split(",")))
        theirs = set(filter(None, champion.get(f"{table}_columns", "").split(",")))
        if ours - theirs:
            differences.append(
                f"{table} columns only in this data: {', '.join(sorted(ours - theirs))}"
            )
        if theirs - ours:
            differences.append(
                f"{table} columns only in the champion's data: {', '.join(sorted(theirs - ours))}"
            )
    return (
        f"the champion {name}@champion (version {champion_version}) was trained on other data ("
        + ("; ".join(differences) or "another data identity")
        + "), so the two cannot be compared and it is kept. To keep a model for this data, register "
        "it under its own name: `winmodel train ... --model-name NAME` (or tracking.registered_model: "
        "NAME in the config; its champion is exported to models/NAME). If this is the same job and its "
        "export changed, set gate.replace_incompatible_champion: true once to replace the champion"
    )


def _decide_on_backtest(
    challenger: dict[str, float],
    champion: dict[str, float],
    settings: GateSettings,
    pooled: dict[str, float],
    unseen: int,
) -> GateDecision:
    """Give the decision from the log loss over every time-ordered fold (too few unseen deals).

    The challenger must beat the base rate there (unless ``require_beats_base_rate`` is off) and,
    when the champion recorded its own backtest (``champion["backtest_log_loss"]`` and
    ``champion["backtest_base_rate_log_loss"]``), its log loss as a share of the base rate's may
    exceed the champion's share by at most ``max_backtest_log_loss_increase`` (relative). Shares,
    not raw figures: a champion trained on an earlier export was backtested on other months, with
    another base rate; on the same export both are the same folds, so a worse recipe cannot pass.
    """
    ours, base = pooled["winmodel"], pooled["base_rate"]
    failures = []
    if settings.require_beats_base_rate and ours >= base:
        failures.append(
            f"not better than the base rate's {base:.4f} (set gate.require_beats_base_rate: "
            "false to register it anyway)"
        )
    theirs = champion.get("backtest_log_loss")
    their_base = champion.get("backtest_base_rate_log_loss")
    share = ours / base if base > 0 else float("inf")
    comparison = ""
    if theirs is not None and their_base:
        their_share = theirs / their_base
        limit = their_share * (1 + settings.max_backtest_log_loss_increase)
        comparison = (
            f"{share:.1%} of the base rate's log loss against the champion's {their_share:.1%} "
            f"({theirs:.4f} of {their_base:.4f}; limit {limit:.1%})"
        )
        if share > limit:
            failures.append(f"worse than the champion: {comparison}")
    reason = (
        f"only {unseen} holdout deals closed after the champion's training cut-off, too few to "
        f"compare the two, so the backtest decides: log loss over every time-ordered fold "
        f"{ours:.4f}, the base rate's {base:.4f}"
    )
    if failures:
        return GateDecision(
            False,
            f"challenger is worse on the backtest — {reason}; " + "; ".join(failures),
            challenger,
            champion,
        )
    return GateDecision(
        True,
        f"{reason}; "
        + (
            f"not worse: {comparison}"
            if comparison
            else "the champion recorded no backtest to compare with"
        ),
        challenger,
        champion,
    )
