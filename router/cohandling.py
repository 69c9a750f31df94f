"""Co-handling (主办 / 协办): which departments to suggest beside the routed one.

A label may name co-handling departments (`Label.co_departments`: imported from history's
`co_departments`, added by dispatchers in the app, set by a lead on a dispute). `router classify`
suggests a co-handler for a ticket when the model's probability of that department is strong
(>= [classify] co_min_p) and the pair (routed department, that department) co-occurs in the
store's labels at least [classify] co_min_pairs times. The routed department stays the one
label that the metrics score; bench/co_handling.py measures the suggestions.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

from sqlmodel import Session, select

from router.catalog import NONE
from router.store import Label

Pairs = Counter  # frozenset({lead, co}) -> labels naming both


def pairs(engine) -> Pairs:
    """How often each two departments handle one ticket together, over the labels that stand."""
    out: Pairs = Counter()
    with Session(engine) as s:
        for dept, co in s.exec(select(Label.department, Label.co_departments).where(
                Label.undone == False, Label.co_departments != None)):  # noqa: E711,E712
            out.update(count(dept, co or []))
    return out


def count(dept: str | None, co: Iterable[str]) -> Pairs:
    return Counter(frozenset((dept, c)) for c in co if dept and c != dept)


def suggest(top: Sequence[tuple[str, float]], known: Pairs, min_p: float, min_pairs: int) -> list[tuple[str, float]]:
    """Co-handlers for a ticket routed to top[0]: the other suggestions at least `min_p` likely
    whose pair with it co-occurs at least `min_pairs` times in the labels."""
    if not top or top[0][0] == NONE:
        return []
    lead = top[0][0]
    return [(d, p) for d, p in top[1:] if d != NONE and p >= min_p and known[frozenset((lead, d))] >= min_pairs]


def parse(value, lookup) -> tuple[list[str], str | None]:
    """`co_departments` of an input line (a JSON list, or names/ids separated by , ; 、 | in a CSV
    cell) as department ids; (ids, the first unknown name or None)."""
    if value is None or value == "":
        return [], None
    items = value if isinstance(value, list) else [x for x in
                                                   str(value).replace("；", ";").replace("，", ",").replace("、", ",")
                                                   .replace("|", ",").replace(";", ",").split(",")]
    out = []
    for x in items:
        x = str(x).strip()
        if not x:
            continue
        d = lookup(x)
        if d is None:
            return [], x
        out.append(d)
    return list(dict.fromkeys(out)), None
