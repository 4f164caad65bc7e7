"""Paths every job agrees on. Parameters live in ``pipelines/*.yaml``, not here."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path.cwd()
DEMO_DATA_DIR = Path("data/demo")
MODELS_DIR = Path("models")
CHAMPION_EXPORT_DIR = MODELS_DIR / "champion"
OUTPUTS_DIR = Path("outputs")
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
REGISTERED_MODEL_NAME = "winmodel"
