"""The saved model format: files, not pickles; versions checked; committed models keep loading and scoring."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from winmodel.errors import InputError
from winmodel.mlops.registry import load_win_model
from winmodel.modeling.model_format import FORMAT_VERSION, MANIFEST, load_model, save_model

FIXTURES = Path(__file__).parents[1] / "fixtures" / "models"


def _scores(model, rows: pd.DataFrame) -> pd.DataFrame:
    contributions = model.contributions(model.matrix(rows))
    frame = pd.DataFrame(contributions, columns=[*model.feature_names, "base_value"])
    frame.insert(0, "raw_logit", model.raw_logit(rows))
    frame.insert(0, "win_probability", model.predict_proba(rows))
    return frame


@pytest.mark.parametrize("version", [0, 1])
def test_a_committed_model_loads_and_scores_as_when_it_was_saved(version):
    rows = pd.read_parquet(FIXTURES / "rows.parquet")
    expected = pd.read_csv(FIXTURES / f"format-{version}" / "expected.csv")
    model = load_win_model(FIXTURES / f"format-{version}" / "model")
    scored = _scores(model, rows)
    assert list(scored.columns) == list(expected.columns[1:])
    np.testing.assert_allclose(
        scored["win_probability"], expected["win_probability"], rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        scored.to_numpy(), expected.iloc[:, 1:].to_numpy(), rtol=0, atol=1e-9
    )


def test_saving_and_loading_keeps_every_figure(trained_model, tmp_path, small_history):
    from winmodel.features.rows import add_history_features, select_latest_rows

    rows = select_latest_rows(
        add_history_features(small_history.opportunities, small_history.snapshots)
    ).head(300)
    loaded = load_model(save_model(trained_model, tmp_path / "model"))
    np.testing.assert_array_equal(loaded.predict_proba(rows), trained_model.predict_proba(rows))
    np.testing.assert_array_equal(
        loaded.contributions(loaded.matrix(rows)),
        trained_model.contributions(trained_model.matrix(rows)),
    )
    assert loaded.metadata == json.loads(json.dumps(trained_model.metadata, default=str))
    assert loaded.reference["features"].keys() == trained_model.reference["features"].keys()
    assert loaded.base_rate == trained_model.base_rate


def test_the_saved_folder_holds_no_pickle(trained_model, tmp_path):
    folder = save_model(trained_model, tmp_path / "model")
    for path in folder.iterdir():
        content = path.read_bytes()
        assert not content.startswith(b"\x80"), f"{path.name} looks like a pickle"
        assert b"winmodel.modeling" not in content and b"FeatureBuilder" not in content
    assert json.loads((folder / MANIFEST).read_text())["format_version"] == FORMAT_VERSION


def test_the_logged_model_holds_the_files(trained_project):
    folder = trained_project.export_dir / "data" / "winmodel"
    assert (folder / MANIFEST).is_file() and not list(trained_project.export_dir.glob("*.pkl"))
    assert (
        "loader_module: winmodel.mlops.pyfunc"
        in (trained_project.export_dir / "MLmodel").read_text()
    )


@pytest.fixture
def saved(trained_model, tmp_path) -> Path:
    return save_model(trained_model, tmp_path / "model")


def _edit_manifest(folder: Path, **changes) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest.update(changes)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_a_newer_format_is_refused_with_the_version_that_saved_it(saved):
    _edit_manifest(saved, format_version=FORMAT_VERSION + 1, winmodel_version="9.1.0")
    with pytest.raises(InputError, match=r"format version 2, saved by winmodel 9\.1\.0") as error:
        load_model(saved)
    assert "upgrade winmodel" in str(error.value) and str(saved) in str(error.value)


def test_an_unknown_format_is_refused(saved):
    _edit_manifest(saved, format_version="one")
    with pytest.raises(InputError, match="format version 'one'"):
        load_model(saved)
    _edit_manifest(saved, format="other")
    with pytest.raises(InputError, match="does not describe a winmodel model"):
        load_model(saved)


@pytest.mark.parametrize("damage", ["truncate", "edit", "remove"])
def test_a_damaged_file_is_refused_before_it_is_used(saved, damage):
    booster = saved / "booster.txt"
    if damage == "truncate":
        booster.write_bytes(booster.read_bytes()[:200])
    elif damage == "edit":
        booster.write_text(booster.read_text().replace("leaf_value=", "leaf_value=1", 1))
    else:
        booster.unlink()
    with pytest.raises(InputError, match=r"booster\.txt is (damaged|missing)") as error:
        load_model(saved)
    assert "re-export the champion" in str(error.value)


def test_a_folder_that_is_not_a_model_is_named(tmp_path):
    with pytest.raises(InputError, match="not a saved winmodel model"):
        load_model(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        load_win_model(tmp_path / "nowhere")
    with pytest.raises(InputError, match="no MLmodel"):
        load_win_model(tmp_path)
    (tmp_path / "MLmodel").write_text("")
    with pytest.raises(InputError, match="MLmodel file is empty or damaged"):
        load_win_model(tmp_path)


def test_saving_never_overwrites_and_leaves_nothing_half_written(
    trained_model, tmp_path, monkeypatch
):
    from winmodel.modeling import model_format

    target = save_model(trained_model, tmp_path / "model")
    with pytest.raises(FileExistsError):
        save_model(trained_model, target)

    def broken(model):
        raise RuntimeError("injected while writing")

    monkeypatch.setattr(model_format, "model_files", broken)
    with pytest.raises(RuntimeError, match="injected"):
        save_model(trained_model, tmp_path / "other")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]


MOVED_CLASSES = """
import sys
# The loader as it would be after the refactoring: holding the classes wherever they now live.
from winmodel.modeling.model_format import load_model
import winmodel.features.builder as builder_module
import winmodel.modeling.calibrate as calibrate_module
import winmodel.modeling.model as model_module

# Move every class a saved model is made of to another module, under another name, as a refactoring would.
moved = type(sys)("winmodel.somewhere_else")
sys.modules[moved.__name__] = moved
for module, name in ((builder_module, "FeatureBuilder"), (calibrate_module, "Calibrator"), (model_module, "WinModel")):
    cls = getattr(module, name)
    cls.__module__, cls.__qualname__ = moved.__name__, "Renamed" + name
    setattr(moved, "Renamed" + name, cls)
    delattr(module, name)

model = load_model(sys.argv[1])
print(type(model).__qualname__, type(model.feature_builder).__qualname__, len(model.feature_names))
"""


def test_a_model_saved_before_its_classes_moved_still_loads(tmp_path):
    """A saved model names no class: moving and renaming the classes does not matter to it."""
    folder = tmp_path / "model"
    shutil.copytree(FIXTURES / "format-1" / "model", folder)
    result = subprocess.run(
        [sys.executable, "-c", MOVED_CLASSES, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["RenamedWinModel", "RenamedFeatureBuilder"]


def test_winmodel_0_1_classes_are_read_from_their_old_places_only(tmp_path):
    """The legacy reader maps winmodel 0.1's class paths (which no longer exist) and refuses anything else."""
    import pickle

    from winmodel.modeling.model_format import load_legacy_pickle

    legacy = FIXTURES / "format-0" / "model" / "python_model.pkl"
    assert b"winmodel.model" in legacy.read_bytes() or b"winmodel.pyfunc" in legacy.read_bytes()
    assert load_legacy_pickle(legacy).metadata["loaded_from_format"] == 0
    hostile = tmp_path / "python_model.pkl"
    hostile.write_bytes(pickle.dumps(subprocess.Popen))
    with pytest.raises(InputError, match=r"unexpected class subprocess\.Popen"):
        load_legacy_pickle(hostile)
