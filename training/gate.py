"""The promotion gate: a candidate replaces the current model only when it is not worse.

Both models are scored on the SAME held-out tickets (the current one is re-scored, never
compared through its old report). The candidate is refused when
  - its macro-F1 is lower than the current model's by more than `max_macro_f1_drop`, or
  - any department with at least `min_support` held-out tickets loses more than
    `max_department_f1_drop` F1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from router import registry
from router.catalog import Catalog
from router.store import ModelVersion
from training import evaluate


@dataclass
class Decision:
    promote: bool
    reason: str
    macro_f1_change: float | None = None
    drops: dict = field(default_factory=dict)  # department -> F1 change, for those over the limit


def score(engine, mv: ModelVersion, texts: list[str]):
    """Probabilities of model version `mv` (its stored temperature applied) and its classes."""
    _, clf = registry.load(engine, mv.version)
    return clf.predict_proba(texts), [str(c) for c in clf.classes_]


def rescore(engine, mv: ModelVersion, texts: list[str], labels: list[str], catalog: Catalog | None = None) -> dict:
    """The report of model version `mv` on these tickets."""
    proba, classes = score(engine, mv, texts)
    return evaluate.report(proba, labels, classes, catalog)


def decide(candidate: dict, current: dict | None, max_macro_f1_drop: float = 0.005,
           max_department_f1_drop: float = 0.05, min_support: int = 10, **_) -> Decision:
    """Compare two `evaluate.report` dicts computed on the same tickets."""
    if current is None:
        return Decision(True, "no current model to compare with")
    new, old = candidate["macro"]["f1"], current["macro"]["f1"]
    change = new - old
    drops = {}
    for d, m in current["per_department"].items():
        if m["support"] < min_support:
            continue
        delta = candidate["per_department"].get(d, {"f1": 0.0})["f1"] - m["f1"]
        if delta < -max_department_f1_drop:
            drops[d] = round(delta, 4)
    head = f"macro-F1 {old:.4f} -> {new:.4f} ({change:+.4f})"
    if change < -max_macro_f1_drop:
        return Decision(False, f"{head}: drops more than the allowed {max_macro_f1_drop}", change, drops)
    if drops:
        worst = ", ".join(f"{d} {v:+.3f}" for d, v in sorted(drops.items(), key=lambda kv: kv[1])[:5])
        return Decision(False, f"{head}, but F1 fell by more than {max_department_f1_drop} for "
                               f"{len(drops)} department(s) with >= {min_support} held-out tickets: {worst}",
                        change, drops)
    return Decision(True, f"{head}; no department with >= {min_support} held-out tickets lost more "
                          f"than {max_department_f1_drop} F1", change)


def apply(engine, version: str, decision: Decision) -> bool:
    """Promote (atomically) or record why the candidate was kept; returns whether promoted."""
    if decision.promote:
        registry.promote(engine, version, f"gate: {decision.reason}")
    else:
        registry.record(engine, version, "kept_candidate", f"gate: {decision.reason}")
    return decision.promote
