"""The scored file's horizon block: when each open deal is likely to close (see :mod:`winmodel.modeling.horizon`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from winmodel.modeling.horizon import HORIZON_COLUMNS, horizon_columns, horizon_curves
from winmodel.modeling.model import WinModel

#: Said (by the score job) when the model was saved without a horizon model.
NO_HORIZON_NOTE = (
    "this model has no horizon model (saved before horizons, or trained without snapshots): "
    "the horizon columns (p_won_this_month ... predicted_close_month) are left out; retrain "
    "(`make train`) to get them"
)


def horizon_block(model: WinModel, rows: pd.DataFrame, probability: np.ndarray) -> pd.DataFrame:
    """Give the horizon columns (:data:`HORIZON_COLUMNS`) of point-in-time rows, anchored to ``probability``.

    An empty frame (no columns) when the model has no horizon model: they are left out, never invented.
    """
    rows = rows.reset_index(drop=True)
    if model.horizon is None:
        return pd.DataFrame(index=rows.index)
    curves = horizon_curves(model.horizon, model, rows, probability)
    block = horizon_columns(curves, rows)
    numeric = [name for name in HORIZON_COLUMNS if name != "predicted_close_month"]
    return block.assign(**{name: np.round(block[name].to_numpy(float), 6) for name in numeric})
