"""Jurisdiction from places: the catalogue's gazetteer (each district's `places`) found in a ticket.

A district/county/zone government lists its streets, towns, villages, estates and roads as
`places`; its short name ("临江区" from 临江区人民政府) counts as a place too. `Places.find` scans
title + text with one compiled alternation, longest name first at each position (so 石桥街道 wins
over 石桥街), and returns the names found with their districts. A name listed by two districts is
ambiguous: it is reported (`Found.ambiguous`), never resolved to one of them; so are names of
two different districts in one ticket.

Combining with the model (`territorial`): a ticket whose best department is a territorial one (a
district government: it handles matters by where they are) goes to the district its places name,
with confidence = the model's probability that it is a district matter at all (the sum over the
territorial departments); a functional department's ticket keeps its department; a ticket with
no place, or an ambiguous one, keeps the model's answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from router.catalog import Catalog

GOV_SUFFIXES = ("人民政府", "管理委员会")


def short_name(name: str) -> str | None:
    """临江区人民政府 -> 临江区, 青石县人民政府 -> 青石县; None for other names."""
    for suffix in GOV_SUFFIXES:
        if name.endswith(suffix):
            short = name[: -len(suffix)]
            return short if short.endswith(("区", "县", "市")) else None
    return None


@dataclass
class Found:
    """The places of one ticket: `place`/`district` when they agree on one district."""
    names: list[str] = field(default_factory=list)           # matched names, in text order
    districts: list[str] = field(default_factory=list)       # their districts (sorted, distinct)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)  # name -> districts when not one
    spans: list[tuple[int, int]] = field(default_factory=list)     # offsets in the scanned string

    @property
    def district(self) -> str | None:
        return self.districts[0] if len(self.districts) == 1 and not self.ambiguous else None

    @property
    def place(self) -> str | None:
        return self.names[0] if self.names else None


class Places:
    """The gazetteer of a catalogue's territorial departments, compiled once."""

    def __init__(self, catalog: Catalog):
        where: dict[str, set[str]] = {}
        for d in catalog.active:
            names = list(d.places)
            if d.places and (s := short_name(d.name)):
                names.append(s)
            for n in names:
                where.setdefault(n, set()).add(d.id)
        self.where = {n: sorted(ids) for n, ids in where.items()}
        self.territorial = {d.id for d in catalog.active if d.territorial}
        alts = sorted(self.where, key=lambda n: (-len(n), n))
        self.pattern = re.compile("|".join(map(re.escape, alts))) if alts else None

    def find(self, text: str, title: str | None = None) -> Found:
        """The places named in `title` + `text` (spans index `scanned(text, title)`)."""
        out = Found()
        if self.pattern is None:
            return out
        districts: set[str] = set()
        for m in self.pattern.finditer(scanned(text, title)):
            name, ids = m.group(), self.where[m.group()]
            out.spans.append(m.span())
            if name not in out.names:
                out.names.append(name)
            if len(ids) > 1:
                out.ambiguous[name] = ids
            else:
                districts.add(ids[0])
        out.districts = sorted(districts)
        if len(districts) > 1:  # two districts named: reported, not guessed
            for n in out.names:
                out.ambiguous.setdefault(n, self.where[n])
        return out

    def resolve(self, found: Found, top: list[tuple[str, float]], proba_row=None, classes=None
                ) -> list[tuple[str, float]] | None:
        """The new top when the places decide (a territorial best department, one district named
        that is not it), else None. Confidence: the model's probability of a territorial matter."""
        dist = found.district
        if dist is None or not top or top[0][0] not in self.territorial or top[0][0] == dist:
            return None
        conf = top[0][1]
        if proba_row is not None and classes is not None:
            conf = float(sum(p for c, p in zip(classes, proba_row) if c in self.territorial))
        rest = [(d, p) for d, p in top if d != dist][: len(top) - 1]
        return [(dist, min(1.0, conf))] + rest


def scanned(text: str, title: str | None) -> str:
    """What the resolver reads: the title, a line break, the text (as the dispatcher reads it)."""
    return f"{title}\n{text}" if title else text
