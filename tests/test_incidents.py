"""Incidents (并单): grouping at classify time, one queue item per incident, one decision settles all,
splitting a member out, an incident spanning a model promotion, the dashboard's early warning."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from labeling import actions
from router.store import Incident, Label, ModelVersion, QueueItem, Ticket, connect
from tests.conftest import invoke, read_jsonl, write_jsonl

BURST = ["滨江路滨江花园门口自来水管爆了，水冒得老高，路上全淹了。", "滨江路滨江花园门口自来水管爆了，水一直往外喷。",
         "滨江花园门口滨江路上自来水管爆了，我们家也停水了。", "你好，滨江路滨江花园门口自来水管爆了，水冒得老高，路上全淹了。车都过不去了。"]


def day(rows, hour0=9):
    return [{"id": f"b{i}", "text": t, "received_at": f"2026-11-20T{hour0 + i:02d}:10:00+08:00"} for i, t in enumerate(rows)]


@pytest.fixture
def centre(month_trained, monkeypatch):
    home = month_trained
    monkeypatch.setenv("ROUTER_CLASSIFY__THRESHOLD", "1.0")          # every ticket would be queued
    monkeypatch.setenv("ROUTER_QUEUE__AUDIT_RATE", "0")
    return home, connect(f"sqlite:///{home}/router.db")


def test_repeats_form_one_incident_with_one_queue_item(centre, tmp_path):
    home, engine = centre
    rows = day(BURST) + [{"id": "o1", "text": "滨江花园小区门口垃圾没人清理", "received_at": "2026-11-20T09:30:00+08:00"},
                         {"id": "o2", "text": "东湖湾门口自来水管爆了，水冒得老高，路上全淹了。",
                          "received_at": "2026-11-20T09:40:00+08:00"}]   # same words, another place
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    res = invoke("classify", str(src), "--summary-json", str(tmp_path / "s.json"))
    assert res.exit_code == 0, res.output
    out = {r["id"]: r for r in read_jsonl(tmp_path / "d.routed.jsonl")}
    inc = out["b0"]["incident_id"]
    assert inc is not None and all(out[f"b{i}"]["incident_id"] == inc for i in range(4))
    assert out["b0"]["duplicate_of"] is None and out["b1"]["duplicate_of"] == "b0"
    assert out["o1"]["incident_id"] is None and out["o2"]["incident_id"] is None
    # b1-b3 wait through b0's item (one item per incident): queued, and not routed without review
    assert all(out[f"b{i}"]["queued"] for i in range(4))
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["queued"] == 3 and summary["merged_into_incidents"] == 3 and summary["incident_members"] == 4
    assert summary["routed_without_review"] == 0 and summary["expected_accuracy"] is None
    assert "4 in incidents (并单; 3 wait through their incident's item)" in " ".join(res.output.split())
    with Session(engine) as s:
        assert s.get(Incident, inc).size == 4 and s.get(Incident, inc).place == "滨江路"
        items = s.exec(select(QueueItem.ticket_id).where(QueueItem.status == "pending")).all()
    assert sorted(items) == ["b0", "o1", "o2"]
    res = invoke("classify", str(src), "-o", str(tmp_path / "again.jsonl"))   # routed again: still waiting
    assert res.exit_code == 0, res.output
    assert all(r["queued"] for r in read_jsonl(tmp_path / "again.jsonl"))

    item = actions.next_item(engine, "王芳")
    while item.ticket_id != "b0":
        actions.decide(engine, "王芳", item.queue_id, actions.SKIP)
        item = actions.next_item(engine, "王芳")
    assert [m[0] for m in item.members] == ["b1", "b2", "b3"]
    actions.split(engine, "王芳", "b3")                                   # b3 is another matter
    with Session(engine) as s:
        assert s.get(Ticket, "b3").incident_id is None and s.get(Incident, inc).size == 3
        assert s.exec(select(QueueItem).where(QueueItem.ticket_id == "b3", QueueItem.status == "pending")).one()
    actions.decide(engine, "王芳", item.queue_id, "water-supply")        # one decision settles b0, b1, b2
    with Session(engine) as s:
        got = {x.ticket_id: x.department for x in s.exec(select(Label).where(Label.source != "import"))}
    assert got == {"b0": "water-supply", "b1": "water-supply", "b2": "water-supply"}
    actions.undo(engine, "王芳")                                          # and undo takes all three back
    with Session(engine) as s:
        assert not s.exec(select(Label).where(Label.source != "import", Label.undone == False)).all()  # noqa: E712


def test_an_incident_spans_a_model_promotion(centre, tmp_path):
    home, engine = centre
    write_jsonl(tmp_path / "a.jsonl", day(BURST[:2]))
    assert invoke("classify", str(tmp_path / "a.jsonl")).exit_code == 0
    res = invoke("train")                                                # a second version: a candidate
    assert res.exit_code == 0, res.output
    with Session(engine) as s:
        new = s.exec(select(ModelVersion.version).where(ModelVersion.status == "candidate")).one()
    assert invoke("models", "promote", new).exit_code == 0
    write_jsonl(tmp_path / "b.jsonl", [{"id": "c1", "text": BURST[2], "received_at": "2026-11-20T13:00:00+08:00"}])
    assert invoke("classify", str(tmp_path / "b.jsonl")).exit_code == 0
    a = {r["id"]: r for r in read_jsonl(tmp_path / "a.routed.jsonl")}
    b = read_jsonl(tmp_path / "b.routed.jsonl")[0]
    assert b["incident_id"] == a["b0"]["incident_id"] and b["duplicate_of"] in ("b0", "b1")
    assert b["model_version"] != a["b0"]["model_version"] and b["queued"] is True   # through b0's item


def test_a_confident_member_stays_routed(centre, tmp_path, monkeypatch):
    """A member the model routes confidently by itself is dispatched (queued: false, routed without review),
    though its incident waits in the queue; one decision on that item later labels it too."""
    home, engine = centre
    write_jsonl(tmp_path / "a.jsonl", day(BURST[:2]))
    assert invoke("classify", str(tmp_path / "a.jsonl")).exit_code == 0           # b0's item waits
    monkeypatch.setenv("ROUTER_CLASSIFY__THRESHOLD", "0.0")                          # every ticket confident
    write_jsonl(tmp_path / "b.jsonl", [{"id": "c1", "text": BURST[2], "received_at": "2026-11-20T13:00:00+08:00"}])
    res = invoke("classify", str(tmp_path / "b.jsonl"), "--summary-json", str(tmp_path / "s.json"))
    assert res.exit_code == 0, res.output
    b = read_jsonl(tmp_path / "b.routed.jsonl")[0]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert b["incident_id"] is not None and b["queued"] is False
    assert summary["routed_without_review"] == 1 and summary["merged_into_incidents"] == 0


def test_dashboard_lists_incidents_and_raises_the_warning(centre, tmp_path, monkeypatch):
    from tests.test_dashboards import headers, render

    home, engine = centre
    monkeypatch.setenv("ROUTER_INCIDENTS__ALERT_SIZE", "4")
    src = write_jsonl(tmp_path / "d.jsonl", day(BURST, hour0=9))
    assert invoke("classify", str(src)).exit_code == 0
    at = render("views/9_Incidents.py")
    assert any("预警：滨江路" in e.value for e in at.error)
    assert {m.label: m.value for m in at.metric} == {"当日并单事件": "1", "并入事件的工单": "4", "预警": "1"}
    assert set(at.dataframe[-1].value["id"]) == {"b0", "b1", "b2", "b3"}     # the tickets, one click away
    assert headers(at) == []                                                  # not id, received_at, duplicate_of


def test_a_ticket_like_two_incidents_merges_them(engine):
    """Two phrasings of one burst start two incidents; a ticket reading like both merges them."""
    from datetime import datetime, timedelta, timezone

    from router import incidents

    t0 = datetime(2026, 11, 20, 1, tzinfo=timezone.utc)
    a = "滨江花园整个小区突然停电了，电梯里还困了人。"
    b = "滨江花园一带大面积停电，什么时候来电？没有任何通知。"
    both = "滨江花园整个小区突然停电了，一带大面积停电，什么时候来电？"
    rows = [("p1", a), ("p2", a + "家里有老人。"), ("q1", b), ("q2", b + "冰箱里的东西都要坏了。"), ("r1", both)]
    with Session(engine) as s:
        for k, (tid, text) in enumerate(rows):
            s.add(Ticket(id=tid, text=text, received_at=t0 + timedelta(minutes=k), places="滨江花园",
                         district="district-linjiang"))
            s.flush()
            incidents.link(s, [tid], [text], [["滨江花园"]], ["district-linjiang"], [t0 + timedelta(minutes=k)],
                           ["power-supply"], 2.0, 0.5)
            if tid == "q2":   # before the bridging ticket: two incidents
                assert len({s.get(Ticket, x).incident_id for x in ("p1", "p2", "q1", "q2")}) == 2
        s.commit()
        inc = {s.get(Ticket, x).incident_id for x, _ in rows}
        assert len(inc) == 1 and s.get(Incident, inc.pop()).size == 5
        assert len(s.exec(select(Incident)).all()) == 1


def test_a_match_in_no_incident_is_pulled_in(engine):
    """A ticket reading like a member of an incident and like a ticket in none (from an earlier run, or
    earlier in its batch) brings that ticket into the incident too."""
    from datetime import datetime, timedelta, timezone

    from router import incidents

    t0 = datetime(2026, 11, 20, 1, tzinfo=timezone.utc)
    a = "滨江花园整个小区突然停电了，电梯里还困了人。"
    b = "滨江花园一带大面积停电，什么时候来电？没有任何通知。"
    both = "滨江花园整个小区突然停电了，一带大面积停电，什么时候来电？"

    def run(s, rows, start):
        at = [t0 + timedelta(minutes=start + k) for k in range(len(rows))]
        for (tid, text), t in zip(rows, at):
            s.add(Ticket(id=tid, text=text, received_at=t, places="滨江花园", district="district-linjiang"))
        s.flush()
        incidents.link(s, [r[0] for r in rows], [r[1] for r in rows], [["滨江花园"]] * len(rows),
                       ["district-linjiang"] * len(rows), at, ["power-supply"] * len(rows), 2.0, 0.5)

    with Session(engine) as s:                 # earlier runs: p1+p2 an incident, q1 alone
        run(s, [("p1", a), ("p2", a + "家里有老人。")], 0)
        run(s, [("q1", b)], 5)
        assert s.get(Ticket, "q1").incident_id is None
        run(s, [("r1", both)], 10)             # reads like p1 (in the incident) and q1 (in none)
        s.commit()
        inc = s.get(Ticket, "p1").incident_id
        assert {s.get(Ticket, x).incident_id for x in ("p1", "p2", "q1", "r1")} == {inc}
        assert s.get(Incident, inc).size == 4 and s.get(Ticket, "q1").duplicate_of is None

    with Session(engine) as s:                 # one batch: x1 and y1 in no incident, z1 reads like both
        run(s, [("x1", b), ("y1", a), ("z1", both)], 3 * 24 * 60)
        s.commit()
        inc = s.get(Ticket, "z1").incident_id
        assert inc is not None and {s.get(Ticket, x).incident_id for x in ("x1", "y1")} == {inc}
        row = s.get(Incident, inc)
        assert row.size == 3 and incidents._aware(row.started_at) == t0 + timedelta(minutes=3 * 24 * 60)


def test_an_incident_opened_after_a_merge_stays_its_own(engine):
    """A batch that merges two incidents and then opens a new one: the new one never takes the merged
    incident's id (SQLite reuses the highest deleted id), so its repeats are not folded into the survivor."""
    from datetime import datetime, timedelta, timezone

    from router import incidents

    t0 = datetime(2026, 11, 20, 1, tzinfo=timezone.utc)
    a = "滨江花园整个小区突然停电了，电梯里还困了人。"
    b = "滨江花园一带大面积停电，什么时候来电？没有任何通知。"
    both = "滨江花园整个小区突然停电了，一带大面积停电，什么时候来电？"
    lamp = "东湖湾小区门口的路灯坏了好几天，晚上一片漆黑，老人出门摔倒了。"
    with Session(engine) as s:
        earlier = [("p1", a, "滨江花园"), ("p2", a + "家里有老人。", "滨江花园"), ("q1", b, "滨江花园"),
                   ("q2", b + "冰箱里的东西都要坏了。", "滨江花园"), ("u0", lamp, "东湖湾")]
        for k, (tid, text, place) in enumerate(earlier):
            s.add(Ticket(id=tid, text=text, received_at=t0 + timedelta(minutes=k), places=place))
            s.flush()
            if tid != "u0":
                incidents.link(s, [tid], [text], [[place]], [None], [t0 + timedelta(minutes=k)], ["power"], 2.0, 0.5)
        batch = [("r1", both, "滨江花园"), ("u1", lamp + "请尽快修。", "东湖湾"), ("u2", lamp + "已经一周了。", "东湖湾")]
        at = [t0 + timedelta(minutes=10 + k) for k in range(3)]
        for (tid, text, place), when in zip(batch, at):
            s.add(Ticket(id=tid, text=text, received_at=when, places=place))
        s.flush()
        incidents.link(s, [x[0] for x in batch], [x[1] for x in batch], [[x[2]] for x in batch], [None] * 3, at,
                       ["power", "lights", "lights"], 2.0, 0.5)
        s.commit()
        inc = {x: s.get(Ticket, x).incident_id for x in ("p1", "q1", "r1", "u0", "u1", "u2")}
        assert inc["p1"] == inc["q1"] == inc["r1"]
        assert inc["u0"] == inc["u1"] == inc["u2"] != inc["p1"]
        assert s.get(Incident, inc["u0"]).size == 3 and s.get(Incident, inc["p1"]).size == 5


def test_one_open_item_per_incident_after_a_pull_in(engine):
    """A ticket pulled into an incident brings its own open item: the one of higher priority stays, the
    other is closed (superseded) — unless a dispatcher holds it now."""
    from datetime import datetime, timedelta, timezone

    from router import incidents
    from router.store import now

    t0 = datetime(2026, 11, 20, 1, tzinfo=timezone.utc)
    a = "滨江花园整个小区突然停电了，电梯里还困了人。"
    b = "滨江花园一带大面积停电，什么时候来电？没有任何通知。"
    both = "滨江花园整个小区突然停电了，一带大面积停电，什么时候来电？"

    def run(s, tid, text, minute, prio=None, held=False):
        at = t0 + timedelta(minutes=minute)
        s.add(Ticket(id=tid, text=text, received_at=at, places="滨江花园", district="district-linjiang"))
        s.flush()
        incidents.link(s, [tid], [text], [["滨江花园"]], ["district-linjiang"], [at], ["power-supply"], 2.0, 0.5)
        if prio is not None:   # queued as routing does, after linking
            s.add(QueueItem(ticket_id=tid, reason="low_confidence", priority=prio,
                            claimed_by="王芳" if held else None, claimed_until=now() + timedelta(minutes=10) if held else None))
        s.flush()

    def status(s, tid):
        return s.exec(select(QueueItem.status).where(QueueItem.ticket_id == tid)).one()

    with Session(engine) as s:
        run(s, "p1", a, 0, prio=0.4)
        run(s, "p2", a + "家里有老人。", 1)             # joins p1's incident, no item of its own
        run(s, "q1", b, 5, prio=0.8)                  # another matter so far: its own item
        run(s, "r1", both, 10)                        # pulls q1 into the incident: two open items
        assert s.get(Ticket, "q1").incident_id == s.get(Ticket, "p1").incident_id
        assert (status(s, "q1"), status(s, "p1")) == ("pending", "superseded")
        day = 3 * 24 * 60                             # again, with the lower item held by a dispatcher
        run(s, "x1", b, day, prio=0.9)
        run(s, "y1", a, day + 1, prio=0.3, held=True)
        run(s, "z1", both, day + 2)
        assert s.get(Ticket, "x1").incident_id == s.get(Ticket, "y1").incident_id is not None
        assert (status(s, "x1"), status(s, "y1")) == ("pending", "pending")


def test_long_unrelated_tickets_do_not_link_a_repeat_does(centre, tmp_path):
    """Realistic long messages (data/realistic) share greetings and set phrases: four unrelated ones naming one
    place read alike by raw n-grams (cosine 0.73-0.84, above any threshold), not once the n-grams are weighted
    by how rare they are; a repeat of one of them, with another opening and its end cut, still links."""
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "data" / "realistic" / "test.jsonl"
    pick = {"RT000003", "RT000005", "RT000006", "RT000007"}       # ecology, commerce, two district offices
    rows = [r for r in read_jsonl(src) if r["id"] in pick]
    for k, r in enumerate(rows):
        r["text"] = "家住滨江花园。" + r["text"]
        r["received_at"] = f"2026-11-20T{9 + k:02d}:00:00+08:00"
    rows.append({"id": "again", "title": rows[0]["title"], "text": "你好，这个事再反映一次。" + rows[0]["text"][:-60],
                 "received_at": "2026-11-20T15:00:00+08:00"})
    write_jsonl(tmp_path / "d.jsonl", rows)
    res = invoke("classify", str(tmp_path / "d.jsonl"))
    assert res.exit_code == 0, res.output
    out = {r["id"]: r for r in read_jsonl(tmp_path / "d.routed.jsonl")}
    assert out["again"]["duplicate_of"] == "RT000003" and out["again"]["incident_id"] is not None
    assert out["RT000003"]["incident_id"] == out["again"]["incident_id"]
    assert all(out[i]["incident_id"] is None for i in pick - {"RT000003"})


def test_linking_and_the_queue_measure_alike_the_same_way(engine):
    """One measure of alike (router/similarity.py): a ticket joins a stored one naming the same place exactly
    when their weighted cosine, as the queue's near-duplicate check computes it, reaches the threshold."""
    from datetime import datetime, timedelta, timezone
    from pathlib import Path

    from router import incidents, similarity
    from router.strategies import featurize

    rows = [json.loads(x) for x in (Path(__file__).parent.parent / "data/realistic/test.jsonl").open(encoding="utf-8")]
    t0 = datetime(2026, 11, 20, 1, tzinfo=timezone.utc)
    first = "滨江花园" + rows[0]["text"]
    tries = [first[:-15] + "谢谢。"] + ["滨江花园" + r["text"] for r in rows[1:8]]   # a repeat, other matters
    weights = similarity.Idf()
    window = incidents.Window(None, weights)
    with Session(engine) as s:
        s.add_all(Ticket(id=f"r{i}", text=r["text"]) for i, r in enumerate(rows[8:208]))   # the n-grams' frequencies
        s.add(Ticket(id="s0", text=first, received_at=t0, places="滨江花园", district="district-linjiang"))
        s.flush()
        got = []
        for k, text in enumerate(tries):
            tid = f"c{k}"
            linked = incidents.link(s, [tid], [text], [["滨江花园"]], ["district-linjiang"], [t0 + timedelta(hours=1)],
                                    ["water-supply"], 2.0, 0.5, cache=window)
            f = featurize([text, first])
            cos = similarity.cosine(f[:1], f[1:], weights.weights(s, [tid], f[:1]))[0, 0]
            got.append((tid in linked, bool(cos >= 0.5)))
            s.rollback()   # each try alone against s0
            s.add(Ticket(id="s0", text=first, received_at=t0, places="滨江花园", district="district-linjiang"))
            s.flush()
    assert all(a == b for a, b in got) and got[0] == (True, True) and (False, False) in got


def _opened_beside_another_run(engine, monkeypatch):
    """Another run's incident inserted in the same microsecond, right after this run's INSERT of its incidents
    (on PostgreSQL a concurrent classify committing then): this run's tickets still join their own incidents."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import event, insert

    from router import incidents

    t0 = datetime(2026, 11, 20, 1, tzinfo=timezone.utc)
    monkeypatch.setattr(incidents, "now", lambda: t0)                    # both runs' incidents created at t0
    lamp = "东湖湾小区门口的路灯坏了好几天，晚上一片漆黑，老人出门摔倒了。"
    power = "滨江花园整个小区突然停电了，电梯里还困了人。"
    rows = [("u1", lamp, "东湖湾"), ("u2", lamp + "请尽快修。", "东湖湾"),
            ("p1", power, "滨江花园"), ("p2", power + "家里有老人。", "滨江花园")]
    other = []

    def another_run(conn, cursor, statement, *_):
        if statement.startswith("INSERT INTO incident") and not other:
            other.append(None)
            other[0] = conn.execute(insert(Incident).values(place="别处", size=1, created_at=t0)
                                    .returning(Incident.id)).scalar()

    at = [t0 + timedelta(minutes=k) for k in range(len(rows))]
    with Session(engine) as s:
        for (tid, text, place), when in zip(rows, at):
            s.add(Ticket(id=tid, text=text, received_at=when, places=place))
        s.flush()
        event.listen(engine, "after_cursor_execute", another_run)
        try:
            incidents.link(s, [r[0] for r in rows], [r[1] for r in rows], [[r[2]] for r in rows], [None] * 4, at,
                           ["lights", "lights", "power", "power"], 2.0, 0.5)
        finally:
            event.remove(engine, "after_cursor_execute", another_run)
        s.commit()
        inc = {tid: s.get(Ticket, tid).incident_id for tid, _, _ in rows}
        assert other and other[0] not in inc.values()
        assert s.get(Incident, inc["u1"]).place == "东湖湾" and inc["u2"] == inc["u1"]
        assert s.get(Incident, inc["p1"]).place == "滨江花园" and inc["p2"] == inc["p1"]


def test_incidents_opened_beside_another_run_get_their_own_ids(engine, monkeypatch):
    _opened_beside_another_run(engine, monkeypatch)


def test_incidents_opened_beside_another_run_get_their_own_ids_on_postgresql(pg_url, monkeypatch):
    from tests.conftest import empty_store

    _opened_beside_another_run(empty_store(pg_url), monkeypatch)
