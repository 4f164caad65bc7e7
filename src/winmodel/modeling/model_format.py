"""The saved model: a documented, versioned folder of plain files, never a pickle of winmodel's classes.

A model saved by one version of winmodel must load in the next: classes move and
get renamed, files do not. :func:`save_model` writes (``docs/model-format.md``
describes every file)::

    format.json          format name and version, winmodel version, checksum of every file
    booster.txt          the LightGBM model as text
    features.json        the fitted feature builder: features, kinds, categories, ordered levels, milestones
    calibrator.json      the calibration map (Platt slope and intercept, or the isotonic steps)
    reference.json       the training reference for drift checks, and the base rate
    forecast_band.json   the forecast range's shared shift measured at training
    metadata.json        training window, counts, shape, features, gain shares
    horizon_booster.txt  optional: the horizon model's LightGBM booster (when the deal closes)
    horizon.json         optional: its settings, training facts and reliability per horizon

:func:`load_model` checks the format name, the version and every checksum
before it reads anything, and refuses with a message a person can act on. The
explainer's tables are rebuilt from the booster when first needed.

Format versions:

* **1** (winmodel 0.2): this folder.
* **0** (winmodel 0.1): a pickled ``WinModelPyfunc`` inside an MLflow model.
  Read only, by :func:`load_legacy_pickle`, so last month's champion still
  scores after an upgrade; it is never written again.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

import winmodel
from winmodel.data.io import atomic_folder
from winmodel.errors import InputError, Problem
from winmodel.features.builder import FeatureBuilder
from winmodel.modeling.calibrate import Calibrator
from winmodel.modeling.horizon import HORIZON_BOOSTER, HORIZON_SPEC, HorizonModel
from winmodel.modeling.model import WinModel

FORMAT_NAME = "winmodel"
FORMAT_VERSION = 1
#: Versions this winmodel reads: 0 (legacy pickle, read only) and 1.
READABLE_VERSIONS = (0, 1)
MANIFEST = "format.json"
BOOSTER = "booster.txt"
FEATURES = "features.json"
CALIBRATOR = "calibrator.json"
REFERENCE = "reference.json"
FORECAST_BAND = "forecast_band.json"
METADATA = "metadata.json"
#: Metadata keys kept in a file of their own.
_BAND_KEY = "forecast_shift"

_REBUILD = (
    "re-export the champion (`make train` exports it again), or point --model at another version"
)


@dataclass(frozen=True)
class Manifest:
    """What ``format.json`` says about a saved model."""

    format_version: int
    winmodel_version: str
    files: dict[str, str]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_bytes(content: Any) -> bytes:
    return (
        json.dumps(content, indent=1, sort_keys=True, default=_json_default, allow_nan=True) + "\n"
    ).encode()


def model_files(model: WinModel) -> dict[str, bytes]:
    """Give the content of every file of the saved format except the manifest."""
    metadata = {key: value for key, value in model.metadata.items() if key != _BAND_KEY}
    return {
        BOOSTER: model.booster.model_to_string().encode(),
        FEATURES: _json_bytes(model.feature_builder.to_spec()),
        CALIBRATOR: _json_bytes(model.calibrator.to_dict()),
        REFERENCE: _json_bytes({"base_rate": model.base_rate, "reference": model.reference}),
        FORECAST_BAND: _json_bytes(model.metadata.get(_BAND_KEY)),
        METADATA: _json_bytes(metadata),
        **(model.horizon.to_files() if model.horizon is not None else {}),
    }


def save_model(model: WinModel, folder: Path) -> Path:
    """Write ``model`` into ``folder`` (which must not exist yet), all files or none; give the folder."""
    files = model_files(model)
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "winmodel_version": winmodel.__version__,
        "files": {name: hashlib.sha256(content).hexdigest() for name, content in files.items()},
    }
    with atomic_folder(Path(folder)) as staging:
        for name, content in {**files, MANIFEST: _json_bytes(manifest)}.items():
            (staging / name).write_bytes(content)
    return Path(folder)


def _refuse(folder: Path, problem: str, fix: str = _REBUILD) -> InputError:
    return InputError(Problem(file=str(folder), column=None, problem=problem, fix=fix))


def read_manifest(folder: Path) -> Manifest:
    """Give the manifest of a saved model; raise InputError when it is missing, unreadable or of an unknown format."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise _refuse(folder, f"no {MANIFEST}: this folder is not a saved winmodel model")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _refuse(folder, f"{MANIFEST} is damaged ({error})") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT_NAME:
        raise _refuse(folder, f"{MANIFEST} does not describe a winmodel model")
    version = content.get("format_version")
    saved_by = str(content.get("winmodel_version", "an unknown version"))
    if not isinstance(version, int) or version not in READABLE_VERSIONS:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        problem = (
            f"the model is in format version {version!r}, saved by winmodel {saved_by}; this winmodel "
            f"({winmodel.__version__}) reads format versions {', '.join(map(str, READABLE_VERSIONS))}"
        )
        fix = (
            "upgrade winmodel to the version that saved it (pip install 'winmodel>="
            + saved_by
            + "'), "
            "or score with an older champion"
            if newer
            else _REBUILD
        )
        raise _refuse(folder, problem, fix)
    files = content.get("files")
    if not isinstance(files, dict):
        raise _refuse(folder, f"{MANIFEST} lists no files")
    return Manifest(format_version=version, winmodel_version=saved_by, files=dict(files))


def _read_checked(folder: Path, manifest: Manifest) -> dict[str, bytes]:
    """Give every file's bytes after checking it against the manifest's checksum."""
    contents = {}
    for name in (BOOSTER, FEATURES, CALIBRATOR, REFERENCE, FORECAST_BAND, METADATA):
        path = folder / name
        if name not in manifest.files or not path.is_file():
            raise _refuse(folder, f"the file {name} is missing")
        content = path.read_bytes()
        if hashlib.sha256(content).hexdigest() != manifest.files[name]:
            raise _refuse(
                folder,
                f"the file {name} is damaged or was changed after saving (its checksum differs)",
            )
        contents[name] = content
    return contents


def load_model(folder: Path) -> WinModel:
    """Give the model saved in ``folder`` by :func:`save_model` (format 1).

    Raises InputError naming the folder, what is wrong and how to fix it: not a
    winmodel model, a format this version cannot read, a missing, changed or
    truncated file.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.format_version == 0:
        raise _refuse(
            folder,
            "format 0 is a pickled model inside an MLflow model folder, not a files folder",
            "load the MLflow model folder that holds it (winmodel.mlops.registry.load_win_model)",
        )
    contents = _read_checked(folder, manifest)
    try:
        booster = lgb.Booster(model_str=contents[BOOSTER].decode())
        builder = FeatureBuilder.from_spec(json.loads(contents[FEATURES]))
        calibrator = Calibrator.from_dict(json.loads(contents[CALIBRATOR]))
        reference = json.loads(contents[REFERENCE])
        band = json.loads(contents[FORECAST_BAND])
        metadata = json.loads(contents[METADATA])
    except (ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as error:
        raise _refuse(folder, f"the model cannot be read: {error}") from None
    if band is not None:
        metadata[_BAND_KEY] = band
    if booster.num_feature() != len(builder.feature_names_):
        raise _refuse(
            folder,
            f"the booster expects {booster.num_feature()} features but the feature spec lists "
            f"{len(builder.feature_names_)}",
        )
    return WinModel(
        horizon=_read_horizon(folder, manifest),
        feature_builder=builder,
        booster=booster,
        calibrator=calibrator,
        base_rate=float(reference["base_rate"]),
        reference=reference["reference"],
        metadata=metadata,
    )


def _read_horizon(folder: Path, manifest: Manifest) -> HorizonModel | None:
    """Give the optional horizon model (None when the model was saved without one), checksums checked."""
    names = (HORIZON_BOOSTER, HORIZON_SPEC)
    if not any(name in manifest.files for name in names):
        return None
    contents = {}
    for name in names:
        path = folder / name
        if name not in manifest.files or not path.is_file():
            raise _refuse(folder, f"the file {name} is missing")
        content = path.read_bytes()
        if hashlib.sha256(content).hexdigest() != manifest.files[name]:
            raise _refuse(
                folder,
                f"the file {name} is damaged or was changed after saving (its checksum differs)",
            )
        contents[name] = content
    try:
        return HorizonModel.from_files(contents)
    except (ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as error:
        raise _refuse(folder, f"the horizon model cannot be read: {error}") from None


# --------------------------------------------------------------------------- format 0: winmodel 0.1's pickle

#: Where winmodel 0.1's pickled classes lived, and the stand-ins that receive their state.
_LEGACY_CLASSES = {
    ("winmodel.pyfunc", "WinModelPyfunc"): "pyfunc",
    ("winmodel.model", "WinModel"): "model",
    ("winmodel.features", "FeatureBuilder"): "builder",
    ("winmodel.calibrate", "Calibrator"): "calibrator",
}
#: Modules a legacy pickle may name besides winmodel's own classes.
_LEGACY_ALLOWED = (
    "builtins",
    "mlflow",
    "collections",
    "copyreg",
    "numpy",
    "lightgbm",
    "sklearn",
    "scipy",
    "pandas",
    "_codecs",
    "datetime",
)


class _LegacyState:
    """Receives the pickled state of one of winmodel 0.1's classes."""

    kind = ""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def _stand_in(kind: str) -> type:
    return type(f"Legacy{kind.title()}", (_LegacyState,), {"kind": kind})


_STAND_INS = {key: _stand_in(kind) for key, kind in _LEGACY_CLASSES.items()}


class _LegacyUnpickler(pickle.Unpickler):
    """Unpickles winmodel 0.1's model with its classes replaced by stand-ins (nothing else of winmodel runs)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _STAND_INS:
            return _STAND_INS[(module, name)]
        if module.split(".")[0] in _LEGACY_ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected class {module}.{name} in a legacy winmodel model")


def load_legacy_pickle(path: Path) -> WinModel:
    """Give the model inside winmodel 0.1's ``python_model.pkl`` (format 0), converted to today's classes.

    Only the classes winmodel 0.1 pickled (and numpy, LightGBM, scikit-learn,
    pandas) may appear in the file; anything else is refused.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            wrapper = _LegacyUnpickler(io.BufferedReader(handle)).load()
    except (
        pickle.UnpicklingError,
        EOFError,
        AttributeError,
        ImportError,
        ValueError,
        TypeError,
    ) as error:
        raise _refuse(path, f"the legacy (format 0) model cannot be read: {error}") from None
    # An object of winmodel 0.1's classes, rebuilt by the unpickler: checked by its attributes.
    legacy: Any = getattr(wrapper, "win_model", None)
    if getattr(wrapper, "kind", "") != "pyfunc" or getattr(legacy, "kind", "") != "model":
        raise _refuse(path, "this pickle does not hold a winmodel 0.1 model")
    old_builder, old_calibrator = legacy.feature_builder, legacy.calibrator
    builder = FeatureBuilder(
        extra_features=old_builder.extra_features,
        exclude=old_builder.exclude,
        include_activity=old_builder.include_activity,
    )
    for name in (
        "feature_names_",
        "kinds_",
        "categories_",
        "items_",
        "input_columns_",
        "categorical_features_",
    ):
        setattr(builder, name, getattr(old_builder, name))
    from winmodel.features.qualification import ORDERED

    # winmodel 0.1 ranked ordered categories by the contract's levels, which have not changed since.
    builder.levels_ = {
        name: list(ORDERED[name]) for name, kind in builder.kinds_.items() if kind == "ordered"
    }
    if old_calibrator.method_ == "isotonic":
        isotonic = old_calibrator.isotonic_
        spec: dict[str, object] = {
            "method": "isotonic",
            "thresholds": np.asarray(isotonic.X_thresholds_).tolist(),
            "values": np.asarray(isotonic.y_thresholds_).tolist(),
        }
    else:
        platt = old_calibrator.platt_
        spec = {
            "method": "platt",
            "slope": float(platt.coef_[0, 0]),
            "intercept": float(platt.intercept_[0]),
        }
    metadata = dict(legacy.metadata)
    metadata["loaded_from_format"] = 0
    return WinModel(
        feature_builder=builder,
        booster=legacy.booster,
        calibrator=Calibrator.from_dict(spec),
        base_rate=float(legacy.base_rate),
        reference=dict(legacy.reference),
        metadata=metadata,
    )
