"""Reading CRM exports and writing result tables, safely.

``read_table`` is the one place that turns a file into a DataFrame. It reads
CSV (delimiter sniffed among ``, ; TAB |``, quoting honoured, UTF-8 with or
without BOM, UTF-16 with BOM, falling back to cp1252/latin-1 with a logged
warning) and Parquet, and refuses, with a message naming the file, anything it
cannot use: a missing or empty file, binary content, a header without rows, an
overlong line, a file above the size limit. CSV values come back as text
(blank cells as ``""``); the contract coerces them later.

:func:`atomic_file` is the one atomic writer (``write_table_atomic`` and
``write_text_atomic`` use it): a temporary file in the target folder, then
``os.replace``, so a failed write never leaves half a file behind.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from winmodel.errors import InputError, Problem

log = logging.getLogger(__name__)

MIB = 1024 * 1024
GIB = 1024 * MIB
DEFAULT_MAX_LINE_BYTES = 1 * MIB
DEFAULT_MAX_FILE_BYTES = 2 * GIB

CSV_DELIMITERS = (",", ";", "\t", "|")
_CHUNK_BYTES = 8 * MIB
_SNIFF_BYTES = 64 * 1024
_PARQUET_MAGIC = b"PAR1"
_UTF8_BOM = codecs.BOM_UTF8
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
#: Magic bytes of files people export by mistake, with the hint to give them.
_KNOWN_BINARY = (
    (
        b"PK\x03\x04",
        "a ZIP archive or an Excel workbook: name a workbook .xlsx (it is read as one)",
    ),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls): save the sheet as CSV (UTF-8)"),
    (b"\x1f\x8b", "gzip-compressed: decompress it first"),
    (b"%PDF", "a PDF document: export the report as CSV instead"),
)

#: Attribute names ``read_table`` sets on ``frame.attrs``.
SOURCE_ATTR = "source"
ROW_UNIT_ATTR = "row_unit"
FIRST_ROW_ATTR = "first_row"


@dataclass(frozen=True)
class ReadOptions:
    """How to read a CSV file; ``None`` means sniff (delimiter) or detect (encoding).

    The limits guard against a wrong line terminator or a runaway export
    filling memory; raise them with the mapping's ``read:`` section.
    """

    delimiter: str | None = None
    encoding: str | None = None
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    #: The sheet of an Excel workbook to read (None: the first one).
    sheet: str | None = None


def read_table(path: Path, *, options: ReadOptions | None = None) -> pd.DataFrame:
    """Give the table in a CSV or Parquet file, CSV values as text.

    The frame has a default ``RangeIndex``; ``frame.attrs`` records the file
    (``source``) and how its rows are numbered for messages: ``row_unit``
    ``"line"`` with ``first_row`` 2 for CSV (the header is line 1), ``"row"``
    with ``first_row`` 1 for Parquet.

    Raises ``InputError`` naming the file when it is missing, a folder, empty,
    binary, above the size limit, has a line above the line limit, cannot be
    parsed, or has a header but no rows.
    """
    options = options or ReadOptions()
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise InputError(
            _problem(
                name,
                "the file does not exist",
                "check the path (relative paths start from the current folder)",
            )
        )
    if path.is_dir():
        raise InputError(
            _problem(name, "this is a folder, not a file", "give the CSV or Parquet file inside it")
        )
    size = path.stat().st_size
    if size > options.max_file_bytes:
        raise InputError(
            _problem(
                name,
                f"the file is {_human_bytes(size)}, above the file size limit of "
                f"{_human_bytes(options.max_file_bytes)}",
                f"raise the limit with `read: {{max_file_bytes: {size + 1}}}` in the mapping "
                "(ReadOptions(max_file_bytes=...) in Python), or split the export",
            )
        )
    if size == 0:
        raise InputError(
            _problem(
                name, "the file is empty", "export the table again; it has no header and no rows"
            )
        )
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if head.startswith(_PARQUET_MAGIC) or path.suffix.lower() in (".parquet", ".pq"):
        frame = _read_parquet(path, head)
        unit, first = "row", 1
    elif path.suffix.lower() in EXCEL_SUFFIXES:
        frame = _read_excel(path, head, options.sheet)
        unit, first = "line", 2  # the sheet's row numbers as Excel shows them (header on row 1)
    else:
        frame = _read_csv(path, head, options)
        unit, first = "line", 2
    if frame.empty:
        what = "has a header but no rows" if len(frame.columns) else "has no rows"
        raise InputError(_problem(name, f"the file {what}", "export the table again with its rows"))
    frame.attrs.update({SOURCE_ATTR: name, ROW_UNIT_ATTR: unit, FIRST_ROW_ATTR: first})
    return frame


def read_text_file(path: Path) -> str:
    """Give the text of a small UTF-8 file (a mapping or a config), a leading BOM dropped.

    Raises ``InputError`` naming the file when it is missing, a folder, or not
    UTF-8 (with the line of the first byte that is not).
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        what = "this is a folder, not a file" if path.is_dir() else "the file does not exist"
        raise InputError(
            _problem(name, what, "check the path (relative paths start from the current folder)")
        )
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise InputError(
            _problem(
                name,
                f"line {line}: byte 0x{raw[error.start : error.start + 1].hex()} is not UTF-8 "
                "(the file was saved in another encoding)",
                "save the file as UTF-8 (in most editors: Save As, encoding UTF-8)",
            )
        ) from None


#: Rows converted to Arrow at a time when writing: bounds the extra memory of a write.
WRITE_CHUNK_ROWS = 100_000


def _write_parquet_in_row_groups(frame: pd.DataFrame, stream: BinaryIO) -> None:
    """Write ``frame`` as Parquet one row group at a time (the whole table is never copied to Arrow)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.Schema.from_pandas(frame.head(0), preserve_index=False)
    # Text columns whose first rows are all blank must still be typed as text.
    for position, field in enumerate(schema):
        if pa.types.is_null(field.type):
            schema = schema.set(position, pa.field(field.name, pa.string()))
    with pq.ParquetWriter(stream, schema) as writer:
        for start in range(0, max(len(frame), 1), WRITE_CHUNK_ROWS):
            part = frame.iloc[start : start + WRITE_CHUNK_ROWS]
            writer.write_table(pa.Table.from_pandas(part, schema=schema, preserve_index=False))


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Give a binary stream whose content becomes ``path`` only when the block ends without an error.

    The one atomic writer of winmodel: the bytes go to a temporary file beside
    ``path``, are flushed to disk, and the file is renamed over ``path`` in one
    step, so a reader sees the old file or the new one, never half of one. On
    any failure (Ctrl-C included) the temporary file is removed and ``path`` is
    untouched. The file gets the usual permissions (0666 less the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(folder: Path) -> Iterator[Path]:
    """Give a staging folder that becomes ``folder`` (which must not exist) only when the block ends without an error.

    The folder-sized sibling of :func:`atomic_file`: files written into the
    staging folder appear at ``folder`` together, in one rename; on any failure
    the staging folder is removed. Permissions follow the umask.
    """
    folder = Path(folder)
    if folder.exists():
        raise FileExistsError(f"{folder} exists already; write into a new folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    staging.mkdir()
    try:
        yield staging
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_text_atomic(text: str, path: Path) -> Path:
    """Give ``path`` after writing ``text`` (UTF-8) to it, all or nothing (:func:`atomic_file`)."""
    with atomic_file(path) as stream:
        stream.write(text.encode("utf-8"))
    return Path(path)


def write_table_atomic(frame: pd.DataFrame, path: Path, *, date_format: str | None = None) -> Path:
    """Give the path written: ``frame`` as CSV or Parquet (by extension), all or nothing (:func:`atomic_file`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise InputError(
            _problem(
                str(path),
                "the output must be a .csv or .parquet file",
                "give a path ending in .csv or .parquet",
            )
        )
    with atomic_file(path) as stream:
        if suffix == ".csv":
            frame.to_csv(stream, index=False, chunksize=WRITE_CHUNK_ROWS, date_format=date_format)
        else:
            _write_parquet_in_row_groups(frame, stream)
    return path


_FORMULA_START = re.compile(r"^[=+\-@\t\r]")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def neutralise_spreadsheet_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Give a copy of ``frame`` whose text cells cannot run as spreadsheet formulas.

    Text starting with ``= + - @``, a tab or a carriage return gets a leading
    apostrophe (the OWASP advice against CSV injection). Numeric columns and
    text that is a plain number (``-5``, ``+3.2``) are left as they are.
    """
    columns = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            categories = column.cat.categories
            if categories.dtype.kind in "OUT" or pd.api.types.is_string_dtype(categories.dtype):
                renamed = {value: _neutralise_text(value) for value in categories}
                if any(old != new for old, new in renamed.items()):
                    columns[name] = column.cat.rename_categories(renamed)
        elif pd.api.types.is_string_dtype(column.dtype) or column.dtype == object:
            text = column.astype("str")
            risky = text.str.match(_FORMULA_START) & ~text.str.match(_PLAIN_NUMBER)
            risky = risky.fillna(False).astype(bool)
            if risky.any():
                columns[name] = column.where(~risky, "'" + text)
    return frame.assign(**columns) if columns else frame.copy()


def _neutralise_text(value: object) -> object:
    if isinstance(value, str) and _FORMULA_START.match(value) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


# --------------------------------------------------------------------------- parquet


# --------------------------------------------------------------------------- excel

#: Workbooks read with openpyxl (the old binary .xls is refused with a hint).
EXCEL_SUFFIXES = (".xlsx", ".xlsm")


def _read_excel(path: Path, head: bytes, sheet: str | None) -> pd.DataFrame:
    """Give one sheet of a workbook as text, like a CSV: dates as ISO text, whole numbers without ``.0``."""
    name = str(path)
    if not head.startswith(b"PK\x03\x04"):
        raise InputError(
            _problem(
                name,
                "the file is named .xlsx but is not an Excel workbook",
                "save it again from Excel as .xlsx, or rename it to .csv if it is text",
            )
        )
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # zipfile and openpyxl raise several types for a damaged file
        raise InputError(
            _problem(
                name,
                f"the workbook cannot be read ({_first_line(error)})",
                "save it again from Excel; the file looks damaged or truncated",
            )
        ) from None
    try:
        sheets = list(workbook.sheetnames)
        chosen = sheets[0] if sheet is None else sheet
        if chosen not in sheets:
            raise InputError(
                _problem(
                    name,
                    f"the workbook has no sheet {sheet!r} (it has: {', '.join(sheets)})",
                    "name one of its sheets with `read: {sheets: {opportunities: <sheet>}}` in the "
                    "mapping",
                )
            )
        rows = [
            [_excel_text(value) for value in row]
            for row in workbook[chosen].iter_rows(values_only=True)
        ]
    finally:
        workbook.close()
    while rows and all(value is None for value in rows[-1]):
        rows.pop()  # formatted but empty rows at the end of a sheet
    if not rows:
        return pd.DataFrame()
    header = [str(value).strip() if value is not None else "" for value in rows[0]]
    while header and header[-1] == "":
        header.pop()
    width = len(header)
    body = [row[:width] + [None] * (width - len(row)) for row in rows[1:]]
    blank_names = [position + 1 for position, value in enumerate(header) if value == ""]
    if blank_names:
        raise InputError(
            _problem(
                name,
                f"sheet {chosen!r}: column(s) {', '.join(map(str, blank_names))} of the first row "
                "have no name",
                "put the column names in the first row of the sheet",
            )
        )
    frame = pd.DataFrame(body, columns=header, dtype="str").fillna("")
    log.debug("read sheet %r of %s: %d rows", chosen, name, len(frame))
    return frame


def _excel_text(value: object) -> str | None:
    """Give a cell as the text a CSV export would hold (dates ISO, 12500.0 as 12500)."""
    import datetime as dt

    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_parquet(path: Path, head: bytes) -> pd.DataFrame:
    name = str(path)
    if not head.startswith(_PARQUET_MAGIC):
        raise InputError(
            _problem(
                name,
                "the file is named .parquet but is not a Parquet file",
                "export it again as Parquet, or rename it to .csv if it is text",
            )
        )
    try:
        return pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise InputError(
            _problem(
                name,
                f"the Parquet file cannot be read ({error})",
                "export it again; the file looks damaged or truncated",
            )
        ) from error


# --------------------------------------------------------------------------- csv


def _read_csv(path: Path, head: bytes, options: ReadOptions) -> pd.DataFrame:
    name = str(path)
    for magic, hint in _KNOWN_BINARY:
        if head.startswith(magic):
            raise InputError(
                _problem(
                    name,
                    f"the file is not CSV or Parquet: it looks like {hint}",
                    "give a CSV or Parquet export",
                )
            )
    encoding = _choose_encoding(path, head, options)
    if encoding.startswith("utf-16"):
        text_head = head.decode(encoding, errors="ignore")
    else:
        text_head = head.decode(encoding, errors="replace")
    if not text_head.strip().lstrip("\ufeff").strip():
        raise InputError(
            _problem(
                name,
                "the file is empty (only blank space)",
                "export the table again; it has no header and no rows",
            )
        )
    delimiter = options.delimiter or _sniff_delimiter(text_head)
    try:
        frame = pd.read_csv(
            path,
            sep=delimiter,
            encoding=encoding,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            engine="c",
        )
    except pd.errors.EmptyDataError as error:
        raise InputError(_problem(name, "the file is empty", "export the table again")) from error
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as error:
        raise InputError(
            _problem(
                name,
                f"the file cannot be parsed as CSV with delimiter {delimiter!r} and encoding "
                f"{encoding}: {_first_line(error)}",
                "check the quoting around that line, or set `read: {delimiter: ..., encoding: ...}` "
                "in the mapping",
            )
        ) from error
    frame.columns = [str(column).strip().lstrip("\ufeff").strip() for column in frame.columns]
    if len(frame.columns) == 1:
        _refuse_wrong_delimiter(name, str(frame.columns[0]), delimiter)
    _warn_of_repeated_headers(name, text_head, delimiter, list(frame.columns))
    return frame


def _warn_of_repeated_headers(
    name: str, text_head: str, delimiter: str, columns: list[str]
) -> None:
    """Log a warning for header names given twice: pandas renames the copies (``amount.1``) silently."""
    try:
        header = next(csv.reader(io.StringIO(text_head.lstrip("\ufeff")), delimiter=delimiter), [])
    except csv.Error:
        return
    header = [value.strip() for value in header]
    if len(header) != len(columns):
        return
    first: dict[str, int] = {}
    renamed: dict[str, list[str]] = {}
    for position, value in enumerate(header):
        if value in first:
            renamed.setdefault(value, []).append(columns[position])
        else:
            first[value] = position
    for value, copies in renamed.items():
        log.warning(
            "%s: the header names the column '%s' %d times; the first is read as '%s', the others "
            "as %s. Rename them in the export, or map the one you mean.",
            name,
            value,
            len(copies) + 1,
            columns[first[value]],
            ", ".join(f"'{copy}'" for copy in copies),
        )


def _refuse_wrong_delimiter(name: str, header: str, delimiter: str) -> None:
    """Raise when a one-column header splits into several columns on another delimiter.

    A ``read.delimiter`` that does not match the file makes the whole header one
    column; without this check every required column would be reported missing.
    """
    # A quoted header may hold a line break; the csv module refuses one in a single line.
    line = header.replace("\r", " ").replace("\n", " ")
    for other in CSV_DELIMITERS:
        if other == delimiter:
            continue
        width = len(next(csv.reader([line], delimiter=other)))
        if width >= 2:
            raise InputError(
                _problem(
                    name,
                    f"read with delimiter {delimiter!r} the file has a single column, but its header splits "
                    f"on {other!r} into {width} columns",
                    f"set `read: {{delimiter: {other!r}}}` in the mapping, or remove `read.delimiter` "
                    "so the delimiter is detected",
                )
            )


def _choose_encoding(path: Path, head: bytes, options: ReadOptions) -> str:
    """Give the encoding to read ``path`` with, after scanning it for binary content and long lines."""
    name = str(path)
    requested = options.encoding
    if head.startswith(_UTF16_BOMS):
        # UTF-16 (Excel's "Unicode text") is full of NUL bytes: skip the binary and line checks.
        return requested or "utf-16"
    if requested and codecs.lookup(requested).name.startswith(("utf-16", "utf-32")):
        return requested  # without a byte-order mark, but named in the mapping
    if requested:
        normalised = codecs.lookup(requested).name
        if normalised == "utf-8" and head.startswith(_UTF8_BOM):
            requested = "utf-8-sig"
    start_encoding = requested or ("utf-8-sig" if head.startswith(_UTF8_BOM) else "utf-8")
    failure = _scan(path, start_encoding, options.max_line_bytes)
    if failure is None:
        return start_encoding
    if requested:
        raise InputError(
            _problem(
                name,
                f"the file is not valid {requested}: {failure}",
                "set the right encoding with `read: {encoding: ...}` in the mapping "
                "(common ones: utf-8, cp1252, latin-1)",
            )
        )
    for fallback in ("cp1252", "latin-1"):
        if _scan(path, fallback, options.max_line_bytes, check_lines=False) is None:
            log.warning(
                "%s is not UTF-8 (%s); reading it as %s. If accented letters look wrong, "
                "set `read: {encoding: ...}` in the mapping.",
                name,
                failure,
                fallback,
            )
            return fallback
    return "latin-1"  # unreachable: latin-1 decodes any byte


def _scan(
    path: Path, encoding: str, max_line_bytes: int, *, check_lines: bool = True
) -> str | None:
    """Give why ``path`` cannot be decoded with ``encoding`` (None when it can).

    The same pass refuses binary content (NUL bytes) and lines above
    ``max_line_bytes`` with an ``InputError``.
    """
    name = str(path)
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    carried = 0  # bytes of the current, unfinished line
    offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            if check_lines:
                if b"\x00" in chunk:
                    raise InputError(_binary_content(name, chunk))
                lengths = [len(piece) for piece in chunk.replace(b"\r", b"\n").split(b"\n")]
                lengths[0] += carried
                if max(lengths) > max_line_bytes:
                    raise InputError(_long_line(name, path, max_line_bytes))
                carried = lengths[-1]
            try:
                decoder.decode(chunk, final=False)
            except UnicodeDecodeError as error:
                bad = error.object[error.start : error.start + 1].hex()
                return f"byte 0x{bad} near byte {offset + error.start} cannot be decoded"
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "the file ends in the middle of a character"
    return None


def _binary_content(name: str, chunk: bytes) -> Problem:
    """Give the problem for NUL bytes: UTF-16 text without a byte-order mark, or a binary file."""
    sample = chunk[:4096]
    for parity, encoding in ((1, "utf-16-le"), (0, "utf-16-be")):
        zeros = sample[parity::2].count(0)
        if (
            len(sample) >= 8
            and zeros >= 0.9 * (len(sample) // 2)
            and sample[1 - parity :: 2].count(0) == 0
        ):
            return _problem(
                name,
                "the file looks like UTF-16 text without a byte-order mark",
                f"set `read: {{encoding: {encoding}}}` in the mapping, or save the file as UTF-8",
            )
    return _problem(
        name,
        "the file has binary content (NUL bytes), so it is not CSV or Parquet",
        "give a CSV or Parquet export",
    )


def _long_line(name: str, path: Path, max_line_bytes: int) -> Problem:
    """Give the problem for the first line of ``path`` longer than ``max_line_bytes``."""
    line_number, length = 1, 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            for piece_index, piece in enumerate(chunk.replace(b"\r", b"\n").split(b"\n")):
                if piece_index:
                    line_number, length = line_number + 1, 0
                length += len(piece)
                if length > max_line_bytes:
                    return _problem(
                        name,
                        f"line {line_number} is longer than the line length limit of "
                        f"{_human_bytes(max_line_bytes)}; the file may use an unusual line "
                        "terminator or not be a table",
                        f"check the file; if the line is real, raise the limit with "
                        f"`read: {{max_line_bytes: {max_line_bytes * 4}}}` in the mapping "
                        "(ReadOptions(max_line_bytes=...) in Python)",
                    )
    return _problem(name, "a line is longer than the line length limit", "check the file")


def _sniff_delimiter(text: str) -> str:
    """Give the delimiter among ``, ; TAB |`` that splits the first lines most consistently."""
    if "\n" in text:
        text = text[: text.rfind("\n")]  # drop a partial last line
    text = text.lstrip("\ufeff")
    best, best_score = ",", (-1.0, 0)
    for delimiter in CSV_DELIMITERS:
        try:
            rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row][:50]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        consistent = sum(len(row) == width for row in rows) / len(rows)
        score = (consistent, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


# --------------------------------------------------------------------------- helpers


def _problem(file: str, problem: str, fix: str) -> Problem:
    return Problem(file=file, column=None, problem=problem, fix=fix)


def _human_bytes(size: int) -> str:
    for unit, factor in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}".replace(".0 ", " ")
    return f"{size} bytes"


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
