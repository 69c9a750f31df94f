"""The review queue in the store: which routed tickets wait for a dispatcher, in which order.

The queue only stores; the order comes from a query strategy (router/strategies.py).
`enqueue` is called by `router classify` after each batch. Tickets below the confidence
threshold go in with the strategy's score as priority; a near-duplicate of a ticket already
waiting (same burst pipe, same street) gets its priority cut, so one incident does not fill
the queue. A small random sample of confident tickets goes in as an `audit` (labels on an
unbiased sample: the measured accuracy of confident predictions). A ticket the router judged
"no department fits" (router/nofit.py) goes in as `no_fit`, whatever its confidence, ahead of
the others (priority 2 + its no-fit confidence): it is routed nowhere until a dispatcher
confirms or routes it; the budget does not drop it. At the end of a run
`routing.prioritize` re-orders the waiting tickets with the configured strategy (`pool`,
`set_priorities`). The daily budget keeps at most `budget` low-confidence tickets of a day
pending: the lowest priorities are dropped (status `over_budget`).

Two rules hold whatever is routed again (the same file, after a retrain, a promotion or a
rollback): a ticket with a dispatcher's decision (a label not undone) never comes back, and
a ticket has at most one open (pending) item — routing it again refreshes that item with the
new prediction (the store enforces this with a partial unique index).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime, time
from zoneinfo import ZoneInfo

import numpy as np
from scipy import sparse
from sqlalchemy import func, update
from sqlmodel import Session, select

from router import config
from router.classifier import model_input
from router.store import ItemStatus, Label, Prediction, QueueItem, Reason, Source, Ticket, now
from router.strategies import Diverse, _max_sim, featurize, make_strategy


class Policy(config.Queue):
    """How `enqueue` fills the queue: the [queue] settings (router/config.py) and the [classify]
    threshold; built from the settings by `policy(cfg)`."""
    threshold: float = config.Classify.model_fields["threshold"].default


def policy(cfg: config.Settings, **over) -> Policy:
    return Policy(**cfg.queue.model_dump(), threshold=cfg.classify.threshold).model_copy(
        update={k: v for k, v in over.items() if v is not None})


def day_start(tz: str, at: datetime | None = None) -> datetime:
    """Midnight of the current day in `tz`, as an aware datetime."""
    zone = ZoneInfo(tz)
    local = (at or now()).astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone)


@dataclass
class Enqueued:
    """What `enqueue` did with one batch (ticket ids)."""
    low: list[str] = field(default_factory=list)       # new low-confidence items
    audit: list[str] = field(default_factory=list)     # new audit items
    waiting: list[str] = field(default_factory=list)   # already had an open item: refreshed
    decided: list[str] = field(default_factory=list)   # a dispatcher already decided: not queued
    nofit: list[str] = field(default_factory=list)     # new no-fit items
    dropped: int = 0                                   # pending items set over_budget by this batch

    @property
    def queued(self) -> set[str]:
        return {*self.low, *self.audit, *self.nofit, *self.waiting}


def decided(session: Session, ids) -> set[str]:
    """Tickets among `ids` with a decision that stands (a label not undone, imports included)."""
    return set(session.exec(select(Label.ticket_id).where(
        Label.ticket_id.in_(list(ids)), Label.undone == False)))  # noqa: E712


def open_items(session: Session, ids) -> dict[str, QueueItem]:
    return {q.ticket_id: q for q in session.exec(select(QueueItem).where(
        QueueItem.ticket_id.in_(list(ids)), QueueItem.status == ItemStatus.pending))}


def enqueue(session: Session, ticket_ids, proba: np.ndarray, prediction_ids, pol: "Policy",
            texts=None, nofit=None, cache: "Waiting | None" = None) -> Enqueued:
    """Queue the tickets of one routed batch: no-fit ones, low confidence ones, and a random
    `audit_rate` share of the confident ones. Decided tickets are left out; a ticket already
    waiting gets its item refreshed with the new prediction (a waiting item becomes `no_fit`
    or goes back to `low_confidence` with it; audits stay audits). `texts` enables the
    near-duplicate check (against `cache`, the run's features of waiting tickets);
    `nofit` holds each no-fit ticket's confidence, NaN for the others."""
    ticket_ids, prediction_ids = list(ticket_ids), list(prediction_ids)
    out = Enqueued()
    if not ticket_ids:
        return out
    done, waiting = decided(session, ticket_ids), open_items(session, ticket_ids)
    conf = proba.max(axis=1)
    scores = np.asarray(make_strategy(pol.strategy).scores(proba), dtype=float)
    nofit = np.full(len(ticket_ids), np.nan) if nofit is None else np.asarray(nofit, dtype=float)
    # a seeded run draws differently for every batch (one generator per batch would repeat)
    rng = np.random.default_rng(None if pol.seed is None else [pol.seed, zlib.crc32(ticket_ids[0].encode("utf-8", "surrogatepass"))])
    low = []
    for i, tid in enumerate(ticket_ids):
        if tid in done:
            out.decided.append(tid)
        elif tid in waiting and waiting[tid].reason == Reason.returned:
            out.waiting.append(tid)  # a dispute keeps the dispatch it is about (router/returns.py)
        elif tid in waiting:
            item = waiting[tid]
            item.prediction_id = prediction_ids[i]
            if item.reason != Reason.audit and not np.isnan(nofit[i]):
                item.reason, item.priority = Reason.no_fit, 2.0 + float(nofit[i])
            elif item.reason in (Reason.low_confidence, Reason.no_fit):
                item.reason, item.priority = Reason.low_confidence, float(scores[i])
            session.add(item)
            out.waiting.append(tid)
        elif not np.isnan(nofit[i]):
            session.add(QueueItem(ticket_id=tid, prediction_id=prediction_ids[i], reason=Reason.no_fit,
                                  priority=2.0 + float(nofit[i])))
            out.nofit.append(tid)
        elif conf[i] < pol.threshold:
            low.append(i)
        elif rng.random() < pol.audit_rate:
            session.add(QueueItem(ticket_id=tid, prediction_id=prediction_ids[i], reason=Reason.audit,
                                  priority=float(rng.random())))
            out.audit.append(tid)
    if low:
        priority = _priorities(session, pol, scores[low], texts and [texts[i] for i in low], cache)
        for i, pr in zip(low, priority):
            session.add(QueueItem(ticket_id=ticket_ids[i], prediction_id=prediction_ids[i],
                                  reason=Reason.low_confidence, priority=float(pr)))
        out.low = [ticket_ids[i] for i in low]
    session.flush()
    out.dropped = trim_to_budget(session, pol)
    return out


def _priorities(session, pol: Policy, scores: np.ndarray, texts, cache: "Waiting | None") -> np.ndarray:
    """The strategy's scores, near-duplicates of a waiting ticket (or of a more uncertain one
    in the same batch) cut by `duplicate_discount` (diverse strategies only)."""
    if not isinstance(make_strategy(pol.strategy), Diverse) or pol.duplicate_discount >= 1 or texts is None:
        return scores
    f = featurize(texts)
    order = np.argsort(-scores, kind="stable")  # within the batch, the most uncertain copy stays
    ranked = f[order]
    sim = (ranked @ ranked.T).toarray()
    dup = np.zeros(len(texts), bool)
    dup[order] = (np.triu(sim, 1) >= pol.duplicate_similarity).any(axis=0)  # like a more uncertain one
    ref = (cache if cache is not None else Waiting(pol.duplicate_window)).features(session)
    if ref is not None:
        dup |= _max_sim(f, ref) >= pol.duplicate_similarity
    return np.where(dup, scores * pol.duplicate_discount, scores)


class Waiting:
    """Features of the newest `window` pending low-confidence tickets, for the near-duplicate
    check. One per routing run: each ticket's row is computed once, however many batches."""

    def __init__(self, window: int):
        self.window = window
        self.ids: list[int] = []
        self.matrix = None

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


def trim_to_budget(session: Session, pol: Policy) -> int:
    """Keep at most `daily_budget` of today's low-confidence items queued (pending or worked
    on); the lowest-priority pending ones become `over_budget`. Returns how many were dropped."""
    if not pol.daily_budget:
        return 0
    since = day_start(pol.timezone)
    today = (QueueItem.reason == Reason.low_confidence) & (QueueItem.created_at >= since)
    kept = session.exec(select(func.count()).select_from(QueueItem)
                        .where(today, QueueItem.status != ItemStatus.over_budget)).one()
    excess = kept - pol.daily_budget
    if excess <= 0:
        return 0
    unclaimed = (QueueItem.claimed_until == None) | (QueueItem.claimed_until < now())  # noqa: E711
    worst = session.exec(select(QueueItem.id).where(today, QueueItem.status == ItemStatus.pending, unclaimed)
                         .order_by(QueueItem.priority, QueueItem.id.desc()).limit(excess)).all()
    session.execute(update(QueueItem).where(QueueItem.id.in_(worst)).values(status=ItemStatus.over_budget))
    return len(worst)


# ---- re-ordering the waiting tickets ------------------------------------------------------

@dataclass
class Pool:
    """The waiting low-confidence tickets the strategy orders (see `routing.prioritize`)."""
    item_ids: list[int]
    ticket_ids: list[str]
    texts: list[str]
    titles: list[str | None]
    versions: list[str | None]       # model version of each item's prediction
    tops: list[list]                 # each item's stored top-k [[department, p], ...]


def pool(session: Session, limit: int) -> Pool:
    """The `limit` waiting low-confidence tickets of highest priority."""
    rows = session.exec(
        select(QueueItem.id, QueueItem.ticket_id, Ticket.text, Ticket.title, Prediction.model_version,
               Prediction.topk)
        .join(Ticket, Ticket.id == QueueItem.ticket_id)
        .join(Prediction, Prediction.id == QueueItem.prediction_id, isouter=True)
        .where(QueueItem.status == ItemStatus.pending, QueueItem.reason == Reason.low_confidence)
        .order_by(QueueItem.priority.desc(), QueueItem.id).limit(limit)).all()
    return Pool(*[list(c) for c in zip(*rows)]) if rows else Pool([], [], [], [], [], [])


def labeled_texts(session: Session, limit: int) -> list[tuple[str, str | None]]:
    """(text, title) of the newest `limit` decided tickets: what the strategy spreads away from."""
    rows = session.exec(select(Ticket.text, Ticket.title).join(Label, Label.ticket_id == Ticket.id)
                        .where(Label.undone == False, Label.source != Source.imported)  # noqa: E712
                        .order_by(Label.id.desc()).limit(limit)).all()
    return [tuple(r) for r in rows]


def set_priorities(session: Session, item_ids, priorities, prediction_ids=None, no_fit=None) -> None:
    """New priorities of waiting items; optionally their new predictions, and whether each is now no-fit."""
    for k, (qid, pr) in enumerate(zip(item_ids, priorities)):
        values = {"priority": float(pr)}
        if prediction_ids is not None:
            values["prediction_id"] = prediction_ids[k]
        if no_fit is not None and no_fit[k]:
            values["reason"] = Reason.no_fit
        session.execute(update(QueueItem).where(QueueItem.id == qid, QueueItem.status == ItemStatus.pending).values(**values))
