"""docs/operations.md: the sections an operator needs, and its rollback commands work as written."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "operations.md"


def _section(title: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_guide_covers_schedules_outputs_rollback_warehouse_and_upgrades():
    schedule = _section("The schedule")
    assert "### cron" in schedule and "### Airflow" in schedule and "### Prefect" in schedule
    assert "winmodel train --config" in schedule and "winmodel score --config" in schedule
    assert "130" in schedule and "interrupted — champion unchanged" in schedule
    outputs = _section("Where outputs and logs go")
    assert "atomically" in outputs and "umask" in outputs and "standard error" in outputs
    assert "set_registered_model_alias" in _section("Rolling back a champion")
    assert "data.source" in _section("Pointing at a warehouse")
    assert "requirements-lock.txt" in _section("Upgrading winmodel")
    # The Airflow, Prefect and Python examples are valid Python.
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 3
    for block in blocks:
        ast.parse(textwrap.dedent(block))
    # Every command-line flag the guide uses exists.
    from typer.testing import CliRunner

    from winmodel.cli import app

    uses = {
        (command, flag)
        for command, rest in re.findall(r"winmodel (\w[\w-]*)([^`\n&>]*)", GUIDE.read_text())
        for flag in re.findall(r"--[a-z-]+", rest)
    }
    assert len(uses) >= 8, uses
    for command, flag in sorted(uses):
        shown = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert shown.exit_code == 0 and flag in shown.output, (command, flag)


@pytest.mark.slow
def test_the_rollback_commands_move_the_champion_and_its_export(
    tmp_path, trained_project, monkeypatch
):
    """Register a newer version as champion in a copy of the store, then roll back as the guide says."""
    import mlflow
    from mlflow import MlflowClient

    from winmodel.mlops.export import exported_version

    trained_project.copy_store(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # create_model_version looks the logged model up with a default client: the process-wide URI
    # (whatever an earlier test in this worker left) must be the copy's, as it is in the guide.
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(uri)
    first = client.get_model_version_by_alias("winmodel", "champion")
    version = str(first.version)
    newer = client.create_model_version("winmodel", first.source, run_id=first.run_id)
    client.set_registered_model_alias("winmodel", "champion", newer.version)

    commands = re.findall(r"```bash\n(.*?)```", _section("Rolling back a champion"), flags=re.S)
    assert len(commands) == 2, commands  # move the alias, then the export
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    for command in commands:
        line = command.strip().replace("'3'", repr(version)).replace("/3'", f"/{version}'")
        assert line.startswith(".venv/bin/python -c "), line
        code = line.removeprefix(".venv/bin/python -c ").strip('"')
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]

    assert str(client.get_model_version_by_alias("winmodel", "champion").version) == version
    assert exported_version(tmp_path / "models" / "champion") == version
    assert (tmp_path / "models" / "champion" / "MLmodel").is_file()
