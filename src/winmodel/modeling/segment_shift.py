"""Segment shifts: a log-odds offset for a win dimension's value whose newest deals beat or miss the model.

When a segment's win rate moves (a market turns, a competitor gets stronger), the booster lags: it
learned the segment's past, and the maturity cut-off keeps the newest-created deals out of its
training. The holdout (the newest months' closes, a window like the calibration's) says whether the
shipped model lags: per value of each win dimension, the deals' wins against the model's calibrated
probabilities. A value whose gap is beyond chance (two-sided, Bonferroni over the values tested)
gets a penalised log-odds shift (a normal prior shrinks it towards 0 on few deals); with
``segment_shift.below_test: average`` (the default) a value under the test gets that shift times
the posterior chance that it moved (a Bayes factor against no shift, a prior of one value in all
those the deals hold), kept from 0.05 log-odds (real collapses showed z -1.95 to -3.14 on the
shipped model's scores where the test needs 3.2 to 3.4; benchmarks/quality.md). Those closes
are mostly deals created before the segment moved; a second stage (``evidence:
closed_and_created``) judges the holdout deals also *created* in the newest months against the
scores with the first shifts applied, and shifts again where they still differ. These are quick
closers, a selected sample: where lost deals often close within weeks ("no decision"), they lose
more than the model predicts in every segment, and the gap lands on a large one (measured on such
a world, with three guards tried and none kept: benchmarks/quality.md).

Each shift travels as one more tree of the booster, splitting on that value (a segment can have
one per stage; their sum is its shift): scores, what-if
re-scoring, TreeSHAP reasons (the dimension's own reason carries it), the pyfunc and Spark use it
unchanged (replays, :func:`winmodel.modeling.train.refit_at`, refit the recipe without shifts).
The training summary and the model card name every shift with its evidence; scored deals in a
shifted segment say so in their warnings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import norm

from winmodel.features.builder import FeatureBuilder
from winmodel.modeling.calibrate import Calibrator, logit, sigmoid
from winmodel.modeling.evaluate import binary_log_loss

#: Below this Platt slope the calibration map barely passes raw-score changes on: no shift tree.
MIN_PLATT_SLOPE = 0.25
#: A shift below the test (weighted by the chance that its segment moved) smaller than this many
#: log-odds is dropped: about a point of probability, not worth a tree and a warning.
MIN_WEIGHTED_SHIFT = 0.05


@dataclass(frozen=True)
class SegmentShift:
    """One shift of a segment: its evidence (the newest closes, or those also created lately), the shift."""

    dimension: str
    value: str
    deals: int
    won_rate: float
    predicted_rate: float
    z: float
    logit_shift: float
    #: The same shift in the booster's raw score (before calibration): what the added tree adds.
    raw_shift: float = 0.0
    #: Which deals were the evidence: "closed" (every deal closed in the newest months) or
    #: "created" (those also created in them, judged after the "closed" shifts).
    evidence: str = "closed"
    #: 1 for a value that passed the test; below it (``segment_shift.below_test: average``), the
    #: posterior chance that the segment moved, by which its penalised shift was multiplied.
    moved_chance: float = 1.0

    def describe(self) -> str:
        """Give 'region=apac: 507 newest closed deals won 46% against 31% predicted; shift +0.62 log-odds'."""
        if self.evidence == "created":
            return (
                f"{self.dimension}={self.value}: {self.deals:,} deals created and closed in the "
                f"newest months won {self.won_rate:.0%} against {self.predicted_rate:.0%} predicted "
                f"after the shift on the newest closes (z {self.z:+.1f}); scores there shifted a "
                f"further {self.logit_shift:+.2f} log-odds"
            )
        weighted = (
            ""
            if self.moved_chance >= 1.0
            else f": the {self.logit_shift / self.moved_chance:+.2f} its deals support times a "
            f"{self.moved_chance:.0%} chance that it moved (below the test)"
        )
        return (
            f"{self.dimension}={self.value}: {self.deals:,} newest closed deals won "
            f"{self.won_rate:.0%} against {self.predicted_rate:.0%} predicted (z {self.z:+.1f}); "
            f"scores there shifted {self.logit_shift:+.2f} log-odds{weighted}"
        )

    def to_dict(self) -> dict[str, object]:
        """Give the shift as plain JSON types (the model's metadata)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, object]) -> SegmentShift:
        """Give the shift a model's metadata records; fields a later winmodel added are left out."""
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in record.items() if key in known})  # type: ignore[arg-type]


def penalised_shift(base_logit: np.ndarray, won: np.ndarray, prior_sd: float) -> float:
    """Give the log-odds shift maximising the likelihood of ``won`` under a normal(0, prior_sd) prior."""
    shift = 0.0
    for _ in range(50):
        probability = sigmoid(base_logit + shift)
        gradient = float(np.sum(won - probability)) - shift / prior_sd**2
        curvature = float(np.sum(probability * (1 - probability))) + 1 / prior_sd**2
        step = gradient / curvature
        shift += float(np.clip(step, -2.0, 2.0))
        if abs(step) < 1e-8:
            break
    return shift


def chance_it_moved(
    base_logit: np.ndarray, won: np.ndarray, shift: float, prior_sd: float, prior: float
) -> float:
    """Give the posterior chance that a segment moved by ``shift`` (its penalised shift), against not at all.

    The Bayes factor of "a shift drawn from normal(0, prior_sd)" over "no shift", by the Laplace
    approximation at the penalised shift; ``prior`` is the chance that the segment moved at all.
    """

    probability = sigmoid(base_logit + shift)
    curvature = float(np.sum(probability * (1 - probability))) + 1 / prior_sd**2
    log_factor = (
        binary_log_loss(won, sigmoid(base_logit), normalize=False)
        - binary_log_loss(won, probability, normalize=False)
        - shift**2 / (2 * prior_sd**2)
        - 0.5 * np.log(prior_sd**2 * curvature)
    )
    log_odds = log_factor + np.log(prior / (1 - prior))
    return float(sigmoid(np.array(log_odds)))


def _gap_z(base_logit: np.ndarray, won: np.ndarray) -> float:
    probability = sigmoid(base_logit)
    spread = float(np.sqrt(np.sum(probability * (1 - probability))))
    return float(np.sum(won - probability)) / max(spread, 1e-9)


def find_segment_shifts(
    deals: pd.DataFrame,
    probability: np.ndarray,
    won: np.ndarray,
    dimensions: Sequence[str],
    *,
    min_deals: int = 30,
    alpha: float = 0.05,
    family_wise: bool = True,
    prior_sd: float = 1.0,
    below_test: bool = False,
) -> list[SegmentShift]:
    """Give the segments whose newest closed deals won more or less than predicted: beyond chance, or weighted by it.

    ``deals`` holds one row per closed deal of the newest months with the ``dimensions`` columns; ``probability``
    is the model's calibrated P(won) of each (out of sample), ``won`` its outcome. Values with at
    least ``min_deals`` deals are tested at level ``alpha`` (over all of them when ``family_wise``,
    else each); the strongest gaps are shifted first, each one re-tested
    with the shifts before it applied (segments overlap). With ``below_test``, a value that does not
    pass the test still gets its penalised shift times the posterior chance that it moved, when
    that is at least ``MIN_WEIGHTED_SHIFT`` log-odds. The prior chance is one in the number of
    values the deals hold (tested or not: any segment could have moved).
    """
    won = np.asarray(won, dtype=float)
    if len(won) < min_deals:
        return []
    base = logit(np.asarray(probability, dtype=float))

    candidates: list[tuple[str, str, np.ndarray]] = []
    segments = 0
    for dimension in [name for name in dimensions if name in deals]:
        values = deals[dimension].astype("str").to_numpy()
        known = deals[dimension].notna().to_numpy()
        for value in pd.unique(values[known]):
            segments += 1
            inside = known & (values == value)
            if inside.sum() >= min_deals:
                candidates.append((dimension, str(value), inside))
    if not candidates:
        return []
    # One segment alone is not a segment against the rest: nothing to weigh below the test.
    below_test = below_test and segments >= 2
    critical = float(norm.isf(alpha / (2 * (len(candidates) if family_wise else 1))))
    order = sorted(candidates, key=lambda c: -abs(_gap_z(base[c[2]], won[c[2]])))
    shifts = []
    for dimension, value, inside in order:
        z = _gap_z(base[inside], won[inside])
        passed = abs(z) > critical
        if not (passed or below_test):
            continue
        shift = penalised_shift(base[inside], won[inside], prior_sd)
        chance = (
            1.0
            if passed
            else chance_it_moved(base[inside], won[inside], shift, prior_sd, 1 / segments)
        )
        shift *= chance
        if abs(shift) < MIN_WEIGHTED_SHIFT and not passed:
            continue
        shifts.append(
            SegmentShift(
                dimension=dimension,
                value=value,
                deals=int(inside.sum()),
                won_rate=float(won[inside].mean()),
                predicted_rate=float(sigmoid(base[inside]).mean()),
                z=z,
                logit_shift=shift,
                moved_chance=chance,
            )
        )
        base = base + shift * inside
    return shifts


def raw_shift(calibrator: Calibrator, raw_logit: np.ndarray, logit_shift: float) -> float:
    """Give the raw-score shift that moves the segment's mean calibrated probability as ``logit_shift`` does.

    Platt: ``logit_shift / slope`` exactly. Isotonic: found by bisection on the segment's deals.
    0 when the calibration map is (nearly) flat: a shift there would need a raw offset of many
    log-odds, which would then dominate the deal's reasons.
    """
    if calibrator.method_ == "platt":
        slope = float(calibrator.slope_)
        return logit_shift / slope if slope >= MIN_PLATT_SLOPE else 0.0
    target = float(np.mean(sigmoid(logit(calibrator.transform(raw_logit)) + logit_shift)))
    low, high = -10.0, 10.0
    if not (
        calibrator.transform(raw_logit + low).mean()
        <= target
        <= calibrator.transform(raw_logit + high).mean()
    ):
        return 0.0
    for _ in range(60):
        middle = (low + high) / 2
        if calibrator.transform(raw_logit + middle).mean() < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def shift_tree(
    index: int, tree_index: int, code: int, shift: float, inside: int, outside: int
) -> str:
    """Give one LightGBM model-file tree: rows whose feature ``index`` holds category ``code`` get ``shift``, others 0.

    ``inside``/``outside`` are the training rows on each side (TreeSHAP's covers: the tree's
    expected value, and so the baseline, moves by the segment's share of the shift).
    """
    words = np.zeros(code // 32 + 1, dtype=np.uint64)
    words[code // 32] = np.uint64(1) << np.uint64(code % 32)
    total = inside + outside
    return "\n".join(
        [
            f"Tree={tree_index}",
            "num_leaves=2",
            "num_cat=1",
            f"split_feature={index}",
            "split_gain=0",
            "threshold=0",
            "decision_type=1",
            "left_child=-1",
            "right_child=-2",
            f"leaf_value={float(shift)!r} 0",
            f"leaf_weight={inside} {outside}",
            f"leaf_count={inside} {outside}",
            f"internal_value={float(shift) * inside / max(total, 1)!r}",
            f"internal_weight={total}",
            f"internal_count={total}",
            f"cat_boundaries=0 {len(words)}",
            "cat_threshold=" + " ".join(str(int(word)) for word in words),
            "is_linear=0",
            "shrinkage=1",
            "",
            "",
        ]
    )


def with_shift_trees(
    booster: lgb.Booster,
    builder: FeatureBuilder,
    shifts: Sequence[SegmentShift],
    training_matrix: np.ndarray,
) -> lgb.Booster:
    """Give ``booster`` with one tree per shift appended (a segment's rows get its raw shift)."""
    if not shifts:
        return booster
    text = booster.model_to_string()
    head, _, tail = text.partition("end of trees")
    # The tree sizes index the original trees only; LightGBM reads the trees without them.
    head = re.sub(r"^tree_sizes=.*\n", "", head, flags=re.MULTILINE)
    trees = []
    count = booster.num_trees()
    for number, shift in enumerate(shifts):
        index = builder.feature_names_.index(shift.dimension)
        code = builder.categories_[shift.dimension].index(shift.value)
        inside = int(np.sum(training_matrix[:, index] == code))
        trees.append(
            shift_tree(
                index,
                count + number,
                code,
                shift.raw_shift,
                inside,
                len(training_matrix) - inside,
            )
        )
    return lgb.Booster(
        model_str=head.rstrip("\n") + "\n\n" + "".join(trees) + "\nend of trees" + tail
    )


def shiftable_dimensions(builder: FeatureBuilder, dimensions: Sequence[str]) -> list[str]:
    """Give the win dimensions the model holds as unordered categories (a shift tree splits on them)."""
    return [name for name in dimensions if name in builder.categorical_features_]
