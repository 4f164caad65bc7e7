"""The scored file's horizon block: when each open deal is likely to close (see :mod:`winmodel.modeling.horizon`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from winmodel.features.rows import AS_OF
from winmodel.modeling.horizon import (
    HORIZON_COLUMNS,
    INTERVAL_FEATURES,
    WON,
    _limit,
    _matrix,
    _month_index,
    hazards,
    horizon_columns,
    horizon_curves,
)
from winmodel.modeling.model import WinModel
from winmodel.scoring.explain import item_matrix, top_items
from winmodel.scoring.reasons import Catalogue, reason_column

#: Said (by the score job) when the model was saved without a horizon model.
NO_HORIZON_NOTE = (
    "this model has no horizon model (saved before horizons, or trained without snapshots): "
    "the horizon columns (p_won_this_month ... predicted_close_month) are left out; retrain "
    "(`make train`) to get them"
)


def horizon_block(
    model: WinModel,
    rows: pd.DataFrame,
    probability: np.ndarray,
    matrix: np.ndarray | None = None,
) -> pd.DataFrame:
    """Give the horizon columns (:data:`HORIZON_COLUMNS`) of point-in-time rows, anchored to ``probability``.

    ``matrix`` is the win model's matrix of ``rows`` when the caller has it. An empty frame
    (no columns) when the model has no horizon model: they are left out, never invented.
    """
    rows = rows.reset_index(drop=True)
    if model.horizon is None:
        return pd.DataFrame(index=rows.index)
    curves = horizon_curves(model.horizon, model, rows, probability, base=matrix)
    block = horizon_columns(curves, rows)
    numeric = [name for name in HORIZON_COLUMNS if name != "predicted_close_month"]
    return block.assign(**{name: np.round(block[name].to_numpy(float), 6) for name in numeric})


#: The business item the horizon model's own interval features belong to (months to the CRM's date ...).
INTERVAL_ITEM = "timing"


def quarter_reasons(
    model: WinModel, rows: pd.DataFrame, catalogue: Catalogue, count: int = 3
) -> pd.Series:
    """Give per deal why it is unlikely to close *this quarter*: the items holding its won hazard down.

    The horizon booster's TreeSHAP contributions to the won class are summed
    over the months left in the quarter (features grouped into the business
    items of the reasons, the month's own features counted as timing), carried
    into points like the P(won) reasons, and the ``count`` most negative items
    worded from the same sentence catalogue. Empty strings when the model has no
    horizon model.
    """
    rows = rows.reset_index(drop=True)
    if model.horizon is None or rows.empty:
        return pd.Series("", index=rows.index, dtype="object")
    horizon = model.horizon
    start = _month_index(rows[AS_OF])
    quarter_end = 2 - (start % 12) % 3
    origin = np.repeat(np.arange(len(rows)), quarter_end + 1)
    offset = np.concatenate([np.arange(k + 1) for k in quarter_end])
    matrix = _matrix(model, rows, origin, offset)
    contributions = np.asarray(horizon.booster.predict(matrix, pred_contrib=True))
    width = matrix.shape[1] + 1
    won = contributions[:, WON * width : (WON + 1) * width - 1]  # the base value left out
    # Into points of P(won this quarter), by the delta method: a month's won log-odds moves the
    # quarter's P(won) by S_k h_k (1 - h_k) per unit (S_k: open at its start), anchored like the curve.
    won_hazard, lost_hazard = hazards(horizon, model, rows)
    survival = np.cumprod(
        np.hstack([np.ones((len(rows), 1)), 1.0 - won_hazard - lost_hazard]), axis=1
    )
    limit = np.clip(_limit(won_hazard, lost_hazard), 1e-9, None)
    anchor = model.predict_proba(rows) / limit
    slope = survival[:, :-1] * won_hazard * (1.0 - won_hazard) * anchor[:, None]
    weighted = won * (100.0 * slope[origin, offset])[:, None]
    grouping, items = item_matrix(model)
    if INTERVAL_ITEM not in items:
        items = [*items, INTERVAL_ITEM]
        grouping = np.hstack([grouping, np.zeros((len(grouping), 1))])
    interval = np.zeros((len(INTERVAL_FEATURES), len(items)))
    interval[:, items.index(INTERVAL_ITEM)] = 1.0
    points = np.zeros((len(rows), len(items)))
    np.add.at(points, origin, weighted @ np.vstack([grouping, interval]))
    _, negative = top_items(points, count)
    return reason_column(rows, items, negative, points, catalogue)
