"""Drift: how far the deals being scored have moved from the deals the model learned from."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from winmodel.features.builder import FeatureBuilder

BINS = 10
_FLOOR = 1e-4  # keeps PSI finite where a bin is empty on one side


def reference_profile(
    builder: FeatureBuilder, matrix: np.ndarray, weight: np.ndarray, base_rate: float
) -> dict[str, Any]:
    """Give the training distribution of every feature (bin edges and weighted shares) and the base rate."""
    features: dict[str, dict[str, Any]] = {}
    for position, name in enumerate(builder.feature_names_):
        values = matrix[:, position]
        if name in builder.categorical_features_:
            edges = None
        else:
            finite = values[~np.isnan(values)]
            edges = (
                np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1))[1:-1]).tolist()
                if finite.size
                else []
            )
        features[name] = {"edges": edges, "shares": _shares(values, edges, weight).tolist()}
    return {"base_rate": base_rate, "features": features}


def _bin_index(values: np.ndarray, edges: list[float] | None) -> np.ndarray:
    """Give a bin per value: category code (or quantile bin), with the last bin for missing."""
    if edges is None:
        codes = np.where(np.isnan(values), -1, values).astype(int)
        return np.where(codes < 0, 0, codes + 1)
    index = np.searchsorted(np.asarray(edges), values, side="right") + 1
    return np.where(np.isnan(values), 0, index)


def _shares(
    values: np.ndarray,
    edges: list[float] | None,
    weight: np.ndarray | None = None,
    size: int | None = None,
) -> np.ndarray:
    index = _bin_index(values, edges)
    length = max(int(index.max(initial=0)) + 1, size or 0)
    counts = np.bincount(index, weights=weight, minlength=length)
    total = counts.sum()
    return counts / total if total else counts


def population_stability(expected: np.ndarray, actual: np.ndarray) -> float:
    """Give the PSI between two share vectors: sum((a - e) * ln(a / e))."""
    size = max(len(expected), len(actual))
    e = np.pad(np.asarray(expected, float), (0, size - len(expected))) + _FLOOR
    a = np.pad(np.asarray(actual, float), (0, size - len(actual))) + _FLOOR
    return float(np.sum((a - e) * np.log(a / e)))


def drift_report(
    reference: dict[str, Any],
    builder: FeatureBuilder,
    matrix: np.ndarray,
    rows: pd.DataFrame,
    probability: np.ndarray,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Give PSI and unseen-category share per feature, plus a summary (max PSI, mean predicted vs base rate).

    PSI reading: below 0.1 stable, 0.1-0.25 moderate shift, above 0.25 a shift worth a look.
    """
    records = []
    for position, name in enumerate(builder.feature_names_):
        stored = reference["features"].get(name)
        if stored is None:
            continue
        actual = _shares(matrix[:, position], stored["edges"], size=len(stored["shares"]))
        psi = population_stability(np.asarray(stored["shares"]), actual)
        unseen = 0.0
        if name in builder.categorical_features_ and name in rows:
            present = rows[name].notna().to_numpy()
            unseen = float((present & np.isnan(matrix[:, position])).mean())
        records.append({"feature": name, "psi": psi, "unseen_share": unseen})
    table = pd.DataFrame(records, columns=["feature", "psi", "unseen_share"]).sort_values(
        "psi", ascending=False, ignore_index=True
    )
    summary = {
        "deals": float(len(rows)),
        "max_psi": float(table["psi"].max()) if len(table) else 0.0,
        "features_psi_over_0_25": float((table["psi"] > 0.25).sum()),
        "unseen_category_share": float(table["unseen_share"].max()) if len(table) else 0.0,
        "mean_predicted": float(np.mean(probability)) if len(probability) else float("nan"),
        "training_base_rate": float(reference["base_rate"]),
    }
    return table, summary
