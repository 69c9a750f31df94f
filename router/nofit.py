"""No department fits: the reserved class `none` and an out-of-scope score with a threshold.

Two signals. A model trained with dispatchers' no-fit labels (Label.department None, class
`none`) predicts `none` like any department. And every ticket gets an out-of-scope score in
[0, 1]; it is no-fit when the score reaches the model's threshold (fitted in training on the
calibration slice to `[nofit] target_recall` of its no-fit tickets) or `[nofit] threshold` when
that is set. The score, 0.5 meaning "no department is preferred over none":
  - models with margins (the baseline's linear SVMs): sigmoid(margin of none - best department's
    margin), or sigmoid(-best margin) without a none class (max-logit);
  - other models (the LLM): p(none) / (p(none) + p(best department)), or 1 - p(best department).
A no-fit ticket gets department `none`, confidence 1 - p(best department), and goes to the
review queue with reason `no_fit`.
"""

from __future__ import annotations

import numpy as np

from router.config import Nofit
from router.catalog import NONE, NONE_NAME  # noqa: F401  (re-exported)
from router.classifier import top_k


def threshold(st: Nofit, fitted: float | None) -> float | None:
    """The threshold in force: the configured one, else the model's fitted one; None = only the
    `none` class flags tickets."""
    if st.threshold and st.threshold > 0:
        return float(st.threshold)
    return fitted


def model_threshold(mv) -> float | None:
    """The threshold fitted when model version `mv` was trained (None if none was)."""
    return ((mv.config or {}).get("nofit") or {}).get("threshold")


def predict(clf, texts) -> tuple[np.ndarray, np.ndarray | None]:
    """(probabilities over clf.classes_, the margin score, or None for models without margins)."""
    texts = list(texts)
    proba, margins, fitted = clf.proba_and_margins(texts)
    return proba, None if margins is None else margin_score(margins, fitted)


def scores(clf, texts) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities over clf.classes_, out-of-scope score) for each text."""
    proba, score = predict(clf, texts)
    return proba, score if score is not None else proba_score(proba, [str(c) for c in clf.classes_])


NONE_DUTIES = ("不属于以上任何部门职责的工单：当场答复的政策咨询、非本市管辖的事项、"
               "无声或中断的无效来电、骚扰来电")


def with_none(catalog):
    """The catalogue plus a `none` entry (name and duties for the LLM's prompt)."""
    from router.catalog import Catalog, Department

    if NONE in catalog.by_id:
        return catalog
    return Catalog([*catalog.departments, Department(NONE, NONE_NAME, NONE_DUTIES)], city=catalog.city)


def with_reserved(catalog, ids):
    """The catalogue plus entries for the reserved dispositions `ids` (emergency lines, legal channel)."""
    from router.catalog import RESERVED, Catalog, Department

    extra = [Department(r, RESERVED[r][0], RESERVED[r][1]) for r in ids if r not in catalog.by_id]
    return Catalog([*catalog.departments, *extra], city=catalog.city) if extra else catalog


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def margin_score(margins: np.ndarray, classes) -> np.ndarray:
    classes = list(classes)
    if not len(margins):
        return np.zeros(0)
    inn = [j for j, c in enumerate(classes) if c != NONE]
    best = margins[:, inn].max(axis=1)
    if NONE in classes:
        return _sigmoid(margins[:, classes.index(NONE)] - best)
    return _sigmoid(-best)


def proba_score(proba: np.ndarray, classes) -> np.ndarray:
    classes = list(classes)
    if not len(proba):
        return np.zeros(0)
    best = proba[:, [j for j, c in enumerate(classes) if c != NONE]].max(axis=1)
    if NONE in classes:
        p = proba[:, classes.index(NONE)]
        return p / np.maximum(p + best, 1e-12)
    return 1.0 - best


def route(proba: np.ndarray, score: np.ndarray, classes, k: int, thr: float | None,
          enabled: bool = True) -> tuple[list[list[tuple[str, float]]], np.ndarray]:
    """Each ticket's top-k [(department, p)] and whether it is no-fit. A no-fit ticket's top is
    (none, 1 - p(best department)) followed by its best k-1 departments. Disabled: `none` is
    never suggested and nothing is flagged."""
    classes = [str(c) for c in classes]
    inn = [j for j, c in enumerate(classes) if c != NONE]
    if not enabled:
        return top_k(proba[:, inn], [classes[j] for j in inn], k), np.zeros(len(proba), dtype=bool)
    flagged = proba.argmax(axis=1) == classes.index(NONE) if NONE in classes else np.zeros(len(proba), bool)
    if thr is not None:
        flagged |= score >= thr
    tops = top_k(proba, classes, k)
    if flagged.any():
        rest = top_k(proba[:, inn], [classes[j] for j in inn], max(k - 1, 0))
        conf = 1.0 - proba[:, inn].max(axis=1)
        for i in np.flatnonzero(flagged):
            tops[i] = [(NONE, float(conf[i]))] + rest[i]
    return tops, flagged


def decide(proba: np.ndarray, score: np.ndarray, classes, thr: float | None, enabled: bool = True) -> list[str]:
    """The routed department of each ticket (`none` for no-fit)."""
    return [t[0][0] for t in route(proba, score, classes, 1, thr, enabled)[0]]


def fit_threshold(score: np.ndarray, is_nofit: np.ndarray, target_recall: float) -> float:
    """The highest threshold that flags at least `target_recall` of the no-fit tickets."""
    s = np.sort(np.asarray(score)[np.asarray(is_nofit, dtype=bool)])[::-1]
    if not len(s):
        raise ValueError("no no-fit tickets to fit the threshold on")
    need = min(len(s), max(1, int(np.ceil(target_recall * len(s) - 1e-9))))
    return float(s[need - 1])


def metrics(y_true, y_pred, score: np.ndarray | None = None) -> dict:
    """Precision and recall of "no department fits" (and the AUROC of the score when both
    outcomes occur), as fractions; support = true no-fit tickets, flagged = predicted ones."""
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    t = np.array([y == NONE for y in y_true], dtype=bool)
    p = np.array([y == NONE for y in y_pred], dtype=bool)
    pr, rc, f1, _ = precision_recall_fscore_support(t, p, average="binary", zero_division=0)
    out = {"precision": float(pr), "recall": float(rc), "f1": float(f1), "support": int(t.sum()),
           "flagged": int(p.sum()), "n": int(len(t))}
    if score is not None and 0 < t.sum() < len(t):
        out["auroc"] = float(roc_auc_score(t, score))
    return out
