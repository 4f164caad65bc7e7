"""The exported champion: ``models/champion``, switched atomically, with its version stamp."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import mlflow


def export_model(
    model_uri: str, export_dir: Path, extra_files: dict[str, str] | None = None
) -> Path:
    """Copy an MLflow model to ``export_dir`` atomically and give the folder it now points at.

    The model is downloaded into a new folder under ``models/.exports/``; then
    ``export_dir`` (a symbolic link) is switched to it with one atomic rename, so
    a reader sees the old model or the new one, never a half-written one.
    """
    export_dir = Path(export_dir)
    store = export_dir.parent / ".exports"
    store.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix=f"{export_dir.name}-", dir=store))
    # mkdtemp makes a private (0700) folder; the export is read by other users' scoring jobs.
    os.chmod(target, 0o777 & ~_current_umask())
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(target))
        )
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
    _prune_exports(
        store, keep={target, previous.parent if previous else None}, prefix=f"{export_dir.name}-"
    )
    return local


def _current_umask() -> int:
    """Give the process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _prune_exports(store: Path, keep: set[Path | None], prefix: str) -> None:
    """Remove old export folders, keeping the current and the previous one."""
    for folder in store.glob(f"{prefix}*"):
        if folder not in keep and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


VERSION_FILE = "WINMODEL_VERSION"


def exported_version(folder: Path) -> str | None:
    """Give the registry version an exported model folder holds (its VERSION_FILE), or None."""
    stamp = Path(folder) / VERSION_FILE
    return stamp.read_text(encoding="utf-8").strip() if stamp.exists() else None
