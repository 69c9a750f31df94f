"""Returns (退单) and disputes (派单异议审核): import, rejects, the dispute band, lead-only decisions,
undo, known wrong departments in training, and the invariants (real SQLite)."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from labeling import actions
from router import returns, users
from router.cli import app
from router.returns import CO_HANDLE, REDISPATCH, UPHOLD, DisputeError
from router.store import QueueItem, TicketReturn
from tests.conftest import read_jsonl, write_jsonl
from tests.test_labeling_actions import seed


@pytest.fixture
def store(engine):
    ids = seed(engine)  # T1..T3 low confidence (urban-mgmt, police, housing), T4 an audit (traffic-police)
    with Session(engine) as s:  # T5: routed automatically to housing, not queued
        from router.store import Prediction, Ticket
        s.add(Ticket(id="T5", text="小区物业乱收停车费"))
        s.flush()
        s.add(Prediction(ticket_id="T5", model_version="v-test", department="housing", confidence=0.91,
                         topk=[["housing", 0.91], ["market-regulation", 0.06], ["urban-mgmt", 0.03]]))
        s.commit()
    users.add(engine, "lead1", "a-long-password-1", "lead")
    users.add(engine, "disp1", "a-long-password-2", "dispatcher")
    return ids


def _import(engine, catalog, tmp_path, rows, name="r.jsonl"):
    path = write_jsonl(tmp_path / name, rows)
    return returns.import_returns(engine, str(path), catalog, "tester", rejects_path=str(path) + ".rejects.jsonl")


def test_import_records_returns_and_rejects_bad_lines(engine, catalog, store, tmp_path):
    got = _import(engine, catalog, tmp_path, [
        {"id": "T5", "department": "housing", "reason": "属地不符", "time": "2026-11-03T09:00", "note": "不在本区"},
        {"id": "nope", "department": "housing", "reason": "其他"},
        {"id": "T1", "department": "police", "reason": "职能交叉"},           # never assigned T1
        {"id": "T5", "department": "housing", "reason": "属地不符"},          # duplicate
        {"id": "T4", "department": "市公安局交通警察支队", "reason": "踢皮球"},            # a name; unknown reason -> 其他
        {"id": "T2", "department": "no-such-dept"},
    ])
    assert got.added == 2 and got.other == 1 and got.reasons == {"属地不符": 1, "其他": 1}
    why = [r.reason for r in got.rejects]
    assert [r.line for r in got.rejects] == [2, 3, 4, 6]
    assert "unknown ticket" in why[0] and "never assigned" in why[1] and "duplicate return" in why[2] \
        and "unknown department" in why[3]
    assert [r["line"] for r in read_jsonl(tmp_path / "r.jsonl.rejects.jsonl")] == [2, 3, 4, 6]
    with Session(engine) as s:
        rets = {r.ticket_id: r for r in s.exec(select(TicketReturn))}
        assert rets["T4"].reason == "其他" and rets["T4"].reason_given == "踢皮球"
        assert rets["T5"].note == "不在本区" and rets["T5"].importer == "tester"
        assert rets["T5"].returned_at.hour == 1  # 09:00 China time
        items = {q.ticket_id: q for q in s.exec(select(QueueItem).where(QueueItem.status == "pending"))}
    assert items["T5"].reason == items["T4"].reason == "returned"  # T4's audit item became the dispute
    assert items["T5"].priority > max(q.priority for q in items.values() if q.reason != "returned")
    assert returns.violations(engine) == []
    # a second import of the same line is a duplicate too
    again = _import(engine, catalog, tmp_path, [{"id": "T5", "department": "housing"}], "r2.jsonl")
    assert again.added == 0 and "duplicate" in again.rejects[0].reason


def test_csv_gbk_with_chinese_headers_and_cli_exit_codes(home, engine, catalog, store, tmp_path):
    path = tmp_path / "退单.csv"
    path.write_bytes("工单编号,退单部门,退单原因,退单时间,备注\nT5,housing,权属不清,2026-11-03 10:00,产权不明\n"
                     "T9,housing,其他,,\n".encode("gbk"))
    res = CliRunner().invoke(app, ["returns", "import", str(path)])
    assert res.exit_code == 4, res.output
    assert "imported 1 returns (权属不清 1)" in res.output and "rejected 1" in res.output
    assert read_jsonl(str(path) + ".rejects.jsonl")[0]["line"] == 3
    res = CliRunner().invoke(app, ["returns", "import", str(write_jsonl(tmp_path / "x.jsonl", [{"id": "T9", "department": "housing"}]))])
    assert res.exit_code == 3


def test_only_leads_get_and_decide_disputes(engine, catalog, store, tmp_path):
    _import(engine, catalog, tmp_path, [{"id": "T5", "department": "housing", "reason": "属地不符"}])
    seen = [actions.next_item(engine, "disp1").ticket_id]
    assert seen == ["T1"]  # a dispatcher never claims a dispute
    item = actions.next_item(engine, "lead1")
    assert item.ticket_id == "T5" and item.reason == "returned"  # ahead of the uncertain tickets
    with pytest.raises(actions.DecisionError):
        actions.decide(engine, "disp1", item.queue_id, "urban-mgmt")
    with pytest.raises(DisputeError, match="not a lead"):
        returns.decide(engine, "disp1", item.queue_id, REDISPATCH, "urban-mgmt")
    d = returns.open_disputes(engine)[0]
    assert (d.dispatched, d.confidence, d.ret.reason) == ("housing", 0.91, "属地不符")
    assert d.top[1] == ("market-regulation", 0.06)


def test_redispatch_records_the_wrong_department_and_undo_restores(engine, catalog, store, tmp_path):
    _import(engine, catalog, tmp_path, [{"id": "T5", "department": "housing", "reason": "属地不符"}])
    item = actions.next_item(engine, "lead1")
    before = returns.snapshot(engine, "T5")
    with pytest.raises(DisputeError, match="another department"):
        returns.decide(engine, "lead1", item.queue_id, REDISPATCH, "housing")
    label = returns.decide(engine, "lead1", item.queue_id, REDISPATCH, "market-regulation", catalog=catalog)
    assert (label.department, label.wrong_departments, label.source) == ("market-regulation", ["housing"], "dispute")
    with Session(engine) as s:
        assert s.exec(select(TicketReturn)).one().status == "upheld"
    assert returns.violations(engine) == []
    assert actions.undo(engine, "lead1") == item.queue_id
    assert returns.snapshot(engine, "T5") == before
    assert returns.violations(engine) == []
    # decided again: upheld dispatch this time; then the same department may return it again (a chain)
    label = returns.decide(engine, "lead1", item.queue_id, UPHOLD)
    assert (label.department, label.wrong_departments) == ("housing", [])
    got = _import(engine, catalog, tmp_path, [{"id": "T5", "department": "housing", "reason": "职能交叉"}], "again.jsonl")
    assert got.added == 1 and returns.violations(engine) == []


def test_co_handling_decision_and_training_uses_known_wrong(engine, catalog, store, tmp_path):
    from training.data import from_store
    from training.replay import mix

    _import(engine, catalog, tmp_path, [{"id": "T5", "department": "housing", "reason": "职能交叉"},
                                        {"id": "T4", "department": "traffic-police", "reason": "属地不符"}])
    q = {d.ticket_id: d.queue_id for d in returns.open_disputes(engine)}
    label = returns.decide(engine, "lead1", q["T5"], CO_HANDLE, "market-regulation", ["housing", "market-regulation"])
    assert (label.department, label.co_departments, label.wrong_departments) == ("market-regulation", ["housing"], [])
    returns.decide(engine, "lead1", q["T4"], REDISPATCH, "police")
    data = from_store(engine, catalog)
    i4, i5 = data.ids.index("T4"), data.ids.index("T5")
    assert data.wrong[i4] == ["traffic-police"] and data.wrong[i5] == [] and data.co[i5] == ["housing"]
    fit = mix(data, None, wrong_weight=3)
    assert fit.ids.count("T4") == 3 and fit.ids.count("T5") == 1


def test_rerouting_keeps_a_dispute_as_it_is(engine, catalog, store, tmp_path):
    import numpy as np

    from router.order import enqueue
    from router.queue import Policy

    _import(engine, catalog, tmp_path, [{"id": "T5", "department": "housing"}])
    with Session(engine) as s:
        before = s.exec(select(QueueItem).where(QueueItem.ticket_id == "T5", QueueItem.status == "pending")).one()
        out = enqueue(s, ["T5"], np.array([[0.3, 0.7]]), [None], Policy(threshold=0.9), nofit=[0.8])
        s.commit()
        after = s.exec(select(QueueItem).where(QueueItem.ticket_id == "T5", QueueItem.status == "pending")).one()
    assert out.waiting == ["T5"] and (after.reason, after.priority, after.prediction_id) == \
        ("returned", before.priority, before.prediction_id)


def test_co_handling_from_history_to_the_classify_output(home, engine, catalog, tmp_path, monkeypatch):
    from router import cohandling
    from tests.conftest import SAMPLE

    depts = ("housing", "urban-mgmt", "police", "market-regulation")
    rows = [r for r in read_jsonl(SAMPLE / "history.jsonl") if r["label"] in depts][:240]
    for k, r in enumerate(r for r in rows if r["label"] == "housing"):
        if k < 3:
            r["co_departments"] = ["市城市管理综合执法局"] if k else ["urban-mgmt", "housing"]  # a name; the lead dropped
    rows[-1]["co_departments"] = "urban-mgmt、不存在的局"
    run = CliRunner()
    res = run.invoke(app, ["import", str(write_jsonl(tmp_path / "h.jsonl", rows))])
    assert res.exit_code == 0 and "rejected 1" in res.output and "unknown co-handling department" in res.output
    assert cohandling.pairs(engine) == {frozenset(("housing", "urban-mgmt")): 3}
    assert run.invoke(app, ["train"]).exit_code == 0
    monkeypatch.setenv("ROUTER_CLASSIFY__CO_MIN_P", "0")  # every co-occurring runner-up is suggested
    day = [{"id": f"d{i}", "text": r["text"]} for i, r in enumerate(read_jsonl(SAMPLE / "test.jsonl")) if r["label"] in depts][:60]
    assert run.invoke(app, ["classify", str(write_jsonl(tmp_path / "d.jsonl", day)), "-o", str(tmp_path / "o.jsonl")]).exit_code == 0
    out = read_jsonl(tmp_path / "o.jsonl")
    pair = {"housing", "urban-mgmt"}
    for r in out:
        top = {x["department"]: x["p"] for x in r["top"]}
        want = [d for d in top if {r["department"], d} == pair]
        assert [(x["department"], x["p"]) for x in r["co_departments"]] == [(d, top[d]) for d in want]
    assert any(r["co_departments"] for r in out)
    assert cohandling.suggest([("housing", 0.5), ("urban-mgmt", 0.3)], cohandling.pairs(engine), 0.35, 2) == []
