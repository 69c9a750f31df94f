"""The shared training pipeline with the baseline: replay, temperature calibration, reports,
newest corrections, comparison with the current model."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session

from router import calibration, registry
from router.store import Label
from tests.conftest import SAMPLE
from training import replay
from training.data import Labeled, from_store, import_labeled, split
from training.train import train

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture
def cfg(home):
    """A lighter baseline (fewer features, stronger regularisation) so CPU tests stay quick."""
    from router import config

    c = config.load()
    c.baseline = c.baseline.model_copy(update=dict(C=2.0, ngram_max=3, max_features=30000))
    return c


def labeled(n: int, new_from: int, sources=None) -> Labeled:
    return Labeled([f"t{i}" for i in range(n)], [f"text {i}" for i in range(n)], ["a" if i % 2 else "b" for i in range(n)],
                   sources or ["import"] * n, [T0 + timedelta(hours=i) for i in range(n)])


def test_replay_mixes_new_labels_with_a_sample_of_old_ones():
    data = labeled(100, 90, ["import"] * 90 + ["correction"] * 5 + ["confirmation"] * 5)
    since = T0 + timedelta(hours=89, minutes=30)
    out = replay.mix(data, since, old_sample=20, recent_weight=3)
    ids = out.ids
    assert sum(i in ids for i in [f"t{k}" for k in range(90)]) == 20          # 20 old ones replayed
    assert all(ids.count(f"t{k}") == 3 for k in range(90, 95))                 # corrections x3
    assert all(ids.count(f"t{k}") == 1 for k in range(95, 100))                # confirmations once
    assert len(out) == 20 + 5 * 3 + 5
    assert replay.mix(data, since, old_sample=20, recent_weight=3).ids == ids  # seeded: reproducible
    everything = replay.mix(data, None)
    assert sorted(everything.ids) == sorted(data.ids)


def test_temperature_scaling_fixes_overconfidence():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 2000)
    logits = rng.normal(size=(2000, 5))
    logits[np.arange(2000), y] += 1.0
    over = calibration.temper(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 0.25)  # 4x too sharp
    from router.calibration import ece

    t = calibration.fit_proba(over, y)
    assert 3.0 < t < 5.0
    assert ece(calibration.temper(over, t), y) < ece(over, y) / 3
    p = np.array([[0.7, 0.3, 0.0]])
    assert calibration.temper(p, 2.0)[0, 2] == 0.0                                 # unseen class stays at 0


@pytest.fixture
def store(engine, catalog, tmp_path):
    """1500 sample tickets imported; the newest 150 of them re-labeled as dispatcher corrections."""
    rows = [json.loads(x) for x in (SAMPLE / "history.jsonl").read_text(encoding="utf-8").splitlines()[:1500]]
    path = tmp_path / "h.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    import_labeled(engine, str(path), catalog)
    with Session(engine) as s:
        for r in rows[-150:]:
            s.add(Label(ticket_id=r["id"], department=r["label"], reviewer="ann", source="correction"))
        s.commit()
    return engine


def test_baseline_trains_calibrates_and_reports(store, cfg, catalog):
    data = from_store(store, catalog)
    first = train(store, cfg, catalog, data)
    rep, mv = first.report, first.version
    c = rep["calibration"]
    assert c["n_calibration"] > 100 and c["temperature"] != 1.0
    assert c["ece_after"] < c["ece_before"]                                    # sigmoid-OvR is overconfident
    assert mv.metrics["ece_uncalibrated"] == c["ece_before"]
    folder = Path(mv.path)
    assert {p.name for p in folder.iterdir()} >= {"report.json", "report.md", "confusion.png", "meta.json",
                                                  "held_out", "trained_ids.txt"}
    # the registered version is refit on every label (its scale from their cross-validation, temperature 1);
    # the held-out fit, kept for the gate, has the temperature fitted on the calibration slice
    reg = rep["fits"]["registered"]   # (replay repeats the weighted corrections)
    assert reg["refit_on_all_labels"] and reg["fit"] >= len(data) and mv.temperature == 1.0
    held = json.loads((folder / "held_out" / "meta.json").read_text())
    assert held["temperature"] == pytest.approx(c["temperature"]) and held["n_fit"] < len(data)
    md = (folder / "report.md").read_text()
    assert "temperature" in md and "newest held-out corrections" in md
    # the held-out set never feeds training: same split, no overlap
    tr, te = split(data, cfg.train.test_size, cfg.train.seed)
    assert mv.data_snapshot["n_test"] == len(te) and mv.data_snapshot["n_train"] < len(tr)
    assert rep["newest_corrections"]["n"] > 0
    # the loaded model applies the stored temperature: its probabilities are the reported ones
    _, clf = registry.load(store, mv.version, cfg)
    test = data.subset(te)
    proba = clf.predict_proba(test.texts[:50])
    assert clf.temperature == pytest.approx(mv.temperature)
    assert np.allclose(proba.sum(1), 1) and proba.max(1).mean() < 0.999
    # a second version is compared with the current one on the same tickets
    second = train(store, cfg, catalog, data)
    assert second.report["current"]["version"] == mv.version and not second.promoted
    assert second.report["current"]["macro_f1"] == pytest.approx(rep["macro"]["f1"])
    assert set(second.report["delta_f1"]) == set(rep["per_department"])
    assert "current model" in (Path(second.version.path) / "report.md").read_text()
