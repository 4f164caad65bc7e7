"""Mapping a CRM export onto the contract: a YAML file RevOps edits, and the function that applies it.

A mapping says which file is which table, how to read it, which export column
becomes which canonical column, how to recode values, parse dates, booleans
and numbers, which columns to scale, fill or set to a constant, which lookup
tables to join, and which other export columns to keep as model features.
Every key is documented in ``docs/mapping.md``; the shipped examples live in
``pipelines/mappings/``.

``load_mapping`` parses the YAML into a frozen, validated ``Mapping`` (an
unknown key or a YAML error is an ``InputError`` naming the file and line);
``apply_mapping`` turns raw export frames into frames with canonical names,
still as text, ready for ``validate.validate_tables``.
"""

from __future__ import annotations

import codecs
import collections.abc
import datetime as dt
import hashlib
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from winmodel.data.contract import OPPORTUNITIES, SNAPSHOTS, TABLES, ColumnSpec, closest_names
from winmodel.data.io import (
    CSV_DELIMITERS,
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    SOURCE_ATTR,
    ReadOptions,
    read_table,
)
from winmodel.data.validate import (
    DEFAULT_FALSE_VALUES,
    DEFAULT_TRUE_VALUES,
    ParseOptions,
    as_text,
    parse_booleans,
    parse_numbers,
    row_references,
)
from winmodel.data.writeback import WriteBack
from winmodel.data.yamlfile import line_of, read_yaml
from winmodel.errors import MAX_EXAMPLES, InputError, Problem

#: The ``fill`` source meaning "the mapping's as_of date".
AS_OF = "as_of"
#: The ``values`` key meaning "every other non-blank value".
OTHERWISE = "*"


def _to_text(value: Any) -> Any:
    """Give YAML scalars as text: ``1`` -> ``'1'``, ``true`` -> ``'true'``, a date -> ISO."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


Text = Annotated[str, BeforeValidator(_to_text)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FilesSection(_Section):
    """Which file in the data folder is which table."""

    opportunities: Text | None = None
    snapshots: Text | None = None
    #: The contract's long field history (opportunity_id, field, old_value, new_value, changed_at),
    #: when it is already in that form; a CRM's own history exports go under `history.tables`.
    field_history: Text | None = None


class ReadSection(_Section):
    """How to read the export's CSV files and parse its numbers."""

    delimiter: Text | None = None
    encoding: Text | None = None
    decimal: Literal[".", ","] = "."
    thousands: Text | None = None
    max_line_bytes: PositiveInt = DEFAULT_MAX_LINE_BYTES
    max_file_bytes: PositiveInt = DEFAULT_MAX_FILE_BYTES
    #: The sheet of each table's Excel workbook (default: the first sheet).
    sheets: dict[Literal["opportunities", "snapshots"], Text] = Field(default_factory=dict)

    @field_validator("delimiter")
    @classmethod
    def _known_delimiter(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(
            value, value
        )
        if value not in CSV_DELIMITERS:
            raise ValueError("delimiter must be one of ',', ';', '|', tab")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                codecs.lookup(value)
            except LookupError as error:
                raise ValueError(
                    f"unknown encoding {value!r} (try utf-8, cp1252, latin-1)"
                ) from error
        return value

    @model_validator(mode="after")
    def _separators_differ(self) -> ReadSection:
        if self.thousands not in (None, "", ",", ".", " ", "'"):
            raise ValueError("thousands must be one of ',', '.', ' ', \"'\" or ''")
        if self.thousands == self.decimal:
            raise ValueError("thousands and decimal must differ")
        return self


class TableColumns(_Section):
    """Canonical column <- export column, per table."""

    opportunities: dict[Text, Text] = Field(default_factory=dict)
    snapshots: dict[Text, Text] = Field(default_factory=dict)


class StatusFlags(_Section):
    """Two yes/no export columns that give the status: closed & won -> won, closed -> lost, else open."""

    closed: Text
    won: Text


class BooleanWords(_Section):
    """The export's words for yes and no (replacing the built-in lists when given)."""

    true_values: list[Text] | None = None
    false_values: list[Text] | None = None


class DateSettings(_Section):
    """How to read dates: day-first or month-first, and explicit formats per column."""

    dayfirst: bool = False
    formats: dict[Text, Text] = Field(default_factory=dict)


class Lookup(_Section):
    """A table joined onto the export to bring in more columns (accounts, products, teams)."""

    file: Text
    on: dict[Text, Text] = Field(min_length=1)
    columns: dict[Text, Text] = Field(min_length=1)
    values: dict[Text, dict[Text, Text]] = Field(default_factory=dict)
    table: Literal["opportunities", "snapshots"] = "opportunities"

    @model_validator(mode="after")
    def _values_on_keys(self) -> Lookup:
        stray = [name for name in self.values if name not in self.on]
        if stray:
            raise ValueError(
                f"values may only fix the join keys ({', '.join(self.on)}), not {', '.join(stray)}"
            )
        return self


class GenerateId(_Section):
    """How to make ``opportunity_id`` when the export has none.

    ``columns``: a hash of these export columns (e.g. account, deal name, created date): the same
    deal gets the same id in next month's export as long as those values do not change.
    ``row_number: true``: the row's line number: stable only while the export keeps its rows, order
    and filter; a flat export only (snapshots could not be matched to deals).
    """

    columns: list[Text] = Field(default_factory=list)
    row_number: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> GenerateId:
        if bool(self.columns) == self.row_number:
            raise ValueError("give either columns: [...] (a hash of them) or row_number: true")
        return self


class ExtraFeatures(_Section):
    """Export columns kept, under their snake_case names, as model features."""

    categorical: list[Text] = Field(default_factory=list)
    numeric: list[Text] = Field(default_factory=list)


class HistoryTable(_Section):
    """One field-history export (Salesforce OpportunityFieldHistory or OpportunityHistory, HubSpot).

    Long layout (``field`` given): one row per change of one field, the field's name in ``field``
    and its value after the change in ``new_value`` (before it in ``old_value``, when the export
    has it). Wide layout (no ``field``): one row per change holding several fields' values after
    it, one column each. ``fields`` maps the CRM's field names (long: values of ``field``; wide:
    column names) to contract columns; fields not listed are ignored.
    """

    file: Text
    opportunity_id: Text
    changed_at: Text
    field: Text | None = None
    old_value: Text | None = None
    new_value: Text | None = None
    fields: dict[Text, Text] = Field(min_length=1)
    #: A shipped mapping lists the history exports a CRM can give; a missing optional one leaves
    #: the export flat (said in the facts) instead of stopping.
    optional: bool = False

    @model_validator(mode="after")
    def _layout(self) -> HistoryTable:
        if self.field is not None and self.new_value is None:
            raise ValueError(
                "a long history (with `field`) needs `new_value` (the column of the value set)"
            )
        if self.field is None and (self.old_value is not None or self.new_value is not None):
            raise ValueError(
                "`old_value`/`new_value` belong to a long history: name its `field` column too"
            )
        return self


class HistorySection(_Section):
    """How a field history becomes point-in-time snapshots (see docs/mapping.md)."""

    #: A snapshot every this many days, counted back from the as-of date (0: only at changes).
    snapshot_every_days: int = Field(7, ge=0)
    #: Also a snapshot on every day a tracked field changed.
    snapshot_at_changes: bool = True
    tables: list[HistoryTable] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some_snapshots(self) -> HistorySection:
        if self.snapshot_every_days == 0 and not self.snapshot_at_changes:
            raise ValueError("with snapshot_every_days 0, snapshot_at_changes must be true")
        return self


class Mapping(_Section):
    """How one CRM export maps onto the contract (see docs/mapping.md for every key)."""

    name: Text = "unnamed"
    description: str = ""
    files: FilesSection = FilesSection()
    read: ReadSection = ReadSection()
    as_of: dt.date | None = None
    columns: TableColumns = TableColumns()
    status_flags: StatusFlags | None = None
    values: dict[Text, dict[Text, Text | None]] = Field(default_factory=dict)
    booleans: BooleanWords = BooleanWords()
    dates: DateSettings = DateSettings()
    scale: dict[Text, float] = Field(default_factory=dict)
    constants: dict[Text, Text] = Field(default_factory=dict)
    fill: dict[Text, Text] = Field(default_factory=dict)
    lookups: list[Lookup] = Field(default_factory=list)
    extra_features: ExtraFeatures = ExtraFeatures()
    generate_id: GenerateId | None = None
    #: How scores go back into this CRM (``winmodel export-crm``); see winmodel.data.writeback.
    write_back: WriteBack | None = None
    history: HistorySection = HistorySection()
    #: Columns whose value may change during a deal (an extra feature, or a contract column the
    #: contract calls fixed); and columns fixed at creation that the contract calls mutable.
    mutable_fields: list[Text] = Field(default_factory=list)
    fixed_fields: list[Text] = Field(default_factory=list)

    @field_validator("scale")
    @classmethod
    def _usable_factors(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [name for name, factor in value.items() if not factor or factor != factor]
        if bad:
            raise ValueError(f"scale factors must be non-zero numbers ({', '.join(bad)})")
        return value

    @model_validator(mode="after")
    def _as_of_when_used(self) -> Mapping:
        if self.as_of is None and AS_OF in self.fill.values():
            raise ValueError(
                "fill uses as_of, so as_of (the export date, YYYY-MM-DD) must be given"
            )
        if self.generate_id is not None and "opportunity_id" in self.columns.opportunities:
            raise ValueError(
                "give the deal id either with generate_id or with columns.opportunities.opportunity_id"
            )
        if self.status_flags is not None and "status" in self.columns.opportunities:
            raise ValueError(
                "give the status either with status_flags or with columns.opportunities.status"
            )
        return self

    def read_options(self, table: str | None = None) -> ReadOptions:
        """Give the options ``io.read_table`` reads this export's files (of ``table``) with."""
        return ReadOptions(
            delimiter=self.read.delimiter,
            encoding=self.read.encoding,
            max_line_bytes=self.read.max_line_bytes,
            max_file_bytes=self.read.max_file_bytes,
            sheet=next((sheet for key, sheet in self.read.sheets.items() if key == table), None),
        )

    def parse_options(self) -> ParseOptions:
        """Give the options ``validate`` parses this export's text with."""
        return ParseOptions(
            decimal=self.read.decimal,
            thousands=self.read.thousands,
            dayfirst=self.dates.dayfirst,
            date_formats=dict(self.dates.formats),
            true_values=tuple(self.booleans.true_values or DEFAULT_TRUE_VALUES),
            false_values=tuple(
                self.booleans.false_values
                if self.booleans.false_values is not None
                else DEFAULT_FALSE_VALUES
            ),
            scale=dict(self.scale),
        )

    def extra_feature_names(self) -> tuple[tuple[str, Literal["numeric", "categorical"]], ...]:
        """Give each extra feature's column name (snake_case) and kind."""
        return (
            *((snake_case(name), "categorical") for name in self.extra_features.categorical),
            *((snake_case(name), "numeric") for name in self.extra_features.numeric),
        )


# --------------------------------------------------------------------------- loading


def load_mapping(path: Path) -> Mapping:
    """Give the validated mapping in a YAML file.

    Raises ``InputError`` naming the file and the line for a YAML syntax
    error (with its column), a key given twice, an unknown key (with the
    allowed keys) and a value of the wrong kind; every problem at once.
    """
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise InputError(
            Problem(
                file=name,
                column=None,
                problem="the mapping file does not exist",
                fix="check the path, or start from one in pipelines/mappings/",
            )
        )
    data, node = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(
            Problem(
                file=name,
                column=None,
                problem="the mapping must be a set of `key: value` lines at the top level",
                fix="start from one of pipelines/mappings/*.yaml",
            )
        )
    problems: list[Problem] = []
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as error:
        problems += [_validation_problem(detail, node, name) for detail in error.errors()]
    if problems:
        raise InputError(problems)
    return mapping


def _validation_problem(detail: ErrorDetails, node: yaml.Node | None, file: str) -> Problem:
    """Give the problem for one pydantic error, with the YAML line it points at."""
    loc = tuple(part for part in detail["loc"] if part != "[key]")
    line = line_of(node, loc)
    where = _dotted(loc)
    prefix = f"line {line}: " if line else ""
    if detail["type"] == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(loc[:-1])
        guess = closest_names(key, allowed)
        parent = _dotted(loc[:-1]) or "the top level"
        problem = f"{prefix}unknown key '{key}' in {parent}"
        if guess:
            problem += f"; did you mean '{guess[0]}'?"
        fix = f"remove it, or use one of: {', '.join(allowed)}" if allowed else "remove it"
        return Problem(file=file, column=None, problem=problem, fix=fix)
    message = detail["msg"].removeprefix("Value error, ")
    return Problem(
        file=file,
        column=None,
        problem=f"{prefix}{where or 'mapping'}: {message}",
        fix="correct the value; docs/mapping.md describes every key",
    )


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Give the keys the model at ``loc`` accepts (empty when it is a free-form dict)."""
    model: Any = Mapping
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        model = _innermost_model(field.annotation)
    return (
        list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []
    )


def _innermost_model(annotation: Any) -> Any:
    """Give the pydantic model inside ``list[X]``, ``X | None`` and the like, else the annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _innermost_model(argument)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return annotation


# --------------------------------------------------------------------------- applying


def snake_case(name: str) -> str:
    """Give ``name`` in snake_case: ``'Deal Name'`` -> ``'deal_name'``, ``'NumberOfEmployees'`` -> ``'number_of_employees'``."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name).strip())
    text = re.sub(r"[^0-9A-Za-z]+", "_", text)
    return text.strip("_").lower()


def apply_mapping(
    frames: dict[str, pd.DataFrame],
    mapping: Mapping,
    *,
    base_dir: Path,
) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    """Give the export's tables under canonical column names, and the problems met on the way.

    ``frames`` maps ``"opportunities"`` (and optionally ``"snapshots"``) to the
    raw frames as read; lookup files are read from ``base_dir``. In order, per
    table: lookups are joined, the status is built from ``status_flags``,
    columns are renamed (``columns``), constants added, values recoded,
    blanks filled, extra features renamed to snake_case. Export columns not
    mapped are kept as they are. Values stay text: ``validate_tables`` parses
    them. The frames' index is kept (it names rows in messages).
    """
    problems: list[Problem] = []
    result: dict[str, pd.DataFrame] = {}
    for table, frame in frames.items():
        if frame is None:
            continue
        file = str(frame.attrs.get(SOURCE_ATTR, table))
        raw = frame
        id_source = _columns_for(mapping, table).get("opportunity_id", "opportunity_id")
        for lookup in mapping.lookups:
            if lookup.table == table:
                frame, found = _join_lookup(
                    frame, lookup, mapping, base_dir=base_dir, file=file, id_column=id_source
                )
                problems += found
        if mapping.generate_id is not None:
            frame, found = _generate_ids(frame, mapping.generate_id, table=table, file=file)
            problems += found
        if table == "opportunities" and mapping.status_flags is not None:
            frame, found = _status_from_flags(frame, mapping, file=file, id_column=id_source)
            problems += found
        frame, found = _rename(frame, _columns_for(mapping, table), table=table, file=file)
        problems += found
        if table == "opportunities":
            frame, found = _add_constants(frame, mapping, file=file)
            problems += found
        frame = _recode_all(frame, mapping.values)
        frame, found = _fill(frame, raw, mapping, table=table, file=file)
        problems += found
        if table == "opportunities":
            frame, found = _extra_features(frame, mapping, file=file)
            problems += found
        result[table] = frame
    problems += _settings_without_columns(mapping, result, file=f"mapping '{mapping.name}'")
    return result, problems


def _columns_for(mapping: Mapping, table: str) -> dict[str, str]:
    return dict(getattr(mapping.columns, table, {}) or {})


def _mapping_problem(
    file: str,
    problem: str,
    fix: str,
    *,
    column: str | None = None,
    severity: Literal["error", "warning"] = "error",
    rows: int = 0,
    examples: tuple[str, ...] = (),
) -> Problem:
    return Problem(
        file=file,
        column=column,
        problem=problem,
        fix=fix,
        severity=severity,
        rows=rows,
        examples=examples,
    )


def _missing_column(
    file: str,
    setting: str,
    name: str,
    available: list[str],
    *,
    severity: Literal["error", "warning"] = "error",
    consequence: str = "",
) -> Problem:
    guess = closest_names(name, available)
    problem = f"`{setting}` names the column '{name}', which {file} does not have"
    if guess:
        problem += f"; the closest is '{guess[0]}'"
    if consequence:
        problem += f"; {consequence}"
    return _mapping_problem(
        file,
        problem,
        "name an existing column in the mapping (names are case-sensitive)",
        column=name,
        severity=severity,
    )


def recode_values(series: pd.Series, recode: collections.abc.Mapping[str, str | None]) -> pd.Series:
    """Give ``series`` with values recoded (case-insensitive, trimmed); ``'*'`` recodes every other non-blank value."""
    text = as_text(series)
    table = {str(key).strip().lower(): value for key, value in recode.items() if key != OTHERWISE}
    lowered = text.str.lower()
    listed = lowered.isin(list(table)).to_numpy()
    mapped = lowered.map(table)
    recoded = text.where(~listed, mapped)
    if OTHERWISE in recode:
        others = ~listed & text.notna().to_numpy()
        recoded = recoded.where(~others, recode[OTHERWISE])
    if "" in table:
        recoded = recoded.where(text.notna(), table[""])
    return recoded.astype("str")


def _recode_all(frame: pd.DataFrame, values: dict[str, dict[str, str | None]]) -> pd.DataFrame:
    recoded = {
        name: recode_values(frame[name], recode)
        for name, recode in values.items()
        if name in frame.columns
    }
    return frame.assign(**recoded) if recoded else frame


def _join_lookup(
    frame: pd.DataFrame,
    lookup: Lookup,
    mapping: Mapping,
    *,
    base_dir: Path,
    file: str,
    id_column: str,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Give ``frame`` with the lookup's columns joined on, and the problems met."""
    path = Path(base_dir) / lookup.file
    try:
        other = read_table(path, options=mapping.read_options())
    except InputError as error:
        return frame, list(error.report.problems)
    lookup_file = str(path)
    problems = [
        _missing_column(file, f"lookups ({lookup.file}).on", name, list(frame.columns))
        for name in lookup.on
        if name not in frame.columns
    ]
    problems += [
        _missing_column(lookup_file, f"lookups ({lookup.file})", name, list(other.columns))
        for name in dict.fromkeys([*lookup.on.values(), *lookup.columns.values()])
        if name not in other.columns
    ]
    problems += [
        _mapping_problem(
            file,
            f"the lookup {lookup.file} would add '{target}', which the export already has",
            "give the lookup column another name, or drop the export's column from the lookup",
            column=target,
        )
        for target in lookup.columns
        if target in frame.columns
    ]
    if problems:
        return frame, problems
    fixed = {name: recode_values(frame[name], recode) for name, recode in lookup.values.items()}
    frame = frame.assign(**fixed)
    left = pd.DataFrame(
        {f"key{i}": as_text(frame[name]) for i, name in enumerate(lookup.on)}, index=frame.index
    )
    right_keys = pd.DataFrame(
        {f"key{i}": as_text(other[name]) for i, name in enumerate(lookup.on.values())}
    )
    right = pd.concat(
        [
            right_keys,
            pd.DataFrame({target: other[source] for target, source in lookup.columns.items()}),
        ],
        axis=1,
    )
    duplicated = right.duplicated(subset=list(right_keys.columns), keep=False)
    if duplicated.any():
        keys = (
            right_keys[duplicated]
            .drop_duplicates()
            .fillna("")
            .astype(object)
            .agg(" / ".join, axis=1)
        )
        problems.append(
            _mapping_problem(
                lookup_file,
                f"{len(keys):,} key value(s) of {', '.join(lookup.on.values())} appear more than once: "
                + ", ".join(repr(key) for key in keys.head(MAX_EXAMPLES)),
                "a lookup needs one row per key: remove the duplicate rows (the first is used meanwhile)",
                column=", ".join(lookup.on.values()),
                rows=int(duplicated.sum()),
            )
        )
        right = right.drop_duplicates(subset=list(right_keys.columns), keep="first")
    right = right.set_index(list(right_keys.columns))
    joined = left.join(right, on=list(left.columns))
    known = (
        pd.MultiIndex.from_frame(left).isin(right.index)
        if len(left.columns) > 1
        else left.iloc[:, 0].isin(right.index).to_numpy()
    )
    unmatched = left.notna().all(axis=1).to_numpy() & ~known
    if unmatched.any():
        export_keys = list(lookup.on)
        counts = left[unmatched].astype(object).agg(" / ".join, axis=1).value_counts()
        listed = ", ".join(
            f"{value!r} ({count:,})" for value, count in counts.head(MAX_EXAMPLES).items()
        )
        example = counts.index[0]
        problems.append(
            _mapping_problem(
                file,
                f"{int(unmatched.sum()):,} row(s) have {', '.join(export_keys)} values not found in "
                f"{lookup.file}: {listed}; their {', '.join(lookup.columns)} stay blank",
                f"fix the spelling with `values: {{{export_keys[0]}: {{'{example}': '<value in "
                f"{lookup.file}>'}}}}` under this lookup, or add the missing rows to {lookup.file}",
                column=", ".join(export_keys),
                severity="warning",
                rows=int(unmatched.sum()),
                examples=row_references(frame, frame.index[unmatched], id_column=id_column),
            )
        )
    return frame.assign(**{target: joined[target] for target in lookup.columns}), problems


#: Prefix of generated ids: ``H-`` a hash of named columns, ``R-`` a row number.
HASH_ID_PREFIX, ROW_ID_PREFIX = "H-", "R-"


def _generate_ids(
    frame: pd.DataFrame, generate: GenerateId, *, table: str, file: str
) -> tuple[pd.DataFrame, list[Problem]]:
    """Give ``frame`` with an ``opportunity_id`` made from named columns (a hash) or the row number."""
    if "opportunity_id" in frame.columns:
        return frame, [
            _mapping_problem(
                file,
                "`generate_id` is set, but the export has an opportunity_id column",
                "remove generate_id, or rename the export's column",
                column="opportunity_id",
            )
        ]
    if generate.row_number:
        if table != "opportunities":
            return frame, [
                _mapping_problem(
                    file,
                    "`generate_id: {row_number: true}` cannot link snapshots to their deals",
                    "generate ids from columns both tables have: `generate_id: {columns: [...]}`",
                    column="opportunity_id",
                )
            ]
        ids = pd.Series(
            [f"{ROW_ID_PREFIX}{label}" for label in frame.index], index=frame.index, dtype="str"
        )
        return frame.assign(opportunity_id=ids), []
    missing = [name for name in generate.columns if name not in frame.columns]
    if missing:
        return frame, [
            _missing_column(file, "generate_id.columns", name, list(frame.columns))
            for name in missing
        ]
    parts = [as_text(frame[name]).fillna("").str.strip() for name in generate.columns]
    keys = parts[0]
    for part in parts[1:]:
        keys = keys + "\x1f" + part
    # SHA-1 of the values (not pandas' hash): the same values give the same id in any version.
    ids = keys.map(
        lambda key: HASH_ID_PREFIX + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
    ).astype("str")
    problems = []
    if table == "opportunities":
        repeated = ids.duplicated(keep=False).to_numpy()
        if repeated.any():
            problems.append(
                _mapping_problem(
                    file,
                    f"{int(repeated.sum()):,} rows share their {', '.join(generate.columns)} with "
                    "another row, so their generated ids repeat",
                    "add a column that tells deals apart (e.g. the deal name or created date) to "
                    "generate_id.columns",
                    column=", ".join(generate.columns),
                    rows=int(repeated.sum()),
                    examples=row_references(frame, frame.index[repeated]),
                )
            )
    return frame.assign(opportunity_id=ids), problems


def _status_from_flags(
    frame: pd.DataFrame, mapping: Mapping, *, file: str, id_column: str
) -> tuple[pd.DataFrame, list[Problem]]:
    flags = mapping.status_flags
    assert flags is not None
    missing = [name for name in (flags.closed, flags.won) if name not in frame.columns]
    if missing:
        return frame, [
            _missing_column(file, "status_flags", name, list(frame.columns)) for name in missing
        ]
    options = mapping.parse_options()
    problems = []
    parsed = {}
    for name in (flags.closed, flags.won):
        result = parse_booleans(
            frame[name], true_values=options.true_values, false_values=options.false_values
        )
        parsed[name] = result.values
        if result.failed.any():
            count = int(result.failed.sum())
            problems.append(
                _mapping_problem(
                    file,
                    f"{count:,} value(s) of the status flag are not yes/no values: "
                    + ", ".join(repr(value) for value in result.bad_values),
                    "list the export's words with `booleans: {true_values: [...], false_values: [...]}`",
                    column=name,
                    rows=count,
                    examples=row_references(frame, frame.index[result.failed], id_column=id_column),
                )
            )
    closed, won = parsed[flags.closed], parsed[flags.won]
    status = pd.Series(pd.NA, index=frame.index, dtype="str")
    status = status.mask(closed.eq(False).fillna(False), "open")
    status = status.mask((closed & won).fillna(False), "won")
    status = status.mask((closed & ~won).fillna(False), "lost")
    # The flags are the outcome itself: consumed, like a column mapped onto status.
    return frame.drop(columns=[flags.closed, flags.won]).assign(status=status), problems


def _rename(
    frame: pd.DataFrame, columns: dict[str, str], *, table: str, file: str
) -> tuple[pd.DataFrame, list[Problem]]:
    """Give ``frame`` with canonical columns taken from their export columns; the rest kept."""
    spec = TABLES[table]
    problems = []
    mapped = {}
    for target, source in columns.items():
        if source in frame.columns:
            mapped[target] = frame[source]
            continue
        required = target in spec.required
        problems.append(
            _missing_column(
                file,
                f"columns.{table}.{target}",
                source,
                list(frame.columns),
                severity="error" if required else "warning",
                consequence="" if required else f"{target} is left out",
            )
        )
    consumed = set(columns.values()) & set(frame.columns)
    replaced = [name for name in frame.columns if name in mapped and name not in consumed]
    problems += [
        _mapping_problem(
            file,
            f"the export's own column '{name}' is replaced by `columns.{table}.{name}: "
            f"{columns[name]}`",
            "rename one of them if both are needed",
            column=name,
            severity="warning",
        )
        for name in replaced
    ]
    rest = frame.drop(
        columns=[name for name in frame.columns if name in consumed or name in mapped]
    )
    return pd.concat([pd.DataFrame(mapped, index=frame.index), rest], axis=1), problems


def _add_constants(
    frame: pd.DataFrame, mapping: Mapping, *, file: str
) -> tuple[pd.DataFrame, list[Problem]]:
    problems = [
        _mapping_problem(
            file,
            f"`constants.{name}` is set, but the table already has a column '{name}'",
            f"remove the constant, or stop mapping a column onto {name}",
            column=name,
        )
        for name in mapping.constants
        if name in frame.columns
    ]
    added = {name: value for name, value in mapping.constants.items() if name not in frame.columns}
    return (frame.assign(**added) if added else frame), problems


def _is_blank(series: pd.Series) -> pd.Series:
    if pd.api.types.is_string_dtype(series.dtype) or series.dtype == object:
        return series.isna() | (series.astype("str").str.strip() == "").fillna(True)
    return series.isna()


def _fill(
    frame: pd.DataFrame, raw: pd.DataFrame, mapping: Mapping, *, table: str, file: str
) -> tuple[pd.DataFrame, list[Problem]]:
    """Give ``frame`` with blank cells filled from ``as_of`` or another column (``fill``)."""
    problems = []
    filled = {}
    for target, source in mapping.fill.items():
        if target not in frame.columns and not (
            table == "opportunities" and target in OPPORTUNITIES
        ):
            continue
        current = (
            frame[target]
            if target in frame.columns
            else pd.Series(pd.NA, index=frame.index, dtype="str")
        )
        if source == AS_OF:
            assert mapping.as_of is not None
            is_date = pd.api.types.is_datetime64_any_dtype(current.dtype)
            replacement: Any = pd.Timestamp(mapping.as_of) if is_date else mapping.as_of.isoformat()
        elif source in frame.columns:
            replacement = frame[source]
        elif source in raw.columns:
            replacement = raw[source]
        else:
            problems.append(_missing_column(file, f"fill.{target}", source, list(frame.columns)))
            continue
        if not pd.api.types.is_datetime64_any_dtype(current.dtype):
            current = current.astype(object)
        filled[target] = current.where(~_is_blank(current), replacement)
    return (frame.assign(**filled) if filled else frame), problems


def _extra_features(
    frame: pd.DataFrame, mapping: Mapping, *, file: str
) -> tuple[pd.DataFrame, list[Problem]]:
    """Give ``frame`` with the extra feature columns under snake_case names, numbers parsed."""
    problems = []
    options = mapping.parse_options()
    for kind, names in (
        ("categorical", mapping.extra_features.categorical),
        ("numeric", mapping.extra_features.numeric),
    ):
        for name in names:
            new_name = snake_case(name)
            column = (
                name if name in frame.columns else new_name if new_name in frame.columns else None
            )
            if column is None:
                problems.append(
                    _missing_column(file, f"extra_features.{kind}", name, list(frame.columns))
                )
                continue
            if new_name in OPPORTUNITIES or new_name in SNAPSHOTS:
                problems.append(
                    _mapping_problem(
                        file,
                        f"the extra feature '{name}' would be named '{new_name}', a contract column",
                        f"map it under `columns: {{opportunities: {{{new_name}: '{name}'}}}}` instead",
                        column=name,
                    )
                )
                continue
            if new_name != column and new_name in frame.columns:
                problems.append(
                    _mapping_problem(
                        file,
                        f"the extra feature '{name}' would be named '{new_name}', which is already a column",
                        "rename one of them in the export",
                        column=name,
                    )
                )
                continue
            if kind == "numeric":
                parsed = parse_numbers(
                    frame[column], decimal=options.decimal, thousands=options.thousands
                )
                values = parsed.values
                if parsed.failed.any():
                    count = int(parsed.failed.sum())
                    problems.append(
                        _mapping_problem(
                            file,
                            f"{count:,} value(s) of the numeric extra feature are not numbers: "
                            + ", ".join(repr(value) for value in parsed.bad_values),
                            parsed.hint
                            or "correct them, or list the column under extra_features.categorical",
                            column=name,
                            rows=count,
                            examples=row_references(frame, frame.index[parsed.failed]),
                        )
                    )
            else:
                values = as_text(frame[column])
            position = list(frame.columns).index(column)
            frame = frame.drop(columns=[column])
            frame.insert(position, new_name, values)
    return frame, problems


def _settings_without_columns(
    mapping: Mapping, frames: dict[str, pd.DataFrame], *, file: str
) -> list[Problem]:
    """Give a warning for each setting naming a column that no mapped table has (a typo, or an absent column)."""
    present = {name for frame in frames.values() for name in frame.columns}
    settings = (
        ("values", mapping.values),
        ("scale", mapping.scale),
        ("dates.formats", {name: None for name in mapping.dates.formats if name != OTHERWISE}),
    )
    problems = []
    for setting, names in settings:
        for name in names:
            if name in present:
                continue
            guess = closest_names(name, sorted(present))
            hint = f"; did you mean '{guess[0]}'?" if guess else ""
            problems.append(
                _mapping_problem(
                    file,
                    f"`{setting}.{name}` names a column that no table has after mapping{hint}",
                    "correct the name, or remove the setting",
                    column=name,
                    severity="warning",
                )
            )
    return problems


# --------------------------------------------------------------------------- docs


def _during(spec: ColumnSpec, table: str) -> str:
    if table == "field_history" or spec.group == "outcome":
        return ""
    if spec.name in ("opportunity_id", "snapshot_date"):
        return "key"
    return "may change" if spec.mutable else "fixed"


def contract_markdown() -> str:
    """Give the markdown reference of every contract column (the body of docs/contract.md)."""
    lines = [
        "# The data contract, column by column",
        "",
        "Generated from `src/winmodel/data/contract.py` by `winmodel.data.mapping.contract_markdown()`;",
        "a test keeps this file in step with the code. **R** marks a required column.",
        "",
        "*During a deal*: a **fixed** column is set when the deal is created; a column that **may",
        "change** is a training feature only as of a snapshot or field-history date before the close",
        "(on a closed deal's opportunities row it holds the final state, which is left out unless the",
        "config allows it). A mapping can override either with `fixed_fields` / `mutable_fields`.",
        "",
    ]
    for table in TABLES.values():
        lines += [
            f"## {table.name}",
            "",
            f"Unique key: {', '.join(table.key)}."
            if table.key
            else "No unique key: one row per change.",
            "",
            "| column | kind | group | during a deal | meaning | values | range |",
            "|---|---|---|---|---|---|---|",
        ]
        for spec in table.columns:
            name = f"**{spec.name}** (R)" if spec.required else spec.name
            if spec.allowed:
                values = " / ".join(spec.allowed) + (" (ordered)" if spec.ordered else "")
            elif spec.examples:
                values = "e.g. " + ", ".join(spec.examples)
            else:
                values = ""
            low = "" if spec.minimum is None else f"{spec.minimum:g}"
            high = "" if spec.maximum is None else f"{spec.maximum:g}"
            bounds = (
                f"{low}–{high}"
                if low and high
                else (f"≥ {low}" if low else (f"≤ {high}" if high else ""))
            )
            if spec.scale:
                bounds += f" ({spec.scale})"
            meaning = spec.label + (f": {spec.description}" if spec.description else "")
            lines.append(
                f"| {name} | {spec.kind} | {spec.group} | {_during(spec, table.name)} | {meaning} "
                f"| {values} | {bounds} |"
            )
        lines.append("")
    return "\n".join(lines)
