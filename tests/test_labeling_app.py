"""The labeling app's logic through Streamlit's AppTest, on a temporary store."""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from router import ROOT, webui
from tests.test_labeling_actions import item, labels, seed

APP = str(ROOT / "labeling" / "app.py")


def start(name="张三", password=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input[0].input(name)
    if password is not None:
        at.text_input[1].input(password)
    at.button[0].click()
    return at.run()


def ok(at) -> bool:
    """No uncaught error: neither Streamlit's exception box nor the app's Chinese crash line (webui.guard)."""
    return not at.exception and webui.CRASH not in [e.value for e in at.error]


def texts(at) -> list[str]:
    return [t.value for t in at.text]


def test_sign_in_shows_ticket_as_plain_text_with_suggestions(engine):
    seed(engine)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert at.title[0].value == "工单分派标注" and len(at.text_input) == 1  # no password configured
    at.button[0].click().run()
    assert "请填写姓名。" in [e.value for e in at.error]
    at = start()
    assert ok(at)
    assert "小区门口的井盖丢了，晚上很危险" in texts(at)
    labels_ = [at.button(key=f"accept_{i}").label for i in (1, 2, 3)]
    assert labels_[0].startswith("1 · 市城市管理综合执法局") and labels_[0].endswith("55%")
    assert "住房" in labels_[1] and labels_[1].endswith("30%")
    assert any(t.startswith("负责市容市貌") for t in texts(at))           # the department's duties
    assert "标注人：张三" in texts(at)


def test_accept_correct_skip_no_fit_and_undo(engine):
    ids = seed(engine)
    at = start()
    at.button(key="accept_1").click().run()                               # T1: accept the top suggestion
    assert "已分派到 市城市管理综合执法局" in [s.value.replace("\\", "") for s in at.success]
    # T2 is next; its text holds HTML and markdown, which must come through verbatim
    assert "楼上每天半夜唱歌，吵得睡不着 <b>救命</b> **急**" in texts(at)
    at.selectbox(key="other").select("housing")
    at.button(key="correct").click().run()                                # T2: another department
    at.button(key="no_fit").click().run()                                 # T3: no department fits
    at.button(key="skip").click().run()                                   # T4: skipped
    assert [(r.ticket_id, r.department, r.source) for r in labels(engine)] == [
        ("T1", "urban-mgmt", "confirmation"), ("T2", "housing", "correction"), ("T3", None, "correction")]
    assert item(engine, ids["T4"]).status == "skipped"
    assert "队列已清空，暂无待处理工单。" in [i.value for i in at.info]
    assert at.metric[0].value == "4"                                      # my decisions today

    at.button(key="undo").click().run()                                   # undo the skip: T4 again
    assert "路边有人违章停车堵住消防通道" in texts(at)
    at.button(key="undo").click().run()                                   # undo "no fit": T3 again
    assert "物业不给维修电梯" in texts(at)
    assert labels(engine)[2].undone is True and item(engine, ids["T3"]).status == "pending"
    assert at.metric[0].value == "2"
    at.button(key="accept_1").click().run()
    assert labels(engine)[-1].department == "housing" and labels(engine)[-1].source == "confirmation"


def test_correct_without_a_choice_warns_and_writes_nothing(engine):
    seed(engine)
    at = start()
    at.button(key="correct").click().run()
    assert "请先在列表中选择一个部门。" in [w.value for w in at.warning]
    assert labels(engine) == []


def test_password_when_configured(engine, monkeypatch):
    seed(engine)
    monkeypatch.setenv("ROUTER_LABELING__PASSWORD", "123456")
    at = start(password="654321")
    assert "密码错误。" in [e.value for e in at.error]
    assert "123456" not in str(at)                                         # never shown
    at = start(password="123456")
    assert "小区门口的井盖丢了，晚上很危险" in texts(at)


def test_two_sessions_see_different_tickets(engine):
    seed(engine)
    a, b = start("甲"), start("乙")
    assert "小区门口的井盖丢了，晚上很危险" in texts(a)
    assert "楼上每天半夜唱歌，吵得睡不着 <b>救命</b> **急**" in texts(b)


@pytest.mark.parametrize("key", ["sign_out"])
def test_sign_out_releases_the_claim(engine, key):
    ids = seed(engine)
    at = start("甲")
    at.button(key=key).click().run()
    assert at.text_input[0].label == "姓名"
    assert item(engine, ids["T1"]).claimed_until is None


def test_router_label_serves_the_app_on_the_configured_store(engine, home):
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "router.cli", "label", "--port", str(port),
                             "--address", "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "400"})
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("router label did not serve the app")
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    assert f"labeling app for sqlite:///{home}/router.db on http://127.0.0.1:{port}" in out


def test_received_time_channel_and_district_places(engine, catalog):
    """The ticket's received time in Beijing time and its channel; a district's places."""
    from datetime import datetime, timezone

    from sqlmodel import Session

    from router.store import Ticket

    district = ("T0", "沙湾村有人在宅基地上盖房", [("district-linjiang", 0.40), ("district-donghu", 0.35),
                                                ("county-qingshi", 0.25)], "low_confidence", 1.0)
    seed(engine, [district])
    with Session(engine) as s:
        t = s.get(Ticket, "T0")
        t.received_at, t.channel = datetime(2026, 11, 25, 16, 10, tzinfo=timezone.utc), "wechat"
        s.add(t)
        s.commit()
    at = start()
    assert "工单 T0 · 受理 2026-11-26 00:10 · 微信" in texts(at)        # 16:10 UTC is 00:10 the next day
    places = catalog.by_id["district-linjiang"].places
    assert "沙湾村" in places and "滨江花园" in places
    assert "辖区地名：" + "、".join(places) in texts(at)
    assert "辖区地名：" + "、".join(catalog.by_id["district-donghu"].places) in texts(at)


def test_no_fit_is_counted_apart_from_corrections(engine):
    from labeling import actions

    seed(engine)
    at = start()
    at.button(key="no_fit").click().run()                                 # T1: no department fits
    at.selectbox(key="other").select("housing")
    at.button(key="correct").click().run()                                # T2: a correction
    at.button(key="no_fit").click().run()                                 # T3
    at.button(key="no_fit").click().run()                                 # T4, an audit: no department fits
    c = actions.counts(engine, "张三")
    assert (c.mine, c.confirmed, c.corrected, c.no_fit, c.audited) == (4, 0, 1, 3, 0)
    assert "确认 0 · 纠正 1 · 无合适部门 3\n抽检 0 · 跳过 0" in texts(at)


def test_disputes_for_leads_read_only_for_dispatchers_and_co_handling(engine, catalog, tmp_path):
    from sqlmodel import Session, select

    from router import returns, users
    from router.store import TicketReturn
    from tests.conftest import write_jsonl

    seed(engine)
    users.add(engine, "组长", "lead-pass-333", "lead")
    users.add(engine, "甲", "disp-pass-444")
    returns.import_returns(engine, str(write_jsonl(tmp_path / "r.jsonl", [
        {"id": "T1", "department": "urban-mgmt", "reason": "权属不清", "note": "井盖属燃气公司 <b>x</b>"}])), catalog)
    d = start("甲", "disp-pass-444")                                       # a dispatcher: T2, the dispute read-only
    assert "楼上每天半夜唱歌，吵得睡不着 <b>救命</b> **急**" in texts(d)
    assert any("退单说明：井盖属燃气公司 <b>x</b>" in t for t in texts(d)) and not any(b.key == "uphold" for b in d.button)
    d.multiselect(key="co").select("urban-mgmt")
    d.button(key="accept_1").click().run()                                # T2 to police, urban-mgmt co-handles
    assert [(x.ticket_id, x.department, x.co_departments) for x in labels(engine)] == [("T2", "police", ["urban-mgmt"])]

    lead = start("组长", "lead-pass-333")                                  # a lead: the dispute first
    shown = texts(lead)
    assert any(t.startswith("派单异议审核 · 工单 T1") for t in shown)
    assert "原派单：市城市管理综合执法局（模型置信度 55%）" in shown
    assert any(t.startswith("退单部门：市城市管理综合执法局 · 退单原因：权属不清") for t in shown)
    assert any(t.startswith("模型其他建议：市住房和城乡建设局 30%") for t in shown)
    lead.button(key="redispatch").click().run()                           # no department picked: nothing written
    assert len(labels(engine)) == 1
    lead.selectbox(key="d_lead").select("housing")
    lead.button(key="redispatch").click().run()
    got = labels(engine)[-1]
    assert (got.ticket_id, got.department, got.wrong_departments, got.source) == ("T1", "housing", ["urban-mgmt"], "dispute")
    lead.button(key="undo").click().run()                                 # back to the dispute, open again
    assert labels(engine)[-1].undone and any(t.startswith("派单异议审核 · 工单 T1") for t in texts(lead))
    lead.selectbox(key="d_lead").select("housing")
    lead.multiselect(key="d_co").select("urban-mgmt")
    lead.button(key="co_handle").click().run()
    got = labels(engine)[-1]
    assert (got.department, got.co_departments, got.wrong_departments) == ("housing", ["urban-mgmt"], [])
    with Session(engine) as s:
        assert s.exec(select(TicketReturn)).one().status == "upheld"
    assert ok(lead) and returns.violations(engine) == []


def test_matched_place_is_highlighted_and_text_stays_plain(engine, catalog):
    """A ticket naming a place shows the place and its district; the text is escaped, the place marked."""
    district = ("T0", "滨江花园门口 <b>有人</b> **乱搭**", [("district-donghu", 0.5), ("district-linjiang", 0.3),
                                                     ("county-qingshi", 0.2)], "low_confidence", 1.0)
    seed(engine, [district])
    at = start()
    assert ok(at)
    assert "地点：滨江花园 → 临江区人民政府" in texts(at)
    shown = [h.proto.body for h in at.get("html") if "ticket-text" in h.proto.body]
    assert shown == ['<div class="ticket-text" style="white-space: pre-wrap"><mark>滨江花园</mark>门口 '
                     '&lt;b&gt;有人&lt;/b&gt; **乱搭**</div>']


def test_leads_edit_the_catalogue_rules_dispatchers_do_not_see_them(engine, catalog):
    from router import rules, users

    seed(engine)
    users.add(engine, "组长", "lead-pass-333", "lead")
    users.add(engine, "甲", "disp-pass-444")
    d = start("甲", "disp-pass-444")
    assert not any(e.label.startswith("派单目录规则") for e in d.get("expander"))
    lead = start("组长", "lead-pass-333")
    lead.text_input(key="rule_pattern").input("健身房")
    lead.selectbox(key="rule_dept").select("commerce")
    lead.text_input(key="rule_note").input("市商务局三定：预付卡")
    lead.button(key="FormSubmitter:rule_add-添加规则").click().run()
    got = rules.listed(engine)
    assert [(r.pattern, r.department, r.note, r.created_by) for r in got] == [("健身房", "commerce", "市商务局三定：预付卡", "组长")]
    assert any(t.startswith(f"#{got[0].id} 健身房 → 市商务局") for t in texts(lead))
    lead.text_input(key="rule_pattern").input(" ")
    lead.selectbox(key="rule_dept").select("commerce")
    lead.text_input(key="rule_note").input("x")
    lead.button(key="FormSubmitter:rule_add-添加规则").click().run()
    assert any("empty pattern" in e.value for e in lead.error)            # refused, one line
    lead.number_input(key="rule_off").set_value(got[0].id)
    lead.button(key="FormSubmitter:rule_disable-停用").click().run()
    assert rules.listed(engine) == [] and rules.listed(engine, everything=True)[0].disabled_by == "组长"


def test_a_dispatcher_marks_an_emergency_line_or_the_legal_channel(engine):
    """The reserved dispositions are in the 改派 list: the label holds the line, shown by its name."""
    seed(engine)
    at = start()
    at.selectbox(key="other").select("emergency-120")
    at.run()
    assert any(t.startswith("昏迷、呼吸困难") for t in texts(at))            # the line's duties shown
    at.button(key="correct").click().run()                                # T1: a medical emergency
    at.selectbox(key="other").select("legal-channel")
    at.button(key="correct").click().run()                                # T2: the legal channel
    assert ok(at)
    assert [(r.ticket_id, r.department, r.source) for r in labels(engine)] == [
        ("T1", "emergency-120", "correction"), ("T2", "legal-channel", "correction")]


def test_an_incident_item_shows_its_members_splits_one_and_settles_the_rest(engine):
    """The queue item of an incident (并单): its undecided members are listed, 拆分 takes one out (its own
    item), and one decision settles the others."""
    from sqlmodel import Session, select

    from router.store import Incident, Prediction, QueueItem, Ticket

    seed(engine)
    with Session(engine) as s:
        inc = Incident(place="滨江花园", district="district-linjiang", department="urban-mgmt", size=3)
        s.add(inc)
        s.flush()
        s.get(Ticket, "T1").incident_id = inc.id
        for tid, text, dept in (("M1", "滨江花园门口井盖丢了", "urban-mgmt"), ("M2", "滨江花园门口井盖没了，谁来管", "housing")):
            s.add(Ticket(id=tid, text=text, incident_id=inc.id, duplicate_of="T1"))
            s.flush()
            s.add(Prediction(ticket_id=tid, model_version="v-test", department=dept, confidence=0.5,
                             topk=[[dept, 0.5]]))
        s.commit()
    at = start()
    assert "并单：同一事件另有 2 张未处理工单，本次决定一并处理" in texts(at)
    assert "M1：滨江花园门口井盖丢了" in texts(at)
    at.selectbox(key="split_pick").select("M2")
    at.button(key="split").click().run()                                  # M2 is another matter
    assert "并单：同一事件另有 1 张未处理工单，本次决定一并处理" in texts(at)
    at.button(key="accept_1").click().run()                               # T1 and M1: urban-mgmt
    assert ok(at)
    assert [(r.ticket_id, r.department, r.source) for r in labels(engine)] == [
        ("T1", "urban-mgmt", "confirmation"), ("M1", "urban-mgmt", "confirmation")]
    with Session(engine) as s:
        assert s.get(Ticket, "M2").incident_id is None
        assert s.exec(select(QueueItem).where(QueueItem.ticket_id == "M2", QueueItem.status == "pending")).one()
