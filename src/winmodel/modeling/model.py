"""The one fitted artefact: feature builder, booster and calibrator travelling together.

Scoring uses exactly what training fitted: the rows go through the same
:class:`~winmodel.features.builder.FeatureBuilder`, the same booster, the same calibrator.
The MLflow pyfunc wrapper lives in :mod:`winmodel.mlops.pyfunc`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import lightgbm as lgb
import numpy as np
import pandas as pd

from winmodel.features.builder import FeatureBuilder
from winmodel.modeling.calibrate import Calibrator, sigmoid
from winmodel.modeling.treeshap import FastTreeShap, UnsupportedBooster

if TYPE_CHECKING:
    from winmodel.modeling.horizon import HorizonModel

log = logging.getLogger(__name__)


@dataclass
class WinModel:
    """A trained win-probability model.

    Attributes
    ----------
    feature_builder : FeatureBuilder
    booster : lightgbm.Booster
    calibrator : Calibrator
    base_rate : float
        Win rate of the deals the booster was trained on (weighted).
    reference : dict
        Training-data profile for drift checks (see :mod:`winmodel.features.drift`).
    metadata : dict
        Training window, counts, versions: written into the model card.
    horizon : HorizonModel or None
        When the deal closes (:mod:`winmodel.modeling.horizon`); None for models saved without it.
    """

    feature_builder: FeatureBuilder
    booster: lgb.Booster
    calibrator: Calibrator
    base_rate: float
    reference: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    horizon: HorizonModel | None = None

    @property
    def feature_names(self) -> list[str]:
        """Give the model's feature names in matrix order."""
        return list(self.feature_builder.feature_names_)

    def matrix(self, rows: pd.DataFrame) -> np.ndarray:
        """Give the feature matrix of point-in-time rows."""
        return self.feature_builder.transform(rows)

    @property
    def explainer(self) -> FastTreeShap | None:
        """Give the fast exact explainer of this booster (built once), or None when the booster is too deep."""
        if "_explainer" not in self.__dict__:
            try:
                self.__dict__["_explainer"] = FastTreeShap(self.booster)
            except UnsupportedBooster as reason:
                log.info("explaining with LightGBM's pred_contrib: %s", reason)
                self.__dict__["_explainer"] = None
        explainer: FastTreeShap | None = self.__dict__["_explainer"]
        return explainer

    def __getstate__(self) -> dict[str, Any]:
        # The explainer's tables are rebuilt from the booster after loading; they are not saved.
        return {key: value for key, value in self.__dict__.items() if key != "_explainer"}

    def raw_logit_of_matrix(self, matrix: np.ndarray, threads: int = 0) -> np.ndarray:
        """Give the booster's log-odds for a feature matrix (before calibration)."""
        if self.explainer is not None:
            return self.explainer.raw_score(matrix)
        # A dense matrix in, a dense array out (the sparse return types are for sparse input).
        return cast(np.ndarray, self.booster.predict(matrix, raw_score=True, num_threads=threads))

    def what_if_raw_logit(
        self, before: np.ndarray, after: np.ndarray, raw_before: np.ndarray
    ) -> np.ndarray:
        """Give the log-odds of rows changed from ``before`` to ``after``, re-scoring only the trees that moved."""
        if self.explainer is None:
            return self.raw_logit_of_matrix(after)
        differs = ~((before == after) | (np.isnan(before) & np.isnan(after)))
        changed = set(np.flatnonzero(differs.any(axis=0)).tolist())
        trees = self.explainer.trees_using(changed)
        if (
            2 * len(trees) >= self.explainer.n_trees
        ):  # cheaper to score every tree once than half twice
            return self.explainer.raw_score(after)
        raw_after: np.ndarray = (
            raw_before
            + self.explainer.raw_score(after, trees)
            - self.explainer.raw_score(before, trees)
        )
        return raw_after

    def raw_logit(self, rows: pd.DataFrame) -> np.ndarray:
        """Give the booster's log-odds for point-in-time rows (before calibration)."""
        return self.raw_logit_of_matrix(self.matrix(rows))

    def uncalibrated_probability(self, rows: pd.DataFrame) -> np.ndarray:
        """Give the booster's probability before calibration."""
        return sigmoid(self.raw_logit(rows))

    def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
        """Give calibrated P(won) for point-in-time rows."""
        return self.calibrator.transform(self.raw_logit(rows))

    def contributions(self, matrix: np.ndarray, threads: int = 0) -> np.ndarray:
        """Give exact TreeSHAP contributions in log-odds: n x (features + 1), the last column the base value.

        The same values as LightGBM's ``pred_contrib`` (and ``shap.TreeExplainer``), from
        :class:`~winmodel.modeling.treeshap.FastTreeShap` when the booster is shallow enough.
        """
        if self.explainer is not None:
            return self.explainer.contributions(matrix)
        # A dense matrix in, a dense array out (the sparse return types are for sparse input).
        return cast(
            np.ndarray, self.booster.predict(matrix, pred_contrib=True, num_threads=threads)
        )

    def explanation_cost(self) -> float:
        """Give a relative cost of exact TreeSHAP for this booster: trees x leaves x depth^2."""
        return explanation_cost(self.booster)


def explanation_cost(booster: lgb.Booster) -> float:
    """Give trees x mean leaves x mean depth^2, the driver of TreeSHAP's run time."""
    dump = booster.dump_model()
    leaves, depths = [], []
    for tree in dump["tree_info"]:
        leaves.append(tree["num_leaves"])
        depths.append(_depth(tree["tree_structure"]))
    if not leaves:
        return 0.0
    return float(len(leaves) * np.mean(leaves) * np.mean(np.square(depths)))


def _depth(node: dict[str, Any]) -> int:
    if "leaf_index" in node or ("leaf_value" in node and "split_index" not in node):
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))
