"""Jurisdiction from places (router/places.py, router/dispatch.jurisdiction) on the shipped catalogue."""

from __future__ import annotations

import json

import numpy as np
import pytest

from router import ROOT
from router.catalog import CatalogError, load_catalog
from router.dispatch import Info, jurisdiction, reweigh
from router.io import TicketIn
from router.places import Places


def t(text, title=None):
    return TicketIn(line=1, id="x", text=text, title=title)


@pytest.fixture(scope="module")
def places(catalog):
    return Places(catalog)


def test_finds_the_longest_name_and_its_district(places):
    f = places.find("石桥街道石桥街上路灯坏了", "投诉")
    assert f.names == ["石桥街道", "石桥街"] and f.district == "district-xishan"
    assert places.find("南门街道办不开证明").names == ["南门街道"]       # not 南门街 (a road of the same district)
    assert places.find("临江区有人乱建").district == "district-linjiang"  # the district's own short name
    assert places.find("下水道堵了").place is None


def test_two_districts_are_reported_not_guessed(places):
    f = places.find("我从滨江花园搬到了东湖湾，户口迁不过去")
    assert f.district is None and f.ambiguous == {"滨江花园": ["district-linjiang"], "东湖湾": ["district-donghu"]}


def test_a_name_shared_by_two_districts_is_ambiguous(tmp_path):
    raw = json.loads((ROOT / "data" / "departments.json").read_text(encoding="utf-8"))
    for d in raw["departments"]:
        if d["id"] == "district-donghu":
            d["places"].append("滨江花园")               # also a name of district-linjiang
    (tmp_path / "c.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    p = Places(load_catalog(tmp_path / "c.json"))
    f = p.find("滨江花园门口有人乱搭建")
    assert f.place == "滨江花园" and f.district is None
    assert f.ambiguous == {"滨江花园": ["district-donghu", "district-linjiang"]}
    infos = [Info()]
    top = [("district-xishan", 0.6), ("urban-mgmt", 0.3)]
    assert jurisdiction(p, [t("滨江花园门口有人乱搭建")], [top], infos) == [top]   # the model's answer stands
    assert infos[0].fields()["place_ambiguous"] == {"滨江花园": ["district-donghu", "district-linjiang"]}


def test_territorial_matter_goes_to_the_named_district_functional_keeps(places, catalog):
    classes = catalog.ids
    proba = np.zeros((2, len(classes)))
    proba[:, classes.index("district-donghu")] = 0.5
    proba[:, classes.index("district-linjiang")] = 0.2
    proba[:, classes.index("urban-mgmt")] = 0.3
    batch = [t("中山路的宅基地有人违建"), t("中山路有人占道经营")]
    tops = [[("district-donghu", 0.5), ("urban-mgmt", 0.3), ("district-linjiang", 0.2)],
            [("urban-mgmt", 0.5), ("district-donghu", 0.3), ("district-linjiang", 0.2)]]
    infos = [Info(), Info()]
    new = jurisdiction(places, batch, tops, infos, proba, classes)
    assert new[0] == [("district-linjiang", pytest.approx(0.7)), ("district-donghu", 0.5), ("urban-mgmt", 0.3)]
    assert infos[0].fields() == {"by": "places", "place": "中山路", "district": "district-linjiang"}
    assert new[1] == tops[1] and infos[1].by == "model" and infos[1].district == "district-linjiang"
    p = reweigh(proba, classes, new, tops)
    assert p[0].sum() == pytest.approx(1.0) and p[0].argmax() == classes.index("district-linjiang")
    assert p[0, classes.index("district-linjiang")] == pytest.approx(0.7)
    assert (p[1] == proba[1]).all()


def test_catalogue_level_and_territorial_flags(catalog, tmp_path):
    assert catalog.by_id["district-linjiang"].level == "district" and catalog.by_id["district-linjiang"].territorial
    assert catalog.by_id["urban-mgmt"].level == "city" and not catalog.by_id["urban-mgmt"].territorial
    raw = {"departments": [{"id": "a", "name": "A", "duties": "x", "level": "town"}]}
    (tmp_path / "c.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(CatalogError, match="'level' must be one of city, district, street, not 'town'"):
        load_catalog(tmp_path / "c.json")
