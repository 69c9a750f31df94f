"""One classifier interface for every model, shaped like scikit-learn's.

    clf.fit(texts, labels)          -> clf
    clf.predict_proba(texts)        -> (n, len(clf.classes_)) array, rows sum to 1
    clf.classes_                    -> department ids, one per column
    clf.save(folder); load(folder)  -> a model version on disk (meta.json names its kind)

The queue, the labeling app, training reports and dashboards only use this interface,
so they never care whether the TF-IDF baseline or the LLM is behind it.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import numpy as np

from router.config import Settings

# kind -> "module:Class"; the LLM is imported only when a model of that kind is loaded.
KINDS = {
    "baseline": "router.baseline:BaselineClassifier",
    "llm": "router.llm.model:LLMClassifier",
    "ensemble": "router.ensemble:EnsembleClassifier",
}


class Classifier(ABC):
    kind: str = ""
    classes_: np.ndarray
    temperature: float = 1.0     # predict_proba = softmax(log p / temperature); training fits it
    refits: bool = False         # training refits the registered version on every label ([train] refit)
    base: str | None = None      # the pretrained model it builds on (the LLM's), recorded in the registry

    @classmethod
    @abstractmethod
    def from_settings(cls, cfg: Settings, classes: Sequence[str], catalog) -> "Classifier":
        """A new, unfitted model over `classes` with its [kind] settings."""

    @abstractmethod
    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> "Classifier": ...

    @abstractmethod
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    fit_info: dict = {}          # what the last fit did beyond the obvious (a warm start), for the report

    def warm_start(self, previous: "Classifier") -> bool:
        """Make the next `fit` go on from `previous` (an earlier version of this kind) instead of from
        scratch, when this kind can and its settings say so; returns whether it will. Default: never."""
        return False

    def tune(self, texts: Sequence[str], labels: Sequence[str]) -> dict:
        """Fit what is fitted on the calibration slice besides the temperature (the ensemble's
        weights); returns what it found for the training report. Default: nothing."""
        return {}

    def carry(self, other: "Classifier") -> None:
        """Before a refit on every label: take over what `other`, the held-out fit of the same kind,
        chose while fitting (the baseline's title weight), so the refit need not choose again."""

    def proba_and_margins(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None, list | None]:
        """(predict_proba, raw per-class margins, the classes the margins are over), for the no-fit
        score (router/nofit.py); models without margins (the LLM) return (proba, None, None)."""
        return self.predict_proba(texts), None, None

    def shards(self, texts: Sequence[str], n: int) -> list[list[int]]:
        """Positions of `texts` for `n` processes scoring in parallel (router/parallel.py), each
        process's scores the same as one process's: contiguous shares (every row is scored alone)."""
        return [list(map(int, a)) for a in np.array_split(np.arange(len(texts)), n)]

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.classes_[self.predict_proba(texts).argmax(axis=1)]

    @abstractmethod
    def save(self, folder: str | Path) -> None:
        """Write the model into `folder`; must write meta.json with at least {"kind": ...}."""

    @classmethod
    @abstractmethod
    def load(cls, folder: str | Path, cfg: Settings) -> "Classifier": ...


MAX_CHARS = 2000  # what a model reads of one ticket: tickets run ~50-500 characters; a 1 MB paste is cut


def model_input(text: str, title: str | None = None) -> str:
    """What every model reads of a ticket, in training and in routing: its title (the
    dispatcher sees it too; 物业乱收费 says more than the text often does), then the head of
    its text, at most MAX_CHARS in all (the store keeps the full text)."""
    title = (title or "").strip()[:200]
    text = f"【{title}】{text}" if title and title not in text[:MAX_CHARS] else text
    return text[:MAX_CHARS]


def make(kind: str, **kwargs) -> Classifier:
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
    module, _, name = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name)(**kwargs)


def build(kind: str, cfg: Settings, classes: Sequence[str], catalog) -> Classifier:
    """A new model of `kind` from the settings (training builds every kind this way)."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
    module, _, name = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name).from_settings(cfg, classes, catalog)


def load(folder: str | Path, cfg: Settings) -> Classifier:
    """The model saved in `folder` (meta.json: its kind, classes and temperature); `cfg` says how to
    run it (LLM: [llm] device, precision, batch_size, decode)."""
    folder = Path(folder)
    meta = folder / "meta.json"
    if not meta.exists():
        raise FileNotFoundError(f"{folder} is not a saved model (no meta.json)")
    kind = json.loads(meta.read_text())["kind"]
    if kind not in KINDS:
        raise ValueError(f"{folder}: unknown model kind {kind!r}")
    module, _, name = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name).load(folder, cfg)


def expand(proba: np.ndarray, fitted: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Columns for `classes`, taken from `proba` over `fitted`; classes never seen get 0."""
    out = np.zeros((proba.shape[0], len(classes)), dtype=np.float64)
    pos = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(fitted):
        out[:, pos[c]] = proba[:, j]
    return out


def top_k(proba: np.ndarray, classes: Sequence[str], k: int = 3) -> list[list[tuple[str, float]]]:
    idx = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    return [[(classes[j], float(row[j])) for j in ix] for row, ix in zip(proba, idx)]


class Folded:
    """A model trained before a catalogue change, scoring over today's catalogue: a merged
    department's probability counts for its successor (added; its margin: the larger one) and a
    department now inactive with no successor (or gone from the catalogue) counts as `none`, no
    department fits (so a ticket mostly about it is queued as no-fit for a dispatcher, and no other
    department's confidence rises). Everything else is the wrapped classifier's (see `fold`)."""

    def __init__(self, clf, targets: dict[str, str]):
        self.clf, self.targets = clf, targets       # model class -> today's id (itself when unchanged)
        self.classes_ = np.array(list(dict.fromkeys(targets.values())), dtype=object)

    def __getattr__(self, name):
        return getattr(self.clf, name)

    def _matrix(self, fitted) -> tuple[np.ndarray, list[str]]:
        fitted = [str(c) for c in fitted]
        out = list(dict.fromkeys(self.targets.get(c, c) for c in fitted))
        m = np.zeros((len(fitted), len(out)))
        for j, c in enumerate(fitted):
            m[j, out.index(self.targets.get(c, c))] = 1.0
        return m, out

    def predict_proba(self, texts) -> np.ndarray:
        return self._proba(self.clf.predict_proba(texts))

    def _proba(self, proba: np.ndarray) -> np.ndarray:
        return proba @ self._matrix(self.clf.classes_)[0]     # columns in classes_'s order

    def proba_and_margins(self, texts):
        proba, margins, fitted = self.clf.proba_and_margins(texts)
        if margins is None:
            return self._proba(proba), None, None
        m, out = self._matrix(fitted)
        if "none" not in [str(c) for c in fitted]:   # no `none` margin: the retired ones are left out
            keep = [k for k, c in enumerate(out) if c != "none"]
            m, out = m[:, keep], [out[k] for k in keep]
        folded = np.stack([margins[:, m[:, k] > 0].max(axis=1) for k in range(len(out))], axis=1) \
            if len(margins) else np.zeros((0, len(out)))
        return self._proba(proba), folded, out

    def predict(self, texts):
        return self.classes_[self.predict_proba(texts).argmax(axis=1)]


def fold(clf, catalog) -> tuple[object, list[str]]:
    """`clf` over today's catalogue (a `Folded` view when the catalogue changed since it was trained,
    else `clf` itself) and one line per department it folds."""
    from router.catalog import NONE, RESERVED

    targets, notes = {}, []
    for c in (str(c) for c in clf.classes_):
        now = catalog.canonical(c)
        d = catalog.by_id.get(now)
        if c in RESERVED or d is not None and d.active:
            targets[c] = now
            if now != c:
                notes.append(f"{c} was merged into {now}: the model's {c} counts for {now}")
        else:
            targets[c] = NONE
            notes.append(f"{c} is {'no longer in the catalogue' if d is None else 'inactive'}"
                         f"{f' (merged into {now}, inactive too)' if now != c else ''}: the model's {c} counts as "
                         f"{NONE} (no department fits; such tickets are queued as no-fit)")
    return (Folded(clf, targets) if notes else clf), notes
