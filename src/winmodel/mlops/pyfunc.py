"""winmodel as an MLflow pyfunc model: the same model in-process, from the registry, served, or in Spark.

The logged model is an MLflow model folder whose ``python_function`` flavour
names this module as its *loader module*: MLflow calls :func:`_load_pyfunc`
with the folder of winmodel's own saved format (``data/winmodel``, see
:mod:`winmodel.modeling.model_format`), so nothing of winmodel is pickled and
next month's winmodel loads last month's champion.

MLflow's LightGBM flavour returns class labels from its pyfunc, and a signature
inferred from ``category`` columns records ``string`` so the booster then fails
on the categories. This pyfunc avoids both: its input is one point-in-time row
per deal with plain types (strings, numbers, booleans), the fitted
:class:`~winmodel.features.builder.FeatureBuilder` restores the training
categories, and ``predict`` returns calibrated P(won).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema, TensorSpec

from winmodel.data import contract
from winmodel.modeling.model import WinModel
from winmodel.modeling.model_format import load_model

OUTPUT_COLUMN = "win_probability"
#: This module, as the MLmodel file names it: keep it stable, saved models refer to it.
LOADER_MODULE = "winmodel.mlops.pyfunc"
#: The folder of winmodel's saved format inside the MLflow model's ``data/``.
DATA_FOLDER = "winmodel"


class WinModelPyfunc:
    """The pyfunc face of a :class:`~winmodel.modeling.model.WinModel`; ``predict`` gives calibrated P(won)."""

    def __init__(self, win_model: WinModel):
        self.win_model = win_model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.Series:
        """Give calibrated P(won) per input row as a float Series named ``win_probability``."""
        rows = pd.DataFrame(model_input)
        probability = self.win_model.predict_proba(rows)
        return pd.Series(
            np.asarray(probability, dtype="float64"), name=OUTPUT_COLUMN, index=rows.index
        )


def _load_pyfunc(data_path: str) -> WinModelPyfunc:
    """MLflow's entry point: give the pyfunc of the model saved (winmodel's files) in ``data_path``."""
    return WinModelPyfunc(load_model(Path(data_path)))


def _column_type(name: str, builder_kind: str | None) -> str:
    if builder_kind in ("categorical", "ordered"):
        return "string"
    spec = contract.spec_for(name)
    if spec is not None:
        if spec.kind == "bool":
            return "boolean"
        if spec.kind in ("category", "string"):
            return "string"
    return "double"


def model_signature(win_model: WinModel) -> ModelSignature:
    """Give the pyfunc signature: every input column optional, typed as the contract says."""
    builder = win_model.feature_builder
    inputs: list[ColSpec | TensorSpec] = [
        ColSpec(_column_type(name, builder.kinds_.get(name)), name, required=False)
        for name in builder.input_columns()
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([ColSpec("double", OUTPUT_COLUMN)]))


def signature_frame(win_model: WinModel, rows: pd.DataFrame) -> pd.DataFrame:
    """Give ``rows`` reduced to the signature's columns with the signature's plain types."""
    signature = model_signature(win_model)
    out = {}
    for column in signature.inputs.inputs:
        name = column.name
        if name not in rows:
            continue
        values = rows[name]
        kind = column.type.name
        if kind == "string":
            out[name] = values.astype("object").where(values.notna(), None)
        elif kind == "boolean":
            out[name] = values.astype("boolean")
        else:
            out[name] = pd.to_numeric(values, errors="coerce").astype("float64")
    return pd.DataFrame(out, index=rows.index)
