"""winmodel as an MLflow pyfunc model: the same object in-process, from the registry, served, or in Spark.

MLflow's LightGBM flavour returns class labels from its pyfunc, and a signature
inferred from ``category`` columns records ``string`` so the booster then fails
on the categories. This custom pyfunc avoids both: its input is one
point-in-time row per deal with plain types (strings, numbers, booleans), the
fitted :class:`~winmodel.features.FeatureBuilder` restores the training
categories, and ``predict`` returns calibrated P(won).
"""

from __future__ import annotations

import warnings

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from winmodel import contract
from winmodel.model import WinModel

OUTPUT_COLUMN = "win_probability"


# MLflow suggests type hints on ``predict`` when a subclass is defined; the explicit signature
# logged with the model (see model_signature) does that job. MLflow resets the warning filters
# around its check, so the notice is recorded here and dropped rather than filtered.
with warnings.catch_warnings(record=True):

    class WinModelPyfunc(mlflow.pyfunc.PythonModel):
        """The pyfunc face of a :class:`~winmodel.model.WinModel`; ``predict`` gives calibrated P(won)."""

        def __init__(self, win_model: WinModel):
            self.win_model = win_model

        def predict(self, context, model_input, params=None):
            """Give calibrated P(won) per input row as a float Series named ``win_probability``."""
            rows = pd.DataFrame(model_input)
            probability = self.win_model.predict_proba(rows)
            return pd.Series(np.asarray(probability, dtype="float64"), name=OUTPUT_COLUMN, index=rows.index)


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
    inputs = [
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
