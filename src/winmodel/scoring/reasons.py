"""Reasons in a seller's words: business items and their effect, from a message catalogue.

Code decides which *case* of an item applies to a deal (sponsor confirmed or
not, parity or strength); the words live in ``messages/<language>.yaml``.
Everything is vectorised: sentences are formatted once per distinct case and
value, then spread over the deals, so a million deals cost seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from string import Formatter
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from winmodel.data.yamlfile import read_yaml
from winmodel.errors import InputError, Problem
from winmodel.features.milestones import ENGAGEMENT_LEVELS, milestone_count
from winmodel.features.qualification import qualification_flags

if TYPE_CHECKING:  # the balance is computed in explain.py, which needs the model
    from winmodel.scoring.explain import Balance

MINUS = "\u2212"

#: Items whose case is one yes / no column.
BOOLEAN_ITEMS = (
    "problem_quantified",
    "executive_sponsor",
    "buying_process",
    "problem_confirmed",
    "evaluation_criteria",
)

#: Cases that describe a deal's state as good (+1) or as lacking (-1), per item. A sentence is
#: never shown with an effect of the other sign: "Budget and timeline confirmed (-2 pts)" or
#: "Close date pushed 11 times (+4 pts)" would read backwards (the monotone constraints rule most
#: of these out; the rest go to "other factors").
CASE_POLARITY: dict[tuple[str, str], int] = {
    **{(item, "yes"): 1 for item in BOOLEAN_ITEMS},
    **{(item, "no"): -1 for item in BOOLEAN_ITEMS},
    **{(item, "both"): 1 for item in ("budget_timeline", "executive_awareness", "business_case")},
    **{
        (item, "neither"): -1
        for item in ("budget_timeline", "executive_awareness", "business_case")
    },
    ("champion_engagement", "deepening"): 1,
    ("champion_engagement", "fading"): -1,
    ("champion_role", "none"): -1,
    ("momentum", "none_met"): -1,
    ("close_date_pushes", "never"): 1,
    ("close_date_pushes", "once"): -1,
    ("close_date_pushes", "any"): -1,
    ("expected_close", "passed"): -1,
    ("competitive_position", "strength"): 1,
    ("competitive_position", "weakness"): -1,
    ("qualification", "no_flags"): 1,
    ("customisation", "none"): 1,
    ("customisation", "extensive"): -1,
    ("customisation", "custom_dev"): -1,
    ("urgency", "high"): 1,
    ("urgency", "none"): -1,
    ("competition", "none"): 1,
    ("stakeholders", "none"): -1,
    ("stakeholders", "all"): 1,
}


@dataclass(frozen=True)
class Catalogue:
    """The sentences of one language."""

    language: str
    points: str
    #: The effect with a note: "({sign}{points} pts, {note})" (falls back to ``points``).
    points_with_note: str
    #: Words of the note on a reason that runs against the usual rule (empty: no note).
    reversed: dict[str, Any]
    values: dict[str, str]
    items: dict[str, dict[str, str]]
    decision: dict[str, str]
    red_flags: dict[str, str]
    deal_desk: dict[str, str]
    milestones: dict[str, str]
    counts: dict[str, dict[str, str]]
    balance: dict[str, str]

    def template(self, item: str, case: str) -> str:
        """Give the sentence template of an item's case, falling back to 'any', then to the extra item."""
        cases = self.items.get(item) or self.items["extra"]
        return cases.get(case) or cases.get("any") or cases.get("missing") or "{name}"


@lru_cache(maxsize=8)
def load_catalogue(language: str = "en") -> Catalogue:
    """Give the message catalogue of ``language`` shipped in ``winmodel/messages``."""
    resource = files("winmodel.scoring") / "messages" / f"{language}.yaml"
    if not resource.is_file():
        shipped = sorted(
            p.name.removesuffix(".yaml")
            for p in (files("winmodel.scoring") / "messages").iterdir()
            if p.name.endswith(".yaml")
        )
        raise InputError(
            Problem(
                file="pipelines/score.yaml",
                column="language",
                problem=f"no message catalogue for language '{language}'",
                fix=f"use one of: {', '.join(shipped)}, or add messages/{language}.yaml",
            )
        )
    content, _ = read_yaml(Path(str(resource)), text=resource.read_text(encoding="utf-8"))
    return Catalogue(
        language=content["language"],
        points=content["points"],
        points_with_note=content.get("points_with_note", content["points"]),
        reversed=content.get("reversed", {}),
        values=content.get("values", {}),
        items=content["items"],
        decision=content["decision"],
        red_flags=content["red_flags"],
        deal_desk=content["deal_desk"],
        milestones=content["milestones"],
        counts=content["counts"],
        balance=content["balance"],
    )


# --------------------------------------------------------------------------- formatting helpers


def _map_unique(values: pd.Series, function: Callable[[Any], str]) -> pd.Series:
    """Give ``function`` applied once per distinct value, spread back (NaN stays NaN)."""
    uniques = values.dropna().unique()
    lookup = {value: function(value) for value in uniques}
    return values.map(lookup)


def display_values(values: pd.Series, catalogue: Catalogue) -> pd.Series:
    """Give category values as a person reads them: 'legacy_end_of_life' -> 'legacy end of life'."""
    return _map_unique(
        values.astype("object"),
        lambda value: catalogue.values.get(str(value), str(value).replace("_", " ")),
    )


def _number(values: pd.Series, pattern: str) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    return _map_unique(numbers, lambda value: pattern.format(value))


def _compact(values: pd.Series) -> pd.Series:
    """Give amounts as 950, 12.5k, 1.2M."""

    def short(value: float) -> str:
        size = abs(value)
        if size >= 1e6:
            return f"{value / 1e6:.1f}M"
        if size >= 1e4:
            return f"{value / 1e3:.0f}k"
        if size >= 1e3:
            return f"{value / 1e3:.1f}k"
        return f"{value:.0f}"

    numbers = pd.to_numeric(values, errors="coerce").round(-1)
    return _map_unique(numbers, short)


def _counted(values: pd.Series, catalogue: Catalogue, unit: str) -> pd.Series:
    """Give whole numbers with their unit in the catalogue's words: 'today', '1 day ago', '12 days ago'.

    ``catalogue.counts[unit]`` holds the forms ``zero`` (optional), ``one`` and ``many`` ({n} is the number).
    """
    forms = catalogue.counts[unit]

    def word(value: float) -> str:
        n = round(value)
        form = forms.get("zero") if n == 0 else None
        return (form or (forms["one"] if n == 1 else forms["many"])).format(n=f"{n:,}")

    return _map_unique(pd.to_numeric(values, errors="coerce").round(), word)


def _capitalise(values: pd.Series) -> pd.Series:
    return _map_unique(values, lambda text: text[:1].upper() + text[1:])


def _bool_case(values: pd.Series) -> pd.Series:
    flags = values.astype("boolean")
    return pd.Series(
        np.where(flags.isna(), "missing", np.where(flags.fillna(False), "yes", "no")),
        index=values.index,
    )


def _column(rows: pd.DataFrame, name: str) -> pd.Series:
    return rows[name] if name in rows else pd.Series(np.nan, index=rows.index, dtype="object")


# --------------------------------------------------------------------------- cases per item


def _cases(
    item: str, rows: pd.DataFrame, catalogue: Catalogue
) -> tuple[pd.Series, dict[str, pd.Series]]:
    """Give the case key per row and the display values its template needs."""
    col: Callable[[str], pd.Series] = lambda name: _column(rows, name)  # noqa: E731 - a short local alias reads best here
    missing = pd.Series("missing", index=rows.index)
    key: pd.Series | np.ndarray  # the case per row: a Series, or an array made into one

    def by_value(
        name: str, display: pd.Series | None = None
    ) -> tuple[pd.Series, dict[str, pd.Series]]:
        values = col(name)
        cases = catalogue.items.get(item, {})
        # The case of each distinct value, then per row (a blank is code -1: "missing").
        codes, distinct = pd.factorize(values)
        case_of = [str(v) if str(v) in cases else "any" for v in distinct]
        key = pd.Series(np.asarray([*case_of, "missing"], dtype=object)[codes], index=rows.index)
        return key, {name: display if display is not None else display_values(values, catalogue)}

    def both(
        first: str, second: str, names: tuple[str, str, str, str]
    ) -> tuple[pd.Series, dict[str, pd.Series]]:
        a = col(first).astype("boolean").fillna(False).astype(bool)
        b = col(second).astype("boolean").fillna(False).astype(bool)
        key = np.select([a & b, a, b], names[:3], default=names[3])
        return pd.Series(key, index=rows.index), {}

    if item in ("industry", "region", "deal_type", "urgency", "trigger_event", "strategic_value"):
        return by_value(item)
    if item == "champion_role":
        return by_value("champion_role")
    if item == "expansion":
        key, params = by_value(
            "expansion_potential",
            _capitalise(display_values(col("expansion_potential"), catalogue)),
        )
        return key.where(key == "missing", "any"), params
    if item == "company_size":
        employees = col("employees")
        key = missing.where(employees.isna(), "any")
        return key, {"employees": _number(employees, "{:,.0f}")}
    if item == "ownership":
        stage = _capitalise(display_values(col("growth_stage"), catalogue).fillna("a"))
        pe = col("pe_backed").astype("boolean")
        key = np.where(
            pe.fillna(False),
            "pe_backed",
            np.where(pe.isna() & col("growth_stage").isna(), "missing", "any"),
        )
        return pd.Series(key, index=rows.index), {"growth_stage": stage}
    if item == "pain":
        pain = col("primary_pain")
        return missing.where(pain.isna(), "any"), {
            "primary_pain": display_values(pain, catalogue).fillna("unknown")
        }
    if item == "competition":
        competitor = col("primary_competitor").astype("object")
        count = pd.to_numeric(col("competitor_count"), errors="coerce")
        no_competitor = competitor.isna() | competitor.astype("str").str.lower().eq("none")
        no_competitor &= count.fillna(0).eq(0)
        key = pd.Series("any", index=rows.index).where(~no_competitor, "none")
        key = key.where(~(competitor.isna() & count.isna()), "missing")
        name = competitor.where(~competitor.astype("str").str.lower().eq("none"), "other vendors")
        return key, {"primary_competitor": name.fillna("other vendors")}
    if item == "competitive_position":
        position = col("competitive_position").astype("object")
        key = position.where(position.isin(["strength", "parity", "weakness"]), "missing")
        return key, {}
    if item in BOOLEAN_ITEMS:
        column = {
            "problem_quantified": "problem_quantified",
            "executive_sponsor": "executive_sponsor",
            "buying_process": "buying_process_defined",
            "problem_confirmed": "problem_confirmed",
            "evaluation_criteria": "evaluation_criteria_defined",
        }[item]
        return _bool_case(col(column)), {}
    if item == "customisation":
        level = col("customization_required").astype("object")
        dev = col("custom_dev_required").astype("boolean").fillna(False).astype(bool)
        key = level.where(level.isin(["none", "moderate", "extensive"]), "missing")
        key = key.where(~dev, "custom_dev")
        return key, {
            "customization_required": _capitalise(display_values(level, catalogue).fillna("some"))
        }
    if item == "qualification":
        flags = qualification_flags(rows)
        flag_count = flags.filter(like="flag_").sum(axis=1)
        key = np.select([flag_count == 0, flag_count == 1], ["no_flags", "one_flag"], "any")
        return pd.Series(key, index=rows.index), {
            "criteria": flags.filter(like="crit_").sum(axis=1).astype(str),
            "flags": flag_count.astype(str),
        }
    if item in ("discount", "margin"):
        column = "discount_pct" if item == "discount" else "gross_margin_pct"
        values = col(column)
        return missing.where(values.isna(), "any"), {column: _number(values, "{:.0f}")}
    if item == "services":
        services, third_party = col("services_share"), col("third_party_share")
        # Without a third-party share (blank, or no such column) the sentence names services only.
        key = pd.Series(np.where(third_party.isna(), "services_only", "any"), index=rows.index)
        return key.where(services.notna(), "missing"), {
            "services_share": _number(services, "{:.0%}"),
            "third_party_share": _number(third_party, "{:.0%}").astype("object").fillna("unknown"),
        }
    if item == "cost_to_win":
        cac = col("cac_estimate")
        return missing.where(cac.isna(), "any"), {"cac_estimate": _compact(cac)}
    if item == "deal_size":
        amount = col("amount")
        change = pd.to_numeric(col("amount_change_pct"), errors="coerce")
        key = np.where(
            amount.isna(), "missing", np.where(change.abs().fillna(0) >= 5, "changed", "any")
        )
        return pd.Series(key, index=rows.index), {
            "amount": _compact(amount),
            "amount_change_pct": _number(change, "{:+.0f}%"),
        }
    if item == "stakeholders":
        share = col("stakeholders_identified")
        number = pd.to_numeric(share, errors="coerce")
        # No one and everyone identified have a direction (CASE_POLARITY); shares between do not.
        key = np.select([number <= 0, number >= 1], ["none", "all"], "any")
        return missing.where(share.isna(), pd.Series(key, index=rows.index)), {
            "stakeholders_identified": _number(share, "{:.0%}")
        }
    if item == "budget_timeline":
        return both(
            "budget_confirmed",
            "timeline_confirmed",
            ("both", "budget_only", "timeline_only", "neither"),
        )
    if item == "executive_awareness":
        return both(
            "economic_buyer_aware",
            "exec_support_signalled",
            ("both", "buyer_only", "support_only", "neither"),
        )
    if item == "business_case":
        return both(
            "business_case_built",
            "value_metric_agreed",
            ("both", "case_only", "metric_only", "neither"),
        )
    if item == "champion_engagement":
        level = col("champion_engagement").astype("object")
        trend = pd.to_numeric(col("champion_engagement_trend"), errors="coerce").fillna(0)
        key = np.where(
            level.isna(),
            "missing",
            np.where(trend > 0, "deepening", np.where(trend < 0, "fading", "any")),
        )
        display = level.where(level.isin(ENGAGEMENT_LEVELS))
        return pd.Series(key, index=rows.index), {"champion_engagement": display.fillna("unknown")}
    if item == "momentum":
        count, shown = milestone_count(rows)
        days = pd.to_numeric(col("days_since_last_milestone"), errors="coerce")
        # The pace: the day of the deal's life its latest milestone was met (its waits are here).
        reached = pd.to_numeric(col("deal_age_days"), errors="coerce") - days
        key = np.where(
            count.fillna(0) == 0,
            "none_met",
            np.where(days.isna(), "missing", np.where(reached.isna(), "undated", "any")),
        )
        return pd.Series(key, index=rows.index), {
            "milestones_met": _number(count, "{:.0f}"),
            "milestones_shown": pd.Series(str(shown), index=rows.index),
            "days_ago": _counted(days, catalogue, "days_ago"),
            "by_day": _counted(reached.clip(lower=0), catalogue, "by_day"),
        }
    if item == "deal_age":
        age = pd.to_numeric(col("deal_age_days"), errors="coerce")
        key = missing.where(age.isna(), np.where(age.round().eq(0), "today", "any"))
        return key, {"age": _counted(age, catalogue, "days")}
    if item == "close_date_pushes":
        pushes = pd.to_numeric(col("close_date_pushes"), errors="coerce")
        key = np.where(
            pushes.isna(),
            "missing",
            np.where(pushes == 0, "never", np.where(pushes == 1, "once", "any")),
        )
        return pd.Series(key, index=rows.index), {"close_date_pushes": _number(pushes, "{:.0f}")}
    if item == "expected_close":
        days = pd.to_numeric(col("days_to_expected_close"), errors="coerce")
        key = np.where(days.isna(), "missing", np.where(days < 0, "passed", "ahead"))
        return pd.Series(key, index=rows.index), {
            "in_days": _counted(days.clip(lower=0), catalogue, "in_days"),
            "days_ago": _counted(-days.clip(upper=0), catalogue, "days_ago"),
        }
    if item == "activity":
        present = [c for c in ("calls", "emails", "meetings") if c in rows]
        # A Series whenever ``present`` is not empty (never the sum's start value 0).
        total = (
            cast(pd.Series, sum(pd.to_numeric(rows[c], errors="coerce").fillna(0) for c in present))
            if present
            else None
        )
        if total is None:
            return missing, {}
        return pd.Series("any", index=rows.index), {"activity_total": _number(total, "{:.0f}")}
    # An extra feature from the mapping: its own name and value.
    values = col(item)
    displayed = (
        display_values(values, catalogue)
        if not pd.api.types.is_numeric_dtype(values)
        else _number(values, "{:,.4g}")
    )
    return missing.where(values.isna(), "any"), {
        "name": pd.Series(item.replace("_", " ").capitalize(), index=rows.index),
        "value": displayed,
    }


class _RowView:
    """The rows at some positions of a frame, taking only the columns that are read (cheap on wide frames)."""

    def __init__(self, frame: pd.DataFrame, positions: np.ndarray):
        self._frame = frame
        self._positions = positions
        self._taken: dict[str, pd.Series] = {}
        self.index = pd.RangeIndex(len(positions))

    def __contains__(self, name: object) -> bool:
        return name in self._frame

    def __getitem__(self, name: str) -> pd.Series:
        if name not in self._taken:
            self._taken[name] = self._frame[name].iloc[self._positions].reset_index(drop=True)
        return self._taken[name]

    def __len__(self) -> int:
        return len(self._positions)

    @property
    def empty(self) -> bool:
        return len(self._positions) == 0


def sentences(item: str, rows: pd.DataFrame | _RowView, catalogue: Catalogue) -> pd.Series:
    """Give the sentence about ``item`` for each row (formatted once per distinct case and values)."""
    if rows.empty:
        return pd.Series([], dtype="object")
    # A _RowView offers the part of a DataFrame that _cases reads: ``in``, ``[name]``, ``index``, len.
    key, params = _cases(item, cast(pd.DataFrame, rows), catalogue)
    names = list(params)
    columns = [np.asarray(key, dtype=object)] + [
        params[name].astype("object").fillna("?").astype(str).to_numpy(dtype=object)
        for name in names
    ]
    # One integer per distinct (case, values) combination, from each column's own codes.
    combined = np.zeros(len(rows), dtype=np.int64)
    uniques = []
    for column in columns:
        codes, distinct = pd.factorize(column)
        uniques.append(distinct)
        combined = combined * max(len(distinct), 1) + codes
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    texts = np.empty(len(first), dtype=object)
    for position, row in enumerate(first):
        values: dict[str, Any] = {name: columns[i + 1][row] for i, name in enumerate(names)}
        texts[position] = _safe_format(catalogue.template(item, columns[0][row]), values)
    return pd.Series(texts[inverse.reshape(-1)], index=rows.index, dtype="object")


def fill(template: str, **values: np.ndarray | str) -> np.ndarray:
    """Give ``template`` filled per element from arrays of text (a vectorised str.format, no format specs)."""
    out: np.ndarray | str = ""
    for literal, field, _, _ in Formatter().parse(template):
        out = out + literal
        if field is not None:
            out = out + np.asarray(values[field], dtype=object)
    return np.asarray(out, dtype=object)


def _safe_format(template: str, values: dict[str, Any]) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template


def signed(values: np.ndarray) -> np.ndarray:
    """Give numbers as '+1.2' / '−3.4' (one decimal, a true minus sign)."""
    rounded = np.round(np.asarray(values, dtype=float), 1) + 0.0
    uniques, inverse = np.unique(rounded, return_inverse=True)
    texts = np.array(
        [f"{'+' if value >= 0 else MINUS}{abs(value):.1f}" for value in uniques], dtype=object
    )
    return texts[inverse.reshape(-1)] if len(uniques) else np.array([], dtype=object)


def points_text(
    points: np.ndarray, catalogue: Catalogue, notes: np.ndarray | None = None
) -> np.ndarray:
    """Give '(+11.2 pts)' / '(−7.6 pts)' for each value (one decimal, as the balance counts them).

    Where ``notes`` holds a text: '(−7.6 pts, <note>)'.
    """
    rounded = np.round(np.asarray(points, dtype=float), 1) + 0.0
    if not len(rounded):
        return np.array([], dtype=object)

    def one(value: float, note: str = "") -> str:
        sign, size = "+" if value >= 0 else MINUS, f"{abs(value):.1f}"
        if note:
            return catalogue.points_with_note.format(sign=sign, points=size, note=note)
        return catalogue.points.format(sign=sign, points=size)

    if notes is None or not np.any(notes != ""):
        uniques, inverse = np.unique(rounded, return_inverse=True)
        return np.array([one(value) for value in uniques], dtype=object)[inverse.reshape(-1)]
    codes, pairs = pd.MultiIndex.from_arrays([rounded, np.asarray(notes, dtype=object)]).factorize()
    texts = np.array([one(value, note) for value, note in pairs], dtype=object)
    shown: np.ndarray = texts[np.asarray(codes)]
    return shown


def reversal_notes(
    marks: np.ndarray, features: list[str], directions: list[int], catalogue: Catalogue
) -> np.ndarray:
    """Give per deal and item the note on an effect that runs against the usual rule ('' none).

    ``marks`` (n x items) holds positions into ``features`` (-1: none), as
    :func:`winmodel.scoring.explain.reversed_rule` gives them. A catalogue without the words
    gives no notes.
    """
    words = catalogue.reversed
    notes = np.full(marks.shape, "", dtype=object)
    if not {"line", "winning", "losing"} <= set(words):
        return notes
    named = words.get("features", {})
    texts = np.array(
        [
            words["line"].format(
                what=named.get(name, name.replace("_", " ")),
                outcome=words["losing"] if direction > 0 else words["winning"],
            )
            for name, direction in zip(features, directions, strict=True)
        ],
        dtype=object,
    )
    marked = marks >= 0
    notes[marked] = texts[marks[marked]]
    return notes


def milestone_labels(keys: pd.Series, catalogue: Catalogue) -> np.ndarray:
    """Give the seller's words for next-best-milestone keys ('' stays '')."""
    return np.array(
        [catalogue.milestones.get(key, key) if key else "" for key in keys.to_numpy(dtype=object)],
        dtype=object,
    )


def balance_column(balance: Balance, catalogue: Catalogue) -> np.ndarray:
    """Give per row the whole sum, each term as shown, so that a reader can add it up.

    'Baseline 29.6 pts; reasons for +14.1 pts; reasons against −9.8 pts; other factors +1.2 pts;
    calibration −3.4 pts; = 31.7%'.
    """
    return fill(
        catalogue.balance["line"],
        baseline=np.array([f"{value:.1f}" for value in balance.baseline], dtype=object),
        shown_for=signed(balance.shown_for),
        shown_against=signed(balance.shown_against),
        other=signed(balance.other),
        calibration=signed(balance.calibration),
        total=np.array([f"{value:.1f}" for value in balance.total], dtype=object),
    )


def item_polarity(rows: pd.DataFrame, items: list[str], catalogue: Catalogue) -> np.ndarray:
    """Give per row and item +1 when the item's sentence says the state is good, -1 lacking, 0 neither.

    From :data:`CASE_POLARITY`; only the items listed there are looked at.
    """
    polarity = np.zeros((len(rows), len(items)), dtype=np.int8)
    if rows.empty:
        return polarity
    judged = {item for item, _ in CASE_POLARITY}
    for position, item in enumerate(items):
        if item not in judged:
            continue
        key, _ = _cases(item, rows, catalogue)
        cases = np.asarray(key, dtype=object)
        for (polar_item, case), sign in CASE_POLARITY.items():
            if polar_item == item:
                polarity[cases == case, position] = sign
    return polarity


def reason_column(
    rows: pd.DataFrame,
    items: list[str],
    chosen: np.ndarray,
    points: np.ndarray,
    catalogue: Catalogue,
    notes: np.ndarray | None = None,
) -> pd.Series:
    """Give per row the chosen items' sentences with their points, joined by '; '.

    ``chosen`` is n x k item indices (-1 for none), ``points`` the n x items matrix and
    ``notes`` (n x items, '' for none) what a reason's points carry beside them.
    Each item's sentences are built in one pass over every row that shows it.
    """
    n, k = chosen.shape
    pieces = np.full((n, k), "", dtype=object)
    row_of = np.repeat(np.arange(n), k)
    position_of = np.tile(np.arange(k), n)
    flat = chosen.ravel()
    for item_index in np.unique(flat[flat >= 0]):
        pairs = np.flatnonzero(flat == item_index)
        selected = row_of[pairs]
        text = sentences(items[item_index], _RowView(rows, selected), catalogue).to_numpy(
            dtype=object
        )
        suffix = points_text(
            points[selected, item_index],
            catalogue,
            None if notes is None else notes[selected, item_index],
        )
        pieces[selected, position_of[pairs]] = text + " " + suffix
    joined = pieces[:, 0].copy()
    for position in range(1, k):
        add = pieces[:, position] != ""
        joined[add] = joined[add] + "; " + pieces[add, position]
    return pd.Series(joined, index=rows.index, dtype="object")
