"""data/generate.py: deterministic, leaves the original sample alone, and its month has
bursts, a seasonal drift and ~3% no-department tickets of several kinds."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from datetime import datetime

import pytest

from router import ROOT
from router.catalog import EMERGENCY
from router.io import load_tickets

SAMPLE = ROOT / "data" / "sample"
# the original sample: tests and README figures depend on these bytes
PINNED = {
    "history.jsonl": "8da3050b2368d56b4140cb5a05f4b056e6960273218d7890616ae138249be1cd",
    "test.jsonl": "4c5c0f1b1ce4a259adbd9c1e7b495aefe89092e3542506c17e36a6194b1ca43e",
    "day.jsonl": "dc45843eac9efdf7fc2693991c593f33c949542f786b6e9288b2ebab102160bf",
}
KINDS = {"consult", "out_of_area", "incomplete", "abusive"}


def files(d):
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def rows(p):
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = []
    for name in ("a", "b"):
        d = tmp_path_factory.mktemp(name)
        subprocess.run([sys.executable, str(ROOT / "data" / "generate.py"), "--out", str(d)],
                       check=True, capture_output=True)
        out.append(d)
    return out


@pytest.fixture(scope="module")
def month(runs):
    d = runs[0] / "month"
    meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
    return d, meta, [rows(d / m["file"]) for m in meta["days"]]


def test_reruns_are_byte_identical_and_match_the_committed_sample(runs):
    a, b = files(runs[0]), files(runs[1])
    assert a == b
    assert len([k for k in a if k.startswith("month/day")]) == 30
    assert a == files(SAMPLE)


def test_original_sample_is_unchanged(runs):
    for name, sha in PINNED.items():
        assert hashlib.sha256((runs[0] / name).read_bytes()).hexdigest() == sha, name


def test_month_files_load_with_true_labels_and_day_times(month, catalog):
    d, meta, days = month
    ids = set()
    for m, day in zip(meta["days"], days):
        assert 250 <= len(day) <= 600, m["file"]
        ok, bad = load_tickets(d / m["file"], catalog)
        assert not bad and len(ok) == len(day) == m["tickets"]
        assert all(t.received_at.startswith(m["date"]) for t in ok)
        assert [t.received_at for t in ok] == sorted(t.received_at for t in ok)
        assert all("label" in r for r in day)
        assert all(t.label is not None or t.extra["no_fit"] for t in ok)
        ids |= {t.id for t in ok}
    assert 300 <= sum(len(x) for x in days) / 30 <= 500
    hist, test = rows(d / "history.jsonl"), rows(d / "test.jsonl")
    per_dept = Counter(r["label"] for r in hist if r["label"] and not r["id"].startswith("MHE"))
    assert len(per_dept) == 70 and 3 <= min(per_dept.values()) and max(per_dept.values()) <= 7
    special = Counter(r["label"] for r in hist if r["id"].startswith("MHE"))  # emergencies, near-misses, legal
    assert all(special[ln] == 4 for ln in EMERGENCY) and special["legal-channel"] == 10
    assert max(r["received_at"] for r in hist) < meta["start"]
    assert len(test) == 1500 and len({r["label"] for r in test if r["label"]}) == 70
    ids_all = ids | {r["id"] for r in hist + test}
    assert len(ids_all) == len(ids) + len(hist) + len(test)


def grams(s):
    return {s[i:i + 3] for i in range(len(s) - 2)}


def nearest(texts):
    g = [grams(t) for t in texts]
    return sorted(max((len(x & y) / len(x | y) for j, y in enumerate(g) if j != i), default=0.0)
                  for i, x in enumerate(g))


def test_bursts_are_near_duplicates_to_one_department_within_hours(month):
    _, meta, days = month
    bursts = [(b, {r["id"]: r for r in day}) for m, day in zip(meta["days"], days) for b in m["bursts"]]
    assert len(bursts) >= 10
    gap = []
    for b, by_id in bursts:
        got = [by_id[i] for i in b["ids"]]
        assert 10 <= len(got) <= 40
        assert {r["label"] for r in got} == {b["label"]}
        t = sorted(datetime.fromisoformat(r["received_at"]) for r in got)
        assert (t[-1] - t[0]).total_seconds() <= 4 * 3600
        # near-duplicates: each ticket's closest twin (character 3-gram Jaccard) is much
        # closer inside the burst than among the department's other tickets of that day
        twin = nearest([r["text"] for r in got])
        rest = nearest([r["text"] for r in by_id.values() if r["label"] == b["label"] and r["id"] not in b["ids"]])
        gap.append(twin[len(twin) // 2] - rest[len(rest) // 2])
        assert twin[len(twin) // 2] >= 0.4 and gap[-1] > 0.08, b["title"]
    assert sorted(gap)[len(gap) // 2] > 0.25


def test_emergencies_near_misses_and_legal_channel_are_rare_and_listed(month):
    """1-4 emergencies, 1-3 near-misses and 2-6 legal-channel tickets a day, listed in meta.json, with
    their own ids; every other ticket as before (the specials are only inserted)."""
    _, meta, days = month
    for m, day in zip(meta["days"], days):
        by_id = {r["id"]: r for r in day}
        assert 1 <= len(m["emergencies"]) <= 4 and 1 <= len(m["near_misses"]) <= 3 and 2 <= len(m["legal_channel"]) <= 6
        assert all(by_id[i]["label"] == ln for i, ln in m["emergencies"].items())
        assert all(by_id[i]["label"] == "legal-channel" for i in m["legal_channel"])
        assert all(by_id[i]["label"] in ("gas", "fire-rescue", "police", "medical-insurance", "traffic-police") for i in m["near_misses"])
        regular = [r["id"] for r in day if "-E" not in r["id"]]
        assert regular == ["M%02d-%04d" % (m["day"], k) for k in range(1, len(regular) + 1)]
    n = sum(len(x) for x in days)
    assert 0.004 < sum(len(m["emergencies"]) for m in meta["days"]) / n < 0.012


def test_department_mix_drifts_over_the_month(month):
    _, _, days = month

    def mix(ds):
        c = Counter(r["label"] for d in ds for r in d if r["label"])
        n = sum(c.values())
        return {k: v / n for k, v in c.items()}

    first, last = mix(days[:7]), mix(days[-7:])
    tv = 0.5 * sum(abs(first.get(k, 0) - last.get(k, 0)) for k in first.keys() | last.keys())
    assert tv > 0.15
    assert last["heating"] > 3 * first["heating"]          # winter comes
    assert first["drainage"] > 2 * last["drainage"]        # the typhoon passes


def test_no_department_tickets_are_about_3_percent_of_several_kinds(month, runs, catalog):
    d, meta, days = month
    for name, rs in [("days", [r for day in days for r in day]), ("test", rows(d / "test.jsonl")),
                     ("history", rows(d / "history.jsonl"))]:
        nf = [r for r in rs if r["label"] is None]
        assert 0.025 <= len(nf) / len(rs) <= 0.035, name
        assert all(r["no_fit"] in KINDS for r in nf) and not any("no_fit" in r for r in rs if r["label"])
        if name == "days":
            kinds = Counter(r["no_fit"] for r in nf)
            assert set(kinds) == KINDS and min(kinds.values()) >= 0.05 * len(nf), kinds
    nofit = runs[0] / "nofit.jsonl"
    ok, bad = load_tickets(nofit, catalog)
    assert not bad and len(ok) == 180
    assert all(t.label == "none" for t in ok) and {t.extra["no_fit"] for t in ok} == KINDS  # no department fits


def test_realistic_style_is_long_titled_and_matches_the_committed_folder(tmp_path):
    """--style realistic: a short title, then 150-800 characters naming the gazetteer's places;
    seeded (the committed data/realistic is what the command writes)."""
    subprocess.run([sys.executable, str(ROOT / "data" / "generate.py"), "--style", "realistic", "--out", str(tmp_path)],
                   check=True, capture_output=True)
    assert files(tmp_path) == files(ROOT / "data" / "realistic")
    hist = rows(tmp_path / "history.jsonl")
    assert len(hist) > 1500 and all(r["title"] and 150 <= len(r["text"]) <= 800 for r in hist)
    lengths = sorted(len(r["text"]) for r in hist)
    assert 300 <= lengths[len(lengths) // 2] <= 500
    sys.path.insert(0, str(ROOT / "data"))
    import generate
    places = {x for g in generate.GAZ.values() for k in ("xq", "streets", "roads") for x in g[k]}
    assert sum(any(p in r["text"] for p in places) for r in hist) > 0.8 * len(hist)
    assert len({r["label"] for r in hist}) == len(generate.POPULARITY)
    assert "label" not in rows(tmp_path / "day.jsonl")[0]
