"""The order dispatchers see: which routed tickets go to the review queue, and with which priority.

The queue (router/queue.py) only stores; this module decides. A queue item's priority is its
band plus a score within the band; every band lies above the one below it, so all its items
are shown first (`labeling.actions.next_item` takes the highest priority):

  UNCERTAIN  low-confidence tickets: the query strategy's priorities (router/strategies.py), in
             [0, 2] (its `window` picks above 1); audits (a random `audit_rate` share of the
             confident tickets: labels on an unbiased sample) a random number in [0, 1)
  NO_FIT     "no department fits" (router/nofit.py): + its no-fit confidence, in [0, 1]; routed
             nowhere until a dispatcher confirms or routes it; the daily budget does not drop it
  RETURNED   a department sent the ticket back: a dispute only a lead decides (router/returns.py)
  EMERGENCY  routed to 110/119/120/122 (router/emergency.py): + confidence; hand it over now

A new band is a constant here and a line where it is given (a band above RETURNED takes 4,
5, ...; one between two bands moves those above it, and so needs their stored pending
priorities moved too: a migration).

Within the uncertain band, `rank` (at store time, per batch) gives each new ticket the strategy's
score, cut by `duplicate_discount` for a near-duplicate of a waiting ticket (same burst pipe,
same street), so one incident does not fill the queue; `prioritize` (at the end of a run)
re-orders the waiting tickets with the strategy's `query`, as bench/al_sim.py and
bench/loop_sim.py measure it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sqlmodel import Session, select

from router import nofit, queue
from router.classifier import model_input
from router.config import Store
from router.queue import Enqueued, Policy
from router.store import ItemStatus, Prediction, QueueItem, Reason, Ticket, insert_predictions, now
from router.similarity import Idf, cosine
from router.strategies import featurize, make_strategy

UNCERTAIN = 0.0
NO_FIT = 2.0
RETURNED = 3.0
EMERGENCY = 4.0


@dataclass
class Ranked:
    """Each ticket of a batch: its queue reason (None: not queued) and priority."""
    reasons: list[Reason | None]
    priorities: np.ndarray


def enqueue(session: Session, ticket_ids, proba: np.ndarray, prediction_ids, pol: Policy,
            texts=None, nofit=None, cache: "Waiting | None" = None, emergency=None,
            incidents: "tuple[dict, set] | None" = None, ranked: "Ranked | None" = None) -> Enqueued:
    """Queue the tickets of one routed batch (`rank`, then `queue.enqueue` stores). `incidents`: (ticket id
    -> incident id, incidents with an open item) (router/incidents.py): one item per incident, so a
    member that would be queued gets none when its incident already has one, in the store or earlier in
    the batch (`merged`); an emergency still does. `ranked`: `rank`'s result, computed before the
    transaction's first write (router/routing.py), so the write lock is not held while it featurizes."""
    r = ranked if ranked is not None else rank(session, ticket_ids, proba, pol, texts, nofit, cache, emergency)
    skip = []
    if incidents is not None:
        incident_of, seen = incidents[0], set(incidents[1])
        waiting = queue.open_items(session, ticket_ids)
        for i, tid in enumerate(ticket_ids):
            inc = incident_of.get(tid)
            if inc is None or r.reasons[i] in (None, Reason.emergency) or tid in waiting:
                continue
            if inc in seen:
                skip.append(i)
                r.reasons[i] = None
            seen.add(inc)
    done = queue.enqueue(session, ticket_ids, prediction_ids, r.reasons, r.priorities, pol)
    done.merged = [ticket_ids[i] for i in skip]
    return done


def rank(session: Session, ticket_ids, proba: np.ndarray, pol: Policy, texts=None, nofit=None,
         cache: "Waiting | None" = None, emergency=None) -> Ranked:
    """Reasons and priorities of one routed batch: no-fit tickets, low-confidence ones, and a random
    `audit_rate` share of the confident ones; a ticket already waiting gets this batch's reason and
    score (a decided one none). `texts` enables the near-duplicate check (against `cache`, the
    run's features of waiting tickets); `nofit` holds each no-fit ticket's confidence, NaN for the others;
    `emergency` marks the tickets routed to an emergency line."""
    ticket_ids = list(ticket_ids)
    n = len(ticket_ids)
    out = Ranked([None] * n, np.zeros(n))
    if not n:
        return out
    done, waiting = queue.decided(session, ticket_ids), queue.open_items(session, ticket_ids)
    conf = proba.max(axis=1)
    scores = np.asarray(make_strategy(pol.strategy).scores(proba), dtype=float)
    nofit = np.full(n, np.nan) if nofit is None else np.asarray(nofit, dtype=float)
    urgent = np.zeros(n, bool) if emergency is None else np.asarray(emergency, dtype=bool)
    # a seeded run draws differently for every batch (one generator per batch would repeat)
    rng = np.random.default_rng(None if pol.seed is None else [pol.seed, zlib.crc32(ticket_ids[0].encode("utf-8", "surrogatepass"))])
    low = []
    for i, tid in enumerate(ticket_ids):
        if tid in done:
            continue
        if urgent[i]:
            out.reasons[i], out.priorities[i] = Reason.emergency, EMERGENCY + float(conf[i])
        elif not np.isnan(nofit[i]):
            out.reasons[i], out.priorities[i] = Reason.no_fit, NO_FIT + float(nofit[i])
        elif tid in waiting:
            out.reasons[i], out.priorities[i] = Reason.low_confidence, UNCERTAIN + float(scores[i])
        elif conf[i] < pol.threshold:
            low.append(i)
        elif rng.random() < pol.audit_rate:
            out.reasons[i], out.priorities[i] = Reason.audit, UNCERTAIN + float(rng.random())
    if low:
        out.priorities[low] = UNCERTAIN + _discount_duplicates(session, pol, scores[low], texts and [texts[i] for i in low],
                                                               cache, [ticket_ids[i] for i in low])
        for i in low:
            out.reasons[i] = Reason.low_confidence
    return out


def _discount_duplicates(session, pol: Policy, scores: np.ndarray, texts, cache: "Waiting | None",
                         ids: list[str]) -> np.ndarray:
    """The strategy's scores, near-duplicates of a waiting ticket (or of a more uncertain one
    in the same batch) cut by `duplicate_discount` (strategies that use features only). Alike means
    the weighted cosine incident linking uses (router/similarity.py) at least `duplicate_similarity`."""
    if not make_strategy(pol.strategy).needs_features or pol.duplicate_discount >= 1 or texts is None:
        return scores
    cache = cache if cache is not None else Waiting(pol.duplicate_window)
    f = featurize(texts)
    w = cache.idf.weights(session, ids, f)
    order = np.argsort(-scores, kind="stable")  # within the batch, the most uncertain copy stays
    sim = cosine(f[order], f[order], w)
    dup = np.zeros(len(texts), bool)
    dup[order] = (np.triu(sim, 1) >= pol.duplicate_similarity).any(axis=0)  # like a more uncertain one
    ref = cache.features(session)
    if ref is not None:
        dup |= cosine(f, ref, w).max(axis=1) >= pol.duplicate_similarity
    return np.where(dup, scores * pol.duplicate_discount, scores)


class Waiting:
    """Features of the newest `window` pending low-confidence tickets, for the near-duplicate
    check. One per routing run: each ticket's row is computed once, however many batches. `idf`: the
    run's n-gram weights (router/similarity.Idf, shared with incident linking)."""

    def __init__(self, window: int, idf: Idf | None = None):
        self.window = window
        self.ids: list[int] = []
        self.matrix = None
        self.idf = idf if idf is not None else Idf()

    def features(self, session: Session):
        ids = list(session.exec(
            select(QueueItem.id).where(QueueItem.status == ItemStatus.pending, QueueItem.reason == Reason.low_confidence)
            .order_by(QueueItem.id.desc()).limit(self.window)))
        if not ids:
            return None
        pos = {i: k for k, i in enumerate(self.ids)}
        kept = [i for i in ids if i in pos]
        new = [i for i in ids if i not in pos]
        parts = [self.matrix[[pos[i] for i in kept]]] if kept else []
        if new:  # only the tickets not seen yet are read and featurized
            got = {i: model_input(t, h) for i, t, h in session.exec(
                select(QueueItem.id, Ticket.text, Ticket.title).join(Ticket, QueueItem.ticket_id == Ticket.id)
                .where(QueueItem.id.in_(new)))}
            parts.append(featurize([got[i] for i in new]))
        self.ids = kept + new
        self.matrix = sparse.vstack(parts, format="csr")
        return self.matrix


def prioritize(engine, clf, version: str, pol: Policy, no_fit: tuple = (None, True),
               chunk: int = Store().write_batch) -> int:
    """Order the waiting tickets with the configured strategy, as the benchmarks measure it:
    the `pol.window` best picks of `strategy.query` over the waiting pool come first, the rest
    follow by score. With `pol.rerank`, tickets routed by another model are re-scored (and
    re-predicted, so dispatchers see the current model's suggestions; `no_fit` = (threshold,
    enabled) of the no-fit decision for those). Everything is computed first; the writes go in
    transactions of `chunk` items ([store] write_batch), each holding SQLite's write lock briefly.
    Returns the pool size."""
    strategy = make_strategy(pol.strategy)
    window = pol.window or 200
    with Session(engine) as s:
        p = queue.pool(s, window * strategy.pool)
        if not p.item_ids:
            return 0
        classes = [str(c) for c in clf.classes_]
        texts = [model_input(t, h) for t, h in zip(p.texts, p.titles)]
        stale = [k for k, v in enumerate(p.versions) if v != version] if pol.rerank else []
        proba = _stored_proba(p.tops, classes)
        new_preds, flagged, preds = {}, {}, {}   # flagged: position -> no-fit priority; preds: new ones, written last
        if stale:  # this model's prediction where there is one (a rollback), else a new one
            have = {x.ticket_id: x for x in s.exec(select(Prediction).where(
                Prediction.ticket_id.in_([p.ticket_ids[k] for k in stale]), Prediction.model_version == version))}
            for k in stale:
                if p.ticket_ids[k] in have:
                    pred = have[p.ticket_ids[k]]
                    proba[k] = _stored_proba([pred.topk], classes)[0]
                    new_preds[k] = pred.id
                    if pred.department == nofit.NONE:
                        flagged[k] = NO_FIT + pred.confidence
            todo = [k for k in stale if k not in new_preds]
            if todo:
                proba[todo], score = nofit.scores(clf, [texts[k] for k in todo])
                tops, _ = nofit.route(proba[todo], score, classes, len(p.tops[0]) if p.tops and p.tops[0] else 3,
                                      *no_fit)
                preds = {k: Prediction(ticket_id=p.ticket_ids[k], model_version=version, department=top[0][0],
                                       confidence=top[0][1], topk=[list(x) for x in top]) for k, top in zip(todo, tops)}
                flagged.update((k, NO_FIT + top[0][1]) for k, top in zip(todo, tops) if top[0][0] == nofit.NONE)
        features = labeled = None
        if strategy.needs_features:
            features = featurize(texts)
            done = queue.labeled_texts(s, 2000)
            labeled = featurize([model_input(t, h) for t, h in done]) if done else None
        prio = UNCERTAIN + strategy.priorities(proba, min(window, len(texts)), features, labeled)
    # the writes last, after every computation, in parts: the write lock (taken by the first INSERT/UPDATE) is
    # held for one part's statements only, never while the model scores or the strategy orders
    t0 = now()
    for a in range(0, len(p.item_ids), chunk):
        part = range(a, min(a + chunk, len(p.item_ids)))
        with Session(engine) as s:
            mine = [k for k in part if k in preds]
            if mine:
                rows = [dict(ticket_id=x.ticket_id, model_version=x.model_version, department=x.department,
                             confidence=x.confidence, topk=x.topk, created_at=t0) for x in (preds[k] for k in mine)]
                new_preds.update(zip(mine, insert_predictions(s, rows)))
            moved = [k for k in part if k in new_preds]  # a ticket the current model calls no-fit becomes a
            if moved:                                      # no-fit item, shown first
                queue.set_priorities(s, [p.item_ids[k] for k in moved], [flagged.get(k, prio[k]) for k in moved],
                                     [new_preds[k] for k in moved], [k in flagged for k in moved])
            fresh = [k for k in part if k not in new_preds]
            if fresh:
                queue.set_priorities(s, [p.item_ids[k] for k in fresh], prio[fresh])
            s.commit()
    return len(p.item_ids)


def _stored_proba(tops: list[list], classes: list[str]) -> np.ndarray:
    """Probabilities over `classes` from stored top-k lists (other departments 0): exact for
    margin and least confidence, which only look at the top two."""
    pos = {c: j for j, c in enumerate(classes)}
    out = np.zeros((len(tops), len(classes)))
    for i, top in enumerate(tops):
        for d, pr in top or []:
            if d in pos:
                out[i, pos[d]] = pr
    return out
