"""Temperature scaling for every model kind.

A classifier's probabilities over departments are turned into log-probabilities, and one
temperature T is fitted on a calibration slice of the training data (never the test set):
calibrated = softmax(log p / T). For a model whose probabilities are softmax(scores) this is
exactly softmax(scores / T), so the same number works for the baseline and the LLM.
"""

from __future__ import annotations

import numpy as np

from router.calibration import fit_temperature, temper


def log_proba(proba: np.ndarray) -> np.ndarray:
    return np.log(np.clip(proba, 1e-12, None))


def fit(proba: np.ndarray, y_idx: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of `y_idx` (column indices)."""
    if len(y_idx) == 0:
        return 1.0
    return fit_temperature(log_proba(proba), np.asarray(y_idx))


apply = temper  # softmax(log p / T); classes the model never saw stay impossible
