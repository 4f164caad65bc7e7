"""Tests of ``winmodel validate``: the report it prints and the exit codes main() returns."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from winmodel import cli
from winmodel.jobs.validate import read_data_section, run_validate

ROOT = Path(__file__).parents[2]
CANONICAL = Path(__file__).parents[1] / "fixtures" / "canonical"
MAVEN = Path(__file__).parents[2] / "../shared/datasets/maven_crm"


def _winmodel(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line as a user would, in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "winmodel", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )


def _main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """Run main() in-process; give its exit code and everything it printed."""
    monkeypatch.setattr(sys, "argv", ["winmodel", *args])
    with pytest.raises(SystemExit) as done:
        cli.main()
    printed = capsys.readouterr()
    return done.value.code, printed.out + printed.err


@pytest.fixture
def broken_export(tmp_path) -> Path:
    folder = tmp_path / "broken"
    shutil.copytree(CANONICAL, folder)
    path = folder / "opportunities.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("15000.00", "-15000.00")  # line 3: a negative amount
    path.write_text("\n".join(lines) + "\n")
    return folder


@pytest.mark.skipif(
    not (MAVEN / "sales_pipeline.csv").exists(), reason="shared/datasets/maven_crm is absent"
)
def test_maven_export_validates_with_its_mapping():
    done = _winmodel(
        "validate",
        "--data",
        str(MAVEN / "sales_pipeline.csv"),
        "--mapping",
        "pipelines/mappings/maven_crm.yaml",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8,800 deals: 4,238 won, 2,473 lost, 2,089 open" in done.stdout
    assert "0 error(s)" in done.stdout


def test_bad_export_exits_1_naming_file_column_and_line(broken_export):
    done = _winmodel("validate", "--data", str(broken_export))
    assert done.returncode == 1
    assert (
        "opportunities.csv, column 'amount'" in done.stdout and "line 3 (id OPP-002)" in done.stdout
    )
    assert "Traceback" not in done.stdout + done.stderr


def test_in_process_main_gives_the_same_codes(monkeypatch, capsys, broken_export):
    code, printed = _main(monkeypatch, capsys, "validate", "--data", str(CANONICAL))
    assert code == 0 and "8 deals: 3 won, 2 lost, 3 open" in printed
    code, printed = _main(monkeypatch, capsys, "validate", "--data", str(broken_export))
    assert code == 1 and "negative amount" in printed
    assert _main(monkeypatch, capsys, "validate", "--bogus")[0] == 2
    code, printed = _main(monkeypatch, capsys, "validate")
    assert code == 2 and "--data" in printed and "Traceback" not in printed


def test_config_names_the_data_and_flags_override_it(monkeypatch, capsys, tmp_path, broken_export):
    config = tmp_path / "train.yaml"
    config.write_text(f"data:\n  path: {broken_export}\nmodel: {{trees: 10}}\n")
    assert read_data_section(config) == (broken_export, None)
    assert _main(monkeypatch, capsys, "validate", "--config", str(config))[0] == 1
    assert (
        _main(monkeypatch, capsys, "validate", "--config", str(config), "--data", str(CANONICAL))[0]
        == 0
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "config file does not exist"),
        ("data: [unclosed\n", "line 2"),
        ("model: {trees: 10}\n", "no `data: {path: ...}`"),
    ],
)
def test_bad_config_is_reported_without_traceback(monkeypatch, capsys, tmp_path, content, message):
    config = tmp_path / "train.yaml"
    if content is not None:
        config.write_text(content)
    code, printed = _main(monkeypatch, capsys, "validate", "--config", str(config))
    assert code == 1 and message in printed and "Traceback" not in printed


def test_bad_mapping_and_unreadable_file_exit_1(monkeypatch, capsys, tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("name: x\ncolumns:\n  opportunites: {opportunity_id: Id}\n")
    code, printed = _main(
        monkeypatch, capsys, "validate", "--data", str(CANONICAL), "--mapping", str(mapping)
    )
    assert code == 1 and "line 3" in printed and "'opportunites'" in printed
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    code, printed = _main(monkeypatch, capsys, "validate", "--data", str(empty))
    assert code == 1 and "empty" in printed and "Traceback" not in printed


def test_run_validate_returns_the_report_instead_of_raising(broken_export):
    report = run_validate(data=broken_export)
    assert not report.ok and report.errors[0].column == "amount"
    assert not run_validate().ok  # nothing to validate is a reported problem, not a crash
