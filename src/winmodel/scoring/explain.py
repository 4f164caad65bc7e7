"""Explanations: exact TreeSHAP values, grouped into the business items a seller knows, in probability points.

From log-odds to points
-----------------------
TreeSHAP splits a deal's log-odds exactly: ``logit = base + sum(phi_i)``. A
seller reads probability, not log-odds, so each item's share is carried over
linearly along the same path::

    p = sigmoid(logit), p0 = sigmoid(base)
    points_i = 100 * phi_i * (p - p0) / (logit - base)

The points of all items then add up to ``100 * (p - p0)`` and, with the
*model baseline* ``100 * p0``, to the deal's **uncalibrated** probability in
points. Calibration is applied on top of that probability; reasons explain the
booster, the reported ``win_probability`` is the calibrated one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from winmodel.features.builder import ITEM_OF_FEATURE
from winmodel.features.milestones import MILESTONES
from winmodel.modeling.calibrate import sigmoid
from winmodel.modeling.model import WinModel

_FLAT = 1e-9

#: Features a milestone being met can change besides its own columns.
WHAT_IF_MOVES = frozenset(
    {
        "milestones_met",
        "milestone_share",
        "milestone_velocity",
        "days_since_last_milestone",
        "champion_engagement_trend",
    }
)


def item_matrix(model: WinModel) -> tuple[np.ndarray, list[str]]:
    """Give the 0/1 matrix (features x items) that sums feature contributions into business items.

    Contract features are grouped as this version of winmodel words them (ITEM_OF_FEATURE: one
    business concept per item), whatever grouping a saved model recorded; extra features keep theirs.
    """
    item_of = {
        name: ITEM_OF_FEATURE.get(name, model.feature_builder.items_[name])
        for name in model.feature_names
    }
    items = list(dict.fromkeys(item_of[name] for name in model.feature_names))
    grouping = np.zeros((len(model.feature_names), len(items)))
    for row, name in enumerate(model.feature_names):
        grouping[row, items.index(item_of[name])] = 1.0
    return grouping, items


def points_from_contributions(
    contributions: np.ndarray, grouping: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Give (item points, baseline points, uncalibrated probability in points) from log-odds contributions.

    ``contributions`` is n x (features + 1) with the base value last, as from
    LightGBM's ``pred_contrib``. Item points add up, with the baseline points,
    to the uncalibrated probability in points (exactly, up to float rounding).
    """
    phi = contributions[:, :-1]
    base = contributions[:, -1]
    logit = base + phi.sum(axis=1)
    probability = sigmoid(logit)
    base_probability = sigmoid(base)
    delta = logit - base
    slope = np.where(
        np.abs(delta) > _FLAT,
        (probability - base_probability) / np.where(np.abs(delta) > _FLAT, delta, 1.0),
        base_probability * (1 - base_probability),
    )
    item_phi = phi @ grouping
    return 100.0 * item_phi * slope[:, None], 100.0 * base_probability, 100.0 * probability


def freed_directions(model: WinModel) -> dict[str, int]:
    """Give the features whose business direction training left free, with that direction.

    Training frees a direction where the company's closed deals clearly say the opposite
    (modeling.train.checked_monotone; its summary's ``monotone:`` lines) and saves them
    (``monotone_freed``). Models saved before that: the constraints used against the builder's.
    """
    if "monotone_freed" in model.metadata:
        return {str(k): int(v) for k, v in model.metadata["monotone_freed"].items()}
    saved = model.metadata.get("monotone_constraints") or []
    if not model.metadata.get("monotone") or len(saved) != len(model.feature_names):
        return {}
    usual = model.feature_builder.monotone_constraints()
    return {
        name: direction
        for name, direction, kept in zip(model.feature_names, usual, saved, strict=True)
        if direction and not kept
    }


def reversed_rule(
    model: WinModel, matrix: np.ndarray, contributions: np.ndarray, grouping: np.ndarray
) -> tuple[np.ndarray, list[str], list[int]] | None:
    """Give per deal and item the freed feature that makes the item's effect run against the usual rule.

    A deal's item (the columns of ``grouping``, from :func:`item_matrix`) is marked when one of its
    yes / no features had its business direction freed (:func:`freed_directions`), that feature's
    contribution runs against the rule for the deal's value (a confirmed budget lowering the
    score, an unconfirmed one raising it), and it makes at least half of the item's effect, with
    the same sign. Only yes / no features: TreeSHAP measures against the average deal, so for a
    graded one (urgency, champion level, a count) a level below the average lowers the score under
    the usual rule too, and no note could tell the two apart. Gives (n x items positions into the
    features listed, -1 for none; those features; their usual directions), or None when no such
    feature was freed (the usual case: nothing to mark).
    """
    kinds = model.feature_builder.kinds_
    freed = {
        name: direction
        for name, direction in freed_directions(model).items()
        if name in model.feature_names and kinds.get(name) == "bool"
    }
    if not freed:
        return None
    marks = np.full((len(matrix), grouping.shape[1]), -1, dtype=np.int16)
    strength = np.zeros(marks.shape, dtype=np.float32)
    for position, (name, direction) in enumerate(freed.items()):
        column = model.feature_names.index(name)
        item = int(np.argmax(grouping[column]))
        members = np.flatnonzero(grouping[:, item])
        value, phi = matrix[:, column], contributions[:, column]
        whole = contributions[:, members].sum(axis=1)
        present = np.where(value > 0, 1.0, -1.0)
        against = (
            ~np.isnan(value)
            & (phi * direction * present < 0)
            & (phi * whole > 0)
            & (np.abs(phi) >= 0.5 * np.abs(whole))
            & (np.abs(phi) > strength[:, item])
        )
        marks[against, item] = position
        strength[against, item] = np.abs(phi[against])
    return marks, list(freed), list(freed.values())


def top_items(
    points: np.ndarray, count: int, eligible: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Give the indices of the ``count`` largest positive and largest negative items per row (-1 where none).

    ``eligible`` (n x items, bool) leaves out items whose sentence would read against the sign of
    their effect (see :data:`winmodel.scoring.reasons.CASE_POLARITY`); their points stay in
    "other factors".
    """
    n, m = points.shape
    count = min(count, m)
    ranked = points if eligible is None else np.where(eligible, points, 0.0)
    order_for = np.argsort(-ranked, axis=1, kind="stable")[:, :count]
    order_against = np.argsort(ranked, axis=1, kind="stable")[:, :count]
    rows = np.arange(n)[:, None]
    # A reason shows at least 0.1 point (one decimal): smaller effects stay in "other factors".
    positive = np.where(ranked[rows, order_for] >= 0.05, order_for, -1)
    negative = np.where(ranked[rows, order_against] <= -0.05, order_against, -1)
    return positive, negative


def shown_points(points: np.ndarray) -> np.ndarray:
    """Give points as a reason shows them: one decimal."""
    shown: np.ndarray = np.round(points, 1)
    return shown


def shown_sum(points: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Give per row the sum of the reasons shown (``chosen``: item indices, -1 for none), as shown."""
    rows = np.arange(len(points))[:, None]
    taken = np.where(chosen >= 0, shown_points(points[rows, np.maximum(chosen, 0)]), 0.0)
    total: np.ndarray = np.round(taken.sum(axis=1), 1) + 0.0  # + 0.0: no "-0.0"
    return total


@dataclass(frozen=True)
class Balance:
    """The terms of a deal's points balance as shown (one decimal each), per row.

    baseline + shown_for + shown_against + other + calibration = total, the probability in points
    to one decimal (within 0.05 points of the file's six decimals).
    """

    baseline: np.ndarray
    #: The sums of the reasons shown for and against.
    shown_for: np.ndarray
    shown_against: np.ndarray
    #: Every item not shown: the booster's probability less the baseline and the shown reasons.
    other: np.ndarray
    #: The calibrated probability less the booster's, and the rounding of the total to one decimal.
    calibration: np.ndarray
    total: np.ndarray


def points_balance(
    points: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    baseline_points: np.ndarray,
    raw_points: np.ndarray,
    probability: np.ndarray,
) -> Balance:
    """Give the balance of the reasons shown (``positive`` / ``negative``: item indices, n x k, -1 for none).

    Every term is rounded as shown, and calibration takes the rounding, so the line adds up to its
    total exactly.
    """
    shown_for, shown_against = shown_sum(points, positive), shown_sum(points, negative)
    reasons = shown_for + shown_against
    baseline = np.round(baseline_points, 1)
    other = np.round(raw_points - baseline - reasons, 1) + 0.0  # + 0.0: no "-0.0"
    total = np.round(100.0 * np.round(probability, 6), 1)
    calibration = np.round(total - baseline - reasons - other, 1) + 0.0
    return Balance(baseline, shown_for, shown_against, other, calibration, total)


def milestone_uplifts(
    model: WinModel,
    rows: pd.DataFrame,
    probability: np.ndarray,
    threads: int = 0,
    matrix: np.ndarray | None = None,
    raw_logit: np.ndarray | None = None,
) -> pd.DataFrame:
    """Give, per deal and unmet milestone, the calibrated probability gain (points) of re-scoring with it met.

    Columns are milestone keys; NaN where the milestone is already met or the
    model cannot see it. Only the trees that split on a changed feature are
    re-scored. An association learned from past deals, not a promise.
    """
    used = set(model.feature_names)
    matrix = model.matrix(rows) if matrix is None else matrix
    raw_logit = model.raw_logit_of_matrix(matrix, threads) if raw_logit is None else raw_logit
    uplifts = {}
    for milestone in MILESTONES:
        if not any(column in used for column in milestone.columns) or not any(
            c in rows for c in milestone.columns
        ):
            continue
        unmet = ~milestone.met(rows).to_numpy()
        gain = np.full(len(rows), np.nan)
        if unmet.any():
            # Only the features a milestone can move are rebuilt; the rest is copied.
            moved = [
                name
                for name in model.feature_names
                if name in milestone.columns or name in WHAT_IF_MOVES
            ]
            positions = [model.feature_names.index(name) for name in moved]
            changed = matrix[unmet].copy()
            rebuilt = model.feature_builder.transform(milestone.mark_met(rows[unmet]), only=moved)
            changed[:, positions] = rebuilt[:, positions]
            raw = model.what_if_raw_logit(matrix[unmet], changed, raw_logit[unmet])
            gain[unmet] = 100.0 * (model.calibrator.transform(raw) - probability[unmet])
        uplifts[milestone.key] = gain
    return pd.DataFrame(uplifts, index=rows.index)


def next_best_milestone(uplifts: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Give per deal the unmet milestone with the largest positive uplift ('' if none) and its uplift in points."""
    if uplifts.empty:
        empty = pd.Series("", index=uplifts.index, dtype="str")
        return empty, pd.Series(0.0, index=uplifts.index)
    values = uplifts.to_numpy()
    filled = np.where(np.isnan(values), -np.inf, values)
    best = filled.argmax(axis=1)
    gain = filled[np.arange(len(filled)), best]
    keys = np.asarray(uplifts.columns)[best]
    has = gain > 0
    labels = np.where(has, keys, "")
    return (
        pd.Series(labels, index=uplifts.index, dtype="str"),
        pd.Series(np.where(has, gain, 0.0), index=uplifts.index),
    )


#: The next best milestone's key when the step is engaging a champion the deal does not have:
#: "Find a champion and get them actively engaged", not "Get the champion actively engaged"
#: beside the reason "No champion". The what-if is the same (engagement raised to active).
FIND_CHAMPION = "champion_engagement_no_champion"


def seller_step(milestone: pd.Series, rows: pd.DataFrame) -> pd.Series:
    """Give the next best milestone keys as a seller acts on them (a deal with no champion finds one first)."""
    if "champion_role" not in rows:
        return milestone
    no_champion = rows["champion_role"].astype("str").str.lower().eq("none").to_numpy()
    engage = milestone.eq("champion_engagement").to_numpy()
    return milestone.mask(pd.Series(engage & no_champion, index=milestone.index), FIND_CHAMPION)
