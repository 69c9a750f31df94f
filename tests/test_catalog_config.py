import json

import pytest

from router import config
from router.catalog import CatalogError, load_catalog


def test_shipped_catalogue(catalog):
    assert len(catalog.ids) == 70
    assert len(set(d.name for d in catalog.departments)) == 70
    assert all(len(d.duties) > 20 for d in catalog.departments)


def _write(tmp_path, depts):
    p = tmp_path / "d.json"
    p.write_text(json.dumps({"departments": depts}, ensure_ascii=False))
    return p


def test_catalogue_errors_name_the_problem(tmp_path):
    a = {"id": "a", "name": "甲局", "duties": "负责甲"}
    with pytest.raises(CatalogError, match="duplicate id 'a'"):
        load_catalog(_write(tmp_path, [a, dict(a, name="乙局")]))
    with pytest.raises(CatalogError, match="duplicate name '甲局'"):
        load_catalog(_write(tmp_path, [a, dict(a, id="b")]))
    with pytest.raises(CatalogError, match="#2: missing or empty 'duties'"):
        load_catalog(_write(tmp_path, [a, {"id": "b", "name": "乙局"}]))
    with pytest.raises(CatalogError, match="merged into unknown id 'zz'"):
        load_catalog(_write(tmp_path, [dict(a, merged_into="zz", active=False), dict(a, id="b", name="乙")]))


def test_rename_and_merge_keep_history(tmp_path):
    cat = load_catalog(_write(tmp_path, [
        {"id": "a", "name": "新甲局", "duties": "负责甲", "aliases": ["旧甲局"]},
        {"id": "b", "name": "乙局", "duties": "负责乙", "active": False, "merged_into": "a"},
    ]))
    assert cat.ids == ["a"]
    assert cat.lookup("旧甲局") == "a" and cat.lookup("b") == "a" and cat.lookup("乙局") == "a"
    assert cat.lookup("丙局") is None


def test_config_layers(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text("[classify]\nthreshold = 0.8\n")
    cfg = config.load(f, env={"ROUTER_CLASSIFY__TOP_K": "5", "ROUTER_STORE__URL": "postgresql://x/y"})
    assert cfg.classify.threshold == 0.8 and cfg.classify.top_k == 5
    assert cfg.store.url == "postgresql://x/y" and cfg.classify.batch_size == 512  # the declared default
    with pytest.raises(FileNotFoundError):
        config.load(tmp_path / "missing.toml", env={})


def test_a_model_trained_before_a_catalogue_change_routes_to_todays_departments(trained, tmp_path, monkeypatch):
    from router import ROOT
    from tests.conftest import SAMPLE, invoke, read_jsonl, write_jsonl

    rows = [dict(t, id=f"c{i}") for i, t in enumerate(read_jsonl(SAMPLE / "test.jsonl"))
            if t["label"] in ("cable-tv", "tobacco", "telecom")]
    src = write_jsonl(tmp_path / "day.jsonl", rows)
    monkeypatch.setenv("ROUTER_CLASSIFY__TOP_K", "80")     # every department's probability in the output
    res = invoke("classify", str(src), "-o", str(tmp_path / "before.jsonl"))
    assert res.exit_code == 0, res.output
    before = {r["id"]: {x["department"]: x["p"] for x in r["top"]} for r in read_jsonl(tmp_path / "before.jsonl")}
    assert {"cable-tv", "tobacco"} <= {max(b, key=b.get) for b in before.values()}
    raw = json.loads((ROOT / "data" / "departments.json").read_text(encoding="utf-8"))
    for d in raw["departments"]:            # the centre's edit: 广电 merged into 电信, 烟草 leaves the catalogue
        if d["id"] == "cable-tv":
            d.update(active=False, merged_into="telecom")
        if d["id"] == "tobacco":
            d.update(active=False)
    (tmp_path / "c.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("ROUTER_PATHS__CATALOG", str(tmp_path / "c.json"))
    src = write_jsonl(tmp_path / "next.jsonl", [dict(t, id="d" + t["id"]) for t in rows])   # new tickets, same texts
    res = invoke("classify", str(src), "-o", str(tmp_path / "after.jsonl"))
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "cable-tv was merged into telecom" in said and "tobacco is inactive" in said
    for r in read_jsonl(tmp_path / "after.jsonl"):
        b, got = before[r["id"][1:]], {x["department"]: x["p"] for x in r["top"]}
        assert not {"cable-tv", "tobacco"} & set(got)                          # never a department gone
        assert got["telecom"] == pytest.approx(b["cable-tv"] + b["telecom"], abs=2e-4)   # the successor's share
        others = set(b) - {"cable-tv", "telecom", "tobacco", "none"}
        assert all(got[d] == pytest.approx(b[d], abs=1e-4) for d in others)    # nobody else gains confidence
        if max(b, key=b.get) == "tobacco" and b["tobacco"] > 0.5:             # mostly about the retired one
            assert (r["department"], r["queued"]) == ("none", True)
    assert {r["department"] for r in read_jsonl(tmp_path / "after.jsonl")} & {"telecom", "none"} == {"telecom", "none"}
