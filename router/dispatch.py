"""Dispatch steps after the model: small functions over one batch's tops, called by routing in order.

Each step takes the batch's tickets and each ticket's top-k [(department, p), ...] (best first)
and returns new tops; what it decided goes into the ticket's `Info` (written to the output):
  - `jurisdiction`: the places a ticket names move a territorial matter to their district
    (router/places.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from router.places import Places


@dataclass
class Info:
    """What the dispatch steps found for one ticket (output fields)."""
    by: str = "model"                    # model | places | rule:<id> | emergency-rule
    place: str | None = None             # the first gazetteer name found
    district: str | None = None          # its district, when the names agree on one
    ambiguous: dict[str, list[str]] = field(default_factory=dict)  # name -> districts, never guessed

    def fields(self) -> dict:
        out = {"by": self.by, "place": self.place, "district": self.district}
        if self.ambiguous:
            out["place_ambiguous"] = self.ambiguous
        return out


def jurisdiction(places: Places, batch, tops: list, infos: list[Info], proba=None, classes=None) -> list:
    """Territorial matters go to the district their places name (router/places.py); every ticket's
    `place` and `district` are filled in."""
    out = []
    for i, (t, top) in enumerate(zip(batch, tops)):
        f = places.find(t.text, t.title)
        infos[i].place, infos[i].district, infos[i].ambiguous = f.place, f.district, f.ambiguous
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
