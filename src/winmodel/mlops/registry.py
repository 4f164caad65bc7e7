"""The model registry: logging, registering, aliases, and loading a model from any of its places.

``winmodel@challenger`` is every model that trained and evaluated cleanly;
``winmodel@champion`` moves only when the gate (:mod:`winmodel.mlops.gate`) says
so. The champion is also exported to ``models/champion/`` (an MLflow model
directory, :mod:`winmodel.mlops.export`) so scoring works without the tracking store.

A logged model holds winmodel's saved format (plain files, no pickle of winmodel's
classes) under ``data/winmodel``; :func:`load_win_model` reads it directly, without
MLflow's generic loader, and checks its format version and checksums.
"""

from __future__ import annotations

import logging
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import yaml
from mlflow.exceptions import MlflowException
from mlflow.models.model import ModelInfo
from mlflow.tracking import MlflowClient

import winmodel
from winmodel.errors import InputError, Problem
from winmodel.mlops.export import exported_version
from winmodel.mlops.pyfunc import DATA_FOLDER, LOADER_MODULE, model_signature, signature_frame
from winmodel.modeling.model import WinModel
from winmodel.modeling.model_format import (
    FORMAT_VERSION,
    MANIFEST,
    load_legacy_pickle,
    load_model,
    save_model,
)
from winmodel.settings import ScoreConfig

log = logging.getLogger(__name__)

CHAMPION = "champion"

CHALLENGER = "challenger"

MODEL_NAME_IN_RUN = "model"

#: What loading and running the logged model imports (winmodel's own code travels with the model):
#: tests/mlops/test_serving.py loads it in a virtualenv holding these packages only.
_RUNTIME_PACKAGES = (
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "scikit-learn",
    "lightgbm",
    "numba",
    "mlflow",
    "pydantic",
    "pyyaml",
)


def pip_requirements() -> list[str]:
    """Give the model's runtime requirements pinned to the installed versions (skips slow inference)."""
    pinned = []
    for package in _RUNTIME_PACKAGES:
        try:
            pinned.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return pinned


def log_win_model(
    win_model: WinModel, example_rows: pd.DataFrame, metadata: dict[str, Any] | None = None
) -> ModelInfo:
    """Log the model into the active run as a pyfunc with signature and input example; give its ModelInfo.

    The MLflow model holds winmodel's saved format in ``data/winmodel`` and a copy of the
    winmodel package (``code/``), so it loads with ``mlflow.pyfunc.load_model`` where only
    its pinned requirements are installed.
    """
    package_dir = Path(winmodel.__file__).parent
    example = signature_frame(win_model, example_rows.head(5))
    with tempfile.TemporaryDirectory() as folder:
        data = save_model(win_model, Path(folder) / DATA_FOLDER)
        info: ModelInfo = mlflow.pyfunc.log_model(
            name=MODEL_NAME_IN_RUN,
            loader_module=LOADER_MODULE,
            data_path=str(data),
            code_paths=[str(package_dir)],
            signature=model_signature(win_model),
            input_example=example,
            pip_requirements=pip_requirements(),
            metadata={**(metadata or {}), "winmodel_format_version": FORMAT_VERSION},
        )
        return info


def register(model_uri: str, name: str) -> str:
    """Register a logged model under ``name``; give the new version number."""
    model_version = mlflow.register_model(model_uri, name)
    return str(model_version.version)


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """Give the version behind ``name@alias``, or None when there is none."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        # No such model, or no such alias (MLflow 3 reports the latter as an invalid parameter).
        # Anything else (the store is unreachable) must not read as "there is no champion".
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def set_alias(client: MlflowClient, name: str, alias: str, model_version: str) -> None:
    """Point ``name@alias`` at ``model_version``."""
    client.set_registered_model_alias(name, alias, model_version)


#: Prefix of the model-version tags that hold the data identity it was trained on.
IDENTITY_TAG = "winmodel.identity."


def tag_version(client: MlflowClient, name: str, model_version: str, tags: dict[str, str]) -> None:
    """Set tags on one registered model version."""
    for key, value in tags.items():
        client.set_model_version_tag(name, model_version, key, value)


def version_identity(client: MlflowClient, name: str, model_version: str) -> dict[str, str] | None:
    """Give the data identity a registered version was trained on, or None when it has none recorded."""
    tags = client.get_model_version(name, model_version).tags
    identity = {
        key.removeprefix(IDENTITY_TAG): value
        for key, value in tags.items()
        if key.startswith(IDENTITY_TAG)
    }
    return identity or None


def restore_alias(client: MlflowClient, name: str, alias: str, model_version: str | None) -> None:
    """Point ``alias`` back at ``model_version``, or remove it when there was none."""
    if model_version is None:
        client.delete_registered_model_alias(name, alias)
    else:
        set_alias(client, name, alias, model_version)


def load_win_model(model_uri: str | Path) -> WinModel:
    """Give the model at ``model_uri``: a registry URI (``models:/name@alias``), a ``runs:/`` URI or a local folder.

    A local folder may be an MLflow model folder (the exported champion, a downloaded
    artifact) or a folder of winmodel's saved format. Raises InputError naming the
    place, what is wrong and how to fix it.
    """
    text = str(model_uri)
    if "://" in text or text.startswith(("models:/", "runs:/")):
        import mlflow.artifacts
        from mlflow.exceptions import MlflowException

        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=text)
        except (MlflowException, OSError) as error:
            raise InputError(
                Problem(
                    file=text,
                    column=None,
                    problem=f"the model cannot be found or fetched: {_first_line(error)}",
                    fix="check the name, version or alias (`make ui` lists them), or pass the exported folder "
                    "with --model models/champion",
                )
            ) from None
        return load_model_folder(Path(local), shown_as=text)
    return load_model_folder(Path(text))


def load_model_folder(folder: Path, shown_as: str | None = None) -> WinModel:
    """Give the model in a local folder: an MLflow model folder or a folder of winmodel's saved format."""
    name = shown_as or str(folder)
    if not folder.exists():
        raise InputError(
            Problem(
                file=name,
                column=None,
                problem="there is no model here (the folder does not exist)",
                fix="run `make train` to export the champion (the folder models/NAME of another job is "
                "written by `winmodel train --model-name NAME`), or give the folder or URI of a model",
            )
        )
    if not folder.is_dir():
        raise InputError(
            Problem(
                file=name,
                column=None,
                problem="this is a file, not a model folder",
                fix="give the folder that holds MLmodel (e.g. models/champion)",
            )
        )
    if (folder / MANIFEST).exists():
        return load_model(folder)
    mlmodel = folder / "MLmodel"
    if not mlmodel.exists():
        raise InputError(
            Problem(
                file=name,
                column=None,
                problem="the folder holds no MLmodel file: not a model",
                fix="give the folder that holds MLmodel (e.g. models/champion)",
            )
        )
    try:
        content = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        content = error
    flavor = (
        content.get("flavors", {}).get("python_function") if isinstance(content, dict) else None
    )
    if not isinstance(flavor, dict):
        raise InputError(
            Problem(
                file=str(mlmodel),
                column=None,
                problem="the MLmodel file is empty or damaged (no python_function flavour)",
                fix="re-export the champion (`make train` exports it again), or point --model at another version",
            )
        )
    loader = flavor.get("loader_module")
    if loader == LOADER_MODULE and flavor.get("data"):
        return load_model(folder / str(flavor["data"]))
    if loader == "mlflow.pyfunc.model" and (folder / str(flavor.get("python_model", ""))).is_file():
        log.info("%s: a winmodel 0.1 model (format 0, pickled); read by the legacy loader", name)
        return load_legacy_pickle(folder / str(flavor["python_model"]))
    raise InputError(
        Problem(
            file=name,
            column=None,
            problem="this MLflow model is not a winmodel model",
            fix="point --model at a model trained by `winmodel train`",
        )
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def resolve_model(model_uri: str | None, config: ScoreConfig) -> tuple[WinModel, str, str]:
    """Give (model, version label, URI used): explicit URI, else the registry champion, else models/champion."""
    name = config.tracking.registered_model
    if model_uri:
        path = Path(model_uri)
        version = exported_version(path) or model_uri
        return load_win_model(model_uri), version, model_uri
    uri = config.tracking.resolved_tracking_uri()
    store_exists = not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).exists()
    if store_exists:
        mlflow.set_tracking_uri(uri)
        champion_version = alias_version(MlflowClient(), name, CHAMPION)
        if champion_version is not None:
            return (
                load_win_model(f"models:/{name}@{CHAMPION}"),
                champion_version,
                f"models:/{name}@{CHAMPION}",
            )
    export = config.tracking.export_dir
    if (export / "MLmodel").exists():
        version = exported_version(export) or "exported"
        return load_win_model(str(export)), version, str(export)
    raise InputError(
        Problem(
            file=str(export),
            column=None,
            problem=f"no model to score with: no {name}@{CHAMPION} in {uri} and no export in {export}",
            fix="run `make train` first, or pass --model URI",
        )
    )
