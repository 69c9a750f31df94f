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
    is lower by more than `max_nofit_drop`.
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
    drops: dict = field(default_factory=dict)  # department -> F1 change, for those over the limit


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


def bootstrap_change(truth, new, old, q: float, rounds: int = 300, seed: int = 0) -> float:
    """The `q` quantile of the macro-F1 change (new - old) over paired bootstrap resamples of
    the held-out tickets (both models judged on the same resampled tickets)."""
    truth, new, old = (np.asarray(x, dtype=object) for x in (truth, new, old))
    labels = sorted(set(truth))
    rng = np.random.default_rng(seed)
    f1 = lambda y, p: f1_score(y, p, labels=labels, average="macro", zero_division=0)  # noqa: E731
    changes = [f1(truth[i], new[i]) - f1(truth[i], old[i])
               for i in (rng.integers(0, len(truth), len(truth)) for _ in range(rounds))]
    return float(np.quantile(changes, q))


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
    (the [gate] settings). `paired`: (true labels,
    candidate's predictions, current's predictions) on those tickets, for the bootstrap. No
    `current`: promote (there is none, or it could not be re-scored: the candidate's report says
    why under "current")."""
    if current is None:
        unscored = candidate.get("current") or {}
        return Decision(True, f"current model {unscored['version']} could not be re-scored ({unscored['error']})"
                        if "error" in unscored else "no current model to compare with")
    new, old = candidate["macro"]["f1"], current["macro"]["f1"]
    change = new - old
    optimistic = change
    if g.confidence and paired is not None and change < -g.max_macro_f1_drop:
        optimistic = bootstrap_change(*paired, q=g.confidence)
    drops = {}
    for d, m in current["per_department"].items():
        if m["support"] < g.min_support:
            continue
        delta = candidate["per_department"].get(d, {"f1": 0.0})["f1"] - m["f1"]
        if delta < -g.max_department_f1_drop:
            drops[d] = round(delta, 4)
    head = f"macro-F1 {old:.4f} -> {new:.4f} ({change:+.4f}" + (
        f"; {g.confidence:.0%} bootstrap bound {optimistic:+.4f})" if optimistic != change else ")")
    if optimistic < -g.max_macro_f1_drop:
        return Decision(False, f"{head}: drops more than the allowed {g.max_macro_f1_drop}", change, drops)
    worse = _nofit_drops(candidate, current, g.max_nofit_drop, g.nofit_min_support)
    if worse:
        return Decision(False, f"{head}, but {worse}", change, drops)
    if drops:
        worst = ", ".join(f"{d} {v:+.3f}" for d, v in sorted(drops.items(), key=lambda kv: kv[1])[:5])
        return Decision(False, f"{head}, but F1 fell by more than {g.max_department_f1_drop} for "
                               f"{len(drops)} department(s) with >= {g.min_support} held-out tickets: {worst}",
                        change, drops)
    return Decision(True, f"{head}; no department with >= {g.min_support} held-out tickets lost more "
                          f"than {g.max_department_f1_drop} F1", change)


def _nofit_drops(candidate: dict, current: dict, max_drop: float, min_support: int) -> str:
    """Why the candidate is worse at "no department fits" ('' when it is not)."""
    new, old = candidate.get("nofit"), current.get("nofit")
    if not new or not old or old["support"] < min_support:
        return ""
    worse = [f"no-fit {m} {old[m]:.3f} -> {new[m]:.3f}" for m in ("recall", "precision")
             if new[m] < old[m] - max_drop]
    return (", ".join(worse) + f" (more than {max_drop} worse on {old['support']} no-fit held-out tickets)") \
        if worse else ""
