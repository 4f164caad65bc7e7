"""Coerce tables onto the contract and check them, collecting every problem.

Pure functions: no file is read here. ``coerce_table`` turns the columns a
table has into the contract's dtypes (text parsed into dates, numbers and
booleans, closed sets normalised) and reports values that do not parse;
``validate_tables`` then checks both tables with pandera (types, ranges,
allowed sets, uniqueness, row-wise date order) and plain pandas (checks across
the two tables, scale confusion, leakage), and returns the canonical frames
with a ``ValidationReport`` listing every problem found.

Rows are named in messages by the frame's index: ``load_crm_data`` sets it to
the line number in the file (index name ``"line"``, header = line 1) or the
row number of a Parquet file (``"row"``); any other index is shown as ``row``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as arrow
import pyarrow.compute as pc
from pandera.errors import SchemaErrors

from winmodel.data.contract import (
    CLOSED_STATUSES,
    OPPORTUNITIES,
    PROGRESS_COLUMNS,
    SNAPSHOTS,
    ColumnSpec,
    TableSpec,
    closest_names,
    normalise_category,
)
from winmodel.errors import MAX_EXAMPLES, Problem, ValidationReport

log = logging.getLogger(__name__)

DEFAULT_TRUE_VALUES = ("true", "t", "yes", "y", "1", "x", "checked", "on")
DEFAULT_FALSE_VALUES = ("false", "f", "no", "n", "0", "", "unchecked", "off")
#: An amount above this is a unit or separator mistake, not a deal.
ABSURD_AMOUNT = 1e11
#: Text meaning "no value" in number and date columns.
NULL_TOKENS = ("", "nan", "none", "null", "n/a", "na", "#n/a", "nat", "-", "--")
EARLIEST_DATE = pd.Timestamp("1900-01-01")
LATEST_DATE = pd.Timestamp("2200-12-31")

STRING_DTYPE = pd.Series([], dtype="str").dtype
_DTYPES = {
    "string": STRING_DTYPE,
    "category": STRING_DTYPE,
    "date": "datetime64[ns]",
    "bool": "boolean",
    "number": "float64",
    "integer": "float64",
}


@dataclass(frozen=True)
class ParseOptions:
    """How text in an export becomes dates, numbers and booleans (from the mapping).

    ``thousands`` None means "the other one of ``,`` and ``.``"; ``""`` means
    none. Spaces and apostrophes inside numbers are always dropped.
    ``date_formats`` maps a column (or ``"*"``) to a ``strftime`` format;
    without one, ISO dates and common formats are tried, month-first unless
    ``dayfirst``. ``scale`` multiplies a number column after parsing.
    """

    decimal: str = "."
    thousands: str | None = None
    dayfirst: bool = False
    date_formats: Mapping[str, str] = field(default_factory=dict)
    true_values: tuple[str, ...] = DEFAULT_TRUE_VALUES
    false_values: tuple[str, ...] = DEFAULT_FALSE_VALUES
    scale: Mapping[str, float] = field(default_factory=dict)

    @property
    def thousands_separator(self) -> str:
        """Give the thousands separator in force ("" for none)."""
        if self.thousands is not None:
            return self.thousands
        return "." if self.decimal == "," else ","


# --------------------------------------------------------------------------- row references


def row_references(
    frame: pd.DataFrame,
    index: Iterable[object],
    *,
    id_column: str | None = "opportunity_id",
    row_labels: pd.Series | None = None,
) -> tuple[str, ...]:
    """Give up to five rows of ``frame`` as the user knows them: ``'line 12 (id 006A1)'``.

    ``index`` holds labels of ``frame.index``; ``row_labels`` (aligned with
    ``frame``) replaces the line/row numbering when given.
    """
    labels: list[Any] = list(index)[:MAX_EXAMPLES]
    if row_labels is not None:
        return tuple(str(row_labels.loc[label]) for label in labels)
    unit = frame.index.name if frame.index.name in ("line", "row") else "row"
    ids = frame[id_column] if id_column and id_column in frame.columns else None
    references = []
    for label in labels:
        text = f"{unit} {label}"
        if ids is not None:
            value = ids.loc[label]
            if not _is_missing(value) and str(value).strip():
                text += f" (id {value})"
        references.append(text)
    return tuple(references)


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class ParsedColumn:
    """A column converted to its contract dtype, with the rows that did not convert."""

    values: pd.Series
    failed: np.ndarray
    bad_values: tuple[str, ...] = ()
    hint: str = ""


def as_text(series: pd.Series) -> pd.Series:
    """Give ``series`` as stripped text, blank cells as missing."""
    if pd.api.types.is_float_dtype(series.dtype):
        whole = series.dropna()
        if len(whole) and bool((whole % 1 == 0).all()) and whole.abs().max() < 2**53:
            series = series.astype("Int64")
    codes, uniques = _factorized_text(series)
    return _text_from_codes(codes, uniques.mask(uniques == ""), series.index)


def _factorized_text(series: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Give the codes and the distinct stripped texts of ``series`` (code -1 for missing).

    Every parse works on the distinct values and spreads the result back: an
    export has millions of rows but few distinct values per column.
    """
    codes, uniques = pd.factorize(series.astype("str"))
    return codes, pd.Series(np.asarray(uniques, dtype=object), dtype="str").str.strip()


def _text_from_codes(codes: np.ndarray, uniques: pd.Series, index: pd.Index) -> pd.Series:
    """Give the text column whose row ``i`` is ``uniques[codes[i]]`` (missing for -1 or a missing unique)."""
    dictionary = arrow.array(
        uniques.astype("object").where(uniques.notna(), None).tolist(), type=arrow.large_string()
    )
    taken = dictionary.take(arrow.array(codes, mask=codes < 0))
    return pd.Series(pd.array(taken, dtype=STRING_DTYPE), index=index)


def _spread(codes: np.ndarray, unique_values: np.ndarray, fill: object) -> np.ndarray:
    """Give ``unique_values`` spread back over rows by ``codes`` (-1 gets ``fill``)."""
    extended: np.ndarray = np.append(unique_values, np.array([fill], dtype=unique_values.dtype))
    spread: np.ndarray = extended[codes]
    return spread


def _bad_examples(uniques: pd.Series, failed: np.ndarray) -> tuple[str, ...]:
    return tuple(uniques[failed].head(MAX_EXAMPLES).astype(object))


def parse_numbers(
    series: pd.Series, *, decimal: str = ".", thousands: str | None = None
) -> ParsedColumn:
    """Give ``series`` as float64, text such as ``$1,200.50`` or ``1.200,50 €`` parsed.

    Currency symbols and codes, percent signs, spaces and apostrophes are
    dropped; ``(1,200)`` is negative; a thousands separator counts only in
    groups of three digits, so ``1,5`` with decimal ``.`` fails rather than
    becoming 15.
    """
    thousands = ParseOptions(decimal=decimal, thousands=thousands).thousands_separator
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        values = pd.to_numeric(series, errors="coerce").astype("float64")
        failed = ~np.isfinite(values.fillna(0).to_numpy())
        return ParsedColumn(values.where(~failed), failed)
    codes, uniques = _factorized_text(series)
    clean = uniques
    blank = clean.str.lower().isin(NULL_TOKENS).to_numpy()
    negative = clean.str.match(r"^\(.*\)$").to_numpy()
    clean = clean.str.replace(r"^\((.*)\)$", r"\1", regex=True)
    clean = clean.str.replace(r"[\s\u00a0\u202f'’$€£¥₹%]", "", regex=True)
    clean = clean.str.replace(r"^[A-Za-z]{3}(?=[-+\d.,])|(?<=[\d.,])[A-Za-z]{3}$", "", regex=True)
    bad_grouping = np.zeros(len(clean), dtype=bool)
    if thousands:
        has_separator = clean.str.contains(thousands, regex=False).to_numpy()
        grouped = (
            r"^[+-]?\d{1,3}(?:"
            + re.escape(thousands)
            + r"\d{3})+(?:"
            + re.escape(decimal)
            + r"\d*)?$"
        )
        well_grouped = clean.str.match(grouped).to_numpy()
        bad_grouping = has_separator & ~well_grouped
        clean = clean.str.replace(thousands, "", regex=False)
    if decimal != ".":
        clean = clean.str.replace(".", "\x00", regex=False)  # a stray point must not parse
        clean = clean.str.replace(decimal, ".", regex=False)
    parsed = pd.to_numeric(clean, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    parsed = np.where(negative, -parsed, parsed)
    failed_unique = ~blank & (~np.isfinite(parsed) | bad_grouping)
    parsed = np.where(blank | failed_unique, np.nan, parsed)
    values = pd.Series(_spread(codes, parsed, np.nan), index=series.index, dtype="float64")
    failed = _spread(codes, failed_unique, False)
    hint = ""
    if failed_unique.any():
        other = "," if decimal == "." else "."
        sample = uniques[failed_unique]
        if sample.str.contains(other, regex=False).any() and decimal == ".":
            hint = "values like '1,5' look like decimal commas: set `read: {decimal: ','}` in the mapping"
        elif sample.str.contains(other, regex=False).any():
            hint = "values like '1.5' look like decimal points: set `read: {decimal: '.'}` in the mapping"
    return ParsedColumn(values, failed, _bad_examples(uniques, failed_unique), hint)


_TIME_PART = re.compile(
    r"[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[AaPp]\.?[Mm]\.?)?\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})?$"
)
_ISO_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$|^\d{8}$")
_MONTH_FIRST = ("%m/%d/%Y", "%m/%d/%y", "%m-%d-%Y")
_DAY_FIRST = ("%d/%m/%Y", "%d/%m/%y", "%d-%m-%Y")
_UNAMBIGUOUS = (
    "%d.%m.%Y",
    "%d.%m.%y",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%d-%b-%Y",
    "%d-%b-%y",
    "%d %b %Y",
    "%b %d, %Y",
    "%b %d %Y",
    "%d %B %Y",
    "%B %d, %Y",
    "%B %d %Y",
)


def parse_dates(
    series: pd.Series, *, dayfirst: bool = False, date_format: str | None = None
) -> ParsedColumn:
    """Give ``series`` as ``datetime64[ns]`` at day precision; times and time zones are dropped.

    Without ``date_format``: ISO dates (``2024-03-31``, ``2024-03-31T10:00:00Z``)
    first, then common formats (``03/31/2024``, ``31.03.2024``, ``31-Mar-2024``,
    ``Mar 31, 2024``), month-first unless ``dayfirst``. Dates before 1900 or
    after 2200 count as not parsed.
    """
    if date_format is not None and date_format.strip().lower() == EXCEL_SERIAL:
        return _parse_excel_serial(series)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        values = series
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_localize(None)
        return _date_result(values.dt.normalize(), series.notna().to_numpy(), series.index)
    if series.dtype == object and not series.dropna().map(type).isin([str]).all():
        # Parquet dates arrive as datetime.date objects; anything else non-text goes through text.
        converted = pd.to_datetime(series, errors="coerce")
        if converted.notna().sum() == series.notna().sum():
            return parse_dates(converted, dayfirst=dayfirst, date_format=date_format)
    codes, uniques = _factorized_text(series)
    blank = uniques.str.lower().isin(NULL_TOKENS).to_numpy()
    parsed = pd.Series(pd.NaT, index=uniques.index, dtype="datetime64[ns]")
    if date_format:
        _fill_dates(parsed, uniques, ~blank, date_format)
    else:
        dates = uniques.str.replace(_TIME_PART, "", regex=True).str.strip()
        iso = dates.str.match(_ISO_DATE).to_numpy() & ~blank
        _fill_dates(parsed, dates, iso, "ISO8601")
        order = _DAY_FIRST if dayfirst else _MONTH_FIRST
        for candidate in (*order, *_UNAMBIGUOUS):
            todo = parsed.isna().to_numpy() & ~blank
            if not todo.any():
                break
            _fill_dates(parsed, dates, todo, candidate)
    failed_unique = parsed.isna().to_numpy() & ~blank
    values = pd.Series(
        _spread(codes, parsed.to_numpy(), np.datetime64("NaT", "ns")),
        index=series.index,
        dtype="datetime64[ns]",
    )
    hint = ""
    if failed_unique.any() and not date_format:
        bad = uniques[failed_unique].str.replace(_TIME_PART, "", regex=True).str.strip()
        other = _MONTH_FIRST if dayfirst else _DAY_FIRST
        probe = pd.Series(pd.NaT, index=bad.index, dtype="datetime64[ns]")
        for candidate in other:
            _fill_dates(probe, bad, probe.isna().to_numpy(), candidate)
        if probe.notna().any():
            setting = "false" if dayfirst else "true"
            hint = (
                f"these dates parse {'month' if dayfirst else 'day'}-first: set "
                f"`dates: {{dayfirst: {setting}}}` in the mapping"
            )
    if failed_unique.any() and not hint and _look_like_excel_serials(uniques[failed_unique]):
        hint = EXCEL_SERIAL_HINT
    return ParsedColumn(
        values, _spread(codes, failed_unique, False), _bad_examples(uniques, failed_unique), hint
    )


#: The ``dates.formats`` value for Excel's serial day numbers (45292 is 2024-01-01).
EXCEL_SERIAL = "excel"
#: Day 0 of Excel's 1900 date system as Excel counts it (it takes 1900 for a leap year).
_EXCEL_EPOCH = pd.Timestamp("1899-12-30")
#: Serial numbers of dates between 1955 and 2118: a plausible CRM date, not a count or an amount.
_EXCEL_SERIAL_RANGE = (20_000.0, 80_000.0)
EXCEL_SERIAL_HINT = (
    "these look like Excel serial day numbers (45292 is 2024-01-01): set "
    "`dates: {formats: {<column>: excel}}` in the mapping"
)


def _look_like_excel_serials(values: pd.Series) -> bool:
    numbers = pd.to_numeric(values.str.strip(), errors="coerce")
    low, high = _EXCEL_SERIAL_RANGE
    return bool(numbers.notna().all() and numbers.between(low, high).all())


def _parse_excel_serial(series: pd.Series) -> ParsedColumn:
    """Give Excel serial day numbers (a fraction is the time of day, dropped) as dates."""
    text = as_text(series)
    blank = text.isna() | text.str.strip().str.lower().isin(NULL_TOKENS).fillna(True)
    numbers = pd.to_numeric(text.str.strip().where(~blank), errors="coerce")
    low, high = _EXCEL_SERIAL_RANGE
    usable = numbers.between(low, high)
    dates = _EXCEL_EPOCH + pd.to_timedelta(np.floor(numbers.where(usable)), unit="D")
    failed = (~blank & ~usable).to_numpy()
    bad = tuple(str(value) for value in pd.unique(text[failed])[:MAX_EXAMPLES])
    hint = (
        "Excel serial dates are day numbers between 20000 (1954) and 80000 (2119), e.g. 45292 "
        "for 2024-01-01; correct these cells or remove `excel` from dates.formats"
    )
    return ParsedColumn(
        pd.Series(dates.astype("datetime64[ns]").to_numpy(), index=series.index),
        failed,
        bad,
        hint if failed.any() else "",
    )


def _fill_dates(target: pd.Series, text: pd.Series, mask: np.ndarray, date_format: str) -> None:
    """Write into ``target`` (in place: a local, freshly made series) the dates of ``text[mask]``."""
    if not mask.any():
        return
    converted = pd.to_datetime(text[mask], format=date_format, errors="coerce")
    converted = converted.where((converted >= EARLIEST_DATE) & (converted <= LATEST_DATE))
    target.loc[mask] = converted.dt.normalize().astype("datetime64[ns]")


def _date_result(values: pd.Series, present: np.ndarray, index: pd.Index) -> ParsedColumn:
    in_range = ((values >= EARLIEST_DATE) & (values <= LATEST_DATE)).to_numpy()
    failed = present & ~in_range
    bad = tuple(str(value) for value in values[failed].head(MAX_EXAMPLES))
    safe = values.where(pd.Series(in_range, index=values.index))
    return ParsedColumn(
        pd.Series(safe.astype("datetime64[ns]").to_numpy(), index=index), failed, bad
    )


def parse_booleans(
    series: pd.Series,
    *,
    true_values: Iterable[str] = DEFAULT_TRUE_VALUES,
    false_values: Iterable[str] = DEFAULT_FALSE_VALUES,
) -> ParsedColumn:
    """Give ``series`` as nullable ``boolean``: ``Yes/1/true/X/y`` True, ``No/0/false/blank`` False.

    The word lists are matched case-insensitively; numbers 1 and 0 are True and False.
    """
    if pd.api.types.is_bool_dtype(series.dtype):
        return ParsedColumn(series.astype("boolean"), np.zeros(len(series), dtype=bool))
    if pd.api.types.is_numeric_dtype(series.dtype):
        numbers = series.astype("float64")
        failed = (numbers.notna() & ~numbers.isin([0.0, 1.0])).to_numpy()
        values = numbers.where(~failed).map({1.0: True, 0.0: False}).astype("boolean")
        bad = tuple(str(value) for value in pd.unique(numbers[failed])[:MAX_EXAMPLES])
        return ParsedColumn(values, failed, bad)
    truthy = {str(value).strip().lower() for value in true_values}
    falsy = {str(value).strip().lower() for value in false_values}
    codes, uniques = _factorized_text(series)
    lowered = uniques.str.lower()
    is_true = lowered.isin(truthy).to_numpy()
    is_false = lowered.isin(falsy).to_numpy() & ~is_true
    # A blank not listed as a word (false_values without "") stays unknown rather than failing.
    failed_unique = ~is_true & ~is_false & (lowered != "").to_numpy()
    mapped = np.where(is_true, 1.0, np.where(is_false, 0.0, np.nan))
    numbers = pd.Series(_spread(codes, mapped, np.nan), index=series.index)
    values = numbers.map({1.0: True, 0.0: False}).astype("boolean")
    return ParsedColumn(
        values, _spread(codes, failed_unique, False), _bad_examples(uniques, failed_unique)
    )


def _parse_category(series: pd.Series, spec: ColumnSpec) -> ParsedColumn:
    if spec.allowed is None:
        return ParsedColumn(as_text(series), np.zeros(len(series), dtype=bool))
    codes, uniques = _factorized_text(series)
    normalised = uniques.map(lambda value: normalise_category(value) if value else None)
    return ParsedColumn(
        _text_from_codes(codes, normalised, series.index), np.zeros(len(series), dtype=bool)
    )


def _parse_column(series: pd.Series, spec: ColumnSpec, parse: ParseOptions) -> ParsedColumn:
    if spec.kind in ("number", "integer"):
        parsed = parse_numbers(series, decimal=parse.decimal, thousands=parse.thousands)
        factor = parse.scale.get(spec.name)
        if factor is not None:
            parsed = ParsedColumn(
                parsed.values * float(factor), parsed.failed, parsed.bad_values, parsed.hint
            )
        return parsed
    if spec.kind == "date":
        date_format = parse.date_formats.get(spec.name) or parse.date_formats.get("*")
        return parse_dates(series, dayfirst=parse.dayfirst, date_format=date_format)
    if spec.kind == "bool":
        return parse_booleans(
            series, true_values=parse.true_values, false_values=parse.false_values
        )
    if spec.kind == "category":
        return _parse_category(series, spec)
    return ParsedColumn(as_text(series), np.zeros(len(series), dtype=bool))


_KIND_WORDS = {"date": "dates", "number": "numbers", "integer": "numbers", "bool": "yes/no values"}


def _parse_fix(spec: ColumnSpec, parsed: ParsedColumn) -> str:
    if parsed.hint:
        return parsed.hint.replace("<column>", spec.name)
    if spec.kind == "date":
        return (
            f"correct them in the export, or give their format with "
            f"`dates: {{formats: {{{spec.name}: '%d/%m/%Y'}}}}` in the mapping"
        )
    if spec.kind == "bool":
        return (
            "correct them, or list the export's words with "
            "`booleans: {true_values: [...], false_values: [...]}` in the mapping"
        )
    return (
        "correct them in the export; for other separators set "
        "`read: {decimal: ',', thousands: '.'}` in the mapping"
    )


def coerce_table(
    frame: pd.DataFrame,
    table: TableSpec,
    *,
    file: str,
    row_labels: pd.Series | None = None,
    parse: ParseOptions | None = None,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Give ``frame`` with its contract columns in contract dtypes, and the problems met.

    Problems: a required column missing (with the closest column name as a
    hint), a column given twice, non-blank values that do not parse as the
    column's kind. Values that do not parse become missing. Columns outside
    the contract are kept as they are. ``row_labels`` (aligned with ``frame``)
    names rows in messages; by default the index and opportunity id do.
    """
    coerced, problems, _ = _coerce(
        frame, table, file=file, row_labels=row_labels, parse=parse or ParseOptions()
    )
    return coerced, problems


def _coerce(
    frame: pd.DataFrame,
    table: TableSpec,
    *,
    file: str,
    row_labels: pd.Series | None,
    parse: ParseOptions,
) -> tuple[pd.DataFrame, list[Problem], dict[str, np.ndarray]]:
    """Give the coerced frame, the problems and, per column, the rows that failed to parse."""
    problems: list[Problem] = []
    duplicated = frame.columns[frame.columns.duplicated()].unique()
    for name in duplicated:
        problems.append(
            Problem(
                file=file,
                column=str(name),
                problem=f"the column '{name}' appears more than once",
                fix="keep one of them (rename the other) in the export or the mapping",
            )
        )
    if len(duplicated):
        frame = frame.loc[:, ~frame.columns.duplicated()]
    sources = [str(name) for name in frame.columns if name not in table]
    for name in table.required:
        if name in frame.columns:
            continue
        spec = table[name]
        guess = closest_names(name, _fitting_columns(frame, sources, spec, parse))
        problem = f"the required column '{name}' ({spec.label}) is missing"
        if guess:
            problem += f"; the closest column in the export is '{guess[0]}'"
            fix = (
                f"map it with `columns: {{{table.name}: {{{name}: '{guess[0]}'}}}}` in the mapping"
            )
        else:
            fix = (
                f"add `columns: {{{table.name}: {{{name}: <export column>}}}}` to the mapping, "
                f"or `constants`/`fill` for it"
            )
        problems.append(Problem(file=file, column=name, problem=problem, fix=fix))
    converted: dict[str, pd.Series] = {}
    failures: dict[str, np.ndarray] = {}
    for name in frame.columns:
        column_spec = table.by_name.get(name)
        if column_spec is None:
            continue
        parsed = _parse_column(frame[name], column_spec, parse)
        converted[name] = parsed.values.astype(_DTYPES[column_spec.kind])  # type: ignore[arg-type]  # pandas-stubs: a dtype name
        if parsed.failed.any():
            failures[name] = parsed.failed
            count = int(parsed.failed.sum())
            shown = ", ".join(repr(value) for value in parsed.bad_values)
            problems.append(
                Problem(
                    file=file,
                    column=name,
                    problem=f"{count:,} value(s) are not {_KIND_WORDS.get(column_spec.kind, column_spec.kind)}: {shown}",
                    fix=_parse_fix(column_spec, parsed),
                    rows=count,
                    examples=row_references(
                        frame, frame.index[parsed.failed], row_labels=row_labels
                    ),
                )
            )
    return frame.assign(**converted), problems, failures


#: Values looked at, and the share that must parse, for a column to be suggested for a date or number.
_FIT_SAMPLE, _FIT_SHARE = 200, 0.8


def _fitting_columns(
    frame: pd.DataFrame, names: list[str], spec: ColumnSpec, parse: ParseOptions
) -> list[str]:
    """Give the columns whose values could be ``spec``'s kind: a date column is never suggested for an amount."""
    if spec.kind not in ("date", "number", "integer"):
        return names
    fitting = []
    for name in names:
        sample = as_text(frame[name]).dropna()
        sample = sample[sample.str.strip() != ""].head(_FIT_SAMPLE)
        if sample.empty:
            continue
        parsed = _parse_column(sample, spec, parse)
        if 1 - parsed.failed.mean() >= _FIT_SHARE:
            fitting.append(name)
    return fitting


# --------------------------------------------------------------------------- checks


def _schema(frame: pd.DataFrame, table: TableSpec, *, skip_range: set[str]) -> pa.DataFrameSchema:
    """Give the pandera schema of the contract columns present in ``frame``."""
    columns = {}
    for name in frame.columns:
        spec = table.by_name.get(name)
        if spec is None:
            continue
        checks = []
        if spec.allowed is not None:
            checks.append(pa.Check.isin(list(spec.allowed), error="allowed"))
        if name not in skip_range:
            if spec.minimum is not None:
                checks.append(pa.Check.ge(spec.minimum, error="minimum"))
            if spec.maximum is not None:
                checks.append(pa.Check.le(spec.maximum, error="maximum"))
        if name == "amount":
            checks.append(pa.Check.le(ABSURD_AMOUNT, error="absurd"))
        if spec.kind == "integer":
            checks.append(pa.Check(lambda values: values % 1 == 0, error="whole"))
        columns[name] = pa.Column(
            _DTYPES[spec.kind],
            checks=checks,
            # close_date may be blank on open deals: the row-wise check below covers closed ones.
            nullable=not spec.required or name == "close_date",
            unique=table.key == (name,),
            report_duplicates="all",
            required=False,
        )
    key = list(table.key)
    unique = key if len(key) > 1 and all(name in frame.columns for name in key) else None
    return pa.DataFrameSchema(columns, unique=unique, report_duplicates="all")


def _row_checks(frame: pd.DataFrame, table: TableSpec) -> pa.DataFrameSchema | None:
    """Give the schema of the checks across columns of one row, on the columns they need."""
    checks = []
    if table is OPPORTUNITIES and {"created_date", "close_date"} <= set(frame.columns):
        checks.append(
            pa.Check(lambda rows: ~(rows["close_date"] < rows["created_date"]), error="date_order")
        )
    if table is OPPORTUNITIES and {"status", "close_date"} <= set(frame.columns):
        checks.append(
            pa.Check(
                lambda rows: (
                    ~(
                        rows["status"].isin(CLOSED_STATUSES).fillna(False)
                        & rows["close_date"].isna()
                    )
                ),
                error="closed_without_close_date",
            )
        )
    return pa.DataFrameSchema(checks=checks) if checks else None


#: The column a problem found by a check across columns is reported under.
_CHECK_COLUMN = {
    "date_order": "close_date",
    "closed_without_close_date": "close_date",
    "multiple_fields_uniqueness": "opportunity_id, snapshot_date",
}
_ROW_CHECK_INPUTS = ("status", "created_date", "close_date")


def _failure_cases(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    try:
        # inplace: the coerced frame is ours already; a copy of millions of rows costs a second.
        schema.validate(frame, lazy=True, inplace=True)
    except SchemaErrors as errors:
        failures: pd.DataFrame = errors.failure_cases
        return failures
    return pd.DataFrame()


def _check_table(
    frame: pd.DataFrame,
    raw: pd.DataFrame,
    table: TableSpec,
    *,
    file: str,
    parse_failures: dict[str, np.ndarray],
    skip_range: set[str],
) -> list[Problem]:
    """Give the problems pandera finds in one coerced table."""
    failures = [_failure_cases(_schema(frame, table, skip_range=skip_range), frame)]
    row_schema = _row_checks(frame, table)
    if row_schema is not None:
        # Checks across columns report every column of a failing row: give them only those they need.
        needed = [name for name in _ROW_CHECK_INPUTS if name in frame.columns]
        failures.append(_failure_cases(row_schema, frame[needed]))
    failures = [case for case in failures if len(case)]
    if not failures:
        return []
    cases = pd.concat(failures, ignore_index=True).dropna(subset=["index"])
    cases = cases.assign(column=cases["check"].map(_CHECK_COLUMN).fillna(cases["column"]))
    problems = []
    for (column, check), group in cases.groupby(["column", "check"], sort=False):
        index = pd.Index(pd.unique(group["index"]))
        if check in ("not_nullable", "closed_without_close_date") and column in parse_failures:
            # Values that did not parse were already reported; don't call them blank too.
            unparsed = frame.index[parse_failures[column]]
            index = index.difference(list(unparsed), sort=False)
        if len(index) == 0:
            continue
        problems.append(_problem_for(str(column), str(check), index, frame, raw, table, file))
    return problems


def _problem_for(
    column: str,
    check: str,
    index: pd.Index,
    frame: pd.DataFrame,
    raw: pd.DataFrame,
    table: TableSpec,
    file: str,
) -> Problem:
    """Give the problem a person reads for one failed pandera check."""
    rows = len(index)
    examples = row_references(frame, index)
    spec = table.by_name.get(column)
    # pandera reports the columns of the frame it checked: the column is always there.
    values = frame.loc[index, column] if column in frame.columns else pd.Series(dtype=object)

    def shown(limit: int = MAX_EXAMPLES) -> str:
        distinct = pd.unique(values.dropna())[:limit]
        return ", ".join(_format_value(value) for value in distinct)

    problem, fix = f"{rows:,} row(s) fail the check {check}", "correct the export"
    if check == "allowed" and spec is not None and spec.allowed is not None:
        original = raw.loc[index, column] if column in raw.columns else values
        counts = original.astype("str").value_counts().head(10)
        listed = ", ".join(f"{value!r} ({count:,})" for value, count in counts.items())
        problem = f"{rows:,} value(s) outside {', '.join(spec.allowed)}: {listed}"
        if column == "status":
            fix = (
                "map the export's stages onto open/won/lost, e.g. `values: {status: "
                "{'Closed Won': won, 'Closed Lost': lost, '*': open}}`, or use `status_flags`"
            )
        else:
            fix = (
                f"recode them with `values: {{{column}: {{'<export value>': "
                f"{spec.allowed[0]}, ...}}}}` in the mapping ('*' recodes all other values)"
            )
    elif check == "minimum" and spec is not None:
        what = "negative amount(s)" if column == "amount" else f"value(s) below {spec.minimum:g}"
        problem = f"{rows:,} {what}: {shown()}"
        fix = "correct them in the CRM, or blank them"
    elif check == "maximum" and spec is not None:
        problem = f"{rows:,} value(s) above {spec.maximum:g}: {shown()}"
        fix = (
            "correct them in the CRM; if the column uses another scale, set `scale` in the mapping"
        )
    elif check == "absurd":
        problem = f"{rows:,} amount(s) above {ABSURD_AMOUNT:,.0f}, which no deal is: {shown()}"
        fix = (
            "check units and separators: amounts in cents need `scale: {amount: 0.01}`, "
            "decimal commas need `read: {decimal: ','}`"
        )
    elif check == "whole":
        problem = f"{rows:,} value(s) are not whole numbers: {shown()}"
        fix = "counts must be whole numbers; correct the export"
    elif check == "not_nullable":
        problem = f"{rows:,} row(s) have a blank {column}"
        fix = _blank_fix(column)
    elif check in ("field_uniqueness", "multiple_fields_uniqueness"):
        ids = frame.loc[index, "opportunity_id"] if "opportunity_id" in frame.columns else values
        distinct = pd.unique(ids.dropna())
        what = (
            "opportunity_id" if check == "field_uniqueness" else "(opportunity_id, snapshot_date)"
        )
        problem = (
            f"{len(distinct):,} {what} value(s) appear on more than one row ({rows:,} rows): "
            + ", ".join(_format_value(value) for value in distinct[:MAX_EXAMPLES])
        )
        fix = (
            "keep one snapshot per deal per day"
            if table is SNAPSHOTS
            else "keep one row per deal; a table with one row per deal per date is a snapshots "
            "table: name it with `files: {snapshots: ...}` in the mapping"
        )
    elif check == "date_order":
        problem = f"{rows:,} deal(s) close before they were created"
        fix = "correct the dates, or map created_date from the column holding the creation date"
    elif check == "closed_without_close_date":
        problem = f"{rows:,} won or lost deal(s) have a blank close_date"
        fix = "map close_date to the column with the actual close date, or fill it with `fill`"
    elif check.startswith("dtype"):
        problem = f"the column has the wrong type ({check})"
        fix = "report this: coercion should have converted it"
    return Problem(file=file, column=column, problem=problem, fix=fix, rows=rows, examples=examples)


def _blank_fix(column: str) -> str:
    if column == "created_date":
        return (
            "map created_date to a column that is always filled, or fill blanks with "
            "`fill: {created_date: as_of}` (with `as_of`) or another date column"
        )
    if column == "status":
        return "give every row a status: `values: {status: {'*': open}}` sets all unlisted values"
    if column == "amount":
        return "fill blanks with `fill: {amount: <other column>}` or correct the export"
    if column in ("opportunity_id", "snapshot_date"):
        return f"every row needs {column}; remove rows without one"
    return f"fill blanks with `fill: {{{column}: <other column>}}` or correct the export"


def _format_value(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float | np.floating):
        number = float(value)
        return f"{number:,.6g}" if abs(number) < 1e6 else f"{number:,.0f}"
    return repr(str(value))


def _scale_problems(
    frame: pd.DataFrame, table: TableSpec, file: str
) -> tuple[list[Problem], set[str]]:
    """Give scale confusions (0-100 in a share, 0-1 in a percent) and the columns to skip range checks on."""
    problems, skip = [], set()
    for name in frame.columns:
        spec = table.by_name.get(name)
        if spec is None or spec.scale is None:
            continue
        values = frame[name].dropna()
        if values.empty:
            continue
        if spec.scale == "share":
            above = values[values > 1]
            if len(above) and values.max() <= 100 and values.min() >= (spec.minimum or 0):
                skip.add(name)
                problems.append(
                    Problem(
                        file=file,
                        column=name,
                        problem=(
                            f"{len(above):,} value(s) between 1 and 100 in a 0–1 share "
                            f"(e.g. {_format_value(float(above.iloc[0]))}): the column looks like 0–100"
                        ),
                        fix=f"add `scale: {{{name}: 0.01}}` to the mapping",
                        rows=len(above),
                        examples=row_references(frame, above.index),
                    )
                )
        elif spec.scale == "percent":
            fractional = values[values % 1 != 0]
            if bool((values.abs() <= 1).all()) and len(fractional):
                problems.append(
                    Problem(
                        file=file,
                        column=name,
                        problem=(
                            f"every value is between -1 and 1 (e.g. {_format_value(float(fractional.iloc[0]))}) "
                            f"in a 0–100 percentage: the column looks like 0–1 shares"
                        ),
                        fix=f"if so, add `scale: {{{name}: 100}}` to the mapping",
                        severity="warning",
                    )
                )
    return problems, skip


def _cross_table_problems(
    opportunities: pd.DataFrame, snapshots: pd.DataFrame, file: str
) -> list[Problem]:
    """Give problems between the tables: snapshots of unknown deals, snapshots after a deal closed."""
    problems: list[Problem] = []
    if "opportunity_id" not in snapshots.columns or "opportunity_id" not in opportunities.columns:
        return problems
    # One hash lookup of every snapshot's deal in the opportunities table (pyarrow: millions of rows a second).
    deals = opportunities.drop_duplicates("opportunity_id")
    deals = deals[deals["opportunity_id"].notna()]
    position = pc.index_in(
        arrow.array(snapshots["opportunity_id"]), value_set=arrow.array(deals["opportunity_id"])
    ).to_numpy(zero_copy_only=False)
    position = np.where(np.isnan(position.astype("float64")), -1, position).astype(np.int64)
    known = position >= 0
    unknown = snapshots.index[~known & snapshots["opportunity_id"].notna().to_numpy()]
    if len(unknown):
        ids = pd.unique(snapshots.loc[unknown, "opportunity_id"])
        problems.append(
            Problem(
                file=file,
                column="opportunity_id",
                problem=(
                    f"{len(unknown):,} snapshot(s) of {len(ids):,} deal(s) not in the opportunities "
                    f"table: " + ", ".join(repr(value) for value in ids[:MAX_EXAMPLES])
                ),
                fix=(
                    "export both tables at the same time with the same id column; check that "
                    "`columns: {snapshots: {opportunity_id: ...}}` names the same id"
                ),
                rows=len(unknown),
                examples=row_references(snapshots, unknown),
            )
        )
    needed = {"status", "close_date"} <= set(
        opportunities.columns
    ) and "snapshot_date" in snapshots.columns
    if needed:
        is_closed = deals["status"].isin(CLOSED_STATUSES).fillna(False).to_numpy(dtype=bool)
        close = np.where(
            is_closed, deals["close_date"].to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT")
        )
        close = np.append(
            close, np.datetime64("NaT", "ns")
        )  # position -1 (unknown deal): no close date
        closed_on = pd.Series(close[position], index=snapshots.index)
        late = snapshots.index[(snapshots["snapshot_date"] > closed_on).fillna(False).to_numpy()]
        if len(late):
            problems.append(
                Problem(
                    file=file,
                    column="snapshot_date",
                    problem=(
                        f"{len(late):,} snapshot(s) are dated after their deal's close_date; they "
                        f"show the outcome"
                    ),
                    fix=(
                        "drop snapshots taken after a deal closed, or check that close_date is the "
                        "actual close date"
                    ),
                    rows=len(late),
                    examples=row_references(snapshots, late),
                )
            )
    return problems


def _warnings(
    opportunities: pd.DataFrame,
    snapshots: pd.DataFrame | None,
    file: str,
    with_history: bool,
    parse_failures: dict[str, np.ndarray],
) -> list[Problem]:
    problems = []
    if {"status", "close_date"} <= set(opportunities.columns):
        unparsed = parse_failures.get("close_date", np.zeros(len(opportunities), dtype=bool))
        blank = opportunities["close_date"].isna().to_numpy() & ~unparsed
        undated = opportunities.index[
            (opportunities["status"] == "open").fillna(False).to_numpy() & blank
        ]
        if len(undated):
            problems.append(
                Problem(
                    file=file,
                    column="close_date",
                    problem=f"{len(undated):,} open deal(s) have no expected close date",
                    fix="they are scored but left out of forecasts by month; map the expected close date",
                    rows=len(undated),
                    examples=row_references(opportunities, undated),
                    severity="warning",
                )
            )
    progress = [name for name in PROGRESS_COLUMNS if name in opportunities.columns]
    if snapshots is None and progress and not with_history:
        problems.append(
            Problem(
                file=file,
                column=", ".join(progress),
                problem=(
                    "a flat export (no snapshots) carries progress columns; their values may be the "
                    "final state of closed deals and leak the outcome"
                ),
                fix=(
                    "export snapshots (one row per deal per date) so training sees what was known "
                    "before close, or drop these columns from the mapping"
                ),
                severity="warning",
            )
        )
    return problems


#: An amount above this many times the export's 99.9th percentile is implausible (a typing slip).
IMPLAUSIBLE_AMOUNT_FACTOR = 10.0
IMPLAUSIBLE_AMOUNT_QUANTILE = 0.999


def implausible_amounts(amount: pd.Series) -> tuple[np.ndarray, float | None]:
    """Give which amounts are implausible for their export, and the limit (None when there are no amounts).

    The limit is :data:`IMPLAUSIBLE_AMOUNT_FACTOR` x the 99.9th percentile of the export's amounts,
    taken at or below an observed amount ("lower"), so that in an export of up to 1,000 deals the
    largest amount never sets its own limit.
    """
    values = pd.to_numeric(amount, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    known = values[~np.isnan(values)]
    if known.size < 2:
        return np.zeros(len(values), dtype=bool), None
    limit = IMPLAUSIBLE_AMOUNT_FACTOR * float(
        np.quantile(known, IMPLAUSIBLE_AMOUNT_QUANTILE, method="lower")
    )
    if limit <= 0:
        return np.zeros(len(values), dtype=bool), None
    return np.nan_to_num(values, nan=0.0) > limit, limit


def _implausible_amount_warning(opportunities: pd.DataFrame, file: str) -> list[Problem]:
    """Give a warning naming the deals whose amount is implausible for this export (none: empty)."""
    if "amount" not in opportunities.columns:
        return []
    flagged, limit = implausible_amounts(opportunities["amount"])
    if limit is None or not flagged.any():
        return []
    where = opportunities.index[flagged]
    largest = float(pd.to_numeric(opportunities["amount"], errors="coerce")[flagged].max())
    return [
        Problem(
            file=file,
            column="amount",
            problem=(
                f"{int(flagged.sum()):,} deal(s) have an amount above {limit:,.0f} "
                f"({IMPLAUSIBLE_AMOUNT_FACTOR:.0f} x the export's 99.9th percentile; the largest is "
                f"{largest:,.0f}): probably a typing or unit slip"
            ),
            fix="correct the amount in the CRM (or its unit in the mapping); until then scoring "
            "flags these deals (amount_implausible) and the forecast counts them apart",
            rows=int(flagged.sum()),
            examples=row_references(opportunities, where),
            severity="warning",
        )
    ]


#: From this share of closed deals created on their close date, the dates are suspect (a warning).
SAME_DAY_WARNING_SHARE = 0.9


def _same_day_deals(opportunities: pd.DataFrame, file: str) -> list[Problem]:
    """Give a problem when closed deals were created on the day they closed: one date column mapped twice.

    Every closed deal so: an error (the deal cycle is what training learns from, and nothing
    would be left to learn). Most of them: a warning.
    """
    if not {"created_date", "close_date", "status"} <= set(opportunities.columns):
        return []
    closed = opportunities["status"].isin(CLOSED_STATUSES).fillna(False).to_numpy()
    dated = (
        closed
        & (opportunities["created_date"].notna() & opportunities["close_date"].notna()).to_numpy()
    )
    if not dated.any():
        return []
    same = (
        dated
        & (opportunities["created_date"] == opportunities["close_date"]).fillna(False).to_numpy()
    )
    share = same.sum() / dated.sum()
    if share < SAME_DAY_WARNING_SHARE:
        return []
    every = bool(same.sum() == dated.sum())
    return [
        Problem(
            file=file,
            column="created_date, close_date",
            problem=(
                f"{int(same.sum()):,} of {int(dated.sum()):,} closed deals"
                + (" (every one)" if every else f" ({share:.0%})")
                + " were created on the day they closed: the two dates are probably one export "
                "column mapped twice, or the export's created date is its close date"
            ),
            fix=(
                "map created_date to the column holding the date the deal was created "
                "(Salesforce: CreatedDate; HubSpot: Create Date), not the close date"
            ),
            rows=int(same.sum()),
            examples=row_references(opportunities, opportunities.index[same]),
            severity="error" if every else "warning",
        )
    ]


def _amount_notes(
    opportunities: pd.DataFrame, file: str, parse_failures: dict[str, np.ndarray]
) -> list[Problem]:
    """Give a note when amounts are missing: scores need none, money figures are left out (never 0)."""
    consequence = (
        "win probabilities, reasons and recommendations are computed as usual; expected value and "
        "the money figures of the forecast are left out for these deals (a missing amount is never "
        "taken as 0)"
    )
    if "amount" not in opportunities.columns:
        return [
            Problem(
                file=file,
                column="amount",
                problem=f"the export has no amount column: {consequence}",
                fix="map the deal value with `columns: {opportunities: {amount: <export column>}}` "
                "for expected values and forecasts",
                severity="warning",
            )
        ]
    unparsed = parse_failures.get("amount", np.zeros(len(opportunities), dtype=bool))
    blank = opportunities["amount"].isna().to_numpy() & ~unparsed
    if not blank.any():
        return []
    return [
        Problem(
            file=file,
            column="amount",
            problem=f"{int(blank.sum()):,} deal(s) have no amount: {consequence}",
            fix="fill them in the CRM, or with `fill: {amount: <other column>}` in the mapping",
            rows=int(blank.sum()),
            examples=row_references(opportunities, opportunities.index[blank]),
            severity="warning",
        )
    ]


def _facts(
    opportunities: pd.DataFrame, snapshots: pd.DataFrame | None, with_history: bool
) -> list[str]:
    facts = []
    if "status" in opportunities.columns:
        counts = opportunities["status"].value_counts()
        parts = [f"{int(counts.get(status, 0)):,} {status}" for status in ("won", "lost", "open")]
        facts.append(f"{len(opportunities):,} deals: " + ", ".join(parts))
    else:
        facts.append(f"{len(opportunities):,} deals")
    for name, word in (("created_date", "created"), ("close_date", "closing")):
        if name in opportunities.columns and opportunities[name].notna().any():
            dates = opportunities[name]
            facts.append(f"{word} {dates.min():%Y-%m-%d} to {dates.max():%Y-%m-%d}")
    if snapshots is not None:
        text = f"{len(snapshots):,} snapshots"
        if "opportunity_id" in snapshots.columns:
            text += f" of {snapshots['opportunity_id'].nunique():,} deals"
        if "snapshot_date" in snapshots.columns and snapshots["snapshot_date"].notna().any():
            dates = snapshots["snapshot_date"]
            text += f", {dates.min():%Y-%m-%d} to {dates.max():%Y-%m-%d}"
        facts.append(text)
    elif with_history:
        facts.append("no snapshots table: the field history is replayed into snapshots")
    else:
        facts.append("no snapshots (a flat export: one row per deal)")
    extras = [str(name) for name in opportunities.columns if name not in OPPORTUNITIES]
    if extras:
        shown = ", ".join(extras[:12]) + (", ..." if len(extras) > 12 else "")
        facts.append(f"{len(extras)} extra column(s) kept: {shown}")
    return facts


def validate_tables(
    opportunities: pd.DataFrame,
    snapshots: pd.DataFrame | None,
    *,
    files: dict[str, str],
    parse: ParseOptions | None = None,
    with_history: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame | None, ValidationReport]:
    """Give the canonical opportunities and snapshots and the report of every problem in them.

    Needs the canonical column names (after the mapping); coerces each table
    (``coerce_table``), checks it with pandera, then checks the tables
    against each other. ``files`` maps ``"opportunities"``/``"snapshots"`` to
    the file names shown in messages. Never raises for bad data: look at
    ``report.ok``.
    """
    parse = parse or ParseOptions()
    problems: list[Problem] = []
    opportunity_file = files.get("opportunities", "opportunities")
    snapshot_file = files.get("snapshots", "snapshots")

    opportunities = _with_unique_index(opportunities)
    coerced, found, opportunity_failures = _coerce(
        opportunities, OPPORTUNITIES, file=opportunity_file, row_labels=None, parse=parse
    )
    problems += found
    scale_found, skip = _scale_problems(coerced, OPPORTUNITIES, opportunity_file)
    problems += scale_found
    problems += _check_table(
        coerced,
        opportunities,
        OPPORTUNITIES,
        file=opportunity_file,
        parse_failures=opportunity_failures,
        skip_range=skip,
    )

    snapshot_frame = None
    if snapshots is not None:
        snapshots = _with_unique_index(snapshots)
        snapshot_frame, found, failures = _coerce(
            snapshots, SNAPSHOTS, file=snapshot_file, row_labels=None, parse=parse
        )
        problems += found
        scale_found, skip = _scale_problems(snapshot_frame, SNAPSHOTS, snapshot_file)
        problems += scale_found
        problems += _check_table(
            snapshot_frame,
            snapshots,
            SNAPSHOTS,
            file=snapshot_file,
            parse_failures=failures,
            skip_range=skip,
        )
        problems += _cross_table_problems(coerced, snapshot_frame, snapshot_file)

    problems += _warnings(
        coerced, snapshot_frame, opportunity_file, with_history, opportunity_failures
    )
    problems += _implausible_amount_warning(coerced, opportunity_file)
    problems += _same_day_deals(coerced, opportunity_file)
    problems += _amount_notes(coerced, opportunity_file, opportunity_failures)
    report = ValidationReport(
        problems=tuple(problems), facts=tuple(_facts(coerced, snapshot_frame, with_history))
    )
    log.debug(
        "validated %d deals: %d errors, %d warnings",
        len(coerced),
        len(report.errors),
        len(report.warnings),
    )
    return coerced, snapshot_frame, report


def _with_unique_index(frame: pd.DataFrame) -> pd.DataFrame:
    """Give ``frame`` with a unique index (row positions when its own index repeats)."""
    return frame if frame.index.is_unique else frame.reset_index(drop=True)
