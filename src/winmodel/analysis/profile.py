"""Where the company wins: win rates of closed deals by dimension, and the win and loss scenarios.

Two views of the same closed deals, for sales leaders and analysts:

* :func:`win_rates_by_dimension`: every value of every win dimension,
  qualification item and economic item, with its deal count, Wilson 95 %
  interval and lift over the overall win rate.
* :func:`find_scenarios`: combinations of two or three values (of different
  columns) whose win rate is clearly higher (win scenarios) or lower (loss
  scenarios) than the overall rate *and* than every one of their parts.

Why "than every part": a value that wins on its own makes every combination
containing it look strong, and the list would be flooded by supersets of one
strong value. A combination is listed only when its win rate is at least
``min_gain`` beyond the win rate of each of its parts (for three values: the
three single values and the three pairs) and differs, by at least ``min_z``
standard errors, from the deals that share each part but not the whole
combination ("with versus without"). The survivors are ranked by a cautious
margin over their parts (the lower 95 % bound of the smallest with-versus-without
gap): the scenarios that add most to what a single value or pair already says.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from scipy.stats import norm

from winmodel.data import contract

#: Columns profiled: the win dimensions, qualification items and economics of the method.
PROFILE_GROUPS: tuple[contract.Group, ...] = (
    "segment",
    "problem",
    "trigger",
    "competition",
    "champion",
    "qualification",
    "economics",
)

BLANK = "(blank)"

#: Default support of a scenario: at least this many closed deals ...
MIN_SCENARIO_DEALS = 100
#: ... and at least this share of the closed deals.
MIN_SCENARIO_SHARE = 0.02

SCENARIO_COLUMNS = (
    "direction",
    "rank",
    "size",
    "scenario",
    "sentence",
    "deals",
    "wins",
    "win_rate",
    "ci_low",
    "ci_high",
    "lift",
    "overall_rate",
    "best_part",
    "best_part_rate",
    "gain_over_best_part",
    "margin_over_parts",
    "z_over_parts",
    "conditions",
)


def wilson_interval(
    wins: np.ndarray, deals: np.ndarray, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Give the Wilson score interval (low, high) of a win rate."""
    wins = np.asarray(wins, dtype=float)
    deals = np.asarray(deals, dtype=float)
    z = norm.ppf(0.5 + confidence / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = wins / deals
        denominator = 1 + z**2 / deals
        centre = (rate + z**2 / (2 * deals)) / denominator
        half = z * np.sqrt(rate * (1 - rate) / deals + z**2 / (4 * deals**2)) / denominator
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def closed_deals(
    opportunities: pd.DataFrame, since: pd.Timestamp | str | None = None
) -> pd.DataFrame:
    """Give the won and lost deals, closed on or after ``since`` when given (needs status, close_date)."""
    closed = opportunities[opportunities["status"].isin(contract.CLOSED_STATUSES)]
    if since is not None:
        closed = closed[pd.to_datetime(closed["close_date"]) >= pd.Timestamp(since)]
    return closed


def profile_columns(opportunities: pd.DataFrame) -> list[str]:
    """Give the dimension, qualification and economics columns present in the data (numbers are banded)."""
    names = contract.columns_in_group(*PROFILE_GROUPS)
    return [name for name in names if name in opportunities and opportunities[name].notna().any()]


def _number_text(value: float) -> str:
    """Give a band edge as a person writes it: 157,100 / 44 / 0.12."""
    if not np.isfinite(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10 or float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.2g}"


def banded(values: pd.Series, name: str) -> pd.Series:
    """Give a column as profile values: categories as text, numbers in quartile bands, blanks as '(blank)'."""
    spec = contract.spec_for(name)
    if spec is not None and spec.kind in ("number", "integer"):
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.nunique() > 6:
            try:
                bands = pd.qcut(numbers, 4, duplicates="drop")
            except ValueError:
                return (
                    numbers.map(_number_text, na_action="ignore")
                    .astype("str")
                    .where(numbers.notna(), BLANK)
                )
            text = {
                interval: f"{_number_text(interval.left)} to {_number_text(interval.right)}"
                for interval in bands.cat.categories
            }
            return bands.map(text).astype("str").where(numbers.notna(), BLANK)
        return (
            numbers.map(_number_text, na_action="ignore")
            .astype("str")
            .where(numbers.notna(), BLANK)
        )
    return values.astype("str").where(values.notna(), BLANK)


def win_rates_by_dimension(
    opportunities: pd.DataFrame, columns: list[str] | None = None, min_deals: int = 1
) -> pd.DataFrame:
    """Give, per column and value, closed deals, wins, win rate, Wilson 95 % interval and lift over the overall rate."""
    closed = closed_deals(opportunities)
    won = closed["status"].eq("won")
    overall = float(won.mean()) if len(closed) else float("nan")
    records = []
    for name in columns or profile_columns(closed):
        values = banded(closed[name], name)
        grouped = won.groupby(values).agg(["sum", "count"])
        grouped = grouped[grouped["count"] >= min_deals]
        low, high = wilson_interval(grouped["sum"].to_numpy(), grouped["count"].to_numpy())
        spec = contract.spec_for(name)
        for (value, row), lo, hi in zip(grouped.iterrows(), low, high, strict=True):
            records.append(
                {
                    "dimension": name,
                    "group": spec.group if spec else "extra",
                    "value": value,
                    "deals": int(row["count"]),
                    "wins": int(row["sum"]),
                    "win_rate": row["sum"] / row["count"],
                    "ci_low": lo,
                    "ci_high": hi,
                    "lift": (row["sum"] / row["count"]) / overall if overall else float("nan"),
                }
            )
    return pd.DataFrame(
        records,
        columns=[
            "dimension",
            "group",
            "value",
            "deals",
            "wins",
            "win_rate",
            "ci_low",
            "ci_high",
            "lift",
        ],
    )


# --------------------------------------------------------------------------- scenarios


def default_min_deals(closed: int) -> int:
    """Give the default support of a scenario: 100 deals or 2 % of the closed deals, whichever is more."""
    return max(MIN_SCENARIO_DEALS, math.ceil(MIN_SCENARIO_SHARE * closed))


#: Values whose plain spelling reads better than the underscore-free code.
_VALUE_WORDS = {"c_level": "C-level", "vp": "VP", "m_and_a": "M&A"}


def condition_text(column: str, value: str) -> str:
    """Give one condition as a seller reads it: 'deal type legacy replacement', 'private-equity backed'."""
    spec = contract.spec_for(column)
    label = (spec.label if spec else column.replace("_", " ")).lower()
    if spec is not None and spec.kind == "bool":
        if value == "True":
            return label
        if value == "False":
            return f"not {label}"
    return f"{label} {_VALUE_WORDS.get(str(value), str(value).replace('_', ' '))}"


def format_conditions(conditions: Sequence[tuple[str, str]]) -> str:
    """Give conditions as machine-readable text: 'deal_type=legacy_replacement; urgency=high'."""
    return "; ".join(f"{column}={value}" for column, value in conditions)


def parse_conditions(text: str) -> tuple[tuple[str, str], ...]:
    """Give the (column, value) pairs of a ``conditions`` text written by :func:`format_conditions`."""
    pairs = []
    for part in str(text).split("; "):
        column, _, value = part.partition("=")
        pairs.append((column, value))
    return tuple(pairs)


def _encode(
    closed: pd.DataFrame, columns: Sequence[str]
) -> list[tuple[str, np.ndarray, list[str]]]:
    """Give per column its value codes (-1 for blank) and the value texts."""
    encoded = []
    for name in columns:
        values = banded(closed[name], name)
        codes, uniques = pd.factorize(values, sort=True)
        texts = [str(value) for value in uniques]
        if BLANK in texts:
            blank = texts.index(BLANK)
            codes = np.where(codes == blank, -1, np.where(codes > blank, codes - 1, codes))
            texts.pop(blank)
        encoded.append((name, np.asarray(codes, dtype=np.int64), texts))
    return encoded


def _cell_counts(
    codes: Sequence[np.ndarray], sizes: Sequence[int], won: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Give deals and wins per cell of the cross-table of ``codes`` (shape ``sizes``; blanks left out)."""
    known = np.logical_and.reduce([c >= 0 for c in codes])
    key = np.zeros(int(known.sum()), dtype=np.int64)
    for code, size in zip(codes, sizes, strict=True):
        key = key * size + code[known]
    cells = int(np.prod(sizes))
    deals = np.bincount(key, minlength=cells).reshape(sizes)
    wins = np.bincount(key, weights=won[known], minlength=cells).reshape(sizes)
    return deals, wins


def _compare_with_part(
    deals: np.ndarray, wins: np.ndarray, part_deals: np.ndarray, part_wins: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Give (z, gap, standard error) of the combination's win rate against the part's deals outside it.

    z is the pooled two-sample statistic (0 when the part has no other deals);
    gap is the combination's rate minus the rate of those other deals.
    """
    rate = wins / deals
    rest_deals = part_deals - deals
    has_rest = rest_deals > 0
    safe_rest = np.where(has_rest, rest_deals, 1.0)
    rest_rate = np.where(has_rest, (part_wins - wins) / safe_rest, rate)
    pooled = part_wins / part_deals
    pooled_error = np.sqrt(pooled * (1 - pooled) * (1 / deals + 1 / safe_rest))
    gap = rate - rest_rate
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(has_rest & (pooled_error > 0), gap / pooled_error, 0.0)
    error = np.sqrt(rate * (1 - rate) / deals + rest_rate * (1 - rest_rate) / safe_rest)
    return z, gap, error


def find_scenarios(
    opportunities: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    min_deals: int | None = None,
    max_size: Literal[2, 3] = 3,
    min_gain: float = 0.05,
    min_z: float = 3.0,
    top: int | None = 10,
    since: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """Give the strongest win and loss scenarios: value combinations clearly stronger than their parts.

    Needs ``status`` (and ``close_date`` with ``since``) and the profiled
    columns. A combination of 2 to ``max_size`` values of different columns,
    with at least ``min_deals`` closed deals (default: 100 or 2 % of the closed
    deals, whichever is more), is a *win* scenario when

    * its Wilson 95 % interval lies above the overall win rate,
    * its win rate is at least ``min_gain`` above the win rate of each of its
      parts (the single values, and the pairs of a three-value combination), and
    * it beats the deals of each part *outside* the combination by at least
      ``min_z`` standard errors (two-sample z-test; many combinations are tried,
      hence 3 rather than 2).

    A *loss* scenario mirrors that below. Each direction is ranked by
    ``margin_over_parts``: the lower 95 % bound of the smallest gap between
    the combination and the other deals of any of its parts, a cautious "how
    much the combination adds". ``top`` keeps that many per direction (None
    keeps all).

    Columns: ``direction`` (win / loss), ``rank``, ``size``, ``scenario``
    (readable), ``sentence`` ("deal type legacy replacement + urgency high:
    73 % win, n=2,077, vs 37 % overall"), ``deals``, ``wins``, ``win_rate``,
    ``ci_low``, ``ci_high``, ``lift``, ``overall_rate``, ``best_part`` and
    ``best_part_rate`` (the part whose own win rate is closest),
    ``gain_over_best_part``, ``margin_over_parts``, ``z_over_parts`` (the
    smallest z over the parts), ``conditions`` (``column=value; ...``, see
    :func:`parse_conditions`).
    """
    closed = closed_deals(opportunities, since)
    if len(closed) == 0:
        return pd.DataFrame(columns=SCENARIO_COLUMNS)
    won = closed["status"].eq("won").to_numpy(dtype=float)
    overall = float(won.mean())
    support = default_min_deals(len(closed)) if min_deals is None else int(min_deals)
    encoded = [
        item for item in _encode(closed, columns or profile_columns(closed)) if len(item[2]) > 1
    ]
    names = [name for name, _, _ in encoded]
    codes = [code for _, code, _ in encoded]
    values = [uniques for _, _, uniques in encoded]
    sizes = [len(uniques) for uniques in values]

    # Cross-tables of every single column and every pair: the parts of the combinations.
    tables: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
    for index in range(len(encoded)):
        tables[(index,)] = _cell_counts([codes[index]], [sizes[index]], won)
    for pair in itertools.combinations(range(len(encoded)), 2):
        tables[pair] = _cell_counts([codes[i] for i in pair], [sizes[i] for i in pair], won)

    found: list[dict[str, object]] = []
    for size in range(2, max_size + 1):
        parts = [
            part
            for part_size in range(1, size)
            for part in itertools.combinations(range(size), part_size)
        ]
        # Gather every combination cell with enough support, then judge them all at once.
        cell_combo, cell_codes, n_list, w_list = [], [], [], []
        part_n: list[list[np.ndarray]] = [[] for _ in parts]
        part_w: list[list[np.ndarray]] = [[] for _ in parts]
        for combo in itertools.combinations(range(len(encoded)), size):
            if size == 2:
                deals, wins = tables[combo]
            else:
                deals, wins = _cell_counts(
                    [codes[i] for i in combo], [sizes[i] for i in combo], won
                )
            cells = np.nonzero(deals >= support)
            if not len(cells[0]):
                continue
            cell_combo += [combo] * len(cells[0])
            cell_codes.append(np.column_stack(cells))
            n_list.append(deals[cells])
            w_list.append(wins[cells])
            for position, part in enumerate(parts):
                table_deals, table_wins = tables[tuple(combo[p] for p in part)]
                at = tuple(cells[p] for p in part)
                part_n[position].append(table_deals[at])
                part_w[position].append(table_wins[at])
        if not n_list:
            continue
        n, w = np.concatenate(n_list).astype(float), np.concatenate(w_list)
        all_codes = np.vstack(cell_codes)
        rate = w / n
        low, high = wilson_interval(w, n)
        compared = [
            _compare_with_part(
                n, w, np.concatenate(part_n[k]).astype(float), np.concatenate(part_w[k])
            )
            for k in range(len(parts))
        ]
        z, gap, error = (np.vstack([item[k] for item in compared]) for k in range(3))
        part_rate = np.vstack(
            [np.concatenate(part_w[k]) / np.concatenate(part_n[k]) for k in range(len(parts))]
        )
        for direction, sign, clear in (("win", 1.0, low > overall), ("loss", -1.0, high < overall)):
            closest = np.argmax(sign * part_rate, axis=0)
            closest_rate = part_rate[closest, np.arange(len(rate))]
            z_margin = (sign * z).min(axis=0)
            keep = clear & (z_margin >= min_z) & (sign * (rate - closest_rate) >= min_gain)
            margin = (sign * gap - 1.96 * error).min(axis=0)
            for cell in np.nonzero(keep)[0]:
                combo = cell_combo[cell]
                conditions = [
                    (names[i], values[i][all_codes[cell, k]]) for k, i in enumerate(combo)
                ]
                found.append(
                    {
                        "direction": direction,
                        "size": size,
                        "conditions": conditions,
                        "deals": int(n[cell]),
                        "wins": int(w[cell]),
                        "win_rate": rate[cell],
                        "ci_low": low[cell],
                        "ci_high": high[cell],
                        "best_part": [conditions[p] for p in parts[closest[cell]]],
                        "best_part_rate": closest_rate[cell],
                        "margin_over_parts": margin[cell],
                        "z_over_parts": z_margin[cell],
                    }
                )
    if not found:
        return pd.DataFrame(columns=SCENARIO_COLUMNS)
    table = pd.DataFrame(found)
    table = table.assign(
        overall_rate=overall,
        lift=table["win_rate"] / overall,
        gain_over_best_part=table["win_rate"] - table["best_part_rate"],
        scenario=table["conditions"].map(describe_conditions),
        best_part=table["best_part"].map(describe_conditions),
        conditions=table["conditions"].map(format_conditions),
    )
    table = table.assign(
        sentence=[
            scenario_sentence(scenario, rate, deals, overall)
            for scenario, rate, deals in zip(
                table["scenario"], table["win_rate"], table["deals"], strict=True
            )
        ]
    )
    table = table.sort_values(
        ["direction", "margin_over_parts", "deals"], ascending=[False, False, False], kind="stable"
    )
    table["rank"] = table.groupby("direction").cumcount() + 1
    if top is not None:
        table = table[table["rank"] <= top]
    return table[list(SCENARIO_COLUMNS)].reset_index(drop=True)


def describe_conditions(conditions: Sequence[tuple[str, str]]) -> str:
    """Give conditions as a seller reads them, joined by ' + '."""
    return " + ".join(condition_text(column, value) for column, value in conditions)


def scenario_sentence(scenario: str, win_rate: float, deals: int, overall: float) -> str:
    """Give 'deal type legacy replacement + urgency high: 73 % win, n=2,077, vs 37 % overall'."""
    return f"{scenario}: {win_rate:.0%} win, n={deals:,}, vs {overall:.0%} overall"


def scenarios_matching(
    scenarios: pd.DataFrame, conditions: Sequence[tuple[str, object]]
) -> pd.DataFrame:
    """Give the scenarios whose conditions include all of ``conditions`` (values compared as text)."""
    wanted = {(column, str(value)) for column, value in conditions}
    mask = scenarios["conditions"].map(lambda text: wanted <= set(parse_conditions(text)))
    return scenarios[mask.astype(bool)]


# --------------------------------------------------------------------------- the report

_GROUP_TITLES = {
    "segment": "Segment",
    "problem": "Problem",
    "trigger": "Trigger",
    "competition": "Competition",
    "champion": "Champion",
    "qualification": "Qualification",
    "economics": "Economics",
    "extra": "Other columns",
}


def _percent(value: float) -> str:
    return f"{value:.0%}" if np.isfinite(value) else "—"


def render_profile_report(
    dimensions: pd.DataFrame,
    scenarios: pd.DataFrame,
    *,
    closed: int,
    won: int,
    period: str = "",
    min_deals: int | None = None,
    figures: dict[str, str] | None = None,
) -> str:
    """Give the Markdown report of the profile: scenarios first, then every dimension's win rates.

    ``figures`` maps ``scenarios_win``, ``scenarios_loss`` and dimension names
    to image paths relative to the report (omitted images are simply not shown).
    """
    figures = figures or {}
    overall = won / closed if closed else float("nan")
    support = default_min_deals(closed) if min_deals is None else min_deals
    lines = [
        "# Where we win",
        "",
        f"{closed:,} closed deals{f' ({period})' if period else ''}: {won:,} won, "
        f"an overall win rate of **{_percent(overall)}**.",
        "",
        "## How to read this",
        "",
        "- *Win rate*: the share of closed deals that were won. The *95 % interval* (Wilson) is where the "
        "true rate lies given how few or many deals there are; a narrow interval means a solid figure.",
        "- *Lift*: the win rate divided by the overall rate (1.5 = half as likely again to win).",
        f"- A *scenario* combines two or three values of different columns. It is listed only when it has at "
        f"least {support:,} closed deals, its interval lies clear of the overall rate, its win rate is at "
        "least 5 points beyond each of its parts (the single values, and pairs), and it differs clearly from "
        "the deals that share a part without the rest (z >= 3). They are ranked by how much they add to their "
        "parts, cautiously measured.",
        "- These are associations in past deals, not causes: a scenario says where the company has won, "
        "not that adding a condition to a deal will win it.",
        "",
    ]
    row: Any  # a record of the scenarios or dimensions table: its fields are the table's columns
    for direction, title in (
        ("win", "Win scenarios: where we win"),
        ("loss", "Loss scenarios: where we lose"),
    ):
        part = scenarios[scenarios["direction"] == direction].sort_values("rank")
        lines += [f"## {title}", ""]
        if f"scenarios_{direction}" in figures:
            lines += [f"![{title}]({figures[f'scenarios_{direction}']})", ""]
        if part.empty:
            lines += [f"No {direction} scenario passes the rules on this data.", ""]
            continue
        for row in part.itertuples(index=False):
            lines.append(
                f"{row.rank}. **{row.sentence}** (95 % interval {_percent(row.ci_low)}–"
                f"{_percent(row.ci_high)}; its closest part, {row.best_part}, wins "
                f"{_percent(row.best_part_rate)})"
            )
        lines.append("")
    lines += ["## Win rate by dimension", ""]
    groups = cast(Iterable[tuple[str, pd.DataFrame]], dimensions.groupby("group", sort=False))
    for group, in_group in groups:
        lines += [f"### {_GROUP_TITLES.get(group, str(group).title())}", ""]
        by_dimension = cast(
            Iterable[tuple[str, pd.DataFrame]], in_group.groupby("dimension", sort=False)
        )
        for dimension, rows in by_dimension:
            spec = contract.spec_for(str(dimension))
            lines += [f"**{spec.label if spec else dimension}** (`{dimension}`)", ""]
            if dimension in figures:
                lines += [f"![{dimension}]({figures[dimension]})", ""]
            lines += [
                "| value | deals | win rate | 95 % interval | lift |",
                "|---|---:|---:|---:|---:|",
            ]
            for row in rows.itertuples(index=False):
                lines.append(
                    f"| {row.value} | {row.deals:,} | {_percent(row.win_rate)} | "
                    f"{_percent(row.ci_low)}–{_percent(row.ci_high)} | {row.lift:.2f} |"
                )
            lines.append("")
    return "\n".join(lines)


def profile_artifacts(
    opportunities: pd.DataFrame, *, top: int = 10
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Give the win rates by dimension, every scenario that passes the rules, and the report (no charts).

    What the training job records beside each run (``tables/`` and ``profile.md``).
    """
    closed = closed_deals(opportunities)
    dimensions = win_rates_by_dimension(closed)
    scenarios = find_scenarios(closed, top=None)
    report = render_profile_report(
        dimensions,
        scenarios[scenarios["rank"] <= top],
        closed=len(closed),
        won=int(closed["status"].eq("won").sum()),
    )
    return dimensions, scenarios, report
