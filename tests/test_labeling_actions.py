"""Store operations of the labeling app: claims, decisions, undo, counts (real SQLite)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from labeling import actions
from labeling.actions import SKIP, DecisionError
from router.catalog import NONE as NO_FIT
from router.store import Incident, Label, Prediction, QueueItem, Ticket, now

# (ticket id, text, [(dept, p), ...] best first, reason, priority)
TICKETS = [
    ("T1", "小区门口的井盖丢了，晚上很危险", [("urban-mgmt", 0.55), ("housing", 0.30), ("police", 0.15)],
     "low_confidence", 0.9),
    ("T2", "楼上每天半夜唱歌，吵得睡不着 <b>救命</b> **急**", [("police", 0.50), ("urban-mgmt", 0.30),
                                                        ("housing", 0.20)], "low_confidence", 0.8),
    ("T3", "物业不给维修电梯", [("housing", 0.45), ("urban-mgmt", 0.35), ("police", 0.20)],
     "low_confidence", 0.7),
    ("T4", "路边有人违章停车堵住消防通道", [("traffic-police", 0.95), ("police", 0.03), ("urban-mgmt", 0.02)],
     "audit", 0.5),
]


def seed(engine, tickets=TICKETS) -> dict[str, int]:
    """Tickets, predictions and queue items; returns ticket id -> queue item id."""
    out = {}
    with Session(engine) as s:
        for tid, text, top, reason, prio in tickets:
            s.add(Ticket(id=tid, text=text))
            s.flush()
            p = Prediction(ticket_id=tid, model_version="v-test", department=top[0][0], confidence=top[0][1],
                           topk=[list(x) for x in top])
            s.add(p)
            s.flush()
            q = QueueItem(ticket_id=tid, prediction_id=p.id, reason=reason, priority=prio)
            s.add(q)
            s.flush()
            out[tid] = q.id
        s.commit()
    return out


def labels(engine) -> list[Label]:
    with Session(engine) as s:
        return list(s.exec(select(Label).order_by(Label.id)))


def item(engine, qid) -> QueueItem:
    with Session(engine) as s:
        return s.get(QueueItem, qid)


def test_next_item_claims_by_priority_and_keeps_the_claim(engine):
    ids = seed(engine)
    a = actions.next_item(engine, "alice")
    assert a.ticket_id == "T1" and a.top[0] == ("urban-mgmt", 0.55) and a.text.startswith("小区")
    assert actions.next_item(engine, "alice").queue_id == a.queue_id  # reload: same ticket
    b = actions.next_item(engine, "bob")
    assert b.ticket_id == "T2"                                         # never the same ticket
    q = item(engine, ids["T1"])
    assert q.claimed_by == "alice" and q.claimed_until > now()


def test_expired_claim_goes_to_someone_else(engine):
    ids = seed(engine)
    actions.next_item(engine, "alice", claim_minutes=-1)  # a claim that has already run out
    assert actions.next_item(engine, "bob").queue_id == ids["T1"]
    with pytest.raises(DecisionError):
        actions.decide(engine, "alice", ids["T1"], "housing")  # bob holds it now


def test_concurrent_claims_are_distinct(engine):
    ids = seed(engine, [(f"C{i}", f"工单{i}", [("police", 0.5), ("housing", 0.5)], "low_confidence", i / 100)
                        for i in range(40)])
    got: dict[str, list[int]] = {}

    def work(name):
        mine = got.setdefault(name, [])
        for _ in range(10):
            it = actions.next_item(engine, name)
            mine.append(it.queue_id)
            actions.decide(engine, name, it.queue_id, "police")

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b", "c", "d")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [q for v in got.values() for q in v]
    assert len(claimed) == 40 and set(claimed) == set(ids.values())
    assert len(labels(engine)) == 40


def test_decisions_write_labels_with_their_source(engine):
    ids = seed(engine)
    for expect_tid, choice in [("T1", "urban-mgmt"), ("T2", "urban-mgmt"), ("T3", NO_FIT), ("T4", "traffic-police")]:
        it = actions.next_item(engine, "alice")
        assert it.ticket_id == expect_tid
        actions.decide(engine, "alice", it.queue_id, choice)
    rows = labels(engine)
    assert [(r.ticket_id, r.department, r.source, r.reviewer) for r in rows] == [
        ("T1", "urban-mgmt", "confirmation", "alice"),   # the model's top choice
        ("T2", "urban-mgmt", "correction", "alice"),     # suggestion 2: the model was wrong
        ("T3", None, "correction", "alice"),             # no department fits
        ("T4", "traffic-police", "audit", "alice"),      # random audit of a confident ticket
    ]
    assert all(r.prediction_id for r in rows)
    assert {item(engine, q).status for q in ids.values()} == {"done"}
    assert actions.next_item(engine, "alice") is None
    with pytest.raises(DecisionError):
        actions.decide(engine, "alice", ids["T1"], "police")  # already decided


def test_skip_and_undo(engine):
    ids = seed(engine)
    actions.decide(engine, "alice", actions.next_item(engine, "alice").queue_id, "housing")   # T1
    actions.decide(engine, "alice", actions.next_item(engine, "alice").queue_id, SKIP)        # T2
    assert item(engine, ids["T2"]).status == "skipped" and len(labels(engine)) == 1
    c = actions.counts(engine, "alice")
    assert (c.mine, c.corrected, c.skipped, c.team, c.pending) == (2, 1, 1, 1, 2)

    assert actions.undo(engine, "alice") == ids["T2"]                # the skip
    assert actions.next_item(engine, "alice").ticket_id == "T2"      # shown again, before T3
    assert actions.undo(engine, "alice") == ids["T1"]                # then the label
    assert labels(engine)[0].undone is True
    assert item(engine, ids["T1"]).status == "pending"
    assert actions.next_item(engine, "alice").ticket_id == "T1"      # newest undo first
    assert actions.next_item(engine, "bob").ticket_id == "T3"        # alice holds T1 and T2
    c = actions.counts(engine, "alice")
    assert (c.mine, c.team, c.pending) == (0, 0, 4)
    actions.decide(engine, "alice", ids["T1"], "police")
    assert [(r.department, r.undone) for r in labels(engine)] == [("housing", True), ("police", False)]
    assert actions.undo(engine, "bob") is None                       # bob decided nothing


def test_counts_are_per_day_in_the_configured_zone(engine):
    seed(engine)
    actions.decide(engine, "alice", actions.next_item(engine, "alice").queue_id, "urban-mgmt")
    with Session(engine) as s:  # a label from two days ago does not count today
        s.add(Label(ticket_id="T3", department="housing", reviewer="alice", source="correction",
                    created_at=now() - timedelta(days=2)))
        s.commit()
    c = actions.counts(engine, "alice", "Asia/Shanghai")
    assert (c.mine, c.confirmed, c.team) == (1, 1, 1)
    assert actions.counts(engine, "bob").mine == 0


def test_release_gives_claims_back(engine):
    seed(engine)
    a = actions.next_item(engine, "alice")
    assert actions.release(engine, "alice") == 1
    assert actions.next_item(engine, "bob").queue_id == a.queue_id


def test_a_removed_account_cannot_act_and_its_claims_are_released(engine):
    from router import users
    seed(engine)
    users.add(engine, "alice", "alices-password")
    shown = actions.next_item(engine, "alice")
    actions.decide(engine, "alice", shown.queue_id, "housing", account=True)
    held = actions.next_item(engine, "alice")
    users.remove(engine, "alice")
    assert item(engine, held.queue_id).claimed_until is None              # released at once
    assert actions.next_item(engine, "bob").queue_id == held.queue_id
    with pytest.raises(actions.AccountGone):
        actions.decide(engine, "alice", held.queue_id, "police", account=True)
    with pytest.raises(actions.AccountGone):
        actions.undo(engine, "alice", account=True)
    assert [(x.reviewer, x.undone) for x in labels(engine)] == [("alice", False)]


def test_undoing_a_skip_never_reopens_a_ticket_someone_decided_since(engine):
    ids = seed(engine)
    shown = actions.next_item(engine, "alice")
    actions.decide(engine, "alice", shown.queue_id, SKIP)
    with Session(engine) as s:                                           # the file is routed again
        p = s.exec(select(Prediction).where(Prediction.ticket_id == shown.ticket_id)).first()
        s.add(QueueItem(ticket_id=shown.ticket_id, prediction_id=p.id, priority=5.0))
        s.commit()
    again = actions.next_item(engine, "bob")
    assert again.ticket_id == shown.ticket_id
    actions.decide(engine, "bob", again.queue_id, "housing")
    with pytest.raises(DecisionError, match="decided by bob"):
        actions.undo(engine, "alice")
    assert item(engine, ids[shown.ticket_id]).status == "skipped"
    live = [(x.ticket_id, x.reviewer) for x in labels(engine) if not x.undone]
    assert live == [(shown.ticket_id, "bob")]


@contextmanager
def locked_statements(engine):
    """The statements each write transaction sends while it holds SQLite's write lock (from its BEGIN
    IMMEDIATE to its commit or rollback), first word of each: one list per transaction."""
    txs, now_ = [], {}

    def sent(_conn, _cursor, statement, *_):
        word = statement.split()[0].upper()
        if statement.startswith("BEGIN IMMEDIATE"):
            now_["tx"] = []
        elif "tx" in now_:
            now_["tx"].append(word)

    def end(_conn):
        if "tx" in now_:
            txs.append(now_.pop("tx"))
    event.listen(engine, "before_cursor_execute", sent)
    event.listen(engine, "commit", end)
    event.listen(engine, "rollback", end)
    try:
        yield txs
    finally:
        event.remove(engine, "before_cursor_execute", sent)
        event.remove(engine, "commit", end)
        event.remove(engine, "rollback", end)


def test_claims_decisions_and_undos_read_before_they_take_the_write_lock(engine):
    """Ten reviewers queue for SQLite's write lock: each call holds it for its writes alone. A claim is one
    UPDATE that picks the ticket itself, a decision one UPDATE and one INSERT, an undo two UPDATEs; what
    they read (the claim held, the item and its prediction, the last decision) is read before."""
    seed(engine)
    with locked_statements(engine) as txs:
        it = actions.next_item(engine, "alice")
    assert txs == [["UPDATE"]]
    with locked_statements(engine) as txs:
        assert actions.next_item(engine, "alice").queue_id == it.queue_id      # the claim she holds
    assert txs == [["UPDATE"]]
    with locked_statements(engine) as txs:
        actions.decide(engine, "alice", it.queue_id, "housing")
    assert txs == [["UPDATE", "INSERT"]]
    with locked_statements(engine) as txs:
        actions.undo(engine, "alice")
    assert txs == [["UPDATE", "UPDATE"]]
    assert [(x.department, x.undone) for x in labels(engine)] == [("housing", True)]


def test_a_decision_is_made_on_the_item_as_it_is_when_written(engine, monkeypatch):
    """Between the decision's reads and its write the ticket is routed again (a new prediction) and joins
    an incident with a ticket waiting through its item: the decision is read again and made on the item as
    it is then, settling the new member too."""
    ids = seed(engine)
    shown = actions.next_item(engine, "alice")
    writing = actions.writing

    def meanwhile(e):
        if not meanwhile.done:
            meanwhile.done = True
            with Session(engine) as s:
                p = Prediction(ticket_id=shown.ticket_id, model_version="v-next", department="housing",
                               confidence=0.6, topk=[["housing", 0.6], ["urban-mgmt", 0.4]])
                s.add(p)
                s.add(Ticket(id="T1b", text="井盖又丢了"))
                inc = Incident(place="井盖", size=2)
                s.add(inc)
                s.flush()
                s.add(Prediction(ticket_id="T1b", model_version="v-next", department="housing", confidence=0.6,
                                 topk=[["housing", 0.6]]))
                for t in (shown.ticket_id, "T1b"):
                    s.get(Ticket, t).incident_id = inc.id
                s.get(QueueItem, ids[shown.ticket_id]).prediction_id = p.id
                s.commit()
                meanwhile.pid = p.id
        return writing(e)
    meanwhile.done = False
    monkeypatch.setattr(actions, "writing", meanwhile)
    label = actions.decide(engine, "alice", shown.queue_id, "housing")
    assert (label.prediction_id, label.source) == (meanwhile.pid, "confirmation")   # the new top suggestion
    assert [(x.ticket_id, x.department) for x in labels(engine)] == [("T1", "housing"), ("T1b", "housing")]
