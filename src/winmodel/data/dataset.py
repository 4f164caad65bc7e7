"""The edge that reads a CRM export: files -> mapping -> validation -> ``CRMData``.

``load_crm_data`` is what every job calls to get its data. It finds the
tables (a folder with ``opportunities.{parquet,csv}`` and optional
``snapshots.{parquet,csv}``, or one file), reads them, applies the mapping,
validates everything, and either returns the canonical tables or raises one
``InputError`` listing every problem.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from winmodel.data.contract import CLOSED_STATUSES, SNAPSHOTS, TABLES, is_mutable, spec_for
from winmodel.data.database import DatabaseSource, read_database_tables
from winmodel.data.field_history import (
    ReplaySettings,
    log_starts_late,
    map_history_table,
    parse_history,
    replay_field_history,
)
from winmodel.data.io import FIRST_ROW_ATTR, ROW_UNIT_ATTR, SOURCE_ATTR, read_table
from winmodel.data.mapping import Mapping, apply_mapping, load_mapping
from winmodel.data.validate import validate_tables
from winmodel.errors import InputError, Problem, ValidationReport
from winmodel.timing import NO_TIMER, Timer

log = logging.getLogger(__name__)

TABLE_FILE_SUFFIXES = (".parquet", ".csv", ".xlsx")
#: The contract's long field-history table, and the prefix of a CRM's own history exports.
FIELD_HISTORY = "field_history"
HISTORY_PREFIX = "history:"


@dataclass(frozen=True)
class ExtraFeature:
    """An export column, outside the contract, that the mapping keeps as a model feature."""

    name: str
    kind: Literal["numeric", "categorical"]


@dataclass(frozen=True)
class CRMData:
    """A validated CRM export in canonical form.

    ``opportunities`` and ``snapshots`` have the contract's names and dtypes
    (see ``winmodel.data.contract``) and a fresh ``RangeIndex``; columns outside
    the contract are kept. ``as_of`` is the data's "today": the mapping's
    ``as_of``, else the latest snapshot date, else the latest created or
    actual close date.
    """

    opportunities: pd.DataFrame
    snapshots: pd.DataFrame | None
    extra_features: tuple[ExtraFeature, ...]
    files: dict[str, str]
    report: ValidationReport
    as_of: pd.Timestamp
    #: The mapping's ``name`` (``unnamed`` for an export already in canonical form).
    mapping_name: str = "unnamed"
    #: The long field history, when the export has one (its values as text).
    field_history: pd.DataFrame | None = None
    #: The fields the history tracks (the rebuilt snapshots hold exactly these).
    tracked_fields: tuple[str, ...] = ()
    #: Where the snapshots come from: the export's own table, replayed field history, or none (flat).
    snapshot_source: Literal["snapshots", "field_history"] | None = None
    #: The mapping's overrides of which columns may change during a deal.
    fixed_fields: tuple[str, ...] = ()
    mutable_fields: tuple[str, ...] = ()

    def is_mutable(self, column: str) -> bool:
        """Give whether ``column`` may change during a deal (the mapping's word, else the contract's)."""
        return is_mutable(column, fixed=self.fixed_fields, mutable=self.mutable_fields)

    @property
    def has_snapshots(self) -> bool:
        """Give True when the export has a snapshots table with rows."""
        return self.snapshots is not None and not self.snapshots.empty


def find_data_files(path: Path, mapping: Mapping) -> dict[str, Path]:
    """Give the file of each table: ``{"opportunities": ..., "snapshots": ...}`` (snapshots optional).

    ``path`` is a folder (files named by the mapping's ``files``, else
    ``opportunities.{parquet,csv}`` and ``snapshots.{parquet,csv}``) or the
    opportunities file itself (snapshots then come from ``files.snapshots``
    next to it). Raises ``InputError`` when a file cannot be found.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(
            Problem(
                file=str(path),
                column=None,
                problem="the data path does not exist",
                fix="give an export file or a folder holding opportunities.csv/.parquet",
            )
        )
    folder = path if path.is_dir() else path.parent
    found: dict[str, Path] = {}
    problems = []
    if path.is_dir():
        if mapping.files.opportunities:
            found["opportunities"] = folder / mapping.files.opportunities
        else:
            default = _first_existing(folder, "opportunities")
            if default is None:
                tables = sorted(
                    item.name
                    for item in folder.iterdir()
                    if item.suffix.lower() in TABLE_FILE_SUFFIXES
                )
                problems.append(
                    Problem(
                        file=str(folder),
                        column=None,
                        problem="the folder has no opportunities.parquet or opportunities.csv"
                        + (f" (it has: {', '.join(tables[:10])})" if tables else ""),
                        fix="pass the export file itself with --data, or name it with "
                        "`files: {opportunities: ...}` in the mapping",
                    )
                )
            else:
                found["opportunities"] = default
    else:
        found["opportunities"] = path
    if mapping.files.snapshots:
        found["snapshots"] = folder / mapping.files.snapshots
    elif path.is_dir() and (default := _first_existing(folder, "snapshots")) is not None:
        found["snapshots"] = default
    if mapping.files.field_history:
        found[FIELD_HISTORY] = folder / mapping.files.field_history
    elif path.is_dir() and (default := _first_existing(folder, FIELD_HISTORY)) is not None:
        found[FIELD_HISTORY] = default
    for position, history in enumerate(mapping.history.tables):
        if history.optional and not (folder / history.file).is_file():
            continue
        found[f"{HISTORY_PREFIX}{position}"] = folder / history.file
    for table, file in found.items():
        if not file.is_file():
            problems.append(
                Problem(
                    file=str(file),
                    column=None,
                    problem=f"the {table} file named in the mapping does not exist",
                    fix=(
                        "correct the `file:` of this entry of `history.tables` in the mapping"
                        if table.startswith(HISTORY_PREFIX)
                        else f"correct `files: {{{table}: ...}}` in the mapping"
                    ),
                )
            )
    if problems:
        raise InputError(problems)
    return found


def _first_existing(folder: Path, stem: str) -> Path | None:
    for suffix in TABLE_FILE_SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def load_crm_data(
    path: Path | DatabaseSource,
    mapping: Mapping | Path | None = None,
    *,
    timer: Timer = NO_TIMER,
) -> CRMData:
    """Give the validated, canonical tables of the export at ``path`` (a file, a folder or a database).

    ``mapping`` is a ``Mapping``, a path to its YAML, or None for an export
    already in canonical form. Lookup files named in the mapping are read
    from the data file's folder. Raises ``InputError`` carrying the full
    report (every error and warning, and the facts) when anything is wrong.
    ``timer`` records the stages ``read``, ``map`` and ``validate``.
    """
    if mapping is None:
        mapping = Mapping()
    elif not isinstance(mapping, Mapping):
        mapping = load_mapping(Path(mapping))
    frames: dict[str, pd.DataFrame] = {}
    if isinstance(path, DatabaseSource):
        with timer.stage("read"):
            frames = {
                table: _numbered(frame) for table, frame in read_database_tables(path).items()
            }
        files = {table: str(frame.attrs[SOURCE_ATTR]) for table, frame in frames.items()}
        base_dir = Path.cwd()  # lookup files of a database source are named from the working folder
    else:
        paths = find_data_files(Path(path), mapping)
        files = {table: str(file) for table, file in paths.items()}
        base_dir = paths["opportunities"].parent
        problems: list[Problem] = []
        with timer.stage("read"):
            for table, file in paths.items():
                try:
                    frames[table] = _numbered(read_table(file, options=mapping.read_options(table)))
                except InputError as error:
                    problems += error.report.problems
        if problems:
            raise InputError(problems)

    histories = {table: frames.pop(table) for table in list(frames) if _is_history(table)}
    with timer.stage("map"):
        mapped, mapping_problems = apply_mapping(frames, mapping, base_dir=base_dir)
    with timer.stage("validate"):
        opportunities, snapshots, report = validate_tables(
            mapped["opportunities"],
            mapped.get("snapshots"),
            files=files,
            parse=mapping.parse_options(),
            with_history=bool(histories),
        )
    validation_problems = _name_export_columns(report.problems, mapping, files)
    history: pd.DataFrame | None = None
    tracked: tuple[str, ...] = ()
    history_facts: list[str] = []
    if histories:
        with timer.stage("replay"):
            history, tracked, found = _field_history(histories, mapping, opportunities, files)
            validation_problems += found
    as_of, as_of_source = _as_of(mapping, opportunities, snapshots, history)
    source: Literal["snapshots", "field_history"] | None = (
        "snapshots" if snapshots is not None else None
    )
    if (
        history is not None
        and report.ok
        and not any(p.severity == "error" for p in validation_problems)
    ):
        if snapshots is not None:
            validation_problems.append(
                Problem(
                    file=files.get("snapshots", "snapshots"),
                    column=None,
                    problem="the export has both a snapshots table and a field history: the snapshots are "
                    "used, the field history is not replayed",
                    fix="drop one of them from the mapping if that is not what you want",
                    severity="warning",
                )
            )
        else:
            with timer.stage("replay"):
                snapshots, found = replay_field_history(
                    opportunities,
                    history,
                    tracked=tracked,
                    as_of=as_of,
                    settings=ReplaySettings(
                        mapping.history.snapshot_every_days, mapping.history.snapshot_at_changes
                    ),
                    parse=mapping.parse_options(),
                    file=_history_files(files),
                )
            validation_problems += found
            source = "field_history"
            history_facts.append(
                f"snapshots replayed from the field history: {len(snapshots):,} of "
                f"{snapshots['opportunity_id'].nunique():,} deals, fields {', '.join(tracked)}"
            )
    facts = [f"mapping: {mapping.name}"] if mapping.name != "unnamed" else []
    facts += [*report.facts, *history_facts, f"as of {as_of:%Y-%m-%d} ({as_of_source})"]
    report = ValidationReport(
        problems=(*mapping_problems, *validation_problems), facts=tuple(facts)
    )
    if not report.ok:
        raise InputError(report)
    log.debug("loaded %s: %s", files["opportunities"], "; ".join(report.facts[:2]))
    extra = tuple(
        ExtraFeature(name=name, kind=kind)
        for name, kind in mapping.extra_feature_names()
        if name in opportunities.columns
    )
    return CRMData(
        opportunities=opportunities.reset_index(drop=True),
        snapshots=None if snapshots is None else snapshots.reset_index(drop=True),
        extra_features=extra,
        files=files,
        report=report,
        as_of=as_of,
        mapping_name=mapping.name,
        field_history=history,
        tracked_fields=tracked,
        snapshot_source=source,
        fixed_fields=tuple(mapping.fixed_fields),
        mutable_fields=tuple(mapping.mutable_fields),
    )


def _is_history(table: str) -> bool:
    return table == FIELD_HISTORY or table.startswith(HISTORY_PREFIX)


def _history_files(files: dict[str, str]) -> str:
    return ", ".join(file for table, file in files.items() if _is_history(table))


def _field_history(
    histories: dict[str, pd.DataFrame],
    mapping: Mapping,
    opportunities: pd.DataFrame,
    files: dict[str, str],
) -> tuple[pd.DataFrame, tuple[str, ...], list[Problem]]:
    """Give the long field history of every history export, the fields it tracks, and the problems."""
    problems: list[Problem] = []
    parts = []
    declared: set[str] = set()
    for table, frame in histories.items():
        entry = (
            None
            if table == FIELD_HISTORY
            else mapping.history.tables[int(table.removeprefix(HISTORY_PREFIX))]
        )
        long, found = map_history_table(frame, entry, mapping, file=files[table])
        problems += found
        parsed, found = parse_history(
            long, opportunities, mapping.parse_options(), file=files[table]
        )
        problems += found
        late = log_starts_late(opportunities, parsed, files[table])
        if late is not None:
            problems.append(late)
        parts.append(parsed)
        if entry is not None:
            declared |= set(entry.fields.values())
    history = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    present = set(history["field"]) if len(history) else set()
    tracked = tuple(
        name
        for name in SNAPSHOTS.names()
        if name in (present | declared) and spec_for(name) is not None
    )
    return history, tracked, problems


def _numbered(frame: pd.DataFrame) -> pd.DataFrame:
    """Give ``frame`` indexed by its line (CSV) or row (Parquet) numbers, so messages name rows as the user sees them."""
    first = int(frame.attrs.get(FIRST_ROW_ATTR, 1))
    unit = str(frame.attrs.get(ROW_UNIT_ATTR, "row"))
    numbered = frame.set_axis(pd.RangeIndex(first, first + len(frame), name=unit), axis=0)
    numbered.attrs = {
        SOURCE_ATTR: frame.attrs.get(SOURCE_ATTR),
        ROW_UNIT_ATTR: unit,
        FIRST_ROW_ATTR: first,
    }
    return numbered


def _name_export_columns(
    problems: tuple[Problem, ...], mapping: Mapping, files: dict[str, str]
) -> list[Problem]:
    """Give the problems with the export column (or lookup column) a renamed column came from."""
    table_of_file = {file: table for table, file in files.items()}
    origins: dict[str, dict[str, str]] = {table: {} for table in files}
    for table in origins:
        origins[table].update(
            {
                target: f"export column '{source}'"
                for target, source in getattr(mapping.columns, table, {}).items()
                if target != source
            }
        )
    for lookup in mapping.lookups:
        if lookup.table in origins:
            origins[lookup.table].update(
                {
                    target: f"column '{source}' of {lookup.file}"
                    for target, source in lookup.columns.items()
                }
            )
    named = []
    for problem in problems:
        origin = origins.get(table_of_file.get(problem.file, ""), {}).get(problem.column or "")
        if origin:
            problem = replace(problem, problem=f"{problem.problem} (from the {origin})")
        named.append(problem)
    return named


def _as_of(
    mapping: Mapping,
    opportunities: pd.DataFrame,
    snapshots: pd.DataFrame | None,
    history: pd.DataFrame | None = None,
) -> tuple[pd.Timestamp, str]:
    """Give the data's "today" and where it came from."""
    if mapping.as_of is not None:
        return pd.Timestamp(mapping.as_of), "from the mapping's as_of"
    if (
        snapshots is not None
        and "snapshot_date" in snapshots.columns
        and snapshots["snapshot_date"].notna().any()
    ):
        return snapshots["snapshot_date"].max(), "the latest snapshot date"
    dates = []
    if "created_date" in opportunities.columns:
        dates.append(opportunities["created_date"].max())
    if {"close_date", "status"} <= set(opportunities.columns):
        closed = opportunities["status"].isin(CLOSED_STATUSES).fillna(False)
        dates.append(opportunities.loc[closed, "close_date"].max())
    dates = [date for date in dates if pd.notna(date)]
    if history is not None and len(history) and history["changed_at"].notna().any():
        dates.append(history["changed_at"].max().normalize())
    if dates:
        return max(dates), "the latest created, close or change date"
    return pd.Timestamp.today().normalize(), "today: the data has no dates"


def data_digest(data: CRMData) -> str:
    """Give a short content hash of the canonical tables (same data, same digest).

    The rows' order does not count: a database gives rows in no set order (PostgreSQL returned
    one table's rows in another order than they were written), and the same rows are the same data.
    """
    digest = hashlib.sha256()
    for frame in (data.opportunities, data.snapshots):
        if frame is None:
            continue
        hashed = np.sort(pd.util.hash_pandas_object(frame, index=False).to_numpy())
        digest.update(hashed.tobytes())
        digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()[:16]


def data_identity(data: CRMData) -> dict[str, str]:
    """Give what makes two exports "the same data" for a champion: the mapping and the contract columns.

    Next month's export of the same CRM keeps its identity (new rows change the
    digest, not the identity); another company's export, another mapping or a
    changed set of contract columns does not. ``key`` is a short hash of the rest.
    """
    identity = {"mapping": data.mapping_name}
    for table, frame in (("opportunities", data.opportunities), ("snapshots", data.snapshots)):
        present = [] if frame is None else [c for c in TABLES[table].names() if c in frame.columns]
        identity[f"{table}_columns"] = ",".join(present)
    identity["key"] = hashlib.sha256(
        "|".join(f"{k}={v}" for k, v in sorted(identity.items())).encode()
    ).hexdigest()[:12]
    return identity
