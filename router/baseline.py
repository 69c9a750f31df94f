"""The fast CPU baseline: title and text as two TF-IDF blocks of character and word n-grams, one linear SVM.

A ticket's model input is `【title】text` (classifier.model_input); the title and the text get
their own block of hashed character 1-3-grams plus word 1-2-grams of Latin-script words and
numbers (router/ngrams.py: no word segmentation, so Chinese works as it is; the words and C=2
gave back the Banking77 points that characters alone had lost, issue 21), each L2-normalised
and scaled by its weight, so a 400-character text cannot drown a 19-character title (issue 21: title alone 0.80, title + text in one block 0.72).
How much the title weighs is learnt: a 3-fold cross-validation over all the training labels
tries the weights TITLE_WEIGHTS and keeps the most accurate. One LinearSVC over both blocks;
its margins give the probabilities, softmax(margin / scale), the scale fitted on the same
out-of-fold margins, and the no-fit score (router/nofit.py). predict_proba applies the registry's temperature on top.

Saved as numpy arrays (model.npz, weights.npy memory-mapped): routing loads a model in
milliseconds and never imports scikit-learn (only fit does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from router.calibration import softmax, temper
from router.classifier import Classifier, expand
from router.config import Settings
from router.ngrams import Tfidf

PARAMS = ("ngram_min", "ngram_max", "words", "max_features", "C", "calibration_folds", "title_weight", "text_weight",
          "sublinear", "min_df", "class_weight")   # [baseline] settings, kept as attributes, saved in meta.json


TITLE_WEIGHTS = (0.3, 1.0, 3.0)   # "auto": the title block's weight is chosen among these


def split(texts) -> tuple[list[str], list[str]]:
    """(titles, texts) of model inputs `【title】text` (an input without that head has no title)."""
    titles, bodies = [], []
    for t in texts:
        t = t or ""
        end = t.find("】", 0, 203) if t.startswith("【") else -1
        titles.append(t[1:end] if end > 0 else "")
        bodies.append(t[end + 1:] if end > 0 else t)
    return titles, bodies


class BaselineClassifier(Classifier):
    kind = "baseline"
    refits = True

    def __init__(self, classes: Sequence[str] | None = None, ngram_min: int = 1, ngram_max: int = 3,
                 words: int = 2, max_features: int = 300000, C: float = 20.0, calibration_folds: int = 3,
                 title_weight: float | str = "auto", text_weight: float = 1.0, sublinear: bool = True,
                 min_df: int = 2, class_weight: str | None = "balanced"):
        self.classes = list(classes) if classes is not None else None
        self.ngram_min, self.ngram_max, self.max_features, self.min_df = ngram_min, ngram_max, max_features, min_df
        self.words = words
        self.sublinear, self.title_weight, self.text_weight = sublinear, title_weight, text_weight
        self.C, self.class_weight, self.calibration_folds = C, class_weight, calibration_folds
        self.blocks = None
        self.title_w = 1.0 if title_weight == "auto" else float(title_weight)   # the weight in use
        self.temperature = 1.0
        self.scale = 1.0        # softmax(margin / scale): fitted by cross-validation in fit
        self.n_fit = 0          # how many labeled tickets the last fit saw

    @classmethod
    def from_settings(cls, cfg: Settings, classes, catalog=None):
        return cls(classes=classes, **cfg.baseline.model_dump())

    def carry(self, other) -> None:
        if self.title_weight == "auto" and getattr(other, "title_w", None) is not None:
            self.title_weight = other.title_w

    # -- features
    def _vectorizers(self):
        return [Tfidf(self.ngram_min, self.ngram_max, self.sublinear, self.min_df, self.max_features, self.words)
                for _ in range(2)]

    def features(self, texts):
        """The two weighted blocks side by side (title, text): one sparse row per text."""
        return self._stack([v.transform(x) for v, x in zip(self.blocks, split(texts))], self.title_w)

    def _stack(self, blocks, title_w: float):
        from scipy import sparse

        return sparse.hstack([blocks[0] * np.float32(title_w), blocks[1] * np.float32(self.text_weight)],
                             format="csr")

    # -- fit
    def fit(self, texts, labels):
        from sklearn.model_selection import StratifiedKFold
        from sklearn.svm import LinearSVC

        from router.calibration import fit_temperature

        texts, labels = list(texts), np.asarray(labels, dtype=object).astype(str)
        fitted = np.unique(labels)
        if len(fitted) < 2:
            raise ValueError("training needs at least two departments with labels")
        self.fitted_ = [str(c) for c in fitted]
        self.classes_ = np.array(self.classes if self.classes is not None else self.fitted_, dtype=object)
        unknown = set(self.fitted_) - set(self.classes_)
        if unknown:
            raise ValueError(f"labels not in the department list: {sorted(unknown)[:5]}")
        parts = split(texts)
        self.blocks = [v.fit(x) for v, x in zip(self._vectorizers(), parts)]
        blocks = [v.transform(x) for v, x in zip(self.blocks, parts)]
        svm = lambda: LinearSVC(C=self.C / 10, class_weight=self.class_weight)  # noqa: E731
        y = np.searchsorted(fitted, labels)
        auto = self.title_weight == "auto"
        self.title_w = 1.0 if auto else float(self.title_weight)
        # Cross-validation over every label: out-of-fold margins (a class missing from a fold's
        # training part gets that row's lowest margin there) choose the title's weight ("auto":
        # the most accurate of TITLE_WEIGHTS) and fit the probability scale.
        k = min(self.calibration_folds, int(np.bincount(y).max()))
        if k >= 2:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)   # classes with fewer than k labels
                folds = list(StratifiedKFold(k, shuffle=True, random_state=0).split(blocks[1], y))
            tried = {}
            for w in (TITLE_WEIGHTS if auto and blocks[0].nnz else [self.title_w]):
                X, oof = self._stack(blocks, w), np.zeros((len(y), len(fitted)))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)   # classes with fewer than k labels
                    for tr, te in folds:
                        m = svm().fit(X[tr], y[tr])
                        oof[te] = _columns(m.decision_function(X[te]), m.classes_, len(fitted))
                tried[w] = oof
            self.title_w = max(tried, key=lambda w: (tried[w].argmax(axis=1) == y).mean())
            self.title_weights_tried = {w: round(float((o.argmax(axis=1) == y).mean()), 4) for w, o in tried.items()}
            oof = tried[self.title_w]
            self.scale = fit_temperature(oof, y)
            # for the threshold (training.train), not saved: columns are the fitted classes
            self.oof_proba_, self.oof_labels_ = softmax(oof, self.scale), labels
        m = svm().fit(self._stack(blocks, self.title_w), y)
        coef, icpt = m.coef_, m.intercept_
        if len(fitted) == 2:
            coef, icpt = np.vstack([-coef, coef]), np.concatenate([-icpt, icpt])
        self.weights = np.ascontiguousarray(coef.T, dtype=np.float32)   # (features, fitted classes)
        self.bias = icpt.astype(np.float64)
        self.n_fit = len(labels)
        return self

    # -- predict
    def margins(self, texts) -> np.ndarray:
        if self.blocks is None:
            raise RuntimeError("model is not fitted")
        # block by block (no stacking): title rows of the weights, then text rows
        parts = split(texts)
        n_title = len(self.blocks[0].vocab_)
        m = np.zeros((len(texts), self.weights.shape[1]), np.float32)
        for v, x, wi, rows in zip(self.blocks, parts, (self.title_w, self.text_weight),
                                  (slice(0, n_title), slice(n_title, None))):
            if wi:
                m += (v.transform(x) @ self.weights[rows]) * np.float32(wi)
        return m.astype(np.float64) + self.bias

    def predict_proba(self, texts):
        return self.proba_and_margins(texts)[0]

    def proba_and_margins(self, texts):
        """(predict_proba, SVM margins over the fitted classes, the fitted classes): one pass
        over the features, for the out-of-scope score (router/nofit.py)."""
        texts = list(texts)
        if self.blocks is None:
            raise RuntimeError("model is not fitted")
        if not texts:
            return np.zeros((0, len(self.classes_))), np.zeros((0, len(self.fitted_))), self.fitted_
        m = self.margins(texts)
        proba = expand(temper(softmax(m, self.scale), self.temperature), self.fitted_, self.classes_)
        return proba, m, self.fitted_

    # -- files
    def save(self, folder):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {f"{name}_{a}": getattr(v, a + "_") for name, v in zip(("title", "text"), self.blocks)
                  for a in ("vocab", "idf")}  # the lookup tables are rebuilt from the vocabularies
        np.savez(folder / "model.npz", bias=self.bias, **arrays)
        np.save(folder / "weights.npy", self.weights)
        (folder / "meta.json").write_text(json.dumps(
            {"kind": self.kind, "classes": list(self.classes_), "fitted": self.fitted_,
             "params": {p: getattr(self, p) for p in PARAMS},
             "title_weight_used": self.title_w, "scale": self.scale, "temperature": self.temperature, "n_fit": self.n_fit},
            ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, folder, cfg: Settings):
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text())
        if not (folder / "weights.npy").exists():
            return Joblib.read(folder, meta)
        clf = cls(classes=meta["classes"], **{"words": 0, **meta["params"]})   # saved before words: none
        z = np.load(folder / "model.npz")
        clf.blocks = clf._vectorizers()
        for name, v in zip(("title", "text"), clf.blocks):
            v.set(z[f"{name}_vocab"], z[f"{name}_idf"])
        clf.bias = z["bias"]
        clf.weights = np.load(folder / "weights.npy", mmap_mode="r")
        clf.fitted_ = meta["fitted"]
        clf.classes_ = np.array(meta["classes"], dtype=object)
        clf.scale, clf.temperature, clf.n_fit = float(meta["scale"]), float(meta["temperature"]), meta["n_fit"]
        clf.title_w = float(meta["title_weight_used"])
        return clf


def _columns(margins: np.ndarray, seen, n: int) -> np.ndarray:
    """Margins over the classes a fold saw (`seen`, indices), widened to all `n`; unseen classes
    get each row's lowest margin."""
    if margins.ndim == 1:
        margins = np.column_stack([-margins, margins])
    out = np.repeat(margins.min(axis=1, keepdims=True), n, axis=1)
    out[:, seen] = margins
    return out


class Joblib(BaselineClassifier):
    """A baseline saved before issue 21 (a pickled scikit-learn pipeline, model.joblib): it still
    routes, slowly; `router train` replaces it."""

    @classmethod
    def read(cls, folder, meta):
        import joblib

        clf = cls(classes=meta["classes"])
        clf.model = joblib.load(Path(folder) / "model.joblib")
        clf.blocks, clf.fitted_ = "joblib", meta["fitted"]
        clf.classes_ = np.array(meta["classes"], dtype=object)
        clf.temperature = float(meta.get("temperature", 1.0))
        return clf

    def proba_and_margins(self, texts):
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.classes_))), np.zeros((0, len(self.fitted_))), self.fitted_
        X = self.model[:-1].transform(texts)
        cal = self.model[-1]
        proba = expand(temper(cal.predict_proba(X), self.temperature), self.fitted_, self.classes_)
        m = np.mean([c.estimator.decision_function(X) for c in cal.calibrated_classifiers_], axis=0)
        return proba, (np.column_stack([-m, m]) if m.ndim == 1 else m), self.fitted_
