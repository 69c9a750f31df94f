"""Emergencies and the legal channel: the rule layer, learning from labels, output order, the queue,
`router classify --emergencies-only`."""

from __future__ import annotations


import pytest
from sqlmodel import Session, select

from router.catalog import EMERGENCY
from router.dispatch import Info, emergencies, legal_channel
from router.emergency import legal, line
from router.io import TicketIn
from router.store import Label, QueueItem, connect
from tests.conftest import SAMPLE, invoke, read_jsonl, write_jsonl


@pytest.mark.parametrize("text,want", [
    ("3栋楼道里电动车烧着了，全是浓烟，人下不来", "emergency-119"),
    ("我爸突然晕倒了，叫不醒，快派救护车！", "emergency-120"),
    ("中山路有人拿着刀在街上追着砍人！", "emergency-110"),
    ("我孩子在楼下玩，一转眼不见了，找了半个小时都找不到了", "emergency-110"),
    ("滨江路两辆车相撞，有人受伤卡在车里", "emergency-122"),
    ("楼上正在打架，听到有人喊救命", "emergency-110"),         # a weak word, happening now
    ("上次煤气泄漏的事处理了吗", None),                        # the near-miss
    ("楼道里堆满了杂物，万一着火了怎么办？", None),
    ("想问一下叫120救护车的费用能不能医保报销", None),
    ("去年在滨江路出了车祸，事故认定书一直没出来", None),
    ("滨江路追尾了，车灯碎了，没人受伤", None),                # a crash with nobody hurt is no 122
    ("家里有人打人，不知道找谁", None),                        # a weak word, not said to be now
    ("上次楼下着火了，现在又冒烟了，快来！", "emergency-119"),  # the past mentioned, but it is happening now
])
def test_rule_layer(text, want):
    assert line(text) == want


def test_the_rule_wins_and_a_weak_model_emergency_does_not():
    batch = [TicketIn(line=1, id="a", text="厨房着火了，快来"), TicketIn(line=2, id="b", text="楼道里灯不亮")]
    tops = [[("housing", 0.9), ("fire-rescue", 0.1)], [("emergency-119", 0.4), ("housing", 0.35)]]
    infos = [Info(), Info()]
    new = emergencies(batch, tops, infos, model_min=0.5)
    assert new[0] == [("emergency-119", 1.0), ("housing", 0.9)] and infos[0].by == "emergency-rule"
    assert new[1][0] == ("housing", 0.35) and infos[1].by == "model"   # the model's 0.4 is not enough
    assert emergencies(batch[1:], tops[1:], [Info()], model_min=0.3)[0][0] == ("emergency-119", 0.4)


def test_learned_from_labels_first_in_output_and_queue(month_trained, tmp_path):
    home = month_trained
    engine = connect(f"sqlite:///{home}/router.db")
    with Session(engine) as s:        # imported as labels, so the model has these classes
        got = set(s.exec(select(Label.department)))
    assert set(EMERGENCY) | {"legal-channel"} <= got
    day = read_jsonl(SAMPLE / "month" / "day05.jsonl")[:60]
    day.append({"id": "X1", "text": "我爸突然晕倒了，叫不醒，快派救护车！"})
    src = write_jsonl(tmp_path / "day.jsonl", day)
    res = invoke("classify", str(src))
    assert res.exit_code == 0, res.output
    out = read_jsonl(tmp_path / "day.routed.jsonl")
    urgent = [r for r in out if r["department"] in EMERGENCY]
    assert urgent and out[:len(urgent)] == urgent                   # emergencies are written first
    x1 = next(r for r in out if r["id"] == "X1")
    assert (x1["department"], x1["department_name"], x1["by"], x1["queued"]) == (
        "emergency-120", "120 急救（医疗）", "emergency-rule", True)
    assert "EMERGENCIES" in res.output
    with Session(engine) as s:
        items = s.exec(select(QueueItem).where(QueueItem.status == "pending")
                       .order_by(QueueItem.priority.desc())).all()
    assert {q.ticket_id for q in items[:len(urgent)]} == {r["id"] for r in urgent}
    assert all(q.reason == "emergency" for q in items[:len(urgent)])
    assert all(q.reason != "emergency" for q in items[len(urgent):])


def test_emergencies_only_needs_no_model_and_writes_only_emergencies(home, engine, tmp_path):  # a store, no model
    rows = [{"id": "a", "text": "楼道里灯不亮"}, {"id": "b", "text": "滨江路两辆车相撞，有人受伤卡在车里"},
            {"id": "c", "text": "上次煤气泄漏的事处理了吗"}]
    src = write_jsonl(tmp_path / "now.jsonl", rows)
    res = invoke("classify", str(src), "--emergencies-only")
    assert res.exit_code == 0, res.output
    out = read_jsonl(tmp_path / "now.routed.jsonl")
    assert [(r["id"], r["department"], r["model_version"]) for r in out] == [("b", "emergency-122", "rules")]
    assert "2 tickets are no emergency" in " ".join(res.output.split())
    rows.append({"id": "d", "text": "有人要跳楼，快来"})          # a minute later: the file grew
    write_jsonl(tmp_path / "now.jsonl", rows)
    assert invoke("classify", str(src), "--emergencies-only", "--resume").exit_code == 0
    assert [r["id"] for r in read_jsonl(tmp_path / "now.routed.jsonl")] == ["b", "d"]
    engine = connect(f"sqlite:///{home}/router.db")
    with Session(engine) as s:
        assert sorted((q.ticket_id, q.reason) for q in s.exec(select(QueueItem))) == [
            ("b", "emergency"), ("d", "emergency")]


URGENT = {"U1": "我爸突然晕倒了，叫不醒，快派救护车！", "U2": "楼下餐馆着火了，火很大", "U3": "有人拿着刀在小区门口砍人"}


def _late_emergencies(tmp_path):
    """40 calm tickets of the month with the three emergencies in the 2nd, 3rd and 4th batches of 10."""
    rows = read_jsonl(SAMPLE / "month" / "day05.jsonl")[:40]
    for pos, (tid, text) in zip((15, 27, 39), URGENT.items()):
        rows.insert(pos, {"id": tid, "text": text})
    return write_jsonl(tmp_path / "day.jsonl", rows), rows


def _ids(path):
    import csv

    import openpyxl

    if path.suffix == ".jsonl":
        return [r["id"] for r in read_jsonl(path)]
    if path.suffix == ".csv":
        return [r["id"] for r in csv.DictReader(open(path, encoding="utf-8-sig"))]
    return [str(r[0].value) for r in list(openpyxl.load_workbook(path).active.iter_rows())[1:]]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "xlsx"])
def test_every_emergency_of_a_run_is_written_first_not_only_in_its_batch(month_trained, tmp_path, fmt):
    src, rows = _late_emergencies(tmp_path)
    out = tmp_path / f"routed.{fmt}"
    res = invoke("classify", str(src), "-o", str(out), "--batch-size", "10")
    assert res.exit_code == 0, res.output
    ids = _ids(out)
    assert ids[:3] == list(URGENT) and sorted(ids) == sorted(r["id"] for r in rows)   # in input order, once each
    assert ids[3:] == [r["id"] for r in rows if r["id"] not in URGENT]
    assert not list(tmp_path.glob("routed.*.tmp")) and not list(tmp_path.glob("*.partial.jsonl"))
    engine = connect(f"sqlite:///{month_trained}/router.db")
    with Session(engine) as s:
        top = s.exec(select(QueueItem).where(QueueItem.status == "pending")
                     .order_by(QueueItem.priority.desc()).limit(4)).all()
    assert {q.ticket_id for q in top[:3]} == set(URGENT) and [q.reason for q in top] == ["emergency"] * 3 + [
        top[3].reason] and top[3].reason != "emergency"


def test_a_resumed_run_still_writes_its_emergencies_first_once_each(month_trained, tmp_path):
    import subprocess
    import sys

    src, rows = _late_emergencies(tmp_path)
    out = tmp_path / "routed.jsonl"
    head = write_jsonl(tmp_path / "head.jsonl", rows[:20])   # what a killed run got through: U1 after 15 calm ones
    assert invoke("classify", str(head), "-o", str(out), "--batch-size", "10").exit_code == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert _ids(out)[0] == "U1"
    lines = lines[1:11] + lines[:1] + lines[11:]        # as the killed run left it: U1 first in its batch only
    out.write_text("\n".join(lines[:12]) + "\n" + lines[12][:30], encoding="utf-8")   # killed mid-line
    res = subprocess.run([sys.executable, "-m", "router.cli", "classify", str(src), "-o", str(out),
                          "--batch-size", "10", "--resume"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    ids = _ids(out)
    assert ids[:3] == list(URGENT) and len(ids) == len(set(ids)) == len(rows)


@pytest.mark.parametrize("text,want", [
    ("我想对区市场监管局的处罚决定申请行政复议", True),
    ("举报我们镇副镇长挪用扶贫款，想找纪检监察部门", True),
    ("法院判决都下来三个月了，对方就是不执行", True),
    ("工伤的事我想申请劳动争议仲裁，需要什么材料", True),
    ("我去年提的信访事项复核意见还没收到", True),
    ("我要依申请公开拆迁安置方案", True),
    ("公司拖欠工资三个月了，老板跑了", False),          # hrss
    ("我要到信访局反映小区拆迁问题", False),            # the petition bureau, a department
    ("交通违章想申诉，去哪个窗口", False),
    ("法院门口天天乱停车，没人管", False),
    ("物业再不修电梯我就起诉你们", False),
    ("政务公开栏里的信息好久没更新了", False),
    ("我已经向纪委反映过了，小区路灯还是不亮", False),
])
def test_legal_rule_names_the_channel_only(text, want):
    assert legal(text) is want


def test_the_legal_rule_wins_and_a_weak_model_legal_channel_does_not():
    batch = [TicketIn(id="a", text="我对城管的罚款决定不服，想申请行政复议", line=1),
             TicketIn(id="b", text="房子没人住想申请报停供暖，怎么办理", line=2),
             TicketIn(id="c", text="离婚后对方不让我见孩子", line=3),
             TicketIn(id="d", text="楼道里堆满了杂物，万一着火了怎么办", line=4)]
    tops = [[("urban-mgmt", 0.7), ("legal-channel", 0.2)], [("legal-channel", 0.18), ("heating", 0.15)],
            [("legal-channel", 0.8), ("women-federation", 0.1)],
            [("legal-channel", 0.06), ("emergency-119", 0.05), ("fire-rescue", 0.04)]]
    infos = [Info() for _ in batch]
    new = emergencies(batch, legal_channel(batch, tops, infos), infos, model_min=0.5, legal_min=0.5)
    assert new[0] == [("legal-channel", 1.0), ("urban-mgmt", 0.7)] and infos[0].by == "legal-rule"
    assert new[1] == [("heating", 0.15), ("legal-channel", 0.18)] and infos[1].by == "model"   # 0.18 is not enough
    assert new[2] == tops[2] and infos[2].by == "model"                   # a confident model keeps it
    assert new[3][0] == ("fire-rescue", 0.04)                             # neither weak reserved answer leads
    fire = TicketIn(id="e", text="法院旁边的小区着火了，火很大", line=5)      # an emergency still wins
    x = [Info()]
    assert emergencies([fire], legal_channel([fire], [[("housing", 0.5)]], x), x)[0][0] == ("emergency-119", 1.0)


def test_a_ticket_naming_a_legal_channel_is_routed_there(month_trained, tmp_path):
    src = write_jsonl(tmp_path / "day.jsonl", [{"id": "L1", "text": "举报我们镇副镇长挪用扶贫款，想找纪检监察部门反映"},
                                               {"id": "L2", "text": "小区路灯坏了一个月了"}])
    assert invoke("classify", str(src)).exit_code == 0
    out = {r["id"]: r for r in read_jsonl(tmp_path / "day.routed.jsonl")}
    assert (out["L1"]["department"], out["L1"]["by"], out["L1"]["confidence"]) == ("legal-channel", "legal-rule", 1.0)
    assert out["L2"]["department"] != "legal-channel"
