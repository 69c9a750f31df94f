"""Incidents (并单): repeated appeals about one matter, grouped as they are routed.

A ticket joins an incident when an earlier ticket (in the store or earlier in its batch) names one
of the same places (router/places.py), was received within `[incidents] window_days` of it, and
reads alike: cosine of their character 1-3-gram vectors (router/strategies.featurize) weighted by
inverse document frequency, at least `[incidents] similarity` (router/similarity.py, the measure the
queue's near-duplicate check uses too). The frequencies are counted over the
latest `REFERENCE` stored tickets and the run's tickets (`similarity.Idf`): the greetings and set phrases
every long message repeats (您好, 我也知道你们工作忙, 请尽快处理) weigh nothing, so two unrelated long
tickets no longer read alike (bench/incidents.py, the realistic case). It repeats its most similar such ticket (`duplicate_of`) and joins the
incident (`incident_id`) of the tickets it reads like, opened when none of them had one; those of
them in no incident yet (earlier in the batch or from an earlier run) join it too; when it reads like
tickets of two incidents, they are merged into the older one. Tickets naming
no place are never grouped (too many "停水了" are different matters).

Cost: only tickets naming places of one district are compared (one sparse product per district, over
the batch's n-grams only), a routing run featurizes each stored ticket once (`Window`), and a batch's
writes go out as a few bulk statements.

The queue (router/order.py) keeps one item per incident: a member whose incident already has an
open item gets none (`merged`), and the extra items a merge or a pulled-in ticket brings are closed
(`one_item`); one decision on that item settles every undecided member
(labeling/actions.decide), and a member can be split out (labeling/actions.split).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import bindparam, update
from sqlmodel import Session, select

from router.similarity import Idf
from router.similarity import weighted as _weighted
from router.store import Incident, Ticket
from router.strategies import featurize

SEP = "、"


def _aware(t: datetime | None) -> datetime | None:
    return t if t is None or t.tzinfo else t.replace(tzinfo=timezone.utc)


class Window:
    """Features of the stored tickets linking compares with, kept for a routing run: each ticket's
    row is computed once, however many batches (rows of one growing CSR matrix). `places`: the
    gazetteer, to compare the tickets of one district together (else those of one place)."""

    def __init__(self, places=None, idf: Idf | None = None):
        # place -> its district (router/places.Places): the tickets of one district are compared together
        self.area = {n: ds[0] for n, ds in places.where.items() if len(ds) == 1} if places is not None else {}
        self.pos: dict[str, int] = {}
        self.data, self.indices, self.indptr = [], [], [np.zeros(1, np.int64)]
        self.matrix = None
        self.weights = idf if idf is not None else Idf()   # the run's n-gram weights (router/similarity.py)

    def idf(self, session: Session, ids: list[str], f) -> np.ndarray:
        """The n-grams' weights (router/similarity.Idf), the batch's tickets `ids` (features `f`) counted in."""
        return self.weights.weights(session, ids, f)

    def add(self, ids: list[str], f) -> None:
        new = [k for k, t in enumerate(ids) if t not in self.pos]
        if not new:
            return
        f = f[new] if len(new) < len(ids) else f
        for k in new:
            self.pos[ids[k]] = len(self.pos)
        self.data.append(f.data)
        self.indices.append(f.indices)
        self.indptr.append(f.indptr[1:] + self.indptr[-1][-1])
        self.matrix = None

    def rows(self, session: Session, ids: list[str]):
        """The feature matrix holding `ids` (read and featurized when not seen yet) and their rows in it."""
        from scipy import sparse

        from router.classifier import model_input

        missing = [t for t in ids if t not in self.pos]
        if missing:
            got = {}
            for k in range(0, len(missing), 5000):
                got.update((i, model_input(t, h)) for i, t, h in session.exec(
                    select(Ticket.id, Ticket.text, Ticket.title).where(Ticket.id.in_(missing[k:k + 5000]))))
            self.add(missing, featurize([got[t] for t in missing]))
        if self.matrix is None:
            self.data, self.indices = [np.concatenate(self.data)], [np.concatenate(self.indices)]
            self.indptr = [np.concatenate(self.indptr)]
            self.matrix = sparse.csr_matrix((self.data[0], self.indices[0], self.indptr[0]),
                                            shape=(len(self.pos), 1 << 20))
        return self.matrix, np.array([self.pos[t] for t in ids], dtype=np.int64)


def _compact(X, lut: np.ndarray, width: int):
    """`X` with its columns renumbered by `lut` (-1: dropped): a narrow matrix multiplies faster."""
    from scipy import sparse

    c = lut[X.indices]
    keep = c >= 0
    indptr = np.concatenate(([0], np.cumsum(keep)))[X.indptr]
    return sparse.csr_matrix((X.data[keep], c[keep], indptr), shape=(X.shape[0], width))


def _incidence(names: list[list[str]], index: dict[str, int]):
    """Ticket x place: 1 where the ticket names the place (places not in `index` left out)."""
    from scipy import sparse

    cols = [[index[n] for n in dict.fromkeys(ns) if n in index] for ns in names]
    indptr = np.cumsum([0] + [len(c) for c in cols])
    flat = np.fromiter((c for cs in cols for c in cs), np.int32, int(indptr[-1]))
    return sparse.csr_matrix((np.ones(len(flat), np.float32), flat, indptr), shape=(len(names), len(index)))


def _pairs(groups: dict[str, tuple[list[int], list[int]]], fa, fb, ta: np.ndarray, tb: np.ndarray,
           na, nb, window: float, similarity: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, cosine) of the pairs of tickets a and b (rows of `fa`, of `fb`) that name one place (`na`,
    `nb`: their places), were received within `window` seconds and read alike. Only tickets of one group
    (`groups`: an area -> (a's, b's)) are compared."""
    out_a, out_b, out_s = [], [], []
    for ra, rb in groups.values():
        if not ra or not rb:
            continue
        ra, rb = np.asarray(ra), np.asarray(rb)
        s = (fa[ra] @ fb[rb].T).toarray()
        ok = (s >= similarity) & (np.abs(ta[ra][:, None] - tb[rb][None, :]) <= window)
        ok &= (na[ra] @ nb[rb].T).toarray() > 0
        i, j = np.nonzero(ok)
        out_a.append(ra[i])
        out_b.append(rb[j])
        out_s.append(s[i, j])
    if not out_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    a, b, s = np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_s)
    _, first = np.unique(a * (len(tb) + 1) + b, return_index=True)   # a pair naming two places: once
    return a[first], b[first], s[first]


NEW = 1 << 62  # provisional ids of the incidents a batch starts (link), above every stored id


def link(session: Session, ids: list[str], texts: list[str], names: list[list[str]], districts: list[str | None],
         received: list[datetime | None], departments: list[str], window_days: float, similarity: float,
         limit: int = 20000, cache: Window | None = None) -> dict[str, tuple[int, str]]:
    """Link the batch's tickets `ids` to incidents (writes Ticket.incident_id/duplicate_of and the
    Incident rows); returns ticket id -> (incident id, duplicate_of) for those that joined one. The batch's
    tickets need not be stored yet: router/routing.py links before inserting them (with the returned
    values), so every comparison runs before the transaction's first write takes SQLite's write lock. `cache`:
    the routing run's `Window` (features of the stored tickets compared with)."""
    window = timedelta(days=window_days)
    at = [_aware(t) for t in received]
    todo = [i for i in range(len(ids)) if names[i] and at[i] is not None]
    if not todo:
        return {}
    cache = cache if cache is not None else Window()
    lo, hi = min(at[i] for i in todo) - window, max(at[i] for i in todo)
    dists = sorted({districts[i] for i in todo if districts[i]})
    places = {n for i in todo for n in names[i]}
    cand = session.exec(
        select(Ticket.id, Ticket.places, Ticket.received_at, Ticket.incident_id)
        .where(Ticket.places.is_not(None), Ticket.received_at >= lo, Ticket.received_at <= hi,
               Ticket.id.not_in(ids), (Ticket.district.in_(dists)) | (Ticket.district.is_(None)))
        .order_by(Ticket.received_at.desc()).limit(limit)).all()
    c_names = [c[1].split(SEP) for c in cand]
    keep = [j for j, n in enumerate(c_names) if places.intersection(n)]
    cand, c_names = [cand[j] for j in keep], [c_names[j] for j in keep]
    c_ids = [c[0] for c in cand]
    c_at = [_aware(c[2]) for c in cand]
    when = dict(zip(c_ids, c_at)) | {ids[x]: at[x] for x in todo}
    f_batch = featurize([texts[i] for i in todo])
    cache.add([ids[i] for i in todo], f_batch)   # the next batches compare with these
    idf = cache.idf(session, [ids[i] for i in todo], f_batch)
    # only the batch's n-grams count in a cosine with a batch ticket: the others' columns (and those of
    # weight 0) are dropped
    cols = np.unique(f_batch.indices)
    cols = cols[idf[cols] > 0]
    lut = np.full(f_batch.shape[1], -1, np.int32)
    lut[cols] = np.arange(len(cols), dtype=np.int32)
    f_small = _compact(_weighted(f_batch, idf), lut, len(cols))
    t_batch = np.array([at[i].timestamp() for i in todo])
    t_cand = np.array([t.timestamp() for t in c_at])
    # area (a place's district, `cache.area`) -> (batch rows, candidate rows): tickets naming a place
    # of one area are compared, one sparse product per area; the pairs that share no place are dropped
    area = cache.area.get
    groups: dict[str, tuple[list[int], list[int]]] = {}
    for k, i in enumerate(todo):
        for g in dict.fromkeys(area(n, n) for n in names[i]):
            groups.setdefault(g, ([], []))[0].append(k)
    for j, ns in enumerate(c_names):
        for g in dict.fromkeys(area(n, n) for n in ns):
            if g in groups:
                groups[g][1].append(j)
    index = {n: x for x, n in enumerate(sorted(places))}
    n_batch = _incidence([names[i] for i in todo], index)
    secs = window.total_seconds()
    hits_c: dict[int, list[tuple[float, int]]] = {}
    if cand:
        m, rows = cache.rows(session, c_ids)
        a, b, s = _pairs(groups, f_small, _compact(_weighted(m[rows], idf), lut, len(cols)), t_batch, t_cand,
                         n_batch, _incidence(c_names, index), secs, similarity)
        for k, j, v in zip(a.tolist(), b.tolist(), s.tolist()):
            hits_c.setdefault(k, []).append((v, j))
    a, b, s = _pairs({g: (r[0], r[0]) for g, r in groups.items()}, f_small, f_small, t_batch, t_batch,
                     n_batch, n_batch, secs, similarity)
    hits_b: dict[int, list[tuple[float, int]]] = {}
    for k, k2, v in zip(a.tolist(), b.tolist(), s.tolist()):
        if k != k2:
            hits_b.setdefault(k, []).append((v, k2))

    out: dict[str, tuple[int, str]] = {}
    inc_of = {c[0]: c[3] for c in cand}        # ticket id -> incident id, as it grows
    order = sorted(range(len(todo)), key=lambda k: (at[todo[k]], ids[todo[k]]))
    done: set[int] = set()
    alias: dict[int, int] = {}                 # merged incident -> the one it went into
    rows_of: dict[int, Incident] = {}          # the incidents touched, read once
    state: dict[int, list] = {}                # ... their [size, started_at, last_at] as they grow
    gone_rows: list[Incident] = []             # stored ones merged into another
    merged: list[int] = []                     # ... their ids (their stored tickets move at the end)
    n_new = 0                                  # incidents this batch started
    writes: dict[str, dict] = {}               # ticket id -> its new incident_id (and duplicate_of)
    # Nothing is written until every ticket is matched (the first write takes SQLite's write lock): an incident
    # this batch starts gets a provisional id from NEW up (above every stored one, so a merge keeps the older)
    # and its row is inserted at the end.

    def find(inc):
        while inc in alias:
            inc = alias[inc]
        return inc

    def grow(inc) -> list:
        if inc not in state:
            r = rows_of[inc] = session.get(Incident, inc)
            state[inc] = [r.size, _aware(r.started_at), _aware(r.last_at)]
        return state[inc]

    for k in order:
        i = todo[k]
        hits = [(v, c_ids[j]) for v, j in hits_c.get(k, ())]
        hits += [(v, ids[todo[k2]]) for v, k2 in hits_b.get(k, ()) if k2 in done]   # earlier tickets of this batch
        done.add(k)
        if not hits:
            continue
        best = max(hits)[1]
        loose = sorted({t for _, t in hits if inc_of.get(t) is None})   # matches in no incident yet: pulled in
        joined = sorted({find(inc_of[t]) for _, t in hits if inc_of.get(t) is not None})
        if joined:
            inc = joined[0]
            for other in joined[1:]:           # the ticket reads like two incidents: they are one
                alias[other] = inc
                gone, keep_ = grow(other), grow(inc)
                keep_[:] = [keep_[0] + gone[0], min(keep_[1], gone[1]), max(keep_[2], gone[2])]
                row = rows_of.pop(other)
                if other < NEW:                 # stored: deleted at the end (no new incident reuses its id)
                    gone_rows.append(row)
                    merged.append(other)
                del state[other]
        else:                                   # the earlier tickets start an incident
            j = next((todo[k2] for k2 in done if ids[todo[k2]] == best), None)
            src = j if j is not None else i
            first = Incident(place=names[src][0], district=districts[src], department=departments[src], size=0,
                             started_at=at[i], last_at=at[i])
            inc = NEW + n_new
            n_new += 1
            rows_of[inc], state[inc] = first, [0, at[i], at[i]]
        st = grow(inc)
        for t in loose:
            inc_of[t] = inc
            out.setdefault(t, (inc, None))
            writes.setdefault(t, {})
            st[:] = [st[0] + 1, min(st[1], when[t]), max(st[2], when[t])]
        inc_of[ids[i]] = inc
        out[ids[i]] = (inc, best)
        writes[ids[i]] = {"dup": best}
        st[0] += 1
        st[2] = max(st[2] or at[i], at[i])
    for inc, (size, started, last) in state.items():
        r = rows_of[inc]
        r.size, r.started_at, r.last_at = size, started, last
    # the writes: the new incidents (their ids), the stored tickets of merged ones, then the tickets' new
    # incidents in two bulk statements (merged incidents resolved)
    new = {inc: r for inc, r in rows_of.items() if inc >= NEW}
    if new:
        session.add_all(new.values())
        session.flush()
    real = {inc: r.id for inc, r in new.items()}

    def final(inc):
        inc = find(inc)
        return real.get(inc, inc)
    for other in merged:
        session.execute(update(Ticket).where(Ticket.incident_id == other).values(incident_id=final(other)))
    out = {t: (final(inc), dup) for t, (inc, dup) in out.items()}
    t = Ticket.__table__
    only = [{"tid": x, "inc": final(inc_of[x])} for x, w in writes.items() if "dup" not in w]
    both = [{"tid": x, "inc": final(inc_of[x]), "dup": w["dup"]} for x, w in writes.items() if "dup" in w]
    conn = session.connection()
    if only:
        conn.execute(update(t).where(t.c.id == bindparam("tid")).values(incident_id=bindparam("inc")), only)
    if both:
        conn.execute(update(t).where(t.c.id == bindparam("tid")).values(incident_id=bindparam("inc"),
                                                                        duplicate_of=bindparam("dup")), both)
    for obj in list(session.identity_map.values()):   # Ticket objects the caller holds see the new values
        if isinstance(obj, Ticket) and obj.id in writes:
            session.expire(obj)
    session.add_all(rows_of.values())
    session.flush()
    for r in gone_rows:
        session.delete(r)
    session.flush()
    one_item(session, {real.get(inc, inc) for inc in state})
    return out


def one_item(session: Session, incidents: set[int]) -> int:
    """One open queue item per incident: a merge, or a stored ticket pulled in, brings the incident a
    second one. The item of highest priority stays; of the others, those nobody holds now are closed
    (`superseded`; one decision on the kept item settles their tickets, and 拆分 gives one back its own),
    except an emergency's and a dispute's. Returns how many were closed."""
    from sqlalchemy import or_

    from router.store import ItemStatus, QueueItem, Reason, now

    if not incidents:
        return 0
    open_ = session.exec(select(QueueItem.id, QueueItem.reason, QueueItem.priority, Ticket.incident_id)
                         .join(Ticket, Ticket.id == QueueItem.ticket_id)
                         .where(Ticket.incident_id.in_(incidents), QueueItem.status == ItemStatus.pending)).all()
    per: dict[int, list] = {}
    for qid, reason, prio, inc in open_:
        per.setdefault(inc, []).append((-prio, qid, reason))
    close = [qid for items in per.values() for _, qid, reason in sorted(items)[1:]
             if reason not in (Reason.emergency, Reason.returned)]
    if not close:
        return 0
    t = now()
    return session.execute(update(QueueItem).where(
        QueueItem.id.in_(close), QueueItem.status == ItemStatus.pending,
        or_(QueueItem.claimed_until.is_(None), QueueItem.claimed_until < t))   # nobody holds it
        .values(status=ItemStatus.superseded, done_at=t)).rowcount


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
