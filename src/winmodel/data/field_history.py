"""Field history -> point-in-time snapshots: replaying what a CRM logged into the snapshots table.

Real CRMs keep a deal's past as a log of changes, not as weekly snapshots:
Salesforce in OpportunityFieldHistory (one row per change of one tracked field,
with its old and new value) and OpportunityHistory (one row per change of
stage, amount, close date or probability, holding their values after it),
HubSpot in each deal property's history (one row per value set). The contract's
``field_history`` table is the long form of all of them::

    opportunity_id, field, old_value, new_value, changed_at

:func:`wide_to_long` turns a wide log (OpportunityHistory) into it.
:func:`replay_field_history` rebuilds the snapshots table from it: one row per
deal per snapshot day (every ``every_days`` days, counted back from the as-of
date, and on each day a field changed), holding each tracked field's value at
the end of that day:

* after a change: its new value (the last change of the day wins);
* before the first change: that change's old value, when the log has old values
  (Salesforce); blank otherwise (HubSpot: the first entry is the value set);
* on a deal whose tracked field never changed: the value the opportunities
  table holds now, which it has held all along.

A closed deal's snapshots stop before its close date (the day its outcome is
known); an open deal's run up to the as-of date. Fields that are not tracked
are not in the rebuilt snapshots: their only value is the final one.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingOf
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from winmodel.data.contract import CLOSED_STATUSES, long_cycle_days, spec_for
from winmodel.data.mapping import HistoryTable, Mapping, recode_values
from winmodel.data.validate import ParseOptions, _parse_column, as_text, parse_dates, row_references
from winmodel.errors import MAX_EXAMPLES, Problem

HISTORY_COLUMNS = ("opportunity_id", "field", "old_value", "new_value", "changed_at")
#: A history export's first change may come this long after the first deals were created, at the
#: least, before the deals created earlier are said to predate it (see :func:`log_starts_late`).
LATE_LOG_DAYS = 30


@dataclass(frozen=True)
class ReplaySettings:
    """When the rebuilt snapshots are taken."""

    #: A snapshot every this many days, counted back from the as-of date (0: none on a calendar).
    every_days: int = 7
    #: Also a snapshot on every day a tracked field changed.
    at_changes: bool = True


def wide_to_long(
    frame: pd.DataFrame, *, fields: MappingOf[str, str], opportunity_id: str, changed_at: str
) -> pd.DataFrame:
    """Give the long field history of a wide log: one row per change of one field.

    ``frame`` holds one row per change with the values *after* it (Salesforce's
    OpportunityHistory); ``fields`` maps its columns to contract columns. A row
    whose value equals the deal's previous row is no change of that field; the
    first row of a deal is the value set at creation (its old value is blank).
    Values stay text.
    """
    ordered = frame.assign(_order=np.arange(len(frame)))
    ordered = ordered.sort_values([opportunity_id, changed_at, "_order"], kind="stable")
    deal = ordered[opportunity_id]
    parts = []
    for source, target in fields.items():
        if source not in ordered.columns:
            continue
        value = ordered[source].astype("str").where(ordered[source].notna(), None)
        previous = value.groupby(deal.to_numpy(), sort=False).shift()
        first = ~deal.duplicated().to_numpy()
        changed = first | (value.fillna("\x00").to_numpy() != previous.fillna("\x00").to_numpy())
        parts.append(
            pd.DataFrame(
                {
                    "opportunity_id": deal.to_numpy()[changed],
                    "field": target,
                    "old_value": previous.to_numpy()[changed],
                    "new_value": value.to_numpy()[changed],
                    "changed_at": ordered[changed_at].to_numpy()[changed],
                },
                index=ordered.index[changed],
            )
        )
    if not parts:
        return pd.DataFrame(columns=list(HISTORY_COLUMNS))
    return pd.concat(parts).sort_index(kind="stable")


def map_history_table(
    frame: pd.DataFrame, table: HistoryTable | None, mapping: Mapping, *, file: str
) -> tuple[pd.DataFrame, list[Problem]]:
    """Give one history export in the contract's long form (values still text), and its problems.

    ``table`` None means the export is the contract's ``field_history`` table already. The
    mapping's ``values`` recode each field's values as they recode its column.
    """
    empty = pd.DataFrame(columns=list(HISTORY_COLUMNS))
    if table is None:
        sources = {name: name for name in HISTORY_COLUMNS if name != "old_value"}
        optional = {"old_value": "old_value"}
    elif table.field is not None:
        sources = {
            "opportunity_id": table.opportunity_id,
            "field": table.field,
            "new_value": str(table.new_value),
            "changed_at": table.changed_at,
        }
        optional = {"old_value": table.old_value} if table.old_value else {}
    else:
        sources = {"opportunity_id": table.opportunity_id, "changed_at": table.changed_at}
        optional = {}
    missing = [source for source in sources.values() if source not in frame.columns]
    if table is not None and table.old_value and table.old_value not in frame.columns:
        missing.append(table.old_value)
    if missing:
        return empty, [
            Problem(
                file=file,
                column=", ".join(missing),
                problem="the history export has no column " + ", ".join(repr(m) for m in missing),
                fix="name the export's columns in this file's entry of the mapping's `history.tables`",
            )
        ]
    if table is not None and table.field is None:
        present = {
            source: target for source, target in table.fields.items() if source in frame.columns
        }
        if not present:
            return empty, [
                Problem(
                    file=file,
                    column=", ".join(table.fields),
                    problem="none of the fields listed for this wide history is a column of the file",
                    fix="list the file's value columns under `fields:` (e.g. StageName: stage)",
                )
            ]
        long = wide_to_long(
            frame, fields=present, opportunity_id=table.opportunity_id, changed_at=table.changed_at
        )
    else:
        columns = {target: frame[source] for target, source in {**sources, **optional}.items()}
        long = pd.DataFrame(columns, index=frame.index).reindex(columns=list(HISTORY_COLUMNS))
        if table is not None:
            listed = {key.strip().lower(): value for key, value in table.fields.items()}
            long = long.assign(field=as_text(long["field"]).str.lower().map(listed))
            long = long[long["field"].notna()]
    long = long.assign(field=long["field"].astype("str").str.strip())
    for field, recode in mapping.values.items():
        chosen = (long["field"] == field).to_numpy()
        if chosen.any():
            old = long["old_value"].astype(object).copy()
            new = long["new_value"].astype(object).copy()
            old[chosen] = recode_values(long.loc[chosen, "old_value"], recode).to_numpy()
            new[chosen] = recode_values(long.loc[chosen, "new_value"], recode).to_numpy()
            long = long.assign(old_value=old, new_value=new)
    return long, []


def parse_history(
    long: pd.DataFrame, opportunities: pd.DataFrame, parse: ParseOptions, *, file: str
) -> tuple[pd.DataFrame, list[Problem]]:
    """Give the long history with ``changed_at`` parsed and rows of unknown deals or fields dropped."""
    problems: list[Problem] = []
    dates = parse_dates(
        long["changed_at"],
        dayfirst=parse.dayfirst,
        date_format=parse.date_formats.get("changed_at") or parse.date_formats.get("*"),
    )
    if dates.failed.any():
        count = int(dates.failed.sum())
        problems.append(
            Problem(
                file=file,
                column="changed_at",
                problem=f"{count:,} change date(s) are not dates: "
                + ", ".join(map(repr, dates.bad_values)),
                fix=dates.hint
                or "correct them, or give their format with `dates: {formats: {changed_at: ...}}`",
                rows=count,
                examples=row_references(long, long.index[dates.failed]),
            )
        )
    history = long.assign(changed_at=dates.values, opportunity_id=as_text(long["opportunity_id"]))
    unknown_field = ~history["field"].map(lambda name: spec_for(str(name)) is not None).astype(bool)
    if unknown_field.any():
        names = pd.unique(history.loc[unknown_field, "field"])
        problems.append(
            Problem(
                file=file,
                column="field",
                problem=f"{int(unknown_field.sum()):,} change(s) of field(s) outside the contract are ignored: "
                + ", ".join(repr(name) for name in names[:MAX_EXAMPLES]),
                fix="map the CRM's field names onto contract columns under `history.tables[].fields`",
                rows=int(unknown_field.sum()),
                severity="warning",
            )
        )
    known = history["opportunity_id"].isin(opportunities["opportunity_id"])
    if (~known).any():
        problems.append(
            Problem(
                file=file,
                column="opportunity_id",
                problem=f"{int((~known).sum()):,} change(s) of deals not in the opportunities table are ignored",
                fix="export the history and the opportunities at the same time",
                rows=int((~known).sum()),
                examples=row_references(history, history.index[~known.to_numpy()]),
                severity="warning",
            )
        )
    keep = known.to_numpy() & ~unknown_field.to_numpy() & history["changed_at"].notna().to_numpy()
    return history[keep], problems


def snapshot_days(
    created: pd.Series,
    end: pd.Series,
    inclusive_end: np.ndarray,
    as_of: pd.Timestamp,
    every_days: int,
) -> pd.DataFrame:
    """Give (position, snapshot_date) of every calendar snapshot of each deal.

    The calendar is every ``every_days`` days back from ``as_of``; deal ``i``
    gets the calendar days from its ``created`` day to its ``end`` day
    (included where ``inclusive_end``).
    """
    if every_days <= 0 or len(created) == 0:
        return pd.DataFrame(
            {"position": np.zeros(0, dtype=np.int64), "snapshot_date": pd.to_datetime([])}
        )
    as_of_day = pd.Timestamp(as_of).normalize().value // 86_400_000_000_000
    start = created.to_numpy(dtype="datetime64[D]").astype(np.int64)
    stop = end.to_numpy(dtype="datetime64[D]").astype(np.int64)
    stop = np.where(inclusive_end, stop, stop - 1)
    # Calendar index k: day = as_of_day - every_days * k; the deal covers k from k_high down to k_low.
    k_high = np.floor((as_of_day - start) / every_days).astype(np.int64)
    k_low = np.ceil((as_of_day - stop) / every_days).astype(np.int64)
    k_low = np.maximum(k_low, 0)
    count = np.maximum(k_high - k_low + 1, 0)
    valid = (start <= stop) & (count > 0)
    count = np.where(valid, count, 0)
    position = np.repeat(np.arange(len(created)), count)
    offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    k = np.repeat(k_high, count) - offset
    days = as_of_day - every_days * k
    return pd.DataFrame(
        {
            "position": position,
            "snapshot_date": days.astype("datetime64[D]").astype("datetime64[ns]"),
        }
    )


def replay_field_history(
    opportunities: pd.DataFrame,
    history: pd.DataFrame,
    *,
    tracked: Sequence[str],
    as_of: pd.Timestamp,
    settings: ReplaySettings = ReplaySettings(),
    parse: ParseOptions | None = None,
    file: str = "field_history",
) -> tuple[pd.DataFrame, list[Problem]]:
    """Give the snapshots rebuilt from a long field history, and the problems met (see the module).

    ``opportunities`` is the validated opportunities table (``opportunity_id``,
    ``created_date``, ``close_date``, ``status`` and the current values);
    ``history`` has :data:`HISTORY_COLUMNS` with ``changed_at`` parsed to dates
    and values as text, fields named as contract (or extra) columns. Each
    tracked field's values are parsed with its contract type; values that do
    not parse are reported and become blank.
    """
    parse = parse or ParseOptions()
    problems: list[Problem] = []
    deals = opportunities.drop_duplicates("opportunity_id").reset_index(drop=True)
    closed = deals["status"].isin(CLOSED_STATUSES).fillna(False).to_numpy(dtype=bool)
    end = deals["close_date"].where(closed, pd.Timestamp(as_of))
    # A closed deal's last snapshot is the day before it closed; an open deal's is the as-of day.
    in_life = deals["created_date"].notna() & end.notna()
    deal_index = pd.Index(deals["opportunity_id"])

    history = history[history["field"].isin(list(tracked))]
    position_of = deal_index.get_indexer(history["opportunity_id"])
    history = history.assign(position=position_of, changed_day=history["changed_at"].dt.normalize())
    history = history[history["position"] >= 0]

    calendar = snapshot_days(
        deals["created_date"][in_life],
        end[in_life],
        ~closed[in_life.to_numpy()],
        as_of,
        settings.every_days,
    )
    calendar["position"] = np.flatnonzero(in_life.to_numpy())[calendar["position"].to_numpy()]
    frames = [calendar]
    if settings.at_changes and len(history):
        changes = history[["position", "changed_day"]].rename(
            columns={"changed_day": "snapshot_date"}
        )
        created = deals["created_date"].to_numpy()[changes["position"].to_numpy()]
        last = end.to_numpy()[changes["position"].to_numpy()]
        open_deal = ~closed[changes["position"].to_numpy()]
        day = changes["snapshot_date"].to_numpy()
        keep = (day >= created) & ((day < last) | (open_deal & (day <= last)))
        frames.append(changes[keep])
    snapshots = (
        pd.concat(frames, ignore_index=True)
        .drop_duplicates()
        .sort_values(["position", "snapshot_date"], kind="stable")
        .reset_index(drop=True)
    )
    snapshots.insert(
        0, "opportunity_id", deals["opportunity_id"].to_numpy()[snapshots["position"].to_numpy()]
    )

    for field in tracked:
        spec = spec_for(field)
        if spec is None:
            continue
        events = history[history["field"] == field].sort_values(
            ["position", "changed_at"], kind="stable"
        )
        new = _parse(events["new_value"], spec, parse, file, "new_value", events, problems)
        old = _parse(events["old_value"], spec, parse, file, "old_value", events, problems)
        current = deals[field] if field in deals.columns else pd.Series(np.nan, index=deals.index)
        snapshots[field] = _typed(_values_on_days(snapshots, events, new, old, current), spec.kind)
    return snapshots.drop(columns="position"), problems


def log_starts_late(
    opportunities: pd.DataFrame, history: pd.DataFrame, file: str
) -> Problem | None:
    """Give a warning when deals were created well before one history export's first change.

    ``history`` is one export in the long form with ``changed_at`` parsed (each export is judged
    on its own: Salesforce keeps OpportunityFieldHistory 18 months, OpportunityHistory for good).
    A complete log's first change comes within about a deal cycle of the first deals (a field set
    late in a deal first changes a cycle after them); so the deals said to predate the log were
    created more than the longer of :data:`LATE_LOG_DAYS` and the 80th percentile of closed
    deals' cycle before its first change. A log cut short says nothing about their earlier days:
    the replay shows them the value before the log's first change, or today's value where the
    log never names the field, back to their creation.
    """
    needed = {"opportunity_id", "created_date", "close_date", "status"}
    if history.empty or not needed <= set(opportunities.columns):
        return None  # a missing column is validation's error, said there
    created = pd.to_datetime(opportunities["created_date"], errors="coerce")
    closed = opportunities["status"].isin(CLOSED_STATUSES).fillna(False).to_numpy(dtype=bool)
    cycle = (pd.to_datetime(opportunities["close_date"], errors="coerce") - created).dt.days
    allowed = max(LATE_LOG_DAYS, long_cycle_days(cycle[closed]) or 0)
    start = history["changed_at"].min()
    ids = opportunities.loc[
        (created < start - pd.Timedelta(days=allowed)).to_numpy(), "opportunity_id"
    ].drop_duplicates()
    if ids.empty:
        return None
    fields = sorted(history["field"].dropna().unique())
    named = ", ".join(fields[:MAX_EXAMPLES]) + (", ..." if len(fields) > MAX_EXAMPLES else "")
    return Problem(
        file=file,
        column="changed_at",
        problem=(
            f"the field history starts on {start:%Y-%m-%d}, but {len(ids):,} deal(s) were created "
            f"more than {allowed} days (a deal cycle) before it: until that day their fields from "
            f"this file ({named}) show the log's first value (today's, where the log never names "
            "the field), not the value they had then"
        ),
        fix=(
            "export the field history every month and append the rows newer than the last "
            "export to this file (Salesforce keeps it 18 months, 24 through the API); or ignore "
            "this if those deals' fields did not change before that day"
        ),
        rows=len(ids),
        examples=tuple(f"deal {deal}" for deal in ids.head(MAX_EXAMPLES)),
        severity="warning",
    )


def _parse(
    values: pd.Series,
    spec: object,
    parse: ParseOptions,
    file: str,
    column: str,
    events: pd.DataFrame,
    problems: list[Problem],
) -> pd.Series:
    parsed = _parse_column(values, spec, parse)  # type: ignore[arg-type]
    if parsed.failed.any():
        count = int(parsed.failed.sum())
        problems.append(
            Problem(
                file=file,
                column=column,
                problem=f"{count:,} value(s) of the field {spec.name} are not valid: "  # type: ignore[attr-defined]
                + ", ".join(repr(v) for v in parsed.bad_values[:MAX_EXAMPLES]),
                fix="correct them in the export, or recode them under `values:` in the mapping",
                rows=count,
                examples=row_references(events, events.index[parsed.failed]),
                severity="warning",
            )
        )
    return parsed.values


def _values_on_days(
    snapshots: pd.DataFrame,
    events: pd.DataFrame,
    new: pd.Series,
    old: pd.Series,
    current: pd.Series,
) -> np.ndarray:
    """Give the field's value on each snapshot row (see the module for the rules), as objects."""
    result: np.ndarray = current.to_numpy(dtype=object)[snapshots["position"].to_numpy()].copy()
    if len(events) == 0:
        return result
    changed_deals = np.unique(events["position"].to_numpy())
    on_changed = np.isin(snapshots["position"].to_numpy(), changed_deals)
    # Before the first change: the first change's old value.
    first = events.groupby("position", sort=False).head(1)
    initial = pd.Series(
        old.loc[first.index].to_numpy(dtype=object), index=first["position"].to_numpy()
    )
    result[on_changed] = initial.reindex(snapshots["position"].to_numpy()[on_changed]).to_numpy()
    # After a change (end of its day): the last new value on or before the snapshot day.
    timeline = pd.DataFrame(
        {
            "position": events["position"].to_numpy(),
            "snapshot_date": events["changed_day"].to_numpy(dtype="datetime64[ns]"),
            "value": new.to_numpy(dtype=object),
            "_order": np.arange(len(events)),
        }
    ).sort_values(["snapshot_date", "_order"], kind="stable")
    left = pd.DataFrame(
        {
            "position": snapshots["position"].to_numpy(),
            "snapshot_date": snapshots["snapshot_date"].to_numpy(dtype="datetime64[ns]"),
            "_row": np.arange(len(snapshots)),
        }
    ).sort_values("snapshot_date", kind="stable")
    matched = pd.merge_asof(
        left, timeline, on="snapshot_date", by="position", direction="backward"
    ).sort_values("_row")
    has_change = matched["_order"].notna().to_numpy()
    result[has_change] = matched["value"].to_numpy(dtype=object)[has_change]
    return result


def _typed(values: np.ndarray, kind: str) -> pd.Series:
    """Give objects as the contract's dtype of ``kind`` (blank where missing)."""
    series = pd.Series(values, dtype=object)
    missing = series.isna().to_numpy()
    if kind == "date":
        return pd.to_datetime(series).astype("datetime64[ns]")
    if kind == "bool":
        return series.where(~missing, None).astype("boolean")
    if kind in ("number", "integer"):
        return pd.to_numeric(series, errors="coerce").astype("float64")
    return series.where(~missing, None).astype("str")
