"""A champion per job: data identity recorded, a champion of other data never replaced, no demo by accident."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from winmodel.data.dataset import data_identity, load_crm_data
from winmodel.errors import InputError
from winmodel.mlops.gate import identity_mismatch
from winmodel.settings import TrackingSettings, TrainConfig

ROOT = Path(__file__).parents[2]
QUIET = Console(stderr=True, quiet=True)


def test_the_export_folder_follows_the_registered_model_name():
    assert TrackingSettings().export_dir == Path("models/champion")
    assert TrackingSettings(registered_model="itbid").export_dir == Path("models/itbid")
    assert TrackingSettings(registered_model="itbid", export_dir=Path("x/y")).export_dir == Path(
        "x/y"
    )
    moved = TrackingSettings(export_dir=Path("/srv/models/champion")).for_model("itbid")
    assert (moved.registered_model, moved.export_dir) == ("itbid", Path("/srv/models/itbid"))
    with pytest.raises(ValueError, match="registered_model"):
        TrackingSettings(registered_model="no spaces/or slashes")
    # The shipped default keeps existing projects where they were.
    assert TrainConfig().tracking.registered_model == "winmodel"


def test_the_identity_is_the_mapping_and_the_contract_columns(small_data_dir, tmp_path):
    demo = load_crm_data(small_data_dir)
    identity = data_identity(demo)
    assert identity["mapping"] == "unnamed" and "amount" in identity["opportunities_columns"]
    # Next month's export of the same CRM: fewer or more rows, the same identity.
    folder = tmp_path / "next"
    folder.mkdir()
    fewer = demo.opportunities.head(500)
    fewer.to_parquet(folder / "opportunities.parquet")
    demo.snapshots[demo.snapshots["opportunity_id"].isin(fewer["opportunity_id"])].to_parquet(
        folder / "snapshots.parquet"
    )
    assert data_identity(load_crm_data(folder))["key"] == identity["key"]
    # Another company's flat export through its own mapping: another identity.
    flat = tmp_path / "itbid.csv"
    demo.opportunities.head(300)[["opportunity_id", "created_date", "close_date", "status"]].assign(
        amount=1000
    ).to_csv(flat, index=False)
    mapping = tmp_path / "itbid.yaml"
    mapping.write_text("name: itbid\n", encoding="utf-8")
    other = data_identity(load_crm_data(flat, mapping))
    assert other["key"] != identity["key"] and other["mapping"] == "itbid"
    reason = identity_mismatch(other, identity, name="winmodel", champion_version="3")
    assert reason is not None
    assert "mapping 'itbid' vs the champion's 'unnamed'" in reason
    assert "columns only in the champion's data" in reason and "--model-name" in reason
    assert identity_mismatch(identity, identity, name="winmodel", champion_version="3") is None
    assert identity_mismatch(identity, None, name="winmodel", champion_version="3") is None


def test_a_missing_data_path_is_an_input_error_not_demo_data(tmp_path, make_train_config):
    from winmodel.jobs.train import run_train

    missing = tmp_path / "exports" / "itbid.csv"
    config = make_train_config(tmp_path, missing, data__generate_demo_if_missing=True)
    (tmp_path / "mlflow.db").unlink()  # the tests' ready-made store: here no store may appear
    with pytest.raises(InputError, match="the data path does not exist") as raised:
        run_train(config, console=QUIET)
    assert str(missing) in str(raised.value) and "only the demo folder" in str(raised.value)
    assert not missing.exists() and not (tmp_path / "mlflow.db").exists()


def _winmodel(args: list[str], cwd: Path, tracking_db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "winmodel", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tracking_db}",
        },
    )


def _registry(database: Path) -> tuple[list, list]:
    with sqlite3.connect(database) as connection:
        versions = connection.execute(
            "SELECT name, version FROM model_versions ORDER BY name, version"
        ).fetchall()
        aliases = connection.execute(
            "SELECT name, alias, version FROM registered_model_aliases ORDER BY name, alias"
        ).fetchall()
    return versions, aliases


@pytest.mark.slow
def test_another_companys_export_cannot_replace_the_champion_but_gets_its_own(
    tmp_path, trained_project, small_history, make_train_config
):
    """The issue's case: `winmodel train --data itbid.csv --mapping ...` on the demo project."""
    database = trained_project.copy_store(tmp_path)
    opportunities = small_history.opportunities
    export = pd.concat(
        [
            opportunities[opportunities["status"] == "won"].head(400),
            opportunities[opportunities["status"] == "lost"].head(400),
            opportunities[opportunities["status"] == "open"].head(50),
        ]
    )
    export.to_csv(tmp_path / "itbid.csv", index=False)
    (tmp_path / "itbid.yaml").write_text("name: itbid\n", encoding="utf-8")
    config = make_train_config(
        tmp_path, tmp_path / "itbid.csv", tracking__tracking_uri=None, tracking__experiment="jobs"
    )
    before = _registry(database)
    args = ["train", "--config", str(config), "--mapping", str(tmp_path / "itbid.yaml")]

    refused = _winmodel(args, tmp_path, database)
    printed = refused.stdout + refused.stderr
    assert refused.returncode == 1 and "Traceback" not in printed, printed
    assert "winmodel@champion" in printed and "was trained on other data" in printed
    assert "mapping 'itbid'" in printed and "--model-name NAME" in printed
    assert _registry(database) == before  # nothing registered, the champion alias did not move

    own = _winmodel([*args, "--model-name", "itbid"], tmp_path, database)
    assert own.returncode in (0, 1) and "Traceback" not in own.stdout + own.stderr, own.stderr
    versions, aliases = _registry(database)
    assert ("itbid", 1) in [tuple(v) for v in versions]
    assert [a for a in aliases if a[0] == "winmodel"] == [
        a for a in before[1] if a[0] == "winmodel"
    ]
    if own.returncode == 0:  # promoted: exported beside the other champion, never over it
        assert (tmp_path / "models" / "itbid" / "MLmodel").exists()
        assert not (tmp_path / "models" / "champion").exists()


@pytest.mark.slow
def _sigint_as_in_a_terminal() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_a_training_says_the_champion_is_unchanged(
    tmp_path, trained_project, make_train_config
):
    import signal

    database = trained_project.copy_store(tmp_path)
    config = make_train_config(
        tmp_path, trained_project.data, tracking__tracking_uri=None, tracking__experiment="jobs"
    )
    before = _registry(database)
    process = subprocess.Popen(
        [sys.executable, "-m", "winmodel", "train", "--config", str(config)],
        # A shell starts background jobs with SIGINT ignored, and Python then never installs its
        # Ctrl-C handler (measured: SigIgn 0x81001006 in a failed run). A user's terminal does not.
        preexec_fn=_sigint_as_in_a_terminal,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{database}",
            "COLUMNS": "80",
        },
    )
    assert process.stderr is not None
    seen, handling = [], []
    for line in process.stderr:  # wait until the training itself has started
        seen.append(line)
        if "training rows" in line:
            # What the child does with SIGINT (ignored, caught), in case it is not interrupted.
            status = Path(f"/proc/{process.pid}/status")
            handling = [
                text
                for text in (status.read_text().splitlines() if status.exists() else [])
                if text.startswith(("SigIgn", "SigCgt", "SigBlk"))
            ]
            process.send_signal(signal.SIGINT)
            break
    rest = process.communicate(timeout=300)[1]
    printed = "".join(seen) + rest
    assert process.returncode == 130, f"{handling}\n{printed}"
    assert "interrupted — champion unchanged" in printed and "Traceback" not in printed
    assert _registry(database) == before
    assert not (tmp_path / "models" / ".winmodel.lock.owner").exists()
