"""The fast CPU baseline: character + word n-gram TF-IDF, a linear SVM, sigmoid calibration.

Character n-grams need no word segmentation, so it works for Chinese as it is.
Probabilities come from CalibratedClassifierCV (Platt scaling on cross-validated scores).
The SVMs' margins (averaged over the calibration folds) give the no-fit score (router/nofit.py).
With 70 one-vs-rest sigmoids those are badly calibrated, so training fits a temperature on
their log-probabilities (training.calibrate) and predict_proba applies it: softmax(log p / T).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import joblib
import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline, make_union
from sklearn.svm import LinearSVC

from router.calibration import temper
from router.classifier import Classifier, expand
from router.config import Settings

PARAMS = ("ngram_min", "ngram_max", "max_features", "C", "calibration_folds")  # saved in meta.json


def vectorizer(ngram_min: int = 1, ngram_max: int = 4, max_features: int = 300000):
    """The baseline's features: character n-grams (no word segmentation needed for Chinese)
    plus word 1-2-grams, sublinear TF-IDF."""
    return make_union(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(ngram_min, ngram_max), sublinear_tf=True,
                        max_features=max_features),
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b"))


def svm(C: float = 20.0) -> LinearSVC:
    """The baseline's linear SVM. `[baseline] C` is ten times the SVM's C (C = 20 is LinearSVC(C=2))."""
    return LinearSVC(C=C / 10, class_weight="balanced")


class BaselineClassifier(Classifier):
    kind = "baseline"

    def __init__(self, classes: Sequence[str] | None = None, ngram_min: int = 1, ngram_max: int = 4,
                 max_features: int = 300000, C: float = 20.0, calibration_folds: int = 3):
        self.classes = list(classes) if classes is not None else None
        self.ngram_min, self.ngram_max, self.max_features = ngram_min, ngram_max, max_features
        self.C, self.calibration_folds = C, calibration_folds
        self.model = None
        self.temperature = 1.0

    @classmethod
    def from_settings(cls, cfg: Settings, classes, catalog=None):
        return cls(classes=classes, **cfg.baseline.model_dump())

    def fit(self, texts, labels):
        texts, labels = list(texts), np.asarray(labels, dtype=object)
        fitted, counts = np.unique(labels, return_counts=True)
        if len(fitted) < 2:
            raise ValueError("training needs at least two departments with labels")
        # Calibration folds need every class in every fold: repeat the rarest examples.
        k = self.calibration_folds
        extra = [i for c, n in zip(fitted, counts) if n < k
                 for i in np.flatnonzero(labels == c).tolist() * (k - 1)]
        texts += [texts[i] for i in extra]
        labels = np.concatenate([labels, labels[extra]]) if extra else labels
        self.model = make_pipeline(vectorizer(self.ngram_min, self.ngram_max, self.max_features),
                                   CalibratedClassifierCV(svm(self.C), method="sigmoid", cv=k))
        self.model.fit(texts, labels)
        self.fitted_ = [str(c) for c in self.model.classes_]
        self.classes_ = np.array(self.classes if self.classes is not None else self.fitted_, dtype=object)
        unknown = set(self.fitted_) - set(self.classes_)
        if unknown:
            raise ValueError(f"labels not in the department list: {sorted(unknown)[:5]}")
        return self

    def predict_proba(self, texts):
        if self.model is None:
            raise RuntimeError("model is not fitted")
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.classes_)))
        return expand(temper(self.model.predict_proba(texts), self.temperature), self.fitted_, self.classes_)

    def proba_and_margins(self, texts):
        """(predict_proba, SVM margins over the fitted classes, the fitted classes): one pass
        over the features, for the out-of-scope score (router/nofit.py)."""
        if self.model is None:
            raise RuntimeError("model is not fitted")
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.classes_))), np.zeros((0, len(self.fitted_))), self.fitted_
        X = self.model[:-1].transform(texts)
        cal = self.model[-1]
        proba = expand(temper(cal.predict_proba(X), self.temperature), self.fitted_, self.classes_)
        m = np.mean([c.estimator.decision_function(X) for c in cal.calibrated_classifiers_], axis=0)
        if m.ndim == 1:  # two classes: one margin, for the second
            m = np.column_stack([-m, m])
        return proba, m, self.fitted_

    def save(self, folder):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.model, folder / "model.joblib", compress=3)
        (folder / "meta.json").write_text(json.dumps(
            {"kind": self.kind, "classes": list(self.classes_), "fitted": self.fitted_,
             "params": {p: getattr(self, p) for p in PARAMS}, "temperature": self.temperature}, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, folder, cfg: Settings):
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text())
        clf = cls(classes=meta["classes"], **meta["params"])
        clf.model = joblib.load(folder / "model.joblib")
        clf.fitted_ = meta["fitted"]
        clf.classes_ = np.array(meta["classes"], dtype=object)
        clf.temperature = float(meta.get("temperature", 1.0))
        return clf
