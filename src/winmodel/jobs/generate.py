"""The generate job: write a synthetic CRM history (opportunities, snapshots, truth) to a folder."""

from __future__ import annotations

import logging
import time
from datetime import date
from pathlib import Path

import pandas as pd

from winmodel.data.database import is_database_url, shown_url, write_database_table
from winmodel.data.io import write_table_atomic, write_text_atomic
from winmodel.errors import InputError, Problem
from winmodel.synth.generator import GENERATOR_VERSION, generate_history

#: The file beside generated data naming the generator version that wrote it.
VERSION_STAMP = "GENERATOR_VERSION"

log = logging.getLogger("winmodel")

FILE_FORMATS = ("parquet", "csv")


def run_generate(
    out: Path | str,
    deals: int,
    seed: int,
    months: int,
    today: str | None,
    file_format: str,
) -> dict[str, str]:
    """Give where the opportunities, snapshots, truth and truth_timing tables were written.

    ``out`` is a folder (one file per table), or a database URL (``duckdb:///data/demo.duckdb``)
    that gets one table each.

    Each file is written to a temporary file in ``out`` and moved into place
    with ``os.replace``, so a reader never sees a half-written table.

    Parameters
    ----------
    out
        Folder to write into (created if missing).
    deals, seed, months
        Passed to :func:`winmodel.synth.generator.generate_history`.
    today
        Last day of the history as ``YYYY-MM-DD``; None for the fixed default.
    file_format
        ``parquet`` or ``csv``.

    Raises
    ------
    InputError
        When ``file_format`` or ``today`` cannot be used.
    """
    file_format = file_format.strip().lower()
    if file_format not in FILE_FORMATS:
        raise InputError(
            Problem(
                file="--format",
                column=None,
                problem=f"unknown file format '{file_format}'",
                fix="use --format parquet (default) or --format csv",
            )
        )
    last_day = _parse_today(today)

    started = time.perf_counter()
    history = generate_history(deals, seed=seed, months=months, today=last_day)
    seconds = time.perf_counter() - started

    tables = {
        "opportunities": history.opportunities,
        "snapshots": history.snapshots,
        "truth": history.truth,
    }
    if history.truth_timing is not None:
        tables["truth_timing"] = history.truth_timing
    if is_database_url(str(out)):
        # A database (make demo-db): one table each, swapped in atomically.
        paths = {
            name: f"{shown_url(str(out))}#{write_database_table(frame, f'{out}#{name}')}"
            for name, frame in tables.items()
        }
    else:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            name: str(_write_table(frame, out / f"{name}.{file_format}", file_format))
            for name, frame in tables.items()
        }
        paths["version"] = str(write_text_atomic(f"{GENERATOR_VERSION}\n", out / VERSION_STAMP))

    status = history.opportunities["status"].value_counts()
    won, lost = int(status.get("won", 0)), int(status.get("lost", 0))
    win_rate = won / (won + lost) if won + lost else float("nan")
    log.info(
        "generated %d deals in %.1f s (seed %d): %d won, %d lost, %d open; "
        "%d snapshots; closed win rate %.1f%%",
        len(history.opportunities),
        seconds,
        seed,
        won,
        lost,
        int(status.get("open", 0)),
        len(history.snapshots),
        100 * win_rate,
    )
    log.info("wrote %s", ", ".join(paths.values()))
    return paths


def _parse_today(today: str | None) -> date | None:
    """Give ``today`` as a date (None stays None), or raise an InputError a person can act on."""
    if today is None:
        return None
    try:
        return date.fromisoformat(today.strip())
    except ValueError:
        raise InputError(
            Problem(
                file="--today",
                column=None,
                problem=f"'{today}' is not a date",
                fix="give the last day of the history as YYYY-MM-DD, e.g. --today 2026-10-31",
            )
        ) from None


def _write_table(frame: pd.DataFrame, path: Path, file_format: str) -> Path:
    """Give ``path`` after writing ``frame`` to it atomically (dates as YYYY-MM-DD in CSV)."""
    return write_table_atomic(frame, path, date_format="%Y-%m-%d" if file_format == "csv" else None)
