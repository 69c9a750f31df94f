"""Calibration: expected calibration error and temperature scaling, for every model kind.

A classifier's probabilities over departments are turned into log-probabilities, and one
temperature T is fitted on a calibration slice of the training data (never the test set):
calibrated = softmax(log p / T). For a model whose probabilities are softmax(scores) this is
exactly softmax(scores / T), so the same number works for the baseline and the LLM.
"""

from __future__ import annotations

import numpy as np


def ece(proba: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top prediction; `y` holds column indices of the truth."""
    if len(y) == 0:
        return 0.0
    conf, pred = proba.max(axis=1), proba.argmax(axis=1)
    correct = (pred == y).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(total)


def reliability(proba: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict]:
    """Per-bin mean confidence, accuracy and count, for reliability diagrams."""
    conf, correct = proba.max(axis=1), (proba.argmax(axis=1) == y)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    return [{"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": int((which == b).sum()),
             "confidence": float(conf[which == b].mean()) if (which == b).any() else None,
             "accuracy": float(correct[which == b].mean()) if (which == b).any() else None}
            for b in range(bins)]


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def temper(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities rescaled by a temperature: softmax(log p / T); impossible classes stay at 0."""
    if temperature == 1.0 or len(proba) == 0:
        return proba
    out = softmax(np.log(np.clip(proba, 1e-12, None)), temperature)
    out[proba == 0] = 0.0
    return out / out.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising held-out negative log-likelihood (bounded search on log T)."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        p = softmax(logits, float(np.exp(log_t)))
        return float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean())

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(res.x))


def fit_proba(proba: np.ndarray, y_idx: np.ndarray) -> float:
    """The temperature minimising the NLL of `y_idx` (column indices) over probabilities `proba`."""
    if len(y_idx) == 0:
        return 1.0
    return fit_temperature(np.log(np.clip(proba, 1e-12, None)), np.asarray(y_idx))


def auto_threshold(conf: np.ndarray, correct: np.ndarray, target: float) -> dict:
    """The lowest threshold at which the tickets at or above it are at least `target` right:
    {threshold, expected_accuracy (theirs), routed_share (their share), n}. When none is, 1.0
    (every ticket is reviewed)."""
    conf, correct = np.asarray(conf, float), np.asarray(correct, bool)
    out = {"threshold": 1.0, "expected_accuracy": None, "routed_share": 0.0, "n": int(len(conf)),
           "target_accuracy": target}
    if not len(conf):
        return out
    order = np.argsort(-conf, kind="stable")
    c, ok = conf[order], correct[order]
    acc = np.cumsum(ok) / np.arange(1, len(c) + 1)       # accuracy of the top k+1
    last = np.r_[c[1:] != c[:-1], True]                  # a threshold keeps all ties
    good = np.flatnonzero(last & (acc >= target))
    if len(good):
        k = good[-1]
        out.update(threshold=float(c[k]), expected_accuracy=float(acc[k]), routed_share=float((k + 1) / len(c)))
    return out


def department_thresholds(conf: np.ndarray, pred: np.ndarray, correct: np.ndarray, target: float,
                          min_labels: int) -> dict[int, float]:
    """Per predicted department (column index): its own `auto_threshold` over the tickets predicted
    as it, where at least `min_labels` are (the others keep the global threshold); each department's
    routed tickets then reach `target` on their own."""
    conf, pred, correct = np.asarray(conf, float), np.asarray(pred), np.asarray(correct, bool)
    out = {}
    for d in np.unique(pred):
        m = pred == d
        if m.sum() >= min_labels:
            out[int(d)] = auto_threshold(conf[m], correct[m], target)["threshold"]
    return out
