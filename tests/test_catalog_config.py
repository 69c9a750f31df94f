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
