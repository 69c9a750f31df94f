"""The review queue in the store: which routed tickets wait for a dispatcher.

The queue only stores: which tickets go in, with which reason and priority, is decided by
router/order.py (`order.enqueue` after each batch of `router classify`, `order.prioritize`
re-orders the waiting tickets at the end of a run through `pool` and `set_priorities`). The
daily budget keeps at most `daily_budget` low-confidence tickets of a day pending: the lowest
priorities are dropped (status `over_budget`).

Two rules hold whatever is routed again (the same file, after a retrain, a promotion or a
rollback): a ticket with a dispatcher's decision (a label not undone) never comes back, and
a ticket has at most one open (pending) item — routing it again refreshes that item with the
new prediction (the store enforces this with a partial unique index).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, update
from sqlmodel import Session, select

from router import config
from router.store import ItemStatus, Label, Prediction, QueueItem, Reason, Source, Ticket, bulk_insert, now


class Policy(config.Queue):
    """How `enqueue` fills the queue: the [queue] settings (router/config.py) and the [classify]
    threshold; built from the settings by `policy(cfg)`."""
    threshold: float = 0.6


def policy(cfg: config.Settings, **over) -> Policy:
    """The queue policy; `threshold` (a number) is the one in force (registry.threshold resolves "auto")."""
    fixed = cfg.classify.threshold if cfg.classify.threshold != "auto" else None
    return Policy(**cfg.queue.model_dump(), **({"threshold": fixed} if fixed is not None else {})).model_copy(
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
    emergency: list[str] = field(default_factory=list)  # new emergency items (top of the queue)
    merged: list[str] = field(default_factory=list)     # members that would be queued whose incident already waits:
                                                        # settled through that item, no item of their own
    linked: dict = field(default_factory=dict)          # ticket id -> (incident id, duplicate_of) (router/incidents.py)
    dropped: int = 0                                   # pending items set over_budget by this batch

    @property
    def queued(self) -> set[str]:
        """Tickets a dispatcher will see: in an item of their own, or in their incident's (`merged`)."""
        return {*self.low, *self.audit, *self.nofit, *self.emergency, *self.waiting, *self.merged}

    def __iadd__(self, other: "Enqueued") -> "Enqueued":
        """Add another batch's (lists and the count add up, `linked` merges)."""
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            setattr(self, f.name, a | b if isinstance(a, dict) else a + b)
        return self


def decided(session: Session, ids) -> set[str]:
    """Tickets among `ids` with a decision that stands (a label not undone, imports included)."""
    return set(session.exec(select(Label.ticket_id).where(
        Label.ticket_id.in_(list(ids)), Label.undone == False)))  # noqa: E712


def open_items(session: Session, ids) -> dict[str, QueueItem]:
    return {q.ticket_id: q for q in session.exec(select(QueueItem).where(
        QueueItem.ticket_id.in_(list(ids)), QueueItem.status == ItemStatus.pending))}


def enqueue(session: Session, ticket_ids, prediction_ids, reasons, priorities, pol: Policy) -> Enqueued:
    """Store the queue items of one routed batch with the reasons and priorities router/order.py
    gave them (reason None: not queued). Decided tickets are left out; a ticket already waiting
    gets its item refreshed with the new prediction, reason and priority (an audit or an emergency
    stays as it was, unless it becomes an emergency).
    Then the daily budget is applied."""
    ticket_ids = list(ticket_ids)
    out = Enqueued()
    if not ticket_ids:
        return out
    done, waiting = decided(session, ticket_ids), open_items(session, ticket_ids)
    new = {Reason.low_confidence: out.low, Reason.audit: out.audit, Reason.no_fit: out.nofit,
           Reason.emergency: out.emergency}
    rows, t0 = [], now()
    for tid, pid, reason, pr in zip(ticket_ids, prediction_ids, reasons, priorities):
        if tid in done:
            out.decided.append(tid)
        elif tid in waiting and waiting[tid].reason == Reason.returned:
            out.waiting.append(tid)  # a dispute keeps the dispatch it is about (router/returns.py)
        elif tid in waiting:
            item = waiting[tid]
            item.prediction_id = pid
            if reason == Reason.emergency or item.reason not in (Reason.audit, Reason.emergency):
                item.reason, item.priority = reason, float(pr)   # an emergency stays one
            session.add(item)
            out.waiting.append(tid)
        elif reason is not None:
            rows.append(dict(ticket_id=tid, prediction_id=pid, reason=reason, priority=float(pr),
                             status=ItemStatus.pending, created_at=t0))
            new[reason].append(tid)
    session.flush()
    if rows:  # one executemany (ORM objects would be inserted a row at a time, to read back each id)
        session.execute(bulk_insert(QueueItem), rows)
    out.dropped = trim_to_budget(session, pol)
    return out


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
    """The waiting low-confidence tickets the strategy orders (see `order.prioritize`)."""
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
    """New priorities of waiting items; optionally their new predictions, and whether each is now no-fit.
    One executemany per kind (not a statement per item: this runs inside the write lock)."""
    t = QueueItem.__table__
    rows = [{"qid": int(qid), "pr": float(pr)} | ({"pid": prediction_ids[k]} if prediction_ids is not None else {})
            for k, (qid, pr) in enumerate(zip(item_ids, priorities))]
    values = {"priority": bindparam("pr")} | ({"prediction_id": bindparam("pid")} if prediction_ids is not None else {})
    stmt = t.update().where(t.c.id == bindparam("qid"), t.c.status == ItemStatus.pending)
    flagged = [no_fit is not None and bool(no_fit[k]) for k in range(len(rows))]
    if any(flagged):
        session.execute(stmt.values(**values, reason=Reason.no_fit), [r for r, f in zip(rows, flagged) if f])
    if not all(flagged):
        session.execute(stmt.values(**values), [r for r, f in zip(rows, flagged) if not f])
