"""The leakage guard: features that give the outcome away are refused before any fit.

Three checks, each reported with its figure:

* **by name** — columns a CRM sets at close (status, stage, CRM probability,
  forecast category, close value, durations measured through close) are refused
  outright, unless they are contract features built point-in-time;
* **univariate AUC** — a feature that alone ranks won above lost with
  AUC >= 0.97 (categories judged out-of-fold, so a high-cardinality id cannot
  fake it) is excluded;
* **one-class values** — a value (or blank) that covers a large share of one
  class and almost none of the other (a checkbox filled only on won deals, a close
  value of 0 on every lost deal, a free-text note that says "won") is excluded.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from winmodel.data import contract
from winmodel.features.milestones import MILESTONE_WAITS

#: Name patterns of columns known to be set at or after close, with the reason a person reads.
REFUSED_NAMES: tuple[tuple[str, str], ...] = (
    (
        r"^(status|is_?won|is_?closed|won|lost|closed|outcome|result|win_?loss|deal_?outcome)$",
        "the outcome itself",
    ),
    # Before the stage pattern, so stage_change_count reads as a count, not as the stage.
    (
        r"(days|time|duration|weeks|months).*(close|closed|won|lost)|cycle_?(length|time|days)|"
        r"age_at_close|time_in_stage|stage_?(changes?|count)|days_in_pipeline|"
        r"through_?clos|to_?close|total_?days|days_?total|ratio.*total|change_?count|"
        r"elapsed_?days|days_?in_?(sales_?)?stage|last_?activity|days_?since_?last|"
        r"days_?(identified|validated|qualified)|(identified|validated|qualified)_?days",
        "a measurement over the deal's whole life (a duration, count or ratio through close)",
    ),
    (r"(^|_)(deal_)?stage(_?name)?$|^stage_", "the CRM stage, which is set to won/lost at close"),
    (r"probability", "the CRM probability, which is set to 0/100 at close"),
    (r"forecast", "the forecast category, which is set to closed/omitted at close"),
    (
        r"close_?value|closed_?amount|won_?amount|booked|revenue_?won|actual_?value",
        "a value known only at close (0 or blank on lost deals)",
    ),
    (
        r"(loss|lost|win|won)_?reason|reason_?(lost|won|loss)|close_?reason|closed_?reason",
        "a reason recorded at close",
    ),
)

#: Contract features are built point-in-time by winmodel; names alone do not condemn them.
POINT_IN_TIME_FEATURES = frozenset(
    {
        "days_to_expected_close",
        "close_date_pushes",
        "deal_age_days",
        "days_since_last_milestone",
        *MILESTONE_WAITS.values(),
    }
)

MIN_TOKEN_ROWS = 5


@dataclass(frozen=True)
class LeakageFinding:
    """One check's verdict on one feature."""

    feature: str
    check: str
    figure: float
    detail: str
    action: str  # "excluded", "allowed" (config says keep) or "kept"


@dataclass(frozen=True)
class LeakageReport:
    """Every feature the guard looked at and what it decided."""

    findings: tuple[LeakageFinding, ...]
    checked: tuple[str, ...]

    @property
    def excluded(self) -> list[str]:
        """Give the features the guard removed."""
        return sorted({f.feature for f in self.findings if f.action == "excluded"})

    def to_frame(self) -> pd.DataFrame:
        """Give the findings as a table (one row per finding)."""
        columns = ["feature", "check", "figure", "detail", "action"]
        return pd.DataFrame([f.__dict__ for f in self.findings], columns=columns)

    def render(self) -> str:
        """Give the report as text for the console and the MLflow artifact."""
        flagged = [f for f in self.findings if f.action != "kept"]
        if not flagged:
            return f"Leakage guard: {len(self.checked)} features checked, none looks leaky."
        lines = [
            f"Leakage guard: {len(self.checked)} features checked, {len(self.excluded)} excluded."
        ]
        for finding in flagged:
            lines.append(f"  {finding.action.upper():9s} {finding.feature}: {finding.detail}")
        return "\n".join(lines)


def refused_by_name(name: str) -> str | None:
    """Give why a column's name marks it as set at close, or None."""
    if name in POINT_IN_TIME_FEATURES:
        return None
    lowered = name.lower()
    for pattern, reason in REFUSED_NAMES:
        if re.search(pattern, lowered):
            return reason
    return None


def univariate_auc(values: pd.Series, won: np.ndarray, *, seed: int, folds: int = 5) -> float:
    """Give how well one column alone separates won from lost: AUC in [0.5, 1].

    Numbers are ranked as they are (blank lowest); categories and text are
    replaced by their out-of-fold win rate, so a unique id per deal scores ~0.5.
    """
    won = np.asarray(won, dtype=bool)
    if won.all() or not won.any():
        return 0.5
    if _is_numeric(values):
        numbers = (
            pd.to_numeric(
                values.astype("object") if values.dtype == "boolean" else values, errors="coerce"
            )
            .astype("float64")
            .to_numpy()
        )
        score = np.where(np.isnan(numbers), -np.inf, numbers)
    else:
        score = _out_of_fold_rate(
            values.astype("str").fillna("<blank>").to_numpy(), won, seed, folds
        )
    auc = _auc(score, won)
    return max(auc, 1.0 - auc)


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) or values.dtype == "boolean"


def _auc(score: np.ndarray, won: np.ndarray) -> float:
    ranks = rankdata(score)
    n_won = won.sum()
    n_lost = len(won) - n_won
    return float((ranks[won].sum() - n_won * (n_won + 1) / 2) / (n_won * n_lost))


def _out_of_fold_rate(values: np.ndarray, won: np.ndarray, seed: int, folds: int) -> np.ndarray:
    """Give each row its value's smoothed win rate among the other folds' rows (the prior if unseen)."""
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, size=len(values))
    prior = won.mean()
    codes, labels = pd.factorize(values)
    # Counts per (fold, value); a fold's training counts are the totals less its own.
    cell = fold * len(labels) + codes
    size = folds * len(labels)
    count = np.bincount(cell, minlength=size).reshape(folds, -1)
    wins = np.bincount(cell, weights=won, minlength=size).reshape(folds, -1)
    train_count = count.sum(axis=0) - count
    train_wins = wins.sum(axis=0) - wins
    smoothed = (train_wins + 10 * prior) / (train_count + 10)
    rate = np.where(train_count > 0, smoothed, prior)  # a value unseen in training: the prior
    score: np.ndarray = rate[fold, codes]
    return score


def one_class_values(
    values: pd.Series, won: np.ndarray, *, min_share: float, max_other_share: float = 0.005
) -> tuple[str, float, float, str] | None:
    """Give (value, share in one class, share in the other, class) for a value found almost only in one class."""
    won = np.asarray(won, dtype=bool)
    text = (
        values.astype("str").fillna("<blank>")
        if values.dtype != "str"
        else values.fillna("<blank>")
    )
    text = text.astype("object").where(values.notna(), "<blank>")
    if won.all() or not won.any():
        return None
    # Values in sorted order, as a cross table gives them (ties go to the first).
    codes, labels = pd.factorize(text.to_numpy(), sort=True)
    shares = {
        cls: np.bincount(codes[won == cls], minlength=len(labels)) / np.sum(won == cls)
        for cls in (True, False)
    }
    best = None
    for cls, other in ((True, False), (False, True)):
        candidate = (shares[cls] >= min_share) & (shares[other] <= max_other_share)
        if candidate.any():
            at = int(np.argmax(np.where(candidate, shares[cls], -1.0)))
            found = (
                str(labels[at]),
                float(shares[cls][at]),
                float(shares[other][at]),
                "won" if cls else "lost",
            )
            if best is None or found[1] > best[1]:
                best = found
    return best


def outcome_tokens(
    values: pd.Series, won: np.ndarray, *, min_share: float, max_other_share: float = 0.01
) -> tuple[str, float, float, str] | None:
    """Give a word of a free-text column found almost only in one class (e.g. 'won' in a note)."""
    won = np.asarray(won, dtype=bool)
    text = values.astype("str").fillna("").str.lower()
    tokens = text.str.findall(r"[a-z][a-z_]+").map(lambda words: sorted(set(words)))
    exploded = pd.DataFrame({"token": tokens, "won": won}).explode("token").dropna()
    if exploded.empty:
        return None
    counts = pd.crosstab(exploded["token"], exploded["won"])
    if counts.shape[1] < 2:
        return None
    class_sizes = np.array([(~won).sum(), won.sum()], dtype=float)
    # pandas-stubs types a frame divided by an array as an array; it is a frame.
    shares = cast(pd.DataFrame, counts / class_sizes)
    best = None
    for cls, other in ((True, False), (False, True)):
        hits = shares[
            (shares[cls] >= min_share)
            & (shares[other] <= max_other_share)
            & (counts[cls] >= MIN_TOKEN_ROWS)
        ]
        if not hits.empty:
            token = cast(str, hits[cls].idxmax())
            found = (
                token,
                float(cast(float, shares.loc[token, cls])),
                float(cast(float, shares.loc[token, other])),
                "won" if cls else "lost",
            )
            if best is None or found[1] > best[1]:
                best = found
    return best


#: Lifetime tests: a column moving with the deal's own length or close date this much (|Spearman|) ...
MAX_LIFE_CORRELATION = 0.6
#: ... or whose distribution on open deals differs this much (mean Kolmogorov-Smirnov statistic over
#: age bins) from closed deals of the same age, is a measurement over the deal's whole life.
MAX_OPEN_CLOSED_GAP = 0.35
MIN_LIFETIME_DEALS = 30


@dataclass(frozen=True)
class LifetimeContext:
    """What the lifetime tests compare a column with.

    ``cycle_days`` and ``close_day`` are aligned with the closed rows judged; ``open_rows`` holds
    the export's open deals (their columns as they stand today) and ``open_age_days`` their age.
    ``columns`` are the numeric columns that come from the opportunities table (a snapshot's own
    columns are point-in-time by construction and are not tested).
    """

    cycle_days: np.ndarray
    close_day: np.ndarray
    columns: frozenset[str]
    open_rows: pd.DataFrame | None = None
    open_age_days: np.ndarray | None = None


def _spearman(values: np.ndarray, other: np.ndarray) -> float:
    keep = ~np.isnan(values) & ~np.isnan(other)
    if keep.sum() < MIN_LIFETIME_DEALS or np.ptp(values[keep]) == 0 or np.ptp(other[keep]) == 0:
        return 0.0
    return float(np.corrcoef(rankdata(values[keep]), rankdata(other[keep]))[0, 1])


def _open_closed_gap(
    closed: np.ndarray, cycle: np.ndarray, open_values: np.ndarray, open_age: np.ndarray
) -> float:
    """Give the mean KS statistic between open and closed deals' values within bins of the same age."""
    from scipy.stats import ks_2samp

    closed_keep = ~np.isnan(closed) & ~np.isnan(cycle)
    open_keep = ~np.isnan(open_values) & ~np.isnan(open_age)
    if closed_keep.sum() < MIN_LIFETIME_DEALS or open_keep.sum() < MIN_LIFETIME_DEALS:
        return 0.0
    edges = np.unique(np.quantile(open_age[open_keep], np.linspace(0, 1, 6)))
    gaps, weights = [], []
    for low, high in itertools.pairwise(edges):
        in_closed = closed_keep & (cycle >= low) & (cycle <= high)
        in_open = open_keep & (open_age >= low) & (open_age <= high)
        if in_closed.sum() >= 20 and in_open.sum() >= 20:
            gaps.append(ks_2samp(closed[in_closed], open_values[in_open]).statistic)
            weights.append(in_open.sum())
    return float(np.average(gaps, weights=weights)) if gaps else 0.0


def lifetime_finding(
    name: str, values: pd.Series, context: LifetimeContext
) -> tuple[str, float, str] | None:
    """Give (test, figure, detail) when a numeric column looks measured over the deal's whole life."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    cycle = _spearman(numbers, context.cycle_days.astype(float))
    if abs(cycle) >= MAX_LIFE_CORRELATION:
        return (
            "cycle_correlation",
            cycle,
            f"moves with the deal's own length on closed deals (Spearman {cycle:+.2f} with "
            f"close - created, limit {MAX_LIFE_CORRELATION})",
        )
    close = _spearman(numbers, context.close_day.astype(float))
    if abs(close) >= MAX_LIFE_CORRELATION:
        return (
            "close_date_correlation",
            close,
            f"moves with the close date on closed deals (Spearman {close:+.2f}, limit "
            f"{MAX_LIFE_CORRELATION}): measured on the export day, not during the deal",
        )
    if (
        context.open_rows is not None
        and context.open_age_days is not None
        and name in context.open_rows
    ):
        open_values = pd.to_numeric(context.open_rows[name], errors="coerce").to_numpy(dtype=float)
        gap = _open_closed_gap(
            numbers,
            context.cycle_days.astype(float),
            open_values,
            context.open_age_days.astype(float),
        )
        if gap >= MAX_OPEN_CLOSED_GAP:
            return (
                "open_vs_closed",
                gap,
                f"differs between open deals and closed deals of the same age (mean KS "
                f"{gap:.2f}, limit {MAX_OPEN_CLOSED_GAP}): a value through close or at close",
            )
    return None


def check_leakage(
    rows: pd.DataFrame,
    won: np.ndarray,
    features: Sequence[str],
    *,
    max_auc: float = 0.97,
    one_class_share: float = 0.2,
    allow: Sequence[str] = (),
    contract_features: Sequence[str] = (),
    seed: int = 0,
    lifetime: LifetimeContext | None = None,
    final_state: Sequence[str] = (),
) -> LeakageReport:
    """Give the leakage verdict on each of ``features`` over closed-deal ``rows`` (one row per deal).

    ``won`` is the label per row. ``contract_features`` are built point-in-time by
    winmodel and skip the name check. Features in ``allow`` are reported but kept.
    ``lifetime`` adds the tests of a measurement over the deal's whole life on the numeric
    columns it names; ``final_state`` columns (mutable values known only at close) are reported
    as excluded, or allowed when ``allow`` names them.
    """
    findings: list[LeakageFinding] = []
    allowed = set(allow)
    for name in final_state:
        findings.append(
            LeakageFinding(
                name,
                "final_state",
                1.0,
                "changes during a deal but is known only as it stood at close (no snapshot or history "
                "value): the final state",
                "allowed" if name in allowed else "excluded",
            )
        )
    for feature in features:
        if feature not in rows:
            continue

        def verdict(check: str, figure: float, detail: str, name: str = feature) -> LeakageFinding:
            action = "allowed" if name in allowed else "excluded"
            return LeakageFinding(name, check, figure, detail, action)

        reason = None if feature in contract_features else refused_by_name(feature)
        if reason:
            findings.append(verdict("name", 1.0, f"refused by name: {reason}"))
            continue
        values = rows[feature]
        if lifetime is not None and feature in lifetime.columns and _is_numeric(values):
            found = lifetime_finding(feature, values, lifetime)
            if found is not None:
                findings.append(verdict(*found))
                continue
        auc = univariate_auc(values, won, seed=seed)
        if auc >= max_auc:
            findings.append(
                verdict(
                    "univariate_auc",
                    auc,
                    f"alone separates won from lost with AUC {auc:.3f} (limit {max_auc})",
                )
            )
            continue
        single = one_class_values(values, won, min_share=one_class_share)
        if single is not None:
            value, share, other_share, cls = single
            other = "lost" if cls == "won" else "won"
            findings.append(
                verdict(
                    "one_class_value",
                    share,
                    f"value '{value}' on {share:.0%} of {cls} deals but {other_share:.1%} of {other} deals "
                    f"(univariate AUC {auc:.3f})",
                )
            )
            continue
        if not _is_numeric(values) and values.nunique() > 50:
            token = outcome_tokens(values, won, min_share=one_class_share)
            if token is not None:
                word, share, other_share, cls = token
                findings.append(
                    verdict(
                        "outcome_text",
                        share,
                        f"free text: the word '{word}' appears in {share:.0%} of {cls} deals "
                        f"and {other_share:.1%} of the others",
                    )
                )
                continue
        findings.append(LeakageFinding(feature, "univariate_auc", auc, f"AUC {auc:.3f}", "kept"))
    return LeakageReport(findings=tuple(findings), checked=tuple(f for f in features if f in rows))


def audit_columns(rows: pd.DataFrame) -> list[str]:
    """Give every column of a closed-deal frame that the audit should judge (all but keys and dates)."""
    skip = {
        "opportunity_id",
        "account_id",
        "owner_id",
        "snapshot_date",
        "as_of_date",
        "status",
        "sample_weight",
        "is_last_before_close",
    }
    dates = {spec.name for spec in contract.OPPORTUNITIES.columns if spec.kind == "date"}
    return [
        c
        for c in rows.columns
        if c not in skip and c not in dates and not pd.api.types.is_datetime64_any_dtype(rows[c])
    ]
