"""Calibration: raw booster scores -> probabilities that mean what they say.

The calibrator is fitted on a later time slice than the booster, so it also
absorbs some of the drift between the training window and today.
"""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression


def sigmoid(logit: np.ndarray) -> np.ndarray:
    """Give 1 / (1 + exp(-logit)), computed stably."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(logit, dtype=float)))


def logit(probability: np.ndarray, epsilon: float = 1e-6) -> np.ndarray:
    """Give log(p / (1 - p)) with p clipped away from 0 and 1."""
    p = np.clip(np.asarray(probability, dtype=float), epsilon, 1 - epsilon)
    return np.log(p / (1 - p))


class Calibrator:
    """Map raw log-odds onto calibrated P(won): Platt (logistic) or isotonic.

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

    def fit(self, raw_logit: np.ndarray, won: np.ndarray, weight: np.ndarray | None = None,
            deals: float | None = None) -> Calibrator:
        """Learn the mapping on a calibration slice; ``deals`` is its number of distinct deals. Give self."""
        raw_logit = np.asarray(raw_logit, dtype=float)
        won = np.asarray(won, dtype=int)
        deals = len(won) if deals is None else deals
        method = self.method
        if method == "auto":
            method = "isotonic" if deals >= self.isotonic_min_deals else "platt"
        if method == "isotonic":
            self.isotonic_ = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
            self.isotonic_.fit(sigmoid(raw_logit), won, sample_weight=weight)
        else:
            self.platt_ = LogisticRegression(C=1e6, max_iter=1000)
            self.platt_.fit(raw_logit.reshape(-1, 1), won, sample_weight=weight)
        self.method_ = method
        return self

    def transform(self, raw_logit: np.ndarray) -> np.ndarray:
        """Give calibrated probabilities for raw log-odds, kept strictly inside (0, 1)."""
        raw_logit = np.asarray(raw_logit, dtype=float)
        if self.method_ == "isotonic":
            # Isotonic steps are flat; a tiny share of the raw score keeps ties in order.
            calibrated = self.isotonic_.predict(sigmoid(raw_logit))
            calibrated = 0.999 * calibrated + 0.001 * sigmoid(raw_logit)
        else:
            calibrated = self.platt_.predict_proba(raw_logit.reshape(-1, 1))[:, 1]
        return np.clip(calibrated, 1e-4, 1 - 1e-4)
