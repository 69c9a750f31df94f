"""The dispatch catalogue's rules (router/rules.py): checks when adding, specificity and conflicts, the
street-office guard, and `router rules` + `router classify` end to end."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from router import ROOT, rules
from router.catalog import load_catalog
from router.dispatch import Info, catalogue_rules
from router.io import TicketIn
from router.rules import RuleError, Rules
from router.store import Prediction, Rule, Ticket, connect
from tests.conftest import invoke, read_jsonl, write_jsonl


def t(text):
    return TicketIn(line=1, id="x", text=text)


def test_bad_rules_are_refused(engine, catalog):
    with Session(engine) as s:
        s.add_all([Ticket(id=f"t{i}", text=f"第{i}个工单：小区路灯不亮") for i in range(20)])
        s.commit()
    with pytest.raises(RuleError, match="empty pattern"):
        rules.add(engine, catalog, "  ", "urban-mgmt")
    with pytest.raises(RuleError, match="matches an empty text: it would match every ticket"):
        rules.add(engine, catalog, ".*", "urban-mgmt", regex=True)
    with pytest.raises(RuleError, match="bad regular expression"):
        rules.add(engine, catalog, "路灯(", "urban-mgmt", regex=True)
    with pytest.raises(RuleError, match=r"matches 100% of the newest 20 tickets"):
        rules.add(engine, catalog, "工单", "urban-mgmt")      # a rule matching everything
    with pytest.raises(RuleError, match="unknown department 'nobody'"):
        rules.add(engine, catalog, "井盖", "nobody")
    with pytest.raises(RuleError, match="not a district government"):
        rules.add(engine, catalog, "井盖", "urban-mgmt", district="police")
    r, warnings = rules.add(engine, catalog, "工单", "urban-mgmt", force=True, note="权责清单 12", by="组长")
    assert r.active and warnings == []
    assert [x.id for x in rules.listed(engine)] == [r.id]
    rules.disable(engine, r.id, "组长")
    with pytest.raises(RuleError, match="already disabled"):
        rules.disable(engine, r.id)
    assert rules.listed(engine) == [] and rules.listed(engine, everything=True)[0].disabled_by == "组长"


def test_a_conflicting_rule_is_added_with_a_warning(engine, catalog):
    with Session(engine) as s:
        s.add_all([Ticket(id="t0", text="路上雨水井盖丢了")] + [Ticket(id=f"t{i}", text=f"{i}号楼路灯不亮") for i in range(1, 10)])
        s.commit()
    r1, w1 = rules.add(engine, catalog, "井盖", "municipal-facilities", note="市政设施三定")
    r2, w2 = rules.add(engine, catalog, "井盖", "urban-mgmt", note="城管三定")          # the same keyword
    _, w3 = rules.add(engine, catalog, "雨水井", "drainage", note="排水权责清单")        # longer: more specific
    _, w4 = rules.add(engine, catalog, "水井", "water-supply", note="供水")             # as specific, overlapping
    _, w5 = rules.add(engine, catalog, "井盖", "drainage", note="x", district="district-linjiang")  # district first
    assert w1 == w3 == w5 == []
    assert w2 == [f"conflicts with rule {r1.id} ('井盖' -> municipal-facilities) (both match 1 of the newest 10 "
                  f"tickets): equally specific, the older rule {r1.id} wins and such tickets list both (rule_conflict)"]
    assert [w.split(" (")[0] for w in w4] == [f"conflicts with rule {r1.id}", f"conflicts with rule {r2.id}"]


def test_merged_department_is_rewritten_inactive_refused(engine, tmp_path):
    raw = json.loads((ROOT / "data" / "departments.json").read_text(encoding="utf-8"))
    for d in raw["departments"]:
        if d["id"] == "cable-tv":
            d.update(active=False, merged_into="telecom")
        if d["id"] == "tobacco":
            d.update(active=False)
    (tmp_path / "c.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    cat = load_catalog(tmp_path / "c.json")
    r, warnings = rules.add(engine, cat, "机顶盒", "cable-tv")
    assert r.department == "telecom" and "merged into telecom" in warnings[0]
    with pytest.raises(RuleError, match="inactive and has no active successor"):
        rules.add(engine, cat, "卷烟", "tobacco")
    # pinned while the departments were active, then the catalogue changed: checked again at routing
    old, _ = rules.add(engine, load_catalog(ROOT / "data" / "departments.json"), "有线电视", "cable-tv")
    gone, _ = rules.add(engine, load_catalog(ROOT / "data" / "departments.json"), "假烟", "tobacco")
    rs = Rules.load(engine, cat)
    assert {c.id: c.department for c in rs.rules} == {r.id: "telecom", old.id: "telecom"}
    assert rs.match("有线电视没信号", None, None).rule.department == "telecom"
    assert [w.split(":")[0] for w in rs.warnings] == [f"rule {old.id} ('有线电视')", f"rule {gone.id} ('假烟') is not applied"]
    assert "merged into telecom" in rs.warnings[0] and "no active successor" in rs.warnings[1]


def rule(i, pattern, dept, district=None, regex=False):
    return Rule(id=i, pattern=pattern, department=dept, district=district, regex=regex)


def test_most_specific_wins_and_conflicts_are_shown(catalog):
    rs = Rules([rule(1, "井盖", "urban-mgmt"), rule(2, "雨水井盖", "drainage"), rule(3, "井盖", "municipal-facilities"),
                rule(4, "井盖", "district-linjiang", district="district-linjiang")])
    m = rs.match("路上雨水井盖丢了", None, None)
    assert m.rule.id == 2 and m.conflict is None                 # the longer pattern
    m = rs.match("路上井盖丢了", None, None)
    assert m.rule.id == 1 and m.conflict == [1, 3]               # equal: the oldest wins, the conflict shown
    assert rs.match("路上井盖丢了", None, "district-linjiang").rule.id == 4   # district-limited first
    infos = [Info(district=None)]
    top = [("police", 0.6), ("urban-mgmt", 0.3)]
    new = catalogue_rules(rs, catalog, [t("路上井盖丢了")], [top], infos, [top])
    assert new[0][:2] == [("urban-mgmt", 1.0), ("police", 0.6)]
    assert infos[0].fields() == {"by": "rule:1", "place": None, "district": None, "rule_conflict": [1, 3]}


def test_functional_matters_never_go_to_a_street_office(tmp_path):
    raw = json.loads((ROOT / "data" / "departments.json").read_text(encoding="utf-8"))
    raw["departments"].append({"id": "street-jiangbin", "name": "江滨街道办事处", "duties": "街道事务", "level": "street"})
    (tmp_path / "c.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    cat = load_catalog(tmp_path / "c.json")
    assert cat.by_id["street-jiangbin"].territorial                # a street office handles matters by place
    rs = Rules([rule(1, "江滨街道", "street-jiangbin")])
    functional = [("market-regulation", 0.7)]
    territorial = [("district-linjiang", 0.7)]
    infos = [Info(), Info()]
    new = catalogue_rules(rs, cat, [t("江滨街道一家超市卖过期食品"), t("江滨街道的社区开证明推来推去")],
                          [functional, territorial], infos, [functional, territorial])
    assert new[0] == functional and infos[0].by == "model" and "functional matter" in infos[0].guard
    assert new[1][0] == ("street-jiangbin", 1.0) and infos[1].by == "rule:1"


def test_rules_win_in_router_classify(month_trained, tmp_path, monkeypatch):
    home = month_trained
    res = invoke("rules", "add", "健身房", "commerce", "--note", "市商务局三定：单用途商业预付卡管理", "--by", "组长")
    assert res.exit_code == 0 and "rule 1" in res.output, res.output
    res = invoke("rules", "add", "", "commerce", "--note", "x")
    assert res.exit_code == 2 and "empty pattern" in res.output
    res = invoke("rules", "list")
    assert "健身房" in res.output and "单用途商业预付卡管理" in res.output
    rows = [{"id": "a", "text": "滨江路那家健身房突然关门了，老板跑了"}, {"id": "b", "text": "小区路灯坏了"}]
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    assert invoke("classify", str(src)).exit_code == 0
    out = {r["id"]: r for r in read_jsonl(tmp_path / "d.routed.jsonl")}
    assert (out["a"]["department"], out["a"]["by"], out["a"]["confidence"]) == ("commerce", "rule:1", 1.0)
    assert out["b"]["by"] != "rule:1"
    engine = connect(f"sqlite:///{home}/router.db")
    with Session(engine) as s:
        assert dict(s.exec(select(Prediction.ticket_id, Prediction.rule_id)).all()) == {"a": 1, "b": None}
    assert invoke("rules", "disable", "1", "--by", "组长").exit_code == 0
    assert "disabled by 组长" in invoke("rules", "list", "--all").output

    assert invoke("rules", "add", "机顶盒", "cable-tv", "--note", "广电网络权责清单").exit_code == 0   # rule 2
    raw = json.loads((ROOT / "data" / "departments.json").read_text(encoding="utf-8"))
    for d in raw["departments"]:
        if d["id"] == "cable-tv":
            d.update(active=False, merged_into="telecom")                  # the catalogue changes afterwards
    (tmp_path / "c.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("ROUTER_PATHS__CATALOG", str(tmp_path / "c.json"))
    src = write_jsonl(tmp_path / "e.jsonl", [{"id": "c", "text": "家里机顶盒坏了，有线电视没信号"}])
    res = invoke("classify", str(src))
    assert res.exit_code == 0 and "rule 2 ('机顶盒'): department cable-tv" in " ".join(res.output.split()), res.output
    out = read_jsonl(tmp_path / "e.routed.jsonl")[0]
    assert (out["department"], out["by"]) == ("telecom", "rule:2")
    assert "rule 2 ('机顶盒'): department cable-tv" in " ".join(invoke("rules", "list").output.split())


def test_dashboard_shows_hits_and_overturns(engine, catalog, home):
    from dashboards import queries
    from router.store import Label
    from tests.test_dashboards import headers, render

    r1, _ = rules.add(engine, catalog, "健身房", "commerce", note="三定")
    r2, _ = rules.add(engine, catalog, "井盖", "urban-mgmt", note="权责清单")
    with Session(engine) as s:
        for i in range(4):
            s.add(Ticket(id=f"g{i}", text="健身房跑路"))
        s.add(Ticket(id="j0", text="井盖丢了"))
        s.flush()
        for i in range(4):
            s.add(Prediction(ticket_id=f"g{i}", model_version="v1", department="commerce", confidence=1.0, rule_id=r1.id))
        s.add(Prediction(ticket_id="j0", model_version="v1", department="urban-mgmt", confidence=1.0, rule_id=r2.id))
        s.add(Label(ticket_id="g0", department="market-regulation", source="correction", reviewer="王"))
        s.add(Label(ticket_id="g1", department="commerce", source="confirmation", reviewer="王"))
        s.add(Label(ticket_id="g2", department="market-regulation", source="correction", reviewer="王", undone=True))
        s.commit()
    df = queries.rule_stats(engine).set_index("id")
    assert df.loc[r1.id, ["hits", "overturned", "returned"]].tolist() == [4, 1, 0]
    assert df.loc[r1.id, "overturn_rate"] == 0.25 and df.loc[r2.id, "hits"] == 1
    at = render("views/8_Rules.py")
    assert {m.label: m.value for m in at.metric} == {"生效规则": "2", "规则派单": "5", "被改派或退单": "1"}
    assert set(at.dataframe[0].value["district"]) == {"全市"}                 # citywide rules, named
    assert headers(at) == [] and "None" not in set(at.dataframe[0].value["overturn_rate"])


def test_dashboard_without_rules_says_how_to_add_one(home):
    from tests.test_dashboards import render

    at = render("views/8_Rules.py")
    assert "router rules add" in " ".join(i.value for i in at.info)
