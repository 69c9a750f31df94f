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

Cost: a ticket is compared only with the tickets naming a place of its district received in its time
slot or the two beside it (slots `window_days` long; one product per district and slot, over the batch's
n-grams only), a routing run featurizes each stored ticket once (`Window`), and a batch's writes go out as
a few bulk statements. The IDF weights go into the batch's side of the product, so the stored tickets'
features are used as they are (bench/classify_speed.py). `match` only reads: router/routing.py matches a
whole batch before its first write, then `apply` writes it an incident's share at a time, in the parts
the batch is stored in (each incident touches no other's rows).

The queue (router/order.py) keeps one item per incident: a member whose incident already has an
open item gets none (`merged`), and the extra items a merge or a pulled-in ticket brings are closed
(`one_item`); one decision on that item settles every undecided member
(labeling/actions.decide), and a member can be split out (labeling/actions.split).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import String, bindparam, type_coerce, update
from sqlmodel import Session, select

from router.similarity import Idf
from router.store import Incident, Ticket, bulk_insert, now
from router.strategies import featurize

SEP = "、"
DENSE = 1 << 22    # _pairs: cells of one dense block of batch rows (16 MB)


def _aware(t: datetime | None) -> datetime | None:
    return t if t is None or t.tzinfo else t.replace(tzinfo=timezone.utc)


class Window:
    """Features of the stored tickets linking compares with, kept for a routing run: each ticket's
    row is computed once, however many batches (`rows` stacks those a batch asks for). `places`: the
    gazetteer, to compare the tickets of one district together (else those of one place)."""

    def __init__(self, places=None, idf: Idf | None = None):
        # place -> its district (router/places.Places): the tickets of one district are compared together
        self.area = {n: ds[0] for n, ds in places.where.items() if len(ds) == 1} if places is not None else {}
        self.row: dict[str, tuple[np.ndarray, np.ndarray]] = {}   # ticket id -> its (columns, values)
        self.idf = idf if idf is not None else Idf()   # the run's n-gram weights (router/similarity.py)
        self.idf.keep_first = True                      # the tickets it counts first are compared too (`rows`)
        self.spots: dict[str, tuple[frozenset, tuple]] = {}      # Ticket.places -> (its places, their areas)

    def spot(self, places: str) -> tuple[frozenset, tuple]:
        """The places a ticket names (Ticket.places, SEP-joined) and the areas they lie in, in order."""
        got = self.spots.get(places)
        if got is None:
            ns = places.split(SEP)
            got = self.spots[places] = (frozenset(ns), tuple(dict.fromkeys(self.area.get(n, n) for n in ns)))
        return got

    def add(self, ids: list[str], f) -> None:
        for k, t in enumerate(ids):
            if t not in self.row:
                lo, hi = f.indptr[k], f.indptr[k + 1]
                self.row[t] = (f.indices[lo:hi], f.data[lo:hi])

    def rows(self, session: Session, ids: list[str]):
        """The features of `ids`, a row each (read and featurized when not seen yet)."""
        from scipy import sparse

        from router.classifier import model_input

        if self.idf.first is not None:   # the stored tickets the weights started from: featurized already
            self.add(*self.idf.first)
            self.idf.first = None
        missing = [t for t in ids if t not in self.row]
        if missing:
            got = {}
            for k in range(0, len(missing), 5000):
                got.update((i, model_input(t, h)) for i, t, h in session.exec(
                    select(Ticket.id, Ticket.text, Ticket.title).where(Ticket.id.in_(missing[k:k + 5000]))))
            self.add(missing, featurize([got[t] for t in missing]))
        parts = [self.row[t] for t in ids]
        indptr = np.zeros(len(ids) + 1, np.int64)
        np.cumsum([len(c) for c, _ in parts], out=indptr[1:])
        return sparse.csr_matrix((np.concatenate([v for _, v in parts] or [np.zeros(0, np.float32)]),
                                  np.concatenate([c for c, _ in parts] or [np.zeros(0, np.int32)]), indptr),
                                 shape=(len(ids), 1 << 20))


def _compact(X, lut: np.ndarray, w2: np.ndarray, idf: Idf):
    """(`X` with its columns renumbered by `lut` (-1: dropped; a narrow matrix multiplies faster), each row's L2
    norm once its columns are weighted by `idf` (1 for an empty row)). `w2`: the squared weights of `lut`'s
    columns, so only the dropped columns' weights are computed here."""
    from scipy import sparse

    c = lut[X.indices]
    keep = c >= 0
    sq = np.append(w2, np.float32(0))[c]     # a dropped column (-1) weighed below
    out = np.flatnonzero(~keep)
    sq[out] = idf.at(X.indices[out]) ** 2
    sq *= X.data ** 2
    norms = np.sqrt(sparse.csr_matrix((sq, X.indices, X.indptr), shape=X.shape) @ np.ones(X.shape[1], np.float32))
    norms[norms == 0] = 1.0
    k = np.flatnonzero(keep)
    return sparse.csr_matrix((X.data[k], c[k], np.searchsorted(k, X.indptr)), shape=(X.shape[0], len(w2))), norms


def _pairs(groups: dict[tuple, tuple[list[int], list[int]]], fa, fb, ta: np.ndarray, tb: np.ndarray,
           pa: list[set], pb: list[set], window: float, similarity: float) -> dict[tuple[int, int], float]:
    """(a, b) -> cosine, for the tickets a and b that read alike, were received within `window` seconds
    and name one place (`pa`, `pb`: their places). `fa`, `fb`: (features, row norms); the cosine of a and
    b is fa[a] . fb[b] / (norm a * norm b), the column weights being in `fa` (squared) and in the norms.
    Only tickets of one group (`groups`: (a's, b's)) are compared."""
    (fa, ua), (fb, ub) = fa, fb
    step = max(1, DENSE // max(fa.shape[1], 1))
    out = {}
    for ra, rb in groups.values():
        if not ra or not rb:
            continue
        rb = np.asarray(rb)
        cb = fb[rb]
        for x in range(0, len(ra), step):   # a's rows dense: sparse @ dense is 4x faster than sparse @ sparse
            r = np.asarray(ra[x:x + step])
            s = (cb @ fa[r].toarray().T).T / ua[r][:, None] / ub[rb][None, :]
            ok = (s >= similarity) & (np.abs(ta[r][:, None] - tb[rb][None, :]) <= window)
            for i, j in zip(*np.nonzero(ok)):
                if pa[r[i]] & pb[rb[j]]:
                    out[int(r[i]), int(rb[j])] = float(s[i, j])
    return out


@dataclass
class Plan:
    """What linking a batch decided (`match`), nothing written yet: `apply` writes it, all at once or one
    incident's share at a time. Incidents are keys here: a stored incident's id, or -1, -2, ... for one the
    batch opens (its id comes when `apply` inserts it)."""
    ids: list[str]                           # the batch's tickets (stored already or not yet)
    out: dict[str, tuple[int, str | None]]   # ticket -> (incident key, duplicate_of): the batch's members and
                                             # the tickets they pulled in (duplicate_of None: left as it is)
    joined: set[str]                         # of those, the ones that read like an earlier ticket (duplicate_of set)
    alias: dict[int, int]                    # merged incident -> the one it went into
    state: dict[int, list]                   # the incidents left, touched: [size, started_at, last_at]
    fresh: dict[int, dict]                   # incidents opened here (key < 0): place, district, department
    gone: list[int]                          # stored incidents merged into another: deleted
    real: dict[int, int] = field(default_factory=dict)   # key of an opened incident -> its id, once inserted

    def final(self, inc: int) -> int:
        """The key of the incident `inc` ends in (merges followed)."""
        while inc in self.alias:
            inc = self.alias[inc]
        return inc

    def incident(self, ticket: str) -> int | None:
        """The key of the incident a ticket of the batch (or one it pulled in) ends in; None if it joins none."""
        got = self.out.get(ticket)
        return None if got is None else self.final(got[0])


def link(session: Session, ids: list[str], texts: list[str], names: list[list[str]], districts: list[str | None],
         received: list[datetime | None], departments: list[str], window_days: float, similarity: float,
         limit: int = 20000, cache: Window | None = None) -> dict[str, tuple[int, str]]:
    """Link the batch's tickets `ids` to incidents and write it (`match`, then `apply`): Ticket.incident_id/
    duplicate_of and the Incident rows; returns ticket id -> (incident id, duplicate_of) for those that joined
    one or were pulled in."""
    return apply(session, match(session, ids, texts, names, districts, received, departments, window_days,
                                similarity, limit, cache))


def match(session: Session, ids: list[str], texts: list[str], names: list[list[str]], districts: list[str | None],
          received: list[datetime | None], departments: list[str], window_days: float, similarity: float,
          limit: int = 20000, cache: Window | None = None) -> Plan:
    """Which incident each of the batch's tickets `ids` joins, reading only: the batch's tickets need not be
    stored yet (router/routing.py matches before inserting them, so no comparison runs under SQLite's write
    lock). `cache`: the routing run's `Window` (features of the stored tickets compared with)."""
    from scipy import sparse

    plan = Plan(ids, {}, set(), {}, {}, {}, [])
    window = timedelta(days=window_days)
    at = [_aware(t) for t in received]
    todo = [i for i in range(len(ids)) if names[i] and at[i] is not None]
    if not todo:
        return plan
    cache = cache if cache is not None else Window()
    lo, hi = min(at[i] for i in todo) - window, max(at[i] for i in todo)
    dists = sorted({districts[i] for i in todo if districts[i]})
    places = {n for i in todo for n in names[i]}
    # (area, slot) -> (batch rows, rows of the stored tickets then of the batch's): a ticket received in time
    # slot k (slots `window` long) is compared with the tickets naming a place of its area (a place's
    # district, `cache.area`) received in slots k-1 to k+1, one product per group; the pairs that share no
    # place, or lie more than `window` apart, are dropped
    secs = window.total_seconds()
    t_batch = np.array([at[i].timestamp() for i in todo])
    slots = (t_batch // secs).astype(np.int64).tolist()
    spots = [cache.spot(SEP.join(names[i])) for i in todo]
    groups: dict[tuple, tuple[list[int], list[int]]] = {}
    for k, (_, areas) in enumerate(spots):
        for g in areas:
            groups.setdefault((g, slots[k]), ([], []))[0].append(k)

    def near(areas: tuple, slot: int) -> list[tuple]:
        """The groups a ticket naming places of `areas`, received in `slot`, is compared in."""
        return [key for g in areas for key in ((g, slot - 1), (g, slot), (g, slot + 1)) if key in groups]

    # the stored tickets naming a place of the batch in one of its groups (received_at as SQLite's text:
    # SQLAlchemy's conversion of it took half the query's time)
    cand, c_names, c_at = [], [], []
    for c in session.connection().execute(
            select(Ticket.id, Ticket.places, type_coerce(Ticket.received_at, String), Ticket.incident_id)
            .where(Ticket.places.is_not(None), Ticket.received_at >= lo, Ticket.received_at <= hi,
                   Ticket.id.not_in(ids), (Ticket.district.in_(dists)) | (Ticket.district.is_(None)))
            .order_by(Ticket.received_at.desc()).limit(limit)):
        ns, areas = cache.spot(c[1])
        if places.isdisjoint(ns):
            continue
        t = _aware(c[2] if isinstance(c[2], datetime) else datetime.fromisoformat(c[2]))
        keys = near(areas, int(t.timestamp() // secs))
        for key in keys:
            groups[key][1].append(len(cand))
        if keys:
            cand.append(c)
            c_names.append(ns)
            c_at.append(t)
    nc = len(cand)
    for k, (_, areas) in enumerate(spots):
        for key in near(areas, slots[k]):
            groups[key][1].append(nc + k)
    c_ids = [c[0] for c in cand]
    when = dict(zip(c_ids, c_at)) | {ids[x]: at[x] for x in todo}
    f_batch = featurize([texts[i] for i in todo])
    cache.add([ids[i] for i in todo], f_batch)   # the next batches compare with these
    # only the batch's n-grams of weight > 0 count in a cosine with a batch ticket: the others' columns are
    # dropped (`lut`: an n-gram's column -> its column here, or -1)
    cache.idf.count(session, [ids[i] for i in todo], f_batch)
    seen = np.zeros(f_batch.shape[1], bool)
    seen[f_batch.indices] = True
    cols = np.flatnonzero(seen)
    w = cache.idf.at(cols)
    cols, w2 = cols[w > 0], w[w > 0] ** 2
    lut = np.full(f_batch.shape[1], -1, np.int32)
    lut[cols] = np.arange(len(cols), dtype=np.int32)
    # the cosine weighted by idf: the weights squared go in the batch's features, and each side's
    # weighted norm divides the product (_pairs); the stored tickets' features are used as they are
    f_small, u_batch = _compact(f_batch, lut, w2, cache.idf)
    f_w2 = f_small.copy()
    f_w2.data *= w2[f_w2.indices]
    m, u_m = _compact(cache.rows(session, c_ids), lut, w2, cache.idf)
    p_batch = [ns for ns, _ in spots]
    pairs = _pairs(groups, (f_w2, u_batch), (sparse.vstack([m, f_small], format="csr"), np.concatenate([u_m, u_batch])),
                   t_batch, np.concatenate([[t.timestamp() for t in c_at], t_batch]),
                   p_batch, c_names + p_batch, secs, similarity)
    del m
    hits_c: dict[int, list[tuple[float, int]]] = {}   # batch row -> (cosine, stored row)
    hits_b: dict[int, list[tuple[float, int]]] = {}   # batch row -> (cosine, another batch row)
    for (k, j), v in pairs.items():
        if j < nc:
            hits_c.setdefault(k, []).append((v, j))
        elif j - nc != k:
            hits_b.setdefault(k, []).append((v, j - nc))

    inc_of = {c[0]: c[3] for c in cand}        # ticket id -> incident key, as it grows
    order = sorted(range(len(todo)), key=lambda k: (at[todo[k]], ids[todo[k]]))
    done: set[int] = set()
    out, alias, state, fresh, gone = plan.out, plan.alias, plan.state, plan.fresh, plan.gone
    at_of = {ids[i]: i for i in todo}
    # the stored incidents the batch may join, read at once: id -> (size, started_at, last_at)
    rows_of: dict[int, tuple] = {}
    known = sorted({cand[j][3] for hits in hits_c.values() for _, j in hits if cand[j][3] is not None})
    for x in range(0, len(known), 5000):
        rows_of.update((r[0], r[1:]) for r in session.exec(select(
            Incident.id, Incident.size, Incident.started_at, Incident.last_at).where(Incident.id.in_(known[x:x + 5000]))))

    def age(inc) -> tuple[bool, int]:          # stored incidents by id, then those opened here
        return inc < 0, abs(inc)

    def grow(inc) -> list:
        if inc not in state:
            size, started, last = rows_of[inc]
            state[inc] = [size, _aware(started), _aware(last)]
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
        joined = sorted({plan.final(inc_of[t]) for _, t in hits if inc_of.get(t) is not None}, key=age)
        if joined:
            inc = joined[0]
            for other in joined[1:]:           # the ticket reads like two incidents: they are one (the oldest)
                alias[other] = inc
                if other > 0:
                    gone.append(other)         # its tickets move when it is written, then it is deleted
                g, keep_ = grow(other), grow(inc)
                keep_[:] = [keep_[0] + g[0], min(keep_[1], g[1]), max(keep_[2], g[2])]
                del state[other]
        else:                                   # the earlier tickets start an incident
            src = at_of.get(best, i)            # the first of them: an earlier ticket of the batch, or this one
            inc = -len(fresh) - 1
            fresh[inc] = dict(place=names[src][0], district=districts[src], department=departments[src])
            state[inc] = [0, at[i], at[i]]
        st = grow(inc)
        for t in loose:
            inc_of[t] = inc
            out.setdefault(t, (inc, None))
            st[:] = [st[0] + 1, min(st[1], when[t]), max(st[2], when[t])]
        inc_of[ids[i]] = inc
        out[ids[i]] = (inc, best)
        plan.joined.add(ids[i])
        st[0] += 1
        st[2] = max(st[2] or at[i], at[i])
    return plan


def apply(session: Session, plan: Plan, keys: set[int] | None = None, batch_stored: bool = True
          ) -> dict[str, tuple[int, str | None]]:
    """Write `plan`'s share of the incidents `keys` (all of them when None): those opened inserted, the stored
    ones updated, the merged ones deleted (their tickets moved), the tickets' incident_id and duplicate_of,
    then one open queue item per incident (`one_item`). A part of the plan needs nothing of another part's
    incidents, so each can go in its own transaction (router/routing.py). `batch_stored` False: the batch's
    own tickets are not stored yet, the caller inserts them with the values returned. Returns ticket id ->
    (incident id, duplicate_of) for the tickets of `keys`' incidents."""
    keys = set(plan.state) if keys is None else keys
    if not keys:
        return {}
    session.flush()
    opened = [x for x in plan.fresh if x in keys]          # not merged into another (those have no key left)
    created = now()
    if opened:   # RETURNING, in the rows' order: not read back by created_at, which another run can share
        got = session.scalars(bulk_insert(Incident).returning(Incident.id, sort_by_parameter_order=True), [
            plan.fresh[x] | dict(size=plan.state[x][0], started_at=plan.state[x][1], last_at=plan.state[x][2],
                                 created_at=created) for x in opened]).all()
        plan.real.update(zip(opened, got))

    def final(inc) -> int:
        inc = plan.final(inc)
        return plan.real.get(inc, inc)

    gone = [x for x in plan.gone if plan.final(x) in keys]
    conn = session.connection()
    for other in gone:
        conn.execute(update(Ticket).where(Ticket.incident_id == other).values(incident_id=final(other)))
    i = Incident.__table__
    stored = [{"iid": x, "size": s, "s": a, "l": z} for x, (s, a, z) in plan.state.items() if x > 0 and x in keys]
    if stored:
        conn.execute(update(i).where(i.c.id == bindparam("iid")).values(
            size=bindparam("size"), started_at=bindparam("s"), last_at=bindparam("l")), stored)
    out = {t: (final(inc), dup) for t, (inc, dup) in plan.out.items() if plan.final(inc) in keys}
    # the tickets' new incidents, in two bulk statements
    mine = set(plan.ids)
    todo = [t for t in out if batch_stored or t not in mine]
    t = Ticket.__table__
    only = [{"tid": x, "inc": out[x][0]} for x in todo if x not in plan.joined]
    both = [{"tid": x, "inc": out[x][0], "dup": out[x][1]} for x in todo if x in plan.joined]
    if only:
        conn.execute(update(t).where(t.c.id == bindparam("tid")).values(incident_id=bindparam("inc")), only)
    if both:
        conn.execute(update(t).where(t.c.id == bindparam("tid")).values(incident_id=bindparam("inc"),
                                                                        duplicate_of=bindparam("dup")), both)
    if gone:                                   # deleted last: no incident inserted above reuses its id
        conn.execute(i.delete().where(i.c.id.in_(gone)))
    for obj in list(session.identity_map.values()):   # objects the caller holds see the new values
        if isinstance(obj, (Ticket, Incident)):
            session.expire(obj)
    one_item(session, {final(x) for x in keys})
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
