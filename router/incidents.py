"""Incidents (并单): repeated appeals about one matter, grouped as they are routed.

A ticket joins an incident when an earlier ticket (in the store or earlier in its batch) names one
of the same places (router/places.py), was received within `[incidents] window_days` of it, and
reads alike: cosine of their character 1-3-gram vectors (router/strategies.featurize) at least
`[incidents] similarity`. It repeats its most similar such ticket (`duplicate_of`) and joins the
incident (`incident_id`) of the tickets it reads like, opened when none of them had one; those of
them in no incident yet (earlier in the batch or from an earlier run) join it too; when it reads like
tickets of two incidents, they are merged into the older one. Tickets naming
no place are never grouped (too many "停水了" are different matters).

The queue (router/order.py) keeps one item per incident: a member whose incident already has an
open item gets none (`merged`); one decision on that item settles every undecided member
(labeling/actions.decide), and a member can be split out (labeling/actions.split).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import update
from sqlmodel import Session, select

from router.store import Incident, Ticket
from router.strategies import featurize

SEP = "、"


def _aware(t: datetime | None) -> datetime | None:
    return t if t is None or t.tzinfo else t.replace(tzinfo=timezone.utc)


def link(session: Session, ids: list[str], texts: list[str], names: list[list[str]], districts: list[str | None],
         received: list[datetime | None], departments: list[str], window_days: float, similarity: float,
         limit: int = 20000) -> dict[str, tuple[int, str]]:
    """Link the batch's stored tickets `ids` to incidents (writes Ticket.incident_id/duplicate_of and the
    Incident rows); returns ticket id -> (incident id, duplicate_of) for those that joined one."""
    window = timedelta(days=window_days)
    at = [_aware(t) for t in received]
    todo = [i for i in range(len(ids)) if names[i] and at[i] is not None]
    if not todo:
        return {}
    lo, hi = min(at[i] for i in todo) - window, max(at[i] for i in todo)
    dists = sorted({districts[i] for i in todo if districts[i]})
    places = {n for i in todo for n in names[i]}
    cand = session.exec(
        select(Ticket.id, Ticket.text, Ticket.title, Ticket.places, Ticket.received_at, Ticket.incident_id)
        .where(Ticket.places.is_not(None), Ticket.received_at >= lo, Ticket.received_at <= hi,
               Ticket.id.not_in(ids), (Ticket.district.in_(dists)) | (Ticket.district.is_(None)))
        .order_by(Ticket.received_at.desc()).limit(limit)).all()
    cand = [c for c in cand if places & set(c[3].split(SEP))]
    from router.classifier import model_input

    c_ids = [c[0] for c in cand]
    c_names = [set(c[3].split(SEP)) for c in cand]
    c_at = [_aware(c[4]) for c in cand]
    c_inc = {c[0]: c[5] for c in cand}
    when = dict(zip(c_ids, c_at)) | {ids[x]: at[x] for x in todo}
    f_batch = featurize([texts[i] for i in todo])
    sim_c = (f_batch @ featurize([model_input(c[1], c[2]) for c in cand]).T).toarray() if cand else \
        np.zeros((len(todo), 0))
    sim_b = (f_batch @ f_batch.T).toarray()
    out: dict[str, tuple[int, str]] = {}
    inc_of = dict(c_inc)                       # ticket id -> incident id, as it grows
    order = sorted(range(len(todo)), key=lambda k: (at[todo[k]], ids[todo[k]]))
    done = []
    alias: dict[int, int] = {}                 # merged incident -> the one it went into

    def find(inc):
        while inc in alias:
            inc = alias[inc]
        return inc

    for k in order:
        i = todo[k]
        hits = [(sim_c[k, j], cid) for j, cid in enumerate(c_ids)
                if sim_c[k, j] >= similarity and c_names[j] & set(names[i]) and abs(at[i] - c_at[j]) <= window]
        hits += [(sim_b[k, k2], ids[todo[k2]]) for k2 in done                  # earlier tickets of this batch
                 if sim_b[k, k2] >= similarity and set(names[todo[k2]]) & set(names[i])
                 and abs(at[i] - at[todo[k2]]) <= window]
        done.append(k)
        if not hits:
            continue
        best = max(hits)[1]
        loose = sorted({t for _, t in hits if inc_of.get(t) is None})   # matches in no incident yet: pulled in
        joined = sorted({find(inc_of[t]) for _, t in hits if inc_of.get(t) is not None})
        if joined:
            inc = joined[0]
            for other in joined[1:]:           # the ticket reads like two incidents: they are one
                alias[other] = inc
                session.execute(update(Ticket).where(Ticket.incident_id == other).values(incident_id=inc))
                gone = session.get(Incident, other)
                keep = session.get(Incident, inc)
                keep.size += gone.size
                keep.started_at = min(_aware(keep.started_at), _aware(gone.started_at))
                keep.last_at = max(_aware(keep.last_at), _aware(gone.last_at))
                session.add(keep)
                session.delete(gone)
                for t, v in list(out.items()):
                    if v[0] == other:
                        out[t] = (inc, v[1])
        else:                                   # the earlier tickets start an incident
            j = next((todo[k2] for k2 in done if ids[todo[k2]] == best), None)
            src = j if j is not None else i
            first = Incident(place=names[src][0], district=districts[src], department=departments[src], size=0,
                             started_at=at[i], last_at=at[i])
            session.add(first)
            session.flush()
            inc = first.id
        row = session.get(Incident, inc)
        for t in loose:
            inc_of[t] = inc
            out.setdefault(t, (inc, None))
            session.execute(update(Ticket).where(Ticket.id == t).values(incident_id=inc))
            row.size += 1
            row.started_at = min(_aware(row.started_at), when[t])
            row.last_at = max(_aware(row.last_at), when[t])
        inc_of[ids[i]] = inc
        out[ids[i]] = (inc, best)
        session.execute(update(Ticket).where(Ticket.id == ids[i]).values(incident_id=inc, duplicate_of=best))
        row.size += 1
        row.last_at = max(_aware(row.last_at) or at[i], at[i])
        session.add(row)
    return out


def members(session: Session, incident_id: int) -> list[Ticket]:
    return list(session.exec(select(Ticket).where(Ticket.incident_id == incident_id).order_by(Ticket.received_at, Ticket.id)))


def queue_state(session: Session, ids: list[str]) -> tuple[dict[str, int], set[int]]:
    """(ticket id -> incident id for the members among `ids`, the incidents that have an open queue item)."""
    from router.store import ItemStatus, QueueItem

    incident_of = dict(session.exec(select(Ticket.id, Ticket.incident_id).where(
        Ticket.id.in_(ids), Ticket.incident_id.is_not(None))).all())
    if not incident_of:
        return {}, set()
    busy = set(session.exec(select(Ticket.incident_id).join(QueueItem, QueueItem.ticket_id == Ticket.id).where(
        Ticket.incident_id.in_(set(incident_of.values())), QueueItem.status == ItemStatus.pending)))
    return incident_of, busy
