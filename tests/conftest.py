"""Shared fixtures: a small synthetic CRM history and one end-to-end training on it.

Training runs once per test session (about 50 s), shared by the xdist workers, with MLflow in a
temporary folder; tests that need a trained model share it.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

REPO = Path(__file__).resolve().parents[1]
MAVEN_DIR = REPO.parent / "shared" / "datasets" / "maven_crm"

SMALL_DEALS = 4000


@functools.cache
def _empty_mlflow_store() -> Path:
    """Give an MLflow SQLite store with its tables made, to copy into new test projects.

    MLflow runs its schema migrations on every new store (measured: 1.8 s each); tests that train
    start from this copy. Jobs run as subprocesses (tests/jobs/test_bad_inputs.py, the Ctrl-C
    test) still create their stores from nothing.
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder = Path(tempfile.mkdtemp(prefix="winmodel-mlflow-store-"))
    store = SqlAlchemyStore(f"sqlite:///{folder / 'mlflow.db'}", str(folder / "mlruns"))
    store.engine.dispose()
    return folder / "mlflow.db"


def small_train_config(root: Path, data: Path, **overrides) -> Path:
    """Write a fast training config into ``root`` (MLflow, models and lock inside ``root``); give its path."""
    import yaml

    config = {
        "name": "test",
        "seed": 11,
        "data": {"path": str(data), "generate_demo_if_missing": False},
        "model": {
            "candidates": [{"num_leaves": 7, "max_depth": 3, "learning_rate": 0.1}],
            "max_trees": 300,
            "early_stopping_rounds": 20,
            "search_folds": 1,
            "threads": 2,
        },
        # The peers (a logistic regression per fold, HistGB defaults on the holdout) are about 30 %
        # of a small training: only the shared project and tests that read their rows fit them.
        "splits": {"backtest_folds": 1, "peers": False},
        # Measuring the forecast range refits the recipe a few times: only the shared project does it.
        "forecast": {"shift_months": 0},
        # The horizon model (two multiclass fits, a third of a small training's time) likewise:
        # tests that read horizon columns or metrics train with horizon__fit=True.
        "horizon": {"fit": False},
        "tracking": {
            "tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
            "experiment": "test",
            "export_dir": str(root / "models" / "champion"),
            # The run's plots cost ~3-4 s a training: only the shared project logs them
            # (tests/jobs/test_train.py reads them there).
            "figures": False,
        },
    }
    for dotted, value in overrides.items():
        section, _, key = dotted.partition("__")
        if key:
            config.setdefault(section, {})[key] = value
        else:
            config[section] = value
    if not (root / "mlflow.db").exists():
        shutil.copyfile(_empty_mlflow_store(), root / "mlflow.db")
    path = root / f"train-{abs(hash(tuple(sorted(map(str, overrides.items()))))) % 10**8}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _mlflow_points_into_the_test(tmp_path_factory, monkeypatch):
    """Start every test with MLflow pointed at an empty store of its own, never the working folder's.

    MLflow keeps one tracking URI per process: without this a test saw whatever store an earlier
    test in its worker had set (a full run once failed on it), or the repository's own
    mlflow.db after `make train`. Tests that read a project's store say so (set_tracking_uri,
    an explicit client, or the config's tracking_uri).
    """
    from mlflow.tracking._model_registry import utils as registry_uri
    from mlflow.tracking._tracking_service import utils as tracking_uri

    store = tmp_path_factory.mktemp("mlflow-default") / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    monkeypatch.setattr(tracking_uri, "_tracking_uri", None)
    monkeypatch.setattr(registry_uri, "_registry_uri", None)


@pytest.fixture(scope="session")
def make_train_config():
    """Give the factory of fast training configs (see small_train_config)."""
    return small_train_config


@pytest.fixture(scope="session")
def small_history():
    """Give a small synthetic history (opportunities, snapshots, truth)."""
    from winmodel.synth.generator import generate_history

    return generate_history(SMALL_DEALS, seed=3)


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory, small_history) -> Path:
    """Give a folder with the small history written as Parquet, as `winmodel generate` does."""
    folder = tmp_path_factory.mktemp("data") / "demo"
    folder.mkdir()
    small_history.opportunities.to_parquet(folder / "opportunities.parquet")
    small_history.snapshots.to_parquet(folder / "snapshots.parquet")
    small_history.truth.to_parquet(folder / "truth.parquet")
    small_history.truth_timing.to_parquet(folder / "truth_timing.parquet")
    return folder


@dataclass
class TrainedProject:
    """A project folder after one `winmodel train`."""

    root: Path
    config: Path
    data: Path
    outcome: object

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def export_dir(self) -> Path:
        return self.root / "models" / "champion"

    def copy_store(self, folder: Path) -> Path:
        """Copy the project's MLflow store into ``folder`` (SQLite's online backup); give the copy.

        Tests that move an alias or register a version work on such a copy: the session's store
        is shared by every test.
        """
        import sqlite3
        from contextlib import closing

        copy = folder / "mlflow.db"
        with (
            closing(sqlite3.connect(self.root / "mlflow.db")) as source,
            closing(sqlite3.connect(copy)) as target,
        ):
            source.backup(target)
        return copy


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory, small_data_dir) -> TrainedProject:
    """Give a project trained once on the small history (champion registered and exported).

    Under pytest-xdist the workers share one project (a training is about 50 s): the first worker
    to ask trains it while the others wait on a lock, and leaves its outcome pickled beside it for
    them. Tests only read the project; one that changes a model or a store copies it first.
    """
    import pickle

    from filelock import FileLock

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _train_project(tmp_path_factory.mktemp("project"), small_data_dir)
    # The run's temporary folder, shared by its workers (each has popen-gwN inside it).
    root = tmp_path_factory.getbasetemp().parent / "trained-project"
    saved = root / "outcome.pickle"
    failed = root.with_name("trained-project-failed.txt")
    with FileLock(f"{root}.lock"):
        if saved.exists():
            project = pickle.loads(saved.read_bytes())
            assert isinstance(project, TrainedProject)
            return project
        if failed.exists():
            pytest.fail(
                f"the shared project's training failed in another worker:\n{failed.read_text()}"
            )
        root.mkdir()
        try:
            project = _train_project(root, small_data_dir)
        except BaseException:
            import traceback

            failed.write_text(traceback.format_exc(), encoding="utf-8")
            raise
        partial = saved.with_suffix(".partial")
        partial.write_bytes(pickle.dumps(project))
        partial.replace(saved)
        return project


def _train_project(root: Path, data: Path) -> TrainedProject:
    from rich.console import Console

    from winmodel.jobs.train import run_train

    config = small_train_config(
        root,
        data,
        forecast__shift_months=12,
        horizon__fit=True,
        tracking__figures=True,
        splits__peers=True,
    )
    outcome = run_train(config, console=Console(stderr=True, quiet=True))
    return TrainedProject(root=root, config=config, data=data, outcome=outcome)


@pytest.fixture(scope="session")
def trained_model(trained_project):
    """Give the champion WinModel of the trained project."""
    return trained_project.outcome.result.model


def pytest_collection_modifyitems(config, items) -> None:
    """Order the modules so that one xdist worker trains the shared project while the other works.

    `make test` distributes whole modules (``--dist loadscope --no-loadscope-reorder``) in this
    order: first the largest module that needs the trained project (its worker trains it), then
    the modules that do not need it, largest first (the other worker runs them meanwhile), then the
    rest, largest first.
    """
    modules: dict[Path, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(Path(str(item.path)), []).append(item)

    def needs_project(path: Path, module_items: list[pytest.Item]) -> bool:
        named = any(
            name in getattr(item, "fixturenames", ())
            for item in module_items
            for name in ("trained_project", "trained_model")
        )
        # Some ask for it by name at run time (request.getfixturevalue).
        return named or "trained_project" in path.read_text(encoding="utf-8")

    needing = sorted(
        (path for path, found in modules.items() if needs_project(path, found)),
        key=lambda path: -len(modules[path]),
    )
    free = sorted(
        (path for path in modules if path not in needing), key=lambda path: -len(modules[path])
    )
    order = needing[:1] + free + needing[1:]
    items[:] = [item for path in order for item in modules[path]]
