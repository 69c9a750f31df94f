"""Dispatch steps after the model: small functions over one batch's tops, called by routing in order.

Each step takes the batch's tickets and each ticket's top-k [(department, p), ...] (best first)
and returns new tops; what it decided goes into the ticket's `Info` (written to the output):
  - `jurisdiction`: the places a ticket names move a territorial matter to their district
    (router/places.py);
  - `legal_channel`: a ticket naming a legal channel (router/emergency.legal) goes there;
  - `catalogue_rules`: the centre's rules (router/rules.py) win over the model and the places;
  - `emergencies` (last: nothing after it can switch it off): the rule layer's emergency line
    (router/emergency.py) wins over the model and every other step; the model's own emergency and
    legal-channel answers count from `[emergency] model_min` / `legal_min`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from router import emergency
from router.catalog import LEGAL, is_emergency
from router.places import Places


@dataclass
class Info:
    """What the dispatch steps found for one ticket (output fields)."""
    by: str = "model"                    # model | places | legal-rule | rule:<id> | emergency-rule
    place: str | None = None             # the first gazetteer name found
    names: list[str] = field(default_factory=list)  # every gazetteer name found
    district: str | None = None          # its district, when the names agree on one
    ambiguous: dict[str, list[str]] = field(default_factory=dict)  # name -> districts, never guessed
    rule_id: int | None = None           # the catalogue rule that decided
    conflict: list[int] | None = None    # equally specific rules naming other departments
    guard: str | None = None             # a rule kept from sending a functional matter to a street office

    def fields(self) -> dict:
        out = {"by": self.by, "place": self.place, "district": self.district}
        if self.ambiguous:
            out["place_ambiguous"] = self.ambiguous
        if self.conflict:
            out["rule_conflict"] = self.conflict
        if self.guard:
            out["guard"] = self.guard
        return out


def jurisdiction(places: Places, batch, tops: list, infos: list[Info], proba=None, classes=None) -> list:
    """Territorial matters go to the district their places name (router/places.py); every ticket's
    `place` and `district` are filled in."""
    out = []
    for i, (t, top) in enumerate(zip(batch, tops)):
        f = places.find(t.text, t.title)
        infos[i].place, infos[i].district, infos[i].ambiguous, infos[i].names = f.place, f.district, f.ambiguous, f.names
        new = places.resolve(f, top, None if proba is None else proba[i], classes)
        if new is not None and infos[i].by == "model":
            infos[i].by = "places"
            top = new
        out.append(top)
    return out


def reweigh(proba: np.ndarray, classes: list[str], tops: list, before: list) -> np.ndarray:
    """Probabilities that agree with the steps' tops, for the queue (which reads confidence and margins
    from them): a ticket whose best department a step changed gets that department's new confidence,
    the rest of the mass spread over the others in the model's proportions."""
    pos = {c: j for j, c in enumerate(classes)}
    out = proba
    for i, (top, old) in enumerate(zip(tops, before)):
        if top[0] == old[0] or top[0][0] not in pos:
            continue
        if out is proba:
            out = proba.copy()
        j, conf = pos[top[0][0]], top[0][1]
        rest = out[i].copy()
        rest[j] = 0.0
        total = rest.sum()
        out[i] = rest * ((1.0 - conf) / total) if total > 0 else rest
        out[i, j] = conf
    return out


def legal_channel(batch, tops: list, infos: list[Info]) -> list:
    """A ticket naming a legal channel (router/emergency.legal) goes there, confidence 1 (by `legal-rule`)."""
    out = []
    for i, (t, top) in enumerate(zip(batch, tops)):
        if emergency.legal(t.text, t.title):
            infos[i].by = "legal-rule"
            top = [(LEGAL, 1.0)] + [x for x in top if x[0] != LEGAL][: max(len(top) - 1, 0)]
        out.append(top)
    return out


def catalogue_rules(rules, catalog, batch, tops: list, infos: list[Info], model_tops: list) -> list:
    """The most specific matching rule's department leads (confidence 1, by `rule:<id>`), unless it is a
    street office and the matter is functional (the model's best department is not territorial)."""
    if not rules.rules:
        return tops
    out = []
    for i, (t, top) in enumerate(zip(batch, tops)):
        m = rules.match(t.text, t.title, infos[i].district)
        if m.rule is not None:
            target = catalog.by_id.get(m.rule.department)
            matter = catalog.by_id.get(model_tops[i][0][0]) if model_tops[i] else None
            if target is not None and target.level == "street" and not (matter and matter.territorial):
                infos[i].guard = f"rule {m.rule.id} not applied: a functional matter never goes to a street office"
            else:
                infos[i].by, infos[i].rule_id, infos[i].conflict = f"rule:{m.rule.id}", m.rule.id, m.conflict
                top = [(m.rule.department, 1.0)] + [x for x in top if x[0] != m.rule.department][: max(len(top) - 1, 0)]
        out.append(top)
    return out


def emergencies(batch, tops: list, infos: list[Info], model_min: float = 0.5, legal_min: float = 0.0) -> list:
    """A ticket the rule layer calls an emergency goes to its line, confidence 1, the model's
    suggestions after it. The model's own reserved answers count from a minimum (they are learnt from
    few labels and over-predicted): an emergency line from `model_min`, the legal channel from
    `legal_min`; below it the best other suggestion leads (with top_k 1 there is none: it stays)."""
    def weak(x):
        return is_emergency(x[0]) and x[1] < model_min or x[0] == LEGAL and x[1] < legal_min

    out = []
    for i, (t, top) in enumerate(zip(batch, tops)):
        ln = emergency.line(t.text, t.title)
        if ln is not None:
            infos[i].by = "emergency-rule"
            top = [(ln, 1.0)] + [(d, p) for d, p in top if d != ln][: max(len(top) - 1, 0)]
        elif top and weak(top[0]):
            top = [x for x in top if not weak(x)] + [x for x in top if weak(x)]
        out.append(top)
    return out


def urgent_first(n: int, tops: list) -> list[int]:
    """Positions 0..n-1 with the emergencies first (each group in input order): the output order."""
    return sorted(range(n), key=lambda i: not is_emergency(tops[i][0][0]))
