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

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from winmodel.data import contract

#: Name patterns of columns known to be set at or after close, with the reason a person reads.
REFUSED_NAMES: tuple[tuple[str, str], ...] = (
    (
        r"^(status|is_?won|is_?closed|won|lost|closed|outcome|result|win_?loss|deal_?outcome)$",
        "the outcome itself",
    ),
    # Before the stage pattern, so stage_change_count reads as a count, not as the stage.
    (
        r"(days|time|duration|weeks|months).*(close|closed|won|lost)|cycle_?(length|time|days)|"
        r"age_at_close|time_in_stage|stage_?(changes?|count)|days_in_pipeline",
        "a duration or count measured through close",
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
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, size=len(values))
    prior = won.mean()
    score = np.empty(len(values), dtype="float64")
    for k in range(folds):
        train, test = fold != k, fold == k
        frame = pd.DataFrame({"value": values[train], "won": won[train]})
        stats = frame.groupby("value")["won"].agg(["sum", "count"])
        rate = (stats["sum"] + 10 * prior) / (stats["count"] + 10)  # smoothed
        score[test] = pd.Series(values[test]).map(rate).fillna(prior).to_numpy()
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
    table = pd.crosstab(text.to_numpy(), won)
    if table.shape[1] < 2:
        return None
    shares = table / table.sum(axis=0)
    best = None
    for cls, other in ((True, False), (False, True)):
        candidates = shares[(shares[cls] >= min_share) & (shares[other] <= max_other_share)]
        if not candidates.empty:
            # The crosstab's index holds the column's values as text; its cells are shares.
            value = cast(str, candidates[cls].idxmax())
            found = (
                str(value),
                float(cast(float, shares.loc[value, cls])),
                float(cast(float, shares.loc[value, other])),
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
) -> LeakageReport:
    """Give the leakage verdict on each of ``features`` over closed-deal ``rows`` (one row per deal).

    ``won`` is the label per row. ``contract_features`` are built point-in-time by
    winmodel and skip the name check. Features in ``allow`` are reported but kept.
    """
    findings: list[LeakageFinding] = []
    allowed = set(allow)
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
