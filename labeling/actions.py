"""Store operations behind the labeling app: claim the next ticket, record a decision, undo
it, count the day's work. Every call is one short transaction, so a decision is in the store
the moment the dispatcher makes it, and two dispatchers never hold the same ticket: a claim
is a conditional UPDATE that only one of them can win; it expires after `claim_minutes`.
Each call reads what it needs outside any lock, builds its statements, then runs them in one short
transaction that holds SQLite's write lock from its start (`store.writing`): a claim is one UPDATE that
picks the ticket itself (read after the commit), a decision one UPDATE and one INSERT, an undo two
UPDATEs (an incident's members add four statements). The UPDATE's conditions check that what was read
still holds (else the call reads again, or says why it cannot act), so nothing is decided on stale reads. Writes are retried with backoff when the store is locked longer than the busy timeout
(`store.retry`), so they wait for `router classify` or `router retrain` instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import exists, func, insert, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from router.catalog import NONE, from_label, to_label
from router.queue import day_start
from router import returns
from router import order
from router.store import (Incident, ItemStatus, Label, Prediction, QueueItem, Reason, Source, Ticket, User, bulk_insert,
                          now, retry, writing)

SKIP = "__skip__"
SOURCES = (Source.confirmation, Source.correction, Source.audit)  # labels written by the app


class DecisionError(RuntimeError):
    """The ticket cannot be decided by this reviewer (already done, or claimed by another)."""


@dataclass
class Item:
    queue_id: int
    ticket_id: str
    text: str
    title: str | None
    reason: str                      # a store.Reason
    prediction_id: int | None
    model_version: str | None
    top: list[tuple[str, float]] = field(default_factory=list)  # [(department, p)], best first
    claimed_until: datetime | None = None
    members: list[tuple[str, str]] = field(default_factory=list)  # the incident's other undecided tickets (id, text)


@dataclass
class Counts:
    mine: int = 0                    # my decisions today (labels + skips)
    confirmed: int = 0               # my labels today by source
    corrected: int = 0               # another department than the model's top one
    audited: int = 0
    no_fit: int = 0                  # "no department fits" (a label without department), any source
    skipped: int = 0
    team: int = 0                    # everyone's labels today
    pending: int = 0                 # tickets still waiting


def _free(t: datetime, q=QueueItem):
    return or_(q.claimed_until == None, q.claimed_until < t)  # noqa: E711


@retry
def next_item(engine, reviewer: str, claim_minutes: float = 10) -> Item | None:
    """The ticket this reviewer should see now, claimed for them: the one they already hold
    (after a reload or an undo), else the highest-priority unclaimed pending ticket (for a
    lead, disputes come first; a dispatcher never claims one). The claim is one UPDATE that
    picks the ticket itself; the ticket is read after the commit."""
    if not reviewer:
        raise ValueError("a reviewer name is needed to claim tickets")
    t = now()
    pending, h, c = ItemStatus.pending, aliased(QueueItem), aliased(QueueItem)
    held = (select(h.id).where(h.claimed_by == reviewer, h.status == pending, h.claimed_until >= t)
            .order_by(h.claimed_until.desc(), h.id.desc()).limit(1).scalar_subquery())
    lead = exists().where(User.name == reviewer, User.role == "lead")
    best = (select(c.id).where(c.status == pending, _free(t, c), or_(c.reason != Reason.returned, lead))
            .order_by(c.priority.desc(), c.id).limit(1)
            .with_for_update(skip_locked=True).scalar_subquery())  # PostgreSQL: skip others' candidates
    claim = (update(QueueItem).where(QueueItem.id == func.coalesce(held, best), QueueItem.status == pending,
                                     or_(QueueItem.claimed_by == reviewer, _free(t)))
             .values(claimed_by=reviewer, claimed_until=t + timedelta(minutes=claim_minutes)).returning(QueueItem.id))
    with writing(engine) as s:
        qid = s.connection().execute(claim).scalar()
        s.commit()
    return None if qid is None else _load(engine, qid)


def _load(engine, qid: int) -> Item:
    with Session(engine) as s:
        q, text, title, inc, p = s.exec(
            select(QueueItem, Ticket.text, Ticket.title, Ticket.incident_id, Prediction)
            .join(Ticket, Ticket.id == QueueItem.ticket_id)
            .join(Prediction, Prediction.id == QueueItem.prediction_id, isouter=True).where(QueueItem.id == qid)).one()
        top = [(str(d), float(pr)) for d, pr in (p.topk if p else [])]
        return Item(q.id, q.ticket_id, text, title, q.reason, q.prediction_id, p.model_version if p else None,
                    top, q.claimed_until, [] if inc is None else _members(s, q.ticket_id, inc))


def _members(s: Session, ticket_id: str, inc: int) -> list[tuple[str, str]]:
    """The other undecided tickets of incident `inc` (id, text), oldest first."""
    done = select(Label.ticket_id).where(Label.undone == False)  # noqa: E712
    return [tuple(r) for r in s.exec(select(Ticket.id, Ticket.text).where(
        Ticket.incident_id == inc, Ticket.id != ticket_id, Ticket.id.not_in(done))
        .order_by(Ticket.received_at, Ticket.id)).all()]


class AccountGone(DecisionError):
    """The reviewer's account was removed (accounts mode): nothing they do is recorded."""


def _account(s: Session, reviewer: str, account: bool) -> None:
    """With `account` (the app signs in with accounts), refuse a reviewer whose account is gone."""
    if account and s.get(User, reviewer) is None:
        raise AccountGone(f"the account {reviewer!r} was removed")


def _still(account: bool, reviewer: str) -> list:
    """The condition a write adds so that it is refused when the account was removed since it was read."""
    return [exists().where(User.name == reviewer)] if account else []


@retry
def decide(engine, reviewer: str, queue_id: int, choice: str, co: list[str] | tuple = (),
           account: bool = False) -> Label | None:
    """Record a decision on a claimed ticket: a department id (accepting a suggestion or
    correcting it), NONE ("no department fits", router/catalog.py) or SKIP;
    `co`: co-handling departments (协办) of the chosen one.
    Label source: audit for audit samples, confirmation when the choice is the model's top
    department, correction otherwise. Returns the label (None for a skip).
    The item is read first; the UPDATE that closes it checks that it is as read (not routed again
    meanwhile, still in no incident when it was in none), else it is read again."""
    if not reviewer:
        raise ValueError("a reviewer name is needed to decide")
    t = now()
    status = ItemStatus.skipped if choice == SKIP else ItemStatus.done
    for _ in range(20):
        with Session(engine) as s:
            _account(s, reviewer, account)
            got = s.exec(select(QueueItem.ticket_id, QueueItem.reason, QueueItem.prediction_id, Prediction.department,
                                Ticket.incident_id)
                         .join(Ticket, Ticket.id == QueueItem.ticket_id)
                         .join(Prediction, Prediction.id == QueueItem.prediction_id, isouter=True)
                         .where(QueueItem.id == queue_id)).first()
        if got is None:
            raise DecisionError(f"queue item {queue_id} does not exist")
        tid, reason, pid, top, inc = got
        if reason == Reason.returned:
            raise DecisionError(f"ticket {tid} is a dispute: a lead decides it (派单异议审核)")
        as_read = [QueueItem.reason == reason, QueueItem.prediction_id == pid]
        if inc is None:
            as_read.append(exists().where(Ticket.id == tid, Ticket.incident_id == None))  # noqa: E711
        close = update(QueueItem).where(
            QueueItem.id == queue_id, QueueItem.status == ItemStatus.pending,
            or_(QueueItem.claimed_by == reviewer, _free(t)), *as_read, *_still(account, reviewer)) \
            .values(status=status, done_at=t, claimed_by=reviewer, claimed_until=None)
        row = None
        if choice != SKIP:
            dept = to_label(choice)
            source = Source.audit if reason == Reason.audit else (
                Source.confirmation if from_label(dept) == top else Source.correction)
            row = dict(ticket_id=tid, department=dept, reviewer=reviewer, source=source, prediction_id=pid,
                       created_at=t, undone=False, wrong_departments=[],
                       co_departments=[c for c in dict.fromkeys(co) if dept and c != dept])
            add = insert(Label).values(**row)
        with writing(engine) as s:  # statements built above: the lock is held for their execution alone
            c = s.connection()
            if c.execute(close).rowcount:
                if row is not None:
                    row["id"] = c.execute(add).inserted_primary_key[0]
                    if inc is not None:
                        _settle_members(s, tid, dept, reviewer, source, t)
                s.commit()
                return None if row is None else Label(**row)
            s.rollback()
        with Session(engine) as s:  # why not
            _account(s, reviewer, account)
            q = s.get(QueueItem, queue_id)
            if q.status != ItemStatus.pending or (q.claimed_by != reviewer and q.claimed_until and q.claimed_until >= t):
                raise DecisionError(f"ticket {q.ticket_id} was already decided or is claimed by {q.claimed_by}")
        # else the item changed after it was read (routed again, or its ticket joined an incident): again
    raise DecisionError(f"ticket {tid} kept changing (routed again): try again")


def _settle_members(s: Session, ticket_id: str, dept: str | None, reviewer: str, source: str, t: datetime) -> int:
    """One decision settles the incident (并单): each undecided member gets the same department (its own
    source: confirmation when that was its own top suggestion), and its open item, if any, is closed.
    Read inside the decision's transaction, four statements for any number of members."""
    inc = s.exec(select(Ticket.incident_id).where(Ticket.id == ticket_id)).first()
    if inc is None:
        return 0
    settled = select(Label.ticket_id).where(Label.undone == False)  # noqa: E712
    others = s.exec(select(Ticket.id).where(Ticket.incident_id == inc, Ticket.id != ticket_id,
                                            Ticket.id.not_in(settled))).all()
    if not others:
        return 0
    newest = {tid: (pid, d) for tid, pid, d in s.exec(
        select(Prediction.ticket_id, Prediction.id, Prediction.department)
        .where(Prediction.ticket_id.in_(others)).order_by(Prediction.id))}
    s.execute(bulk_insert(Label), [dict(
        ticket_id=tid, department=dept, reviewer=reviewer, prediction_id=newest.get(tid, (None,))[0], created_at=t,
        source=Source.confirmation if tid in newest and (dept or NONE) == newest[tid][1] else Source.correction,
        undone=False, co_departments=[], wrong_departments=[]) for tid in others])
    s.execute(update(QueueItem).where(QueueItem.ticket_id.in_(others), QueueItem.status == ItemStatus.pending)
              .values(status=ItemStatus.done, done_at=t, claimed_by=None, claimed_until=None))
    return len(others)


def _unsettle_members(s: Session, label: Label) -> None:
    """Undo what `_settle_members` wrote with `label`: the members' labels, and their items open again."""
    inc = s.exec(select(Ticket.incident_id).where(Ticket.id == label.ticket_id)).first()
    if inc is None:
        return
    others = select(Ticket.id).where(Ticket.incident_id == inc, Ticket.id != label.ticket_id)
    same = (Label.reviewer == label.reviewer) & (Label.created_at == label.created_at) & Label.ticket_id.in_(others)
    tids = list(s.exec(select(Label.ticket_id).where(same, Label.undone == False)))  # noqa: E712
    s.execute(update(Label).where(same).values(undone=True))
    s.execute(update(QueueItem).where(QueueItem.ticket_id.in_(tids), QueueItem.status == ItemStatus.done,
                                      QueueItem.done_at == label.created_at, QueueItem.claimed_by == None)  # noqa: E711
              .values(status=ItemStatus.pending, done_at=None))


@retry
def split(engine, reviewer: str, ticket_id: str) -> int:
    """Take a ticket out of its incident (it is another matter): it gets its own queue item with its newest
    prediction. Returns the new item's id."""
    with writing(engine) as s:
        tk = s.get(Ticket, ticket_id)
        if tk is None or tk.incident_id is None:
            raise DecisionError(f"ticket {ticket_id} is in no incident")
        inc = s.get(Incident, tk.incident_id)
        if inc is not None:
            inc.size = max(inc.size - 1, 0)
            s.add(inc)
        s.execute(update(Ticket).where(Ticket.duplicate_of == ticket_id, Ticket.incident_id == tk.incident_id)
                  .values(duplicate_of=tk.duplicate_of))
        tk.incident_id, tk.duplicate_of = None, None
        s.add(tk)
        item = s.exec(select(QueueItem).where(QueueItem.ticket_id == ticket_id, QueueItem.status == ItemStatus.pending)).first()
        if item is None:
            pred = s.exec(select(Prediction).where(Prediction.ticket_id == ticket_id).order_by(Prediction.id.desc())).first()
            item = QueueItem(ticket_id=ticket_id, prediction_id=pred.id if pred else None, reason=Reason.low_confidence,
                             priority=order.UNCERTAIN + 1.0)
            s.add(item)
        s.commit()
        s.refresh(item)
        return item.id


@retry
def undo(engine, reviewer: str, claim_minutes: float = 10, account: bool = False) -> int | None:
    """Take back this reviewer's last decision: its label is marked undone and the ticket
    goes back to pending, claimed by them (so it is shown next); a dispute decision's return
    is open again. Returns the queue item id, or None when there is nothing to undo. Only
    `reviewer`'s own decisions are looked at. Read first; the UPDATEs check that the decision is
    still their last, still standing, and that nobody decided or queued the ticket since, else read again."""
    if not reviewer:
        raise ValueError("a reviewer name is needed to undo")
    t = now()
    closed = (ItemStatus.done, ItemStatus.skipped)
    for _ in range(20):
        with Session(engine) as s:
            _account(s, reviewer, account)
            last = s.exec(select(QueueItem).where(QueueItem.claimed_by == reviewer, QueueItem.status.in_(closed))
                          .order_by(QueueItem.done_at.desc(), QueueItem.id.desc()).limit(1)).first()
            if last is None:
                return None
            since = s.exec(select(Label.reviewer).where(_later(last, reviewer))).first()
            if since is not None or s.exec(select(QueueItem.id).where(_again(last))).first() is not None:
                raise DecisionError(f"ticket {last.ticket_id} was " + (f"decided by {since}" if since is not None
                                    else "queued again") + " since; nothing was undone")
            label = s.exec(select(Label).where(Label.ticket_id == last.ticket_id, Label.reviewer == reviewer,
                                               Label.undone == False,  # noqa: E712
                                               Label.source.in_((*SOURCES, Source.dispute)))
                           .order_by(Label.created_at.desc(), Label.id.desc()).limit(1)).first() \
                if last.status == ItemStatus.done else None
            inc = s.exec(select(Ticket.incident_id).where(Ticket.id == last.ticket_id)).first()
        c = aliased(QueueItem)
        newer = exists().where(c.claimed_by == reviewer, c.status.in_(closed), or_(
            c.done_at > last.done_at, (c.done_at == last.done_at) & (c.id > last.id)))
        reopen = update(QueueItem).where(
            QueueItem.id == last.id, QueueItem.status == last.status, QueueItem.done_at == last.done_at,
            QueueItem.claimed_by == reviewer, ~newer, ~exists().where(_later(last, reviewer)),
            ~exists().where(_again(last, c)), *_still(account, reviewer)) \
            .values(status=ItemStatus.pending, done_at=None, claimed_until=t + timedelta(minutes=claim_minutes))
        if label is not None:
            take_back = update(Label).where(Label.id == label.id, Label.undone == False).values(undone=True)  # noqa: E712
        with writing(engine) as s:
            won = s.connection().execute(reopen).rowcount
            if won and label is not None:
                won = s.connection().execute(take_back).rowcount
            if won:
                if label is not None and inc is not None:
                    _unsettle_members(s, label)
                if last.reason == Reason.returned:
                    returns.reopen(s, last, label)
                s.commit()
                return last.id
            s.rollback()
        # it changed after it was read (another decision, a removed account): read again
    raise DecisionError(f"ticket {last.ticket_id} kept changing: nothing was undone")


def _later(item: QueueItem, reviewer: str):
    """Someone else decided the ticket of `item` after `reviewer`'s decision on it."""
    return (Label.ticket_id == item.ticket_id) & (Label.undone == False) & (Label.reviewer != reviewer) \
        & (Label.created_at > item.done_at)  # noqa: E712


def _again(item: QueueItem, q=QueueItem):
    """The ticket of `item` waits in the queue again, in another item (routed again)."""
    return (q.ticket_id == item.ticket_id) & (q.id != item.id) & (q.status == ItemStatus.pending)


@retry
def release(engine, reviewer: str) -> int:
    """Give back this reviewer's claims (on sign-out); returns how many."""
    free = update(QueueItem).where(QueueItem.claimed_by == reviewer, QueueItem.status == ItemStatus.pending) \
        .values(claimed_until=None)
    with writing(engine) as s:
        n = s.connection().execute(free).rowcount
        s.commit()
        return n


def counts(engine, reviewer: str, tz: str = "Asia/Shanghai") -> Counts:
    """Today's work (midnight in `tz`): this reviewer's decisions by kind (each in one kind: a
    "no department fits" counts as no_fit, not as a correction or an audit), the team's
    labels, and how many tickets are still pending."""
    since = day_start(tz)
    c = Counts()
    with Session(engine) as s:
        none = Label.department == None  # noqa: E711
        mine = s.exec(select(Label.source, none, func.count()).where(
            Label.reviewer == reviewer, Label.created_at >= since, Label.undone == False,  # noqa: E712
            Label.source.in_(SOURCES)).group_by(Label.source, none)).all()
        by = {src: n for src, no_dept, n in mine if not no_dept}
        c.confirmed, c.corrected, c.audited = (by.get(src, 0) for src in SOURCES)
        c.no_fit = sum(n for _, no_dept, n in mine if no_dept)
        c.skipped = s.exec(select(func.count()).select_from(QueueItem).where(
            QueueItem.claimed_by == reviewer, QueueItem.status == ItemStatus.skipped, QueueItem.done_at >= since)).one()
        c.mine = c.confirmed + c.corrected + c.audited + c.no_fit + c.skipped
        c.team = s.exec(select(func.count()).select_from(Label).where(
            Label.created_at >= since, Label.undone == False, Label.source.in_(SOURCES))).one()  # noqa: E712
        c.pending = s.exec(select(func.count()).select_from(QueueItem).where(QueueItem.status == ItemStatus.pending)).one()
    return c
