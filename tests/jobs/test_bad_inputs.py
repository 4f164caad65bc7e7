"""The bad-input matrix: every foreseeable fault, through the real command line, answered clearly.

Each row builds one faulty input in a temporary folder and runs ``winmodel
validate``, ``score`` or ``train`` through the command line's ``main`` in this
interpreter, as ``python -m winmodel`` would (MLflow pointed into the folder,
logging set up by the command line itself, stdout and stderr captured at the file
descriptors); three rows also run in a fresh interpreter, as a user runs them. Every row checks the exit code, that the output names the file
(and the column and rows where there are some), that no traceback is shown,
and that nothing was half-done: a ``score`` leaves an existing output file
byte-identical, a ``train`` leaves the registry (versions and the champion
alias) as it was. Property tests at the end feed generated files and mappings
through reading, mapping and validation: they either load or raise InputError.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from winmodel.data.dataset import load_crm_data
from winmodel.data.mapping import load_mapping
from winmodel.errors import InputError

ROOT = Path(__file__).parents[2]
CANONICAL = Path(__file__).parents[1] / "fixtures" / "canonical" / "opportunities.csv"
BASE = CANONICAL.read_text(encoding="utf-8")
HEADER = BASE.splitlines()[0].split(",")
PREVIOUS_OUTPUT = "opportunity_id,score\nOPP-004,55\n"


# --------------------------------------------------------------------------- building faulty files


def _replace_column(column: str, values: list[str], text: str = BASE) -> str:
    """Give the canonical export with ``column`` set to ``values`` (one per deal, CSV-quoted as given)."""
    lines = text.splitlines()
    position = HEADER.index(column)
    out = [lines[0]]
    for line, value in zip(lines[1:], values, strict=True):
        fields = line.split(",")
        fields[position] = value
        out.append(",".join(fields))
    return "\n".join(out) + "\n"


def _drop_column(column: str) -> str:
    position = HEADER.index(column)
    return (
        "\n".join(
            ",".join(f for i, f in enumerate(line.split(",")) if i != position)
            for line in BASE.splitlines()
        )
        + "\n"
    )


def _quoted(values: list[str]) -> list[str]:
    return ['"' + value.replace('"', '""') + '"' for value in values]


@dataclass(frozen=True)
class Case:
    """One faulty input and what the command must say about it.

    ``files`` maps a file name to its content (text is written as UTF-8,
    bytes as they are); ``mapping`` is YAML text for ``--mapping``. ``says``
    lists the pieces the output must contain besides the data file's name.
    """

    files: dict[str, str | bytes] | Callable[[object], dict[str, str | bytes]]
    exit_code: int
    says: tuple[str, ...] = ()
    mapping: str | bytes | None = None
    data: str = "opportunities.csv"
    names_file: str | None = None  # the file the message must name (default: the data file)
    check: Callable[[Path], None] | None = None
    config: dict = field(default_factory=dict)
    #: For score: builds the model to pass with --model from (the test folder, the trained export).
    model: Callable[[Path, Path], Path] | None = None


def _status_mapping() -> str:
    return "name: crm\nvalues:\n  status: {Closed Won: won, Closed Lost: lost, Open: open}\n"


def _thin_history(history, won: int, lost: int) -> dict[str, str]:
    """Give a flat CSV export of ``won`` won, ``lost`` lost and 50 open deals from the small history."""
    opportunities = history.opportunities
    chosen = pd.concat(
        [
            opportunities[opportunities["status"] == "won"].head(won),
            opportunities[opportunities["status"] == "lost"].head(lost),
            opportunities[opportunities["status"] == "open"].head(50),
        ]
    )
    return {"opportunities.csv": chosen.to_csv(index=False)}


def _latin1_reads_correctly(folder: Path) -> None:
    data = load_crm_data(folder / "opportunities.csv")
    assert "Jürgen Müller" in set(data.opportunities["owner_id"])


def _amounts_parse(folder: Path) -> None:
    data = load_crm_data(folder / "opportunities.csv")
    assert data.opportunities["amount"].tolist() == [
        12500.0,
        15000.0,
        17500.0,
        20000.0,
        22500.0,
        25000.0,
        1234567.5,
        30000.0,
    ]


def _dates_parse(folder: Path) -> None:
    data = load_crm_data(folder / "opportunities.csv")
    assert data.opportunities["close_date"].tolist() == list(
        pd.to_datetime(
            [
                "2024-03-09",
                "2024-04-02",
                "2024-04-26",
                "2024-05-20",
                "2024-06-13",
                "2024-07-07",
                "2024-07-31",
                "2024-08-24",
            ]
        )
    )


def _copied_model(folder: Path, export: Path) -> Path:
    import shutil

    model = folder / "models" / "champion"
    shutil.copytree(export, model)
    return model


def _truncated_model(folder: Path, export: Path) -> Path:
    """The issue's case: a copy of models/champion cut short (a full disk, an interrupted copy)."""
    model = _copied_model(folder, export)
    booster = next(model.rglob("booster.txt"))
    booster.write_bytes(booster.read_bytes()[: booster.stat().st_size // 3])
    return model


def _truncated_legacy_model(folder: Path, export: Path) -> Path:
    """A winmodel 0.1 champion (a pickle) cut short: the issue's "pickle data was truncated"."""
    import shutil

    model = folder / "models" / "champion"
    shutil.copytree(Path(__file__).parents[1] / "fixtures" / "models" / "format-0" / "model", model)
    pickled = model / "python_model.pkl"
    pickled.write_bytes(pickled.read_bytes()[:200])
    return model


def _empty_mlmodel(folder: Path, export: Path) -> Path:
    model = _copied_model(folder, export)
    (model / "MLmodel").write_text("", encoding="utf-8")
    return model


def _other_format_version(folder: Path, export: Path) -> Path:
    import json

    model = _copied_model(folder, export)
    manifest = next(model.rglob("format.json"))
    content = json.loads(manifest.read_text(encoding="utf-8"))
    content["format_version"] = 99
    manifest.write_text(json.dumps(content), encoding="utf-8")
    return model


FORMULAS = [
    '=HYPERLINK("http://evil.example","click")',
    "+cmd|' /C calc'!A0",
    "@SUM(A1:A2)",
    "-2+3",
]
UNICODE_NAMES = ["Zoë Ørsted 🚀", "株式会社テスト", "Ελένη 🤝 Ltd"]

CASES: dict[str, Case] = {
    "missing required column": Case(
        {"opportunities.csv": _drop_column("created_date")},
        1,
        ("column 'created_date'", "required column 'created_date'", "is missing"),
    ),
    "renamed column, close match suggested": Case(
        {"opportunities.csv": BASE.replace("created_date", "Created Date", 1)},
        1,
        (
            "column 'created_date'",
            "closest column in the export is 'Created Date'",
            "created_date: 'Created Date'",
        ),
    ),
    "wrong delimiter in the mapping": Case(
        {"opportunities.csv": BASE},
        1,
        ("delimiter ';'", "splits on ',' into 36 columns", "read: {delimiter: ','}"),
        mapping="read: {delimiter: ';'}\n",
    ),
    "semicolon delimiter is detected": Case(
        {"opportunities.csv": BASE.replace(",", ";")}, 0, ("0 error(s)",)
    ),
    "latin-1 with umlauts reads with a warning": Case(
        {"opportunities.csv": BASE.replace("rep1", "Jürgen Müller").encode("latin-1")},
        0,
        ("is not UTF-8", "reading it as cp1252", "0 error(s)"),
        check=_latin1_reads_correctly,
    ),
    "utf-16 without a byte-order mark": Case(
        {"opportunities.csv": BASE.encode("utf-16-le")},
        1,
        ("UTF-16 text without a byte-order mark", "read: {encoding: utf-16-le}"),
    ),
    "utf-8 with BOM reads": Case(
        {"opportunities.csv": b"\xef\xbb\xbf" + BASE.encode("utf-8")},
        0,
        ("8 deals: 3 won, 2 lost, 3 open",),
    ),
    "dates in three formats and one unparseable": Case(
        {
            "opportunities.csv": _replace_column(
                "close_date",
                [
                    "2024-03-09",
                    "04/02/2024",
                    "26.04.2024",
                    "2024-05-20T10:00:00Z",
                    '"Jun 13, 2024"',
                    "07/07/2024",
                    "31/31/2024",
                    "2024-08-24",
                ],
            )
        },
        1,
        ("column 'close_date'", "1 value(s) are not dates: '31/31/2024'", "line 8 (id OPP-007)"),
    ),
    "dates in three formats parse": Case(
        {
            "opportunities.csv": _replace_column(
                "close_date",
                [
                    "2024-03-09",
                    "04/02/2024",
                    "26.04.2024",
                    "2024-05-20T10:00:00Z",
                    '"Jun 13, 2024"',
                    "07/07/2024",
                    "2024-07-31",
                    "08/24/2024",
                ],
            )
        },
        0,
        ("0 error(s)",),
        check=_dates_parse,
    ),
    "thousands separators and currency symbols": Case(
        {
            "opportunities.csv": _replace_column(
                "amount",
                _quoted(
                    [
                        "$12,500.00",
                        "€15000",
                        "USD 17,500",
                        "20,000",
                        "22 500 EUR",
                        "£25,000.00",
                        "1,234,567.50",
                        "30000",
                    ]
                ),
            )
        },
        0,
        ("0 error(s)",),
        check=_amounts_parse,
    ),
    "negative and absurd amounts": Case(
        {
            "opportunities.csv": _replace_column(
                "amount",
                _quoted(["12500", "-15000", "17500", "(1,000)", "22500", "25000", "1e13", "30000"]),
            )
        },
        1,
        (
            "column 'amount'",
            "2 negative amount(s)",
            "line 3 (id OPP-002)",
            "line 5 (id OPP-004)",
            "above 100,000,000,000",
            "line 8 (id OPP-007)",
            "scale: {amount: 0.01}",
        ),
    ),
    "percentage given as 0-1 shares": Case(
        {
            "opportunities.csv": _replace_column(
                "discount_pct", ["0.05", "0.1", "0.15", "0", "0.05", "0.1", "0.15", "0"]
            )
        },
        0,
        ("column 'discount_pct'", "looks like 0–1 shares", "scale: {discount_pct: 100}"),
    ),
    "share given as 0-100": Case(
        {
            "opportunities.csv": _replace_column(
                "services_share", ["5", "10", "15", "0", "5", "10", "15", "0"]
            )
        },
        1,
        (
            "column 'services_share'",
            "looks like 0–100",
            "scale: {services_share: 0.01}",
            "line 2 (id OPP-001)",
        ),
    ),
    "status values not in the mapping": Case(
        {
            "opportunities.csv": _replace_column(
                "status",
                [
                    "Closed Won",
                    "Closed Lost",
                    "Closed Won",
                    "Open",
                    "Negotiation",
                    "Open",
                    "Closed Won",
                    "On hold",
                ],
            )
        },
        1,
        (
            "column 'status'",
            "'Negotiation' (1)",
            "'On hold' (1)",
            "line 6 (id OPP-005)",
            "values: {status:",
        ),
        mapping=_status_mapping(),
    ),
    "duplicate ids": Case(
        {
            "opportunities.csv": _replace_column(
                "opportunity_id",
                [
                    "OPP-001",
                    "OPP-002",
                    "OPP-003",
                    "OPP-004",
                    "OPP-001",
                    "OPP-006",
                    "OPP-007",
                    "OPP-004",
                ],
            )
        },
        1,
        (
            "column 'opportunity_id'",
            "'OPP-001', 'OPP-004'",
            "(4 rows)",
            "line 2 (id OPP-001)",
            "line 6 (id OPP-001)",
        ),
    ),
    "empty file": Case({"opportunities.csv": b""}, 1, ("the file is empty",)),
    "header-only file": Case(
        {"opportunities.csv": BASE.splitlines()[0] + "\n"}, 1, ("header but no rows",)
    ),
    "binary file": Case(
        {"opportunities.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8},
        1,
        ("binary content",),
    ),
    "overlong line above the mapping's limit": Case(
        {"opportunities.csv": BASE + "OPP-009," + "x" * 5000 + "\n"},
        1,
        ("line 10 is longer than the line length limit of 4 KiB", "max_line_bytes"),
        mapping="read: {max_line_bytes: 4096}\n",
    ),
    "overlong line above the default limit": Case(
        {"opportunities.csv": BASE + "OPP-009," + "x" * (2 * 1024 * 1024) + "\n"},
        1,
        ("line 10 is longer than the line length limit of 1 MiB",),
    ),
    "formula-like names validate": Case(
        {
            "opportunities.csv": _replace_column(
                "owner_id", _quoted([*FORMULAS, "rep0", "rep1", "rep2", "=1+1"])
            )
        },
        0,
        ("0 error(s)",),
    ),
    "unicode and emoji names validate": Case(
        {
            "opportunities.csv": _replace_column(
                "owner_id", [*UNICODE_NAMES, "rep0", "rep1", "rep2", "r", "s"]
            )
        },
        0,
        ("0 error(s)",),
    ),
    "mapping with a YAML error": Case(
        {"opportunities.csv": BASE},
        1,
        ("line 5", "cannot be read", "starts on line 4"),
        mapping="name: crm\ncolumns:\n  opportunities:\n    status: [Stage\n",
        names_file="mapping.yaml",
    ),
    "mapping with an unknown key": Case(
        {"opportunities.csv": BASE},
        1,
        ("line 3", "unknown key 'delimeter'", "did you mean 'delimiter'"),
        mapping="name: crm\nread:\n  delimeter: ';'\n",
        names_file="mapping.yaml",
    ),
    "mapping not saved as UTF-8": Case(
        {"opportunities.csv": BASE},
        1,
        ("line 3", "is not UTF-8"),
        mapping="name: crm\nvalues:\n  status: {Gewünscht: open}\n".encode("latin-1"),
        names_file="mapping.yaml",
    ),
    "no amount column": Case(
        {"opportunities.csv": _drop_column("amount")},
        0,
        ("column 'amount'", "no amount column", "never taken as 0", "0 error(s)"),
    ),
    "created on the close date for every deal": Case(
        {
            "opportunities.csv": _replace_column(
                "created_date",
                [line.split(",")[HEADER.index("close_date")] for line in BASE.splitlines()[1:]],
            )
        },
        1,
        ("created on the day they closed", "map created_date"),
    ),
    "Excel serial dates without their format": Case(
        {"opportunities.csv": _replace_column("created_date", [str(45292 + i) for i in range(8)])},
        1,
        ("column 'created_date'", "Excel serial day numbers", "created_date: excel"),
    ),
    "truncated model": Case(
        {"opportunities.csv": BASE},
        1,
        ("booster.txt", "damaged", "make train"),
        model=_truncated_model,
        names_file="champion",
    ),
    "truncated winmodel 0.1 model": Case(
        {"opportunities.csv": BASE},
        1,
        ("python_model.pkl", "cannot be read"),
        model=_truncated_legacy_model,
        names_file="champion",
    ),
    "empty MLmodel": Case(
        {"opportunities.csv": BASE},
        1,
        ("MLmodel", "empty or damaged", "re-export"),
        model=_empty_mlmodel,
        names_file="champion",
    ),
    "missing model folder": Case(
        {"opportunities.csv": BASE},
        1,
        ("there is no model here", "make train"),
        model=lambda folder, export: folder / "models" / "maven",
        names_file="maven",
    ),
    "missing registry model": Case(
        {"opportunities.csv": BASE},
        1,
        ("cannot be found", "make ui"),
        model=lambda folder, export: Path("models:/maven@champion"),
        names_file="models:/maven@champion",
    ),
    "model of another format version": Case(
        {"opportunities.csv": BASE},
        1,
        ("format", "99"),
        model=_other_format_version,
        names_file="champion",
    ),
    "only one class among closed deals": Case(
        lambda history: _thin_history(history, won=300, lost=0),
        1,
        ("column 'status'", "300 won and 0 lost", "at least 40 of each", "status mapping"),
    ),
    "fewer than 40 deals of a class": Case(
        lambda history: _thin_history(history, won=300, lost=30),
        1,
        ("column 'status'", "300 won and 30 lost", "at least 40 of each"),
    ),
}

#: Which command each case goes through: validate is the front door; score and train must refuse the
#: same faults without touching their outputs. All three load data through the same front door, so
#: a few rows each show it; repeating every case per command would cost a fresh interpreter each.
MATRIX = [
    *(
        (name, "validate")
        for name in CASES
        if name not in ("only one class among closed deals", "fewer than 40 deals of a class")
        and CASES[name].model is None
    ),
    *((name, "score") for name in CASES if CASES[name].model is not None),
    ("missing required column", "score"),
    ("negative and absurd amounts", "score"),
    ("binary file", "score"),
    ("status values not in the mapping", "train"),
    ("only one class among closed deals", "train"),
    ("fewer than 40 deals of a class", "train"),
]


# --------------------------------------------------------------------------- running the command line


@dataclass
class Done:
    """What one command printed, and its exit code (as subprocess.CompletedProcess has them)."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def winmodel_here(monkeypatch, capfd) -> Callable[[list[str], Path, Path], Done]:
    """Give a runner of the command line in this interpreter: ``python -m winmodel`` without its start-up.

    A fresh interpreter costs 2 s (validate) to 5 s (score: imports and model load) per row; here
    the same ``main`` runs with the same arguments, working folder and MLflow variable, its logging
    set up by the command line as in a fresh interpreter (pytest's handlers set aside), and what
    reaches file descriptors 1 and 2 is what it printed. An exception ``main`` does not turn into
    a message fails the test, as a traceback would.
    """
    import logging

    from winmodel.cli import main

    def run(args: list[str], cwd: Path, tracking_db: Path) -> Done:
        monkeypatch.chdir(cwd)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tracking_db}")
        monkeypatch.setattr(sys, "argv", ["winmodel", *args])
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        root.handlers = []  # as in a fresh interpreter: the command line's basicConfig applies
        capfd.readouterr()
        code: int = 0
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        finally:
            root.handlers = handlers
            root.setLevel(level)
        out, err = capfd.readouterr()
        return Done(code, out, err)

    return run


def _winmodel(args: list[str], cwd: Path, tracking_db: Path) -> subprocess.CompletedProcess[str]:
    """Run the command line in a fresh interpreter, as a user does."""
    return subprocess.run(
        [sys.executable, "-m", "winmodel", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tracking_db}",
        },
    )


def _registry_state(database: Path) -> tuple[list, list]:
    """Give the registered versions and aliases in an MLflow SQLite store (read directly, no MLflow import)."""
    with sqlite3.connect(database) as connection:
        versions = connection.execute(
            "SELECT name, version FROM model_versions ORDER BY name, version"
        ).fetchall()
        aliases = connection.execute(
            "SELECT name, alias, version FROM registered_model_aliases ORDER BY name, alias"
        ).fetchall()
    return versions, aliases


@pytest.fixture(scope="module")
def registry_project(tmp_path_factory, trained_project) -> Path:
    """Give a project folder whose MLflow store holds a registered champion (a copy of the trained project's)."""
    root = tmp_path_factory.mktemp("registry")
    trained_project.copy_store(root)
    versions, aliases = _registry_state(root / "mlflow.db")
    assert versions and ("winmodel", "champion", versions[0][1]) in [tuple(a) for a in aliases]
    return root


@pytest.mark.parametrize(
    ("name", "command"), MATRIX, ids=[f"{command}: {name}" for name, command in MATRIX]
)
def test_bad_input(name, command, tmp_path, request, make_train_config, winmodel_here):
    _check_bad_input(name, command, tmp_path, request, make_train_config, winmodel_here)


#: One row per command also runs in a fresh interpreter: the start-up, imports and exit code as a
#: user gets them.
IN_A_FRESH_INTERPRETER = [
    ("binary file", "validate"),
    ("truncated model", "score"),
    ("only one class among closed deals", "train"),
]


@pytest.mark.parametrize(
    ("name", "command"),
    IN_A_FRESH_INTERPRETER,
    ids=[f"{command}: {name}" for name, command in IN_A_FRESH_INTERPRETER],
)
def test_bad_input_in_a_fresh_interpreter(name, command, tmp_path, request, make_train_config):
    assert (name, command) in MATRIX
    _check_bad_input(name, command, tmp_path, request, make_train_config, _winmodel)


def _check_bad_input(name, command, tmp_path, request, make_train_config, winmodel) -> None:
    case = CASES[name]
    # Only score and train need a trained project; validate rows stay cheap when run alone.
    files = (
        case.files(request.getfixturevalue("small_history")) if callable(case.files) else case.files
    )
    for file_name, content in files.items():
        path = tmp_path / file_name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    data = tmp_path / case.data
    mapping = None
    if case.mapping is not None:
        mapping = tmp_path / "mapping.yaml"
        mapping.write_bytes(
            case.mapping if isinstance(case.mapping, bytes) else case.mapping.encode("utf-8")
        )

    tracking_db = tmp_path / "mlflow.db"
    output = tmp_path / "scored.csv"
    if command == "validate":
        args = ["validate", "--data", str(data)] + (["--mapping", str(mapping)] if mapping else [])
    elif command == "score":
        output.write_text(PREVIOUS_OUTPUT, encoding="utf-8")
        model = request.getfixturevalue("trained_project").export_dir
        if case.model is not None:
            model = case.model(tmp_path, model)
        args = ["score", "--input", str(data), "--output", str(output), "--model", str(model)]
        args += ["--mapping", str(mapping)] if mapping else []
    else:
        tracking_db = request.getfixturevalue("registry_project") / "mlflow.db"
        config = make_train_config(
            tmp_path,
            data,
            tracking__tracking_uri=None,
            tracking__experiment="bad-inputs",
            **({"data__mapping": str(mapping)} if mapping else {}),
        )
        before = _registry_state(tracking_db)
        args = ["train", "--config", str(config)]

    done = winmodel(args, tmp_path, tracking_db)
    printed = done.stdout + done.stderr
    assert done.returncode == case.exit_code, printed
    assert "Traceback" not in printed
    if case.exit_code or case.says:
        assert (case.names_file or case.data) in printed, printed
    for piece in case.says:
        if command != "validate" and piece.endswith("error(s)"):
            continue  # only validate prints the summary line
        assert piece in printed, f"{piece!r} not in:\n{printed}"

    if case.model is not None:  # one short paragraph: what is wrong where, and how to fix it
        assert "\n\n" not in done.stderr.strip() and len(done.stderr.strip().splitlines()) <= 4
    if command == "score":
        assert output.read_text(encoding="utf-8") == PREVIOUS_OUTPUT
        assert not list(tmp_path.glob(".scored.csv.*"))  # no temporary file left behind
    elif command == "train":
        assert (
            _registry_state(tracking_db) == before
        )  # no new version, the champion alias did not move
        assert not (tmp_path / "models" / "champion").exists()
    else:
        assert not tracking_db.exists()  # validate never opens the tracking store
    if case.check is not None:
        case.check(tmp_path)


def test_scored_csv_neutralises_formulas_and_keeps_unicode_names(
    tmp_path, small_history, trained_project, winmodel_here
):
    """Names that a spreadsheet would run come out inert; unicode and emoji come out as they went in."""
    opportunities = small_history.opportunities
    open_deals = opportunities[opportunities["status"] == "open"].head(30).copy()
    names = [*FORMULAS, *UNICODE_NAMES]
    for position, name in enumerate(names):
        open_deals.iloc[position, open_deals.columns.get_loc("owner_id")] = name
        open_deals.iloc[position, open_deals.columns.get_loc("account_id")] = name
    data = tmp_path / "export"
    data.mkdir()
    open_deals.to_csv(data / "opportunities.csv", index=False)
    snapshots = small_history.snapshots
    snapshots[snapshots["opportunity_id"].isin(open_deals["opportunity_id"])].to_csv(
        data / "snapshots.csv", index=False
    )
    output = tmp_path / "scored.csv"

    done = winmodel_here(
        [
            "score",
            "--input",
            str(data),
            "--output",
            str(output),
            "--model",
            str(trained_project.export_dir),
        ],
        tmp_path,
        tmp_path / "mlflow.db",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    scored = pd.read_csv(output, dtype=str, keep_default_na=False, encoding="utf-8").set_index(
        "opportunity_id"
    )
    for position, name in enumerate(names):
        deal = open_deals["opportunity_id"].iloc[position]
        expected = "'" + name if name in FORMULAS else name
        assert scored.loc[deal, "owner_id"] == expected
        assert scored.loc[deal, "account_id"] == expected
    text = output.read_text(encoding="utf-8")
    for formula in FORMULAS:
        assert f",{formula}" not in text and f'"{formula}' not in text.replace("\"'", "")


# --------------------------------------------------------------------------- properties

_HEADERS = st.sampled_from(
    [
        "opportunity_id",
        "created_date",
        "close_date",
        "status",
        "amount",
        "industry",
        "services_share",
        "discount_pct",
        "pe_backed",
        "Id",
        "Amount (€)",
        "notes",
    ]
)
_CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "won",
            "lost",
            "open",
            "2024-01-31",
            "31.01.2024",
            "13/13/2024",
            "$1,200.50",
            "1.200,50",
            "(300)",
            "1e400",
            "-0",
            "NaN",
            "=SUM(A1)",
            "@x",
            "+1",
            "Zoë 🚀",
            "\u202e",
            "a;b",
            "a|b",
            '"quoted, comma"',
            "0.5",
            "50",
            "yes",
            "x",
        ]
    ),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters='\x00\r\n,"'),
        max_size=8,
    ),
)


@st.composite
def _csv_files(draw) -> bytes:
    headers = draw(st.lists(_HEADERS, min_size=1, max_size=7, unique=True))
    rows = draw(
        st.lists(
            st.lists(_CELLS, min_size=len(headers), max_size=len(headers)), min_size=0, max_size=5
        )
    )
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    lines = [delimiter.join(headers)] + [delimiter.join(row) for row in rows]
    text = "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
    return text.encode(encoding, errors="replace")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=_csv_files())
def test_any_export_file_loads_or_raises_input_error(tmp_path, content):
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    try:
        data = load_crm_data(path)
    except InputError as error:
        assert error.report.errors and str(path) in error.report.render()
        return
    assert data.report.ok and len(data.opportunities)


_KEYS = st.sampled_from(
    [
        "name",
        "read",
        "columns",
        "values",
        "dates",
        "fill",
        "scale",
        "as_of",
        "lookups",
        "extra_features",
        "delimiter",
        "encoding",
        "opportunities",
        "status",
        "dayfirst",
        "max_line_bytes",
        "colums",
        "*",
        "1",
        "true",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**7),
    st.floats(allow_nan=True),
    st.text(max_size=6),
    st.sampled_from([";", "utf-8", "latin-9", "as_of", "2024-02-30"]),
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=12,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=_DOCUMENTS, cut=st.integers(min_value=0, max_value=200))
def test_any_mapping_file_loads_or_raises_input_error(tmp_path, document, cut):
    text = yaml.safe_dump(document, allow_unicode=True)
    if cut < len(text):
        text = text[:cut] + "[" + text[cut:]  # sometimes an unclosed bracket
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_mapping(path)
    except InputError as error:
        assert str(path) in error.report.render()


def test_the_matrix_covers_every_case():
    assert {name for name, _ in MATRIX} == set(CASES)


# --------------------------------------------------------------------------- refusals that protect the project


def test_a_second_training_while_one_runs_stops_at_once(
    tmp_path, registry_project, make_train_config, winmodel_here
):
    """The lock beside the export folder: a second `winmodel train` exits 1 and touches nothing."""
    from filelock import FileLock

    from winmodel.jobs.train import LOCK_FILE

    tracking_db = registry_project / "mlflow.db"
    config = make_train_config(
        tmp_path, CANONICAL, tracking__tracking_uri=None, tracking__experiment="bad-inputs"
    )
    before = _registry_state(tracking_db)
    lock = tmp_path / "models" / LOCK_FILE
    with FileLock(str(lock)):  # a training in progress holds this, and names itself beside it
        lock.with_name(LOCK_FILE + ".owner").write_text("process 4242 (winmodel train ...)")
        done = winmodel_here(["train", "--config", str(config)], tmp_path, tracking_db)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    assert "another training is running" in done.stderr and LOCK_FILE in done.stderr
    assert "process 4242" in done.stderr and "nothing to delete" in done.stderr
    assert _registry_state(tracking_db) == before
    assert not (tmp_path / "models" / "champion").exists()


def test_scoring_without_a_model_names_where_it_looked_and_writes_nothing(tmp_path, winmodel_here):
    """By default a model comes only from this project's registry or its models/ folder, never elsewhere."""
    output = tmp_path / "scored.csv"
    output.write_text(PREVIOUS_OUTPUT, encoding="utf-8")
    done = winmodel_here(
        ["score", "--input", str(CANONICAL), "--output", str(output)],
        tmp_path,
        tmp_path / "mlflow.db",
    )
    printed = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in printed
    assert "no model to score with" in printed and "winmodel@champion" in printed
    assert str(Path("models") / "champion") in printed and "--model" in printed
    assert output.read_text(encoding="utf-8") == PREVIOUS_OUTPUT


def test_the_default_model_is_the_projects_export(tmp_path, monkeypatch, trained_project):
    import shutil

    from winmodel.mlops.registry import resolve_model
    from winmodel.settings import ScoreConfig

    shutil.copytree(trained_project.export_dir, tmp_path / "models" / "champion")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(
        "MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}"
    )  # no store here yet
    model, version, used = resolve_model(None, ScoreConfig())
    assert used == str(Path("models") / "champion")
    assert version == (tmp_path / "models" / "champion" / "WINMODEL_VERSION").read_text().strip()
    # A retrained version promoted by another test is the same model (training is reproducible).
    assert (
        model.booster.model_to_string()
        == trained_project.outcome.result.model.booster.model_to_string()
    )


def test_a_failed_champion_export_leaves_the_previous_one(tmp_path, trained_project):
    """The export folder is switched in one rename: a failure half-way leaves the old model, whole."""
    import mlflow

    from winmodel.mlops import export as exporting

    mlflow.set_tracking_uri(trained_project.tracking_uri)
    export = tmp_path / "models" / "champion"
    exporting.export_model("models:/winmodel/1", export, extra_files={"WINMODEL_VERSION": "1"})
    before = sorted(str(path.relative_to(export)) for path in export.rglob("*"))
    with pytest.raises(
        FileNotFoundError
    ):  # the second extra file cannot be written: fails after the copy
        exporting.export_model(
            "models:/winmodel/1",
            export,
            extra_files={"WINMODEL_VERSION": "2", "missing/folder/MODEL_CARD.md": "x"},
        )
    assert (export / "WINMODEL_VERSION").read_text() == "1"
    assert sorted(str(path.relative_to(export)) for path in export.rglob("*")) == before
    assert (
        len(list((tmp_path / "models" / ".exports").iterdir())) == 1
    )  # the half-made copy was removed
