"""The model registry: logging, registering, the promotion gate, aliases and the exported champion.

``winmodel@challenger`` is every model that trained and evaluated cleanly;
``winmodel@champion`` moves only when the gate says so. The champion is also
exported to ``models/champion/`` (an MLflow model directory) so scoring works
without the tracking store.

Loading a model unpickles code: only load models you trust. By default winmodel
loads from its own registry or the project's ``models/`` folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import winmodel
from winmodel.errors import InputError, Problem
from winmodel.model import WinModel
from winmodel.pipeline_config import GateSettings
from winmodel.pyfunc import WinModelPyfunc, model_signature, signature_frame

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_NAME_IN_RUN = "model"

_RUNTIME_PACKAGES = ("numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "lightgbm", "mlflow",
                     "pydantic", "pyyaml", "pandera")


def pip_requirements() -> list[str]:
    """Give the model's runtime requirements pinned to the installed versions (skips slow inference)."""
    pinned = []
    for package in _RUNTIME_PACKAGES:
        try:
            pinned.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return pinned


def log_win_model(win_model: WinModel, example_rows: pd.DataFrame, metadata: dict | None = None):
    """Log the model into the active run as a pyfunc with signature and input example; give its ModelInfo."""
    package_dir = Path(winmodel.__file__).parent
    example = signature_frame(win_model, example_rows.head(5))
    return mlflow.pyfunc.log_model(
        name=MODEL_NAME_IN_RUN,
        python_model=WinModelPyfunc(win_model),
        code_paths=[str(package_dir)],
        signature=model_signature(win_model),
        input_example=example,
        pip_requirements=pip_requirements(),
        metadata=metadata or {},
    )


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


def restore_alias(client: MlflowClient, name: str, alias: str, model_version: str | None) -> None:
    """Point ``alias`` back at ``model_version``, or remove it when there was none."""
    if model_version is None:
        client.delete_registered_model_alias(name, alias)
    else:
        set_alias(client, name, alias, model_version)


def load_win_model(model_uri: str) -> WinModel:
    """Give the WinModel inside an MLflow pyfunc model (registry URI, runs:/ URI or a local folder)."""
    loaded = mlflow.pyfunc.load_model(model_uri)
    python_model = loaded.unwrap_python_model()
    if not isinstance(python_model, WinModelPyfunc):
        raise InputError(Problem(
            file=model_uri, column=None, problem="this MLflow model is not a winmodel model",
            fix="point --model at a model trained by `winmodel train`",
        ))
    return python_model.win_model


@dataclass(frozen=True)
class GateDecision:
    """Whether the challenger becomes champion, and why."""

    promote: bool
    reason: str
    challenger: dict[str, float]
    champion: dict[str, float] | None


def decide_promotion(challenger: dict[str, float], champion: dict[str, float] | None,
                     settings: GateSettings, base_rate_brier: float | None = None) -> GateDecision:
    """Give the gate's decision from holdout metrics of both models on the same deals.

    A challenger whose Brier score is worse than the base rate's on the same holdout
    (``base_rate_brier``) learned nothing usable and is refused, unless
    ``require_beats_base_rate`` is off. Otherwise it is promoted when there is no
    champion, or when its Brier score is not worse than the champion's by more than
    ``max_brier_increase`` (relative) and its AUC not lower by more than ``max_auc_drop``.
    """
    if (settings.require_beats_base_rate and base_rate_brier is not None
            and challenger["brier"] > base_rate_brier):
        return GateDecision(False, (f"challenger does not beat the base rate: Brier {challenger['brier']:.4f} vs "
                                    f"{base_rate_brier:.4f} for always predicting the training win rate; the "
                                    "data shows no usable signal (set gate.require_beats_base_rate: false to "
                                    "register it anyway)"), challenger, champion)
    if champion is None:
        return GateDecision(True, "no champion yet", challenger, None)
    if champion.get("unusable"):
        if settings.replace_incompatible_champion:
            return GateDecision(True, "the champion cannot score today's data and "
                                "gate.replace_incompatible_champion is set", challenger, champion)
        return GateDecision(False, "the champion cannot score today's data (its input columns differ), so "
                            "the two cannot be compared; set gate.replace_incompatible_champion: true to "
                            "replace it deliberately", challenger, champion)
    brier_limit = champion["brier"] * (1 + settings.max_brier_increase)
    auc_limit = champion["roc_auc"] - settings.max_auc_drop
    failures = []
    if challenger["brier"] > brier_limit:
        failures.append(f"Brier {challenger['brier']:.4f} > limit {brier_limit:.4f} "
                        f"(champion {champion['brier']:.4f} + {settings.max_brier_increase:.0%})")
    if challenger["roc_auc"] < auc_limit:
        failures.append(f"AUC {challenger['roc_auc']:.4f} < limit {auc_limit:.4f} "
                        f"(champion {champion['roc_auc']:.4f} - {settings.max_auc_drop})")
    if failures:
        return GateDecision(False, "challenger is worse than the champion: " + "; ".join(failures),
                            challenger, champion)
    return GateDecision(True, (f"challenger is not worse: Brier {challenger['brier']:.4f} vs "
                               f"{champion['brier']:.4f}, AUC {challenger['roc_auc']:.4f} vs "
                               f"{champion['roc_auc']:.4f}"), challenger, champion)


def export_model(model_uri: str, export_dir: Path, extra_files: dict[str, str] | None = None) -> Path:
    """Copy an MLflow model to ``export_dir`` atomically and give the folder it now points at.

    The model is downloaded into a new folder under ``models/.exports/``; then
    ``export_dir`` (a symbolic link) is switched to it with one atomic rename, so
    a reader sees the old model or the new one, never a half-written one.
    """
    export_dir = Path(export_dir)
    store = export_dir.parent / ".exports"
    store.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix=f"{export_dir.name}-", dir=store))
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(target)))
        for name, text in (extra_files or {}).items():
            (local / name).write_text(text, encoding="utf-8")
        link = export_dir.parent / f".{export_dir.name}.link-{os.getpid()}"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(local, export_dir.parent), target_is_directory=True)
        if export_dir.exists() and not export_dir.is_symlink():
            # An export from before links were used: move it aside, keep it with the others.
            os.replace(export_dir, store / f"{export_dir.name}-legacy-{os.getpid()}")
        previous = export_dir.resolve() if export_dir.is_symlink() else None
        os.replace(link, export_dir)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    _prune_exports(store, keep={target, previous.parent if previous else None}, prefix=f"{export_dir.name}-")
    return local


def _prune_exports(store: Path, keep: set, prefix: str) -> None:
    """Remove old export folders, keeping the current and the previous one."""
    for folder in store.glob(f"{prefix}*"):
        if folder not in keep and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
