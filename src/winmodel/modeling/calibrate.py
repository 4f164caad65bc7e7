"""Calibration: raw booster scores -> probabilities that mean what they say.

The calibrator is fitted on a later time slice than the booster, so it also
absorbs some of the drift between the training window and today.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from winmodel.modeling.evaluate import binary_log_loss


def sigmoid(logit: np.ndarray) -> npt.NDArray[np.float64]:
    """Give 1 / (1 + exp(-logit)), computed stably."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(logit, dtype=float)))


def logit(probability: np.ndarray, epsilon: float = 1e-6) -> np.ndarray:
    """Give log(p / (1 - p)) with p clipped away from 0 and 1."""
    p: npt.NDArray[np.float64] = np.clip(np.asarray(probability, dtype=float), epsilon, 1 - epsilon)
    return np.log(p / (1 - p))


log = logging.getLogger(__name__)

#: Isotonic calibration never claims more certainty than this.
ISOTONIC_FLOOR = 0.005


class Calibrator:
    """Map raw log-odds onto calibrated P(won): Platt (logistic) or isotonic; never decreasing.

    Parameters
    ----------
    method : {"auto", "platt", "isotonic"}
        "auto" picks isotonic with at least ``isotonic_min_deals`` calibration deals, Platt below.
    isotonic_min_deals : int

    Attributes
    ----------
    method_ : str
        The method actually used.
    """

    def __init__(self, method: str = "auto", isotonic_min_deals: int = 1000):
        self.method = method
        self.isotonic_min_deals = isotonic_min_deals

    def fit(
        self,
        raw_logit: np.ndarray,
        won: np.ndarray,
        weight: np.ndarray | None = None,
        deals: float | None = None,
    ) -> Calibrator:
        """Learn the mapping on a calibration slice; ``deals`` is its number of distinct deals. Give self.

        With ``method="auto"``: Platt below ``isotonic_min_deals`` deals; above, whichever of
        Platt and isotonic has the lower 5-fold cross-validated log loss on the slice.
        """
        raw_logit = np.asarray(raw_logit, dtype=float)
        won = np.asarray(won, dtype=int)
        weight = np.ones(len(won)) if weight is None else np.asarray(weight, dtype=float)
        deals = len(won) if deals is None else deals
        method = self.method
        if method == "auto":
            method = (
                "platt"
                if deals < self.isotonic_min_deals
                else self._cross_validated_choice(raw_logit, won, weight)
            )
        self._fit_method(method, raw_logit, won, weight)
        self.method_ = method
        return self

    def _fit_method(
        self, method: str, raw_logit: np.ndarray, won: np.ndarray, weight: np.ndarray
    ) -> None:
        # The fitted map is kept as plain numbers (a slope and an intercept, or the isotonic steps) so the
        # saved model holds arrays, not scikit-learn objects.
        if method == "isotonic":
            isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
            isotonic.fit(sigmoid(raw_logit), won, sample_weight=weight)
            self.thresholds_ = np.asarray(isotonic.X_thresholds_, dtype=float)
            self.values_ = np.asarray(isotonic.y_thresholds_, dtype=float)
        else:
            platt = LogisticRegression(C=1e6, max_iter=1000)
            platt.fit(raw_logit.reshape(-1, 1), won, sample_weight=weight)
            self.slope_ = float(platt.coef_[0, 0])
            self.intercept_ = float(platt.intercept_[0])
            if self.slope_ < 0:
                # A booster that ranks the slice backwards must not turn "more progress" into a
                # lower probability: the map stays non-decreasing (flat at the slice's win rate).
                log.warning(
                    "calibration: Platt slope %.3f < 0 on the calibration slice; the map is kept "
                    "flat at its win rate (the booster does not rank these deals)",
                    self.slope_,
                )
                rate = float(np.clip(np.average(won, weights=weight), 1e-6, 1 - 1e-6))
                self.slope_ = 0.0
                self.intercept_ = float(np.log(rate / (1 - rate)))
        self.method_ = method

    def _cross_validated_choice(
        self, raw_logit: np.ndarray, won: np.ndarray, weight: np.ndarray
    ) -> str:
        """Give 'isotonic' or 'platt', whichever predicts held-out folds of the slice better."""
        folds = np.arange(len(won)) % 5
        losses: dict[str, float] = {}
        for method in ("platt", "isotonic"):
            predicted = np.empty(len(won))
            for fold in range(5):
                train, test = folds != fold, folds == fold
                part = Calibrator(method)
                part._fit_method(method, raw_logit[train], won[train], weight[train])
                predicted[test] = part.transform(raw_logit[test])
            losses[method] = binary_log_loss(won, predicted, weight)
        return min(losses, key=losses.__getitem__)

    def transform(self, raw_logit: np.ndarray) -> np.ndarray:
        """Give calibrated probabilities for raw log-odds, kept strictly inside (0, 1)."""
        raw_logit = np.asarray(raw_logit, dtype=float)
        if (
            raw_logit.size == 0
        ):  # e.g. refit_at's empty test window; Platt's scikit-learn model refuses 0 rows
            return np.zeros(0)
        calibrated: npt.NDArray[np.float64]
        if self.method_ == "isotonic":
            # Isotonic steps are flat; a tiny share of the raw score keeps ties in order.
            calibrated = np.interp(sigmoid(raw_logit), self.thresholds_, self.values_)
            calibrated = 0.999 * calibrated + 0.001 * sigmoid(raw_logit)
            # A bin without a single win (or loss) in the slice would claim certainty.
            calibrated = np.clip(calibrated, ISOTONIC_FLOOR, 1 - ISOTONIC_FLOOR)
        else:
            calibrated = sigmoid(self.slope_ * raw_logit + self.intercept_)
        return np.clip(calibrated, 1e-4, 1 - 1e-4)

    def to_dict(self) -> dict[str, object]:
        """Give the fitted map as plain JSON types (the saved model's calibrator.json)."""
        if self.method_ == "isotonic":
            return {
                "method": "isotonic",
                "thresholds": self.thresholds_.tolist(),
                "values": self.values_.tolist(),
            }
        return {"method": "platt", "slope": self.slope_, "intercept": self.intercept_}

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> Calibrator:
        """Give the fitted calibrator described by :meth:`to_dict` (raises ValueError for an unknown method)."""
        method = spec.get("method")
        calibrator = cls(str(method))
        if method == "isotonic":
            calibrator.thresholds_ = np.asarray(spec["thresholds"], dtype=float)
            calibrator.values_ = np.asarray(spec["values"], dtype=float)
            if (
                calibrator.thresholds_.shape != calibrator.values_.shape
                or calibrator.thresholds_.size == 0
            ):
                raise ValueError(
                    "isotonic thresholds and values must be non-empty and of the same length"
                )
        elif method == "platt":
            calibrator.slope_ = float(spec["slope"])
            calibrator.intercept_ = float(spec["intercept"])
        else:
            raise ValueError(f"unknown calibration method {method!r}")
        calibrator.method_ = str(method)
        return calibrator
