"""The promotion gate: a candidate replaces the current model only when it is not worse.

Both models are scored on the SAME held-out tickets (the current one is re-scored, never
compared through its old report), and neither has trained on them: the held-out split is fixed
by a hash of the ticket id (training/data.py), the current version is scored through its
held-out fit (`score`), and any ticket that fit saw is left out of the comparison. The candidate is refused when
  - its macro-F1 is lower than the current model's by more than `max_macro_f1_drop` — with
    `confidence` > 0, only when even the `confidence` quantile of a paired bootstrap of the
    change is below that (a few hundred held-out tickets over 70 departments move macro-F1 by
    a few points by chance: the 30-day loop saw 40% of nights refused on noise alone), or
  - any department with at least `min_support` held-out tickets loses more than
    `max_department_f1_drop` F1, or
  - with at least `nofit_min_support` no-fit held-out tickets, its no-fit recall or precision
    is lower by more than `max_nofit_drop`;
the department and no-fit drops too, with `confidence` > 0, only when the same bootstrap bound of
that F1, recall or precision change is below the limit (with 10-16 such tickets one ticket moves
them by 0.06-0.10: the loop on the Chinese month saw nights refused on one no-fit ticket).
It is promoted without comparison when the current model cannot be re-scored here.

`settle` is the one place that decides whether and when a registered candidate becomes the
current model: the store's first model (trained or zero-shot) is promoted with no comparison;
a later one only through the gate (`router retrain`), when `decide` says so; otherwise
(`router train`, `router zeroshot` without --promote) it stays a candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from router import classifier, nofit, registry
from router.config import Gate, Settings
from router.store import Action, ModelVersion


@dataclass
class Decision:
    promote: bool
    reason: str
    macro_f1_change: float | None = None
    drops: dict = field(default_factory=dict)  # department -> F1 change, for those that refused it


HELD_OUT = "held_out"      # a refit version's folder keeps its held-out fit here, for the gate
SEEN = "trained_ids.txt"   # the tickets that fit (and its calibration) saw, one id a line


def score(engine, mv: ModelVersion, texts: list[str], cfg: Settings, ids: list[str] | None = None):
    """Scores of version `mv` where it has not trained: (probabilities, its stored temperature
    applied; out-of-scope score, router/nofit.py; its classes; the positions of `texts` scored).
    The model scored is the version's held-out fit (its folder's `held_out/` when the registered
    model was refit on every label, else the registered model itself), and the tickets are those
    of `ids` that fit never saw (`trained_ids.txt`); a version saved before that file existed is
    scored on all of them."""
    folder = Path(mv.path)
    if (folder / HELD_OUT / "meta.json").exists():
        clf = classifier.load(folder / HELD_OUT, cfg)
    else:
        _, clf = registry.load(engine, mv.version, cfg)
    keep = list(range(len(texts)))
    if ids is not None and (folder / SEEN).exists():
        seen = set((folder / SEEN).read_text(encoding="utf-8").splitlines())
        keep = [i for i in keep if ids[i] not in seen]
    proba, ood = nofit.scores(clf, [texts[i] for i in keep])
    return proba, ood, [str(c) for c in clf.classes_], keep


def bootstrap_change(truth, new, old, q: float, metric=None, rounds: int = 300, seed: int = 0) -> float:
    """The `q` quantile of the change (new - old) of `metric(truth, predictions)` (default
    macro-F1 over the held-out labels) over paired bootstrap resamples of the held-out tickets
    (both models judged on the same resampled tickets)."""
    truth, new, old = (np.asarray(x, dtype=object) for x in (truth, new, old))
    if metric is None:
        labels = sorted(set(truth))
        metric = lambda y, p: f1_score(y, p, labels=labels, average="macro", zero_division=0)  # noqa: E731
    rng = np.random.default_rng(seed)
    changes = [metric(truth[i], new[i]) - metric(truth[i], old[i])
               for i in (rng.integers(0, len(truth), len(truth)) for _ in range(rounds))]
    return float(np.quantile(changes, q))


def rate(label: str, what: str):
    """`what` ("f1", "recall" or "precision") of `label` in (truth, predictions), 0 where
    undefined, as `evaluate.report` counts it."""
    def metric(y, p) -> float:
        t, h = y == label, p == label
        hit, n = int((t & h).sum()), {"f1": t.sum() + h.sum(), "recall": t.sum(), "precision": h.sum()}[what]
        return (2 * hit if what == "f1" else hit) / n if n else 0.0
    return metric


def settle(engine, version: str, limits: Gate | None, candidate: dict | None = None,
           current: dict | None = None, paired=None, first: str = "first trained model") -> Decision:
    """Promote registered version `version` or not, and record why. The store's first model is
    promoted with no comparison (`first`: the reason recorded); a later one only with `limits`
    (the [gate] settings: the nightly retrain), when `decide` says so; without, it stays a candidate."""
    if registry.current(engine) is None:
        registry.promote(engine, version, first)
        return Decision(True, first)
    if limits is None:
        return Decision(False, "not gated: stays a candidate")
    decision = decide(candidate, current, limits, paired)
    if decision.promote:
        registry.promote(engine, version, f"gate: {decision.reason}")
    else:
        registry.record(engine, version, Action.kept_candidate, f"gate: {decision.reason}")
    return decision


def decide(candidate: dict, current: dict | None, g: Gate, paired=None) -> Decision:
    """Compare two `evaluate.report` dicts computed on the same tickets, with the limits of `g`
    (the [gate] settings). `paired`: (true labels, candidate's routes, current's routes; `none`
    for no-fit) on those tickets, for the bootstrap. No `current`: promote (there is none, or it
    could not be re-scored: the candidate's report says why under "current")."""
    if current is None:
        unscored = candidate.get("current") or {}
        return Decision(True, f"current model {unscored['version']} could not be re-scored ({unscored['error']})"
                        if "error" in unscored else "no current model to compare with")

    def bound(change: float, limit: float, metric=None) -> float:
        """The change, or its bootstrap bound where the change alone is a drop beyond `limit`."""
        if g.confidence and paired is not None and change < -limit:
            return bootstrap_change(*paired, q=g.confidence, metric=metric)
        return change

    def told(change: float, b: float, digits: int) -> str:
        return f"{change:+.{digits}f}" + (f"; {g.confidence:.0%} bootstrap bound {b:+.{digits}f}" if b != change else "")

    new, old = candidate["macro"]["f1"], current["macro"]["f1"]
    change = new - old
    b = bound(change, g.max_macro_f1_drop)
    head = f"macro-F1 {old:.4f} -> {new:.4f} ({told(change, b, 4)})"
    if b < -g.max_macro_f1_drop:
        return Decision(False, f"{head}: drops more than the allowed {g.max_macro_f1_drop}", change)
    worse, noise = [], []  # drops beyond a limit: refused, or put down to chance by the bootstrap
    n_new, n_old = candidate.get("nofit"), current.get("nofit")
    if n_new and n_old and n_old["support"] >= g.nofit_min_support:
        for m in ("recall", "precision"):
            delta = n_new[m] - n_old[m]
            if delta < -g.max_nofit_drop:
                b = bound(delta, g.max_nofit_drop, rate(nofit.NONE, m))
                (worse if b < -g.max_nofit_drop else noise).append(
                    f"no-fit {m} {n_old[m]:.3f} -> {n_new[m]:.3f} ({told(delta, b, 3)})")
    if worse:
        return Decision(False, f"{head}, but {', '.join(worse)}: more than {g.max_nofit_drop} worse on "
                               f"{n_old['support']} no-fit held-out tickets", change)
    drops = {}
    for d, m in current["per_department"].items():
        delta = candidate["per_department"].get(d, {"f1": 0.0})["f1"] - m["f1"]
        if m["support"] >= g.min_support and delta < -g.max_department_f1_drop:
            b = bound(delta, g.max_department_f1_drop, rate(d, "f1"))
            if b < -g.max_department_f1_drop:
                drops[d] = (delta, b)
            else:
                noise.append(f"{d} F1 {m['f1']:.3f} -> {m['f1'] + delta:.3f} ({told(delta, b, 3)})")
    if drops:
        worst = ", ".join(f"{d} {told(v, b, 3)}" if b == v else f"{d} ({told(v, b, 3)})"
                          for d, (v, b) in sorted(drops.items(), key=lambda kv: kv[1][0])[:5])
        return Decision(False, f"{head}, but F1 fell by more than {g.max_department_f1_drop} for "
                               f"{len(drops)} department(s) with >= {g.min_support} held-out tickets: {worst}",
                        change, {d: round(v, 4) for d, (v, _) in drops.items()})
    return Decision(True, f"{head}; no department with >= {g.min_support} held-out tickets lost more "
                          f"than {g.max_department_f1_drop} F1" + (f"; within noise: {', '.join(noise)}" if noise else ""),
                    change)
