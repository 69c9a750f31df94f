"""Returns (退单) and their disputes (派单异议审核).

A department that received a ticket can send it back. `router returns import FILE` records each
return (`TicketReturn`) and opens a dispute: the ticket's queue item becomes (or is created as) a
`returned` item, ahead of every other band, that only a lead decides:

- uphold the dispatch: the return is rejected, the standing department(s) keep the ticket;
- re-dispatch to another department: the return is upheld and the returning department becomes a
  known wrong department of the ticket (`Label.wrong_departments`, used by training);
- set a lead department plus co-handling departments (主办 / 协办): upheld unless the returning
  department stays the lead one.

Each decision is a `Label` (source `dispute`); undoing it (labeling/actions.undo) marks the label
undone and re-opens the return and its queue item, the state before the decision. A return
never changes the dispatch it returns: it points at that prediction or label, which stay as
they were. A ticket has at most one open dispute (one open queue item, store-enforced).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, select

from router import order
from router.catalog import NONE, Catalog, to_label
from router.io import JsonlWriter, Reject, _str, parse_time, read_records
from router.store import (ItemStatus, Label, Prediction, QueueItem, Reason, ReturnStatus, Source, Ticket,
                          TicketReturn, User, now, retry, writing)

# The documented reasons; anything else is recorded as 其他 (the given text kept in reason_given).
REASONS = ("属地不符", "权属不清", "职能交叉", "不属于受理范围", "信息不全", "其他")
OTHER = "其他"

ALIASES = {  # column headers of return exports -> fields
    "id": "id", "ticket_id": "id", "工单编号": "id", "编号": "id", "工单号": "id",
    "department": "department", "退单部门": "department", "部门": "department", "承办部门": "department",
    "reason": "reason", "退单原因": "reason", "原因": "reason",
    "time": "time", "returned_at": "time", "退单时间": "time", "时间": "time",
    "note": "note", "备注": "note", "退单说明": "note", "说明": "note",
}


class DisputeError(RuntimeError):
    """A dispute decision that cannot be made (not a lead, not an open dispute, a bad department)."""


@dataclass
class Imported:
    added: int = 0
    rejects: list[Reject] = field(default_factory=list)
    other: int = 0                           # unknown reasons recorded as 其他
    reasons: Counter = field(default_factory=Counter)


@dataclass
class Standing:
    """Who holds a ticket now: the newest label not undone, else the newest prediction."""
    department: str | None
    co: list[str]
    prediction_id: int | None
    label_id: int | None
    wrong: list[str]


def standing(s: Session, ticket_id: str) -> Standing | None:
    label = s.exec(select(Label).where(Label.ticket_id == ticket_id, Label.undone == False)  # noqa: E712
                   .order_by(Label.created_at.desc(), Label.id.desc())).first()
    pred = s.exec(select(Prediction).where(Prediction.ticket_id == ticket_id)
                  .order_by(Prediction.created_at.desc(), Prediction.id.desc())).first()
    if label is None and pred is None:
        return None
    if label is not None:
        return Standing(label.department, list(label.co_departments or []), pred.id if pred else None, label.id,
                        list(label.wrong_departments or []))
    return Standing(pred.department, [], pred.id, None, [])


def assigned(s: Session, ticket_id: str) -> set[str]:
    """Every department the ticket was ever dispatched to (predictions, labels, co-handlers)."""
    out = set(s.exec(select(Prediction.department).where(Prediction.ticket_id == ticket_id)))
    for d, co in s.exec(select(Label.department, Label.co_departments).where(Label.ticket_id == ticket_id)):
        out |= {d, *(co or [])}
    return out - {None}


def is_lead(s: Session, name: str) -> bool:
    u = s.get(User, name) if name else None
    return u is not None and u.role == "lead"


def _check(s: Session, tid: str, dept: str, pending: set) -> str | None:
    """Why a return of `tid` by `dept` is refused, or None. `pending`: (ticket, dept) earlier in the file."""
    if s.get(Ticket, tid) is None:
        return f"unknown ticket {tid!r}"
    if dept not in assigned(s, tid):
        return f"ticket {tid}: department {dept!r} was never assigned this ticket"
    last = s.exec(select(TicketReturn).where(TicketReturn.ticket_id == tid, TicketReturn.department == dept)
                  .order_by(TicketReturn.id.desc())).first()
    if (tid, dept) in pending or last is not None and not s.exec(select(Label.id).where(
            Label.ticket_id == tid, Label.department == dept, Label.undone == False,  # noqa: E712
            Label.created_at > last.created_at)).first():
        return f"ticket {tid}: duplicate return by {dept!r} (already returned, not dispatched to it again since)"
    if any(t == tid for t, _ in pending) or s.exec(select(TicketReturn.id).where(
            TicketReturn.ticket_id == tid, TicketReturn.status == ReturnStatus.open)).first():
        return f"ticket {tid}: already has an open dispute (another department's return); a lead decides it first"
    st = standing(s, tid)
    if dept != st.department and dept not in st.co:
        return f"ticket {tid}: department {dept!r} no longer holds it (now {st.department!r})"
    return None


def open_dispute(s: Session, ret: TicketReturn) -> QueueItem:
    """The ticket's open queue item turned into (or a new one as) a dispute, unclaimed."""
    q = s.exec(select(QueueItem).where(QueueItem.ticket_id == ret.ticket_id,
                                       QueueItem.status == ItemStatus.pending)).first()
    if q is None:
        q = QueueItem(ticket_id=ret.ticket_id, prediction_id=ret.prediction_id, created_at=ret.created_at)
    q.reason, q.priority, q.claimed_by, q.claimed_until = Reason.returned, order.RETURNED, None, None
    s.add(q)
    s.flush()
    return q


@retry
def import_returns(engine, path: str, catalog: Catalog, importer: str = "", encoding: str | None = None,
                   rejects_path: str | None = None, at: datetime | None = None) -> Imported:
    """Record the returns in a JSONL/CSV/Excel file and open their disputes; bad lines are
    rejected (written to `rejects_path`) and never stop the import. One transaction."""
    out = Imported()
    at = at or now()
    with writing(engine) as s:
        pending: set[tuple[str, str]] = set()
        for n, rec, raw, err, data in read_records(path, ("id", "department"), ALIASES, encoding):
            if err:
                out.rejects.append(Reject(n, err, raw, data))
                continue
            f = {ALIASES.get(k.strip() if isinstance(k, str) else k, k): v for k, v in rec.items()}
            tid, given = _str(f.get("id")), _str(f.get("department"))
            if tid is None or given is None:
                out.rejects.append(Reject(n, f"missing {'ticket id' if tid is None else 'returning department'}", raw))
                continue
            dept = catalog.lookup(given)
            if dept is None:
                out.rejects.append(Reject(n, f"ticket {tid}: unknown department {given[:60]!r}", raw))
                continue
            try:
                when = parse_time(_str(f.get("time"))) or at
            except ValueError:
                out.rejects.append(Reject(n, f"ticket {tid}: 'time' {str(f.get('time'))[:60]!r} is not an ISO date-time", raw))
                continue
            why = _check(s, tid, dept, pending)
            if why:
                out.rejects.append(Reject(n, why, raw))
                continue
            reason = _str(f.get("reason")) or OTHER
            mapped = reason if reason in REASONS else OTHER
            out.other += mapped != reason
            st = standing(s, tid)
            ret = TicketReturn(ticket_id=tid, department=dept, reason=mapped, note=_str(f.get("note")) or "",
                               reason_given=None if mapped == reason else reason[:200], returned_at=when,
                               importer=importer, prediction_id=st.prediction_id, label_id=st.label_id,
                               created_at=at)
            s.add(ret)
            s.flush()
            ret.queue_id = open_dispute(s, ret).id
            pending.add((tid, dept))
            out.added += 1
            out.reasons[mapped] += 1
        s.commit()
    if rejects_path and out.rejects:
        with JsonlWriter(rejects_path) as w:
            w.write_many(r.as_dict() for r in out.rejects)
    return out


# ---- disputes ---------------------------------------------------------------------------------

UPHOLD, REDISPATCH, CO_HANDLE = "uphold", "redispatch", "co_handle"


@dataclass
class Dispute:
    """What a lead sees: the return and the dispatch it returns."""
    queue_id: int
    ticket_id: str
    text: str
    title: str | None
    ret: TicketReturn
    dispatched: str | None            # the department the ticket was returned from (the dispatch)
    co: list[str]
    confidence: float | None          # the model's confidence in that dispatch (None: a person's)
    top: list[tuple[str, float]]      # the model's suggestions
    wrong: list[str]                  # known wrong departments so far
    age_days: float = 0.0


def open_return(s: Session, ticket_id: str) -> TicketReturn | None:
    return s.exec(select(TicketReturn).where(TicketReturn.ticket_id == ticket_id,
                                             TicketReturn.status == ReturnStatus.open)).first()


def dispute(s: Session, queue_id: int, at: datetime | None = None) -> Dispute | None:
    q = s.get(QueueItem, queue_id)
    if q is None or q.reason != Reason.returned:
        return None
    ret = open_return(s, q.ticket_id) or s.exec(select(TicketReturn).where(TicketReturn.queue_id == q.id)
                                                .order_by(TicketReturn.id.desc())).first()
    t = s.get(Ticket, q.ticket_id)
    pred = s.get(Prediction, ret.prediction_id) if ret.prediction_id else None
    label = s.get(Label, ret.label_id) if ret.label_id else None
    newest = s.get(Prediction, q.prediction_id) if q.prediction_id else pred
    dispatched = label.department if label else (pred.department if pred else None)
    conf = None if label else (pred.confidence if pred else None)
    age = ((at or now()) - ret.created_at).total_seconds() / 86400
    return Dispute(q.id, q.ticket_id, t.text, t.title, ret, dispatched,
                   list(label.co_departments or []) if label else [], conf,
                   [(str(d), float(p)) for d, p in (newest.topk if newest else [])],
                   list(label.wrong_departments or []) if label else [], age)


def open_disputes(engine, at: datetime | None = None) -> list[Dispute]:
    """Every open dispute, oldest first (what dispatchers see read-only)."""
    with Session(engine) as s:
        ids = s.exec(select(QueueItem.id).where(QueueItem.status == ItemStatus.pending,
                                                QueueItem.reason == Reason.returned).order_by(QueueItem.id)).all()
        return [dispute(s, i, at) for i in ids]


@retry
def decide(engine, lead: str, queue_id: int, outcome: str, department: str | None = None,
           co: list[str] | tuple = (), catalog: Catalog | None = None) -> Label:
    """A lead's decision on an open dispute, as a label (source `dispute`): UPHOLD keeps the
    dispatch, REDISPATCH sends it to `department`, CO_HANDLE sets `department` as the lead one
    with `co` as co-handlers. Only accounts with the role `lead` decide."""
    t = now()
    with writing(engine) as s:
        if not is_lead(s, lead):
            raise DisputeError(f"{lead!r} is not a lead: only leads decide disputes")
        q = s.get(QueueItem, queue_id)
        if q is None or q.reason != Reason.returned or q.status != ItemStatus.pending:
            raise DisputeError(f"queue item {queue_id} is not an open dispute")
        if q.claimed_by not in (None, lead) and q.claimed_until and q.claimed_until >= t:
            raise DisputeError(f"ticket {q.ticket_id} is claimed by {q.claimed_by}")
        ret = open_return(s, q.ticket_id)
        st = standing(s, q.ticket_id)
        co = [c for c in dict.fromkeys(co) if c != department]
        for d in [department, *co]:
            if d not in (None, NONE) and catalog is not None and d not in catalog.by_id:
                raise DisputeError(f"unknown department {d!r}")
        if outcome == UPHOLD:
            department, co = st.department, st.co
        elif outcome == REDISPATCH:
            if not department or department == ret.department:
                raise DisputeError("re-dispatch needs another department than the returning one")
            co = []
        elif outcome == CO_HANDLE:
            if not department:
                raise DisputeError("co-handling needs a lead department")
        else:
            raise DisputeError(f"unknown outcome {outcome!r}; use {UPHOLD}, {REDISPATCH} or {CO_HANDLE}")
        upheld = outcome != UPHOLD and department != ret.department and ret.department not in co
        wrong = list(dict.fromkeys(st.wrong + ([ret.department] if upheld else [])))
        if department == NONE:  # re-dispatched nowhere: no department fits
            co = []
        label = Label(ticket_id=q.ticket_id, department=to_label(department), co_departments=list(co),
                      wrong_departments=[w for w in wrong if w != department and w not in co],
                      reviewer=lead, source=Source.dispute, prediction_id=q.prediction_id, created_at=t)
        s.add(label)
        s.flush()
        ret.status = ReturnStatus.upheld if outcome != UPHOLD and department != ret.department \
            else ReturnStatus.rejected
        ret.decision_id = label.id
        s.add(ret)
        won = s.execute(update(QueueItem).where(QueueItem.id == queue_id, QueueItem.status == ItemStatus.pending)
                        .values(status=ItemStatus.done, done_at=t, claimed_by=lead, claimed_until=None)).rowcount
        if not won:
            s.rollback()
            raise DisputeError(f"ticket {q.ticket_id} was decided meanwhile")
        s.commit()
        s.refresh(label)
        return label


def reopen(s: Session, item: QueueItem, label: Label | None) -> None:
    """Undo of a dispute decision (inside labeling/actions.undo's transaction): its return is open again."""
    ret = s.exec(select(TicketReturn).where(TicketReturn.queue_id == item.id)
                 .order_by(TicketReturn.id.desc())).first()
    if ret is not None and (label is None or ret.decision_id == label.id):
        ret.status, ret.decision_id = ReturnStatus.open, None
        s.add(ret)


# ---- invariants (bench/loop_sim.py checks them every simulated day; tests in CI) ---------------

def violations(engine, limit: int = 5) -> list[str]:
    """The returns' invariants on the whole store, as messages (empty when they hold): a return
    never loses the dispatch it returns; a ticket has at most one open dispute, and an open return
    has exactly its pending dispute item; a decided return names a standing or undone-then-redone
    decision label of a lead."""
    from sqlalchemy import func

    bad: list[str] = []
    with Session(engine) as s:
        for r in s.exec(select(TicketReturn)):
            p = s.get(Prediction, r.prediction_id) if r.prediction_id else None
            lab = s.get(Label, r.label_id) if r.label_id else None
            held = {lab.department, *(lab.co_departments or [])} if lab else {p.department} if p else set()
            if (r.prediction_id and p is None) or (r.label_id and (lab is None or lab.ticket_id != r.ticket_id)) \
                    or r.department not in held:
                bad.append(f"return {r.id} of {r.ticket_id}: the dispatch it returns is lost or changed")
            if r.status == ReturnStatus.open:
                q = s.get(QueueItem, r.queue_id) if r.queue_id else None
                if q is None or q.status != ItemStatus.pending or q.reason != Reason.returned:
                    bad.append(f"return {r.id} of {r.ticket_id} is open without its pending dispute item")
            else:
                d = s.get(Label, r.decision_id) if r.decision_id else None
                if d is None or d.undone or d.source != Source.dispute or d.ticket_id != r.ticket_id:
                    bad.append(f"return {r.id} of {r.ticket_id} is {r.status} without its decision label")
            if len(bad) >= limit:
                break
        twice = s.exec(select(TicketReturn.ticket_id).where(TicketReturn.status == ReturnStatus.open)
                       .group_by(TicketReturn.ticket_id).having(func.count() > 1).limit(limit)).all()
        bad += [f"ticket {t} has more than one open dispute" for t in twice]
        orphan = s.exec(select(QueueItem.ticket_id).where(
            QueueItem.status == ItemStatus.pending, QueueItem.reason == Reason.returned,
            ~QueueItem.id.in_(select(TicketReturn.queue_id).where(TicketReturn.status == ReturnStatus.open)))
            .limit(limit)).all()
        bad += [f"ticket {t} has an open dispute item without an open return" for t in orphan]
    return bad[:limit]


def snapshot(engine, ticket_id: str) -> dict:
    """A ticket's dispute state (returns, labels standing, open item): what undo must restore."""
    with Session(engine) as s:
        return {
            "returns": [(r.id, r.status, r.decision_id) for r in s.exec(
                select(TicketReturn).where(TicketReturn.ticket_id == ticket_id).order_by(TicketReturn.id))],
            "labels": [(lab.id, lab.department, lab.co_departments, lab.wrong_departments) for lab in s.exec(
                select(Label).where(Label.ticket_id == ticket_id, Label.undone == False).order_by(Label.id))],  # noqa: E712
            "items": [(q.id, q.status, q.reason, q.prediction_id) for q in s.exec(
                select(QueueItem).where(QueueItem.ticket_id == ticket_id).order_by(QueueItem.id))],
        }
