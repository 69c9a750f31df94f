"""The ensemble kind: its weights (a plain mean by default, or fitted on the calibration slice), and
`router train/retrain --kind ensemble` end to end (the LLM member a tiny random Qwen2 on the CPU, the
baseline a light TF-IDF), routed and gated like any version."""

from __future__ import annotations

import json

import numpy as np
import pytest

from router import classifier, config, registry
from router.ensemble import EnsembleClassifier, fit_weights, grid_weights
from tests.conftest import SAMPLE, import_and_train, invoke, read_jsonl, write_jsonl
from tests.tiny_think import tiny_config, tiny_model
from training import data as data_mod, nightly, train as train_mod


def test_grid_covers_the_simplex():
    g = grid_weights(3, 4)
    assert np.allclose(g.sum(axis=1), 1) and len(g) == 15 and (g >= 0).all()


def test_weights_follow_the_better_member():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    good = np.full((300, 4), 0.1)
    good[np.arange(300), y] = 0.7                  # right, confidently
    noise = rng.dirichlet(np.ones(4), 300)          # knows nothing
    assert fit_weights([good, noise], y)[0] >= 0.9
    assert fit_weights([noise, good], y)[1] >= 0.9
    # two members right on different halves: the mix beats either, so both get weight
    a, b = good.copy(), good.copy()
    a[:150], b[150:] = noise[:150], noise[150:]
    w = fit_weights([a, b], y)
    assert 0.3 <= w[0] <= 0.7


@pytest.fixture(params=["fit", "mean"])
def env(request, home, tmp_path, monkeypatch, catalog):
    """500 sample tickets to import; the tiny LLM trains 2 steps with a short prompt; the weights fitted
    through train and retrain, or the default plain mean."""
    rows = read_jsonl(SAMPLE / "history.jsonl")[:500]
    texts = [d.name + "：" + d.duties for d in catalog.departments] + [r["text"] for r in rows[:200]]
    tiny = tiny_model(tmp_path / "qwen2", texts)
    (tmp_path / "router.toml").write_text(
        "[baseline]\nC = 2.0\nngram_max = 3\nmax_features = 30000\n[retrain]\nmin_new_labels = 50\n"
        f'[ensemble]\nweighting = "{request.param}"\n' + tiny_config(tiny))
    return write_jsonl(tmp_path / "history.jsonl", rows), rows, request.param


def test_train_classify_and_retrain_an_ensemble(env, home, tmp_path, catalog):
    history, rows, weighting = env
    engine, mv = import_and_train(history, "ensemble")
    assert mv.kind == "ensemble" and mv.status == "current" and mv.base is not None
    meta = json.loads((home / "models" / mv.version / "meta.json").read_text())
    assert meta["members"] == ["llm", "baseline"] and abs(sum(meta["weights"]) - 1) < 1e-9
    if weighting == "fit":  # the random LLM knows nothing, the baseline does: the calibration slice gives it the weight
        assert meta["weights"][1] > 0.5 and not meta["fixed"], meta["tuning"]
    else:                   # the plain mean stays as set; each member is still tempered on the slice
        assert meta["weights"] == [0.5, 0.5] and meta["fixed"], meta["tuning"]
        assert all(t != 1.0 for t in meta["tuning"]["temperatures"].values()), meta["tuning"]
    report = json.loads((home / "models" / mv.version / "report.json").read_text())
    assert report["tuning"]["accuracy"]["baseline"] > report["tuning"]["accuracy"]["llm"]

    _members_refit(engine, home, mv, report, catalog)

    clf = classifier.load(home / "models" / mv.version, config.load())
    p = clf.predict_proba([r["text"] for r in rows[:5]])
    assert p.shape == (5, len(clf.classes_)) and np.allclose(p.sum(axis=1), 1)
    assert isinstance(clf, EnsembleClassifier) and [m.kind for m in clf.members] == ["llm", "baseline"]

    tickets = write_jsonl(tmp_path / "new.jsonl", [{"id": f"n{i}", "text": r["text"]} for i, r in enumerate(rows[:20])])
    out = tmp_path / "routed.jsonl"
    res = invoke("classify", str(tickets), "--output", str(out))
    assert res.exit_code == 0, res.output
    routed = read_jsonl(out)
    assert len(routed) == 20 and all(r["model_version"] == mv.version for r in routed)

    res = invoke("retrain", "--kind", "ensemble", "--force")  # gated against the first
    assert res.exit_code in (nightly.OK, nightly.KEPT), res.output
    # the weights and the members' accuracy on the calibration slice, as the report has them
    shown = " ".join(res.output.split())
    assert f"({weighting}); accuracy on the " in shown and "calibration tickets: llm 0." in shown, shown[-600:]
    if weighting == "mean":
        assert "ensemble weights llm 0.50, baseline 0.50 (mean)" in shown
    last = registry.versions(engine)[0]
    assert last.kind == "ensemble" and last.version != mv.version
    if weighting == "mean":
        assert json.loads((home / "models" / last.version / "meta.json").read_text())["weights"] == [0.5, 0.5]
    assert any(e.version == last.version for e in registry.events(engine)) or last.status == "current"


def _members_refit(engine, home, mv, report, catalog):
    """The registered version's baseline member is refit on every label (the held-out test and
    calibration slices included), its LLM member is the held-out fit's; the held-out fit is kept for the gate."""
    cfg = config.load()
    labeled = data_mod.from_store(engine, catalog)
    s = train_mod.split_data(cfg, labeled, None)
    out = set(s.test.ids) | set(s.cal.ids)
    assert out and not out & set(s.fit.ids)
    folder = home / "models" / mv.version
    reg, held = classifier.load(folder, cfg), classifier.load(folder / "held_out", cfg)
    assert [m.kind for m in held.members] == ["llm", "baseline"]
    assert reg.member_fits == {"llm": len(s.fit), "baseline": len(labeled)} == {"llm": len(s.fit),
                                                                                 "baseline": reg.members[1].n_fit}
    assert held.member_fits == {"llm": len(s.fit), "baseline": len(s.fit)}
    assert report["fits"]["registered"]["members"] == reg.member_fits
    assert list(reg.weights) == list(held.weights) and reg.temperature == held.temperature
    # what each baseline member has seen: the refit one fits the held-out and calibration tickets
    # (a linear SVM on its training labels), the held-out fit routes them as unseen tickets
    pick = [i for i, t in enumerate(labeled.ids) if t in out]
    texts, truth = [labeled.texts[i] for i in pick], np.array([labeled.labels[i] for i in pick])
    acc = {name: float((m.members[1].predict(texts) == truth).mean()) for name, m in (("reg", reg), ("held", held))}
    assert acc["reg"] >= 0.95 and acc["reg"] > acc["held"] + 0.05, acc
    # the LLM member is the held-out fit's, unchanged (its calibration-slice temperature included)
    assert reg.members[0].temperature == held.members[0].temperature
    assert np.allclose(reg.members[0].predict_proba(texts[:4]), held.members[0].predict_proba(texts[:4]))
    # the gate scores the held-out fit: it never saw the test slice
    seen = set((folder / "trained_ids.txt").read_text().splitlines())
    assert not seen & set(s.test.ids) and set(s.cal.ids) <= seen


def test_fixed_weights_are_kept_and_each_member_still_tempered(catalog):
    """Fixed weights (the default plain mean): tune leaves them as set and still fits each member's
    temperature on the calibration slice; without them, tune fits the weights."""
    from router.baseline import BaselineClassifier

    rows = read_jsonl(SAMPLE / "history.jsonl")[:700]
    fit, cal = rows[:500], rows[500:]
    classes = sorted({r["label"] for r in rows})

    def members():
        strong = BaselineClassifier(classes, max_features=20000).fit([r["text"] for r in fit], [r["label"] for r in fit])
        weak = BaselineClassifier(classes, max_features=300).fit([r["text"] for r in fit[:60]],
                                                                 [r["label"] for r in fit[:60]])
        return [strong, weak]

    texts, labels = [r["text"] for r in cal], [r["label"] for r in cal]
    fixed = EnsembleClassifier(members(), classes, weights=[0.5, 0.5])
    fixed.tune(texts, labels)       # (its tuning record is keyed by kind: both members here are baselines)
    assert fixed.fixed and list(fixed.weights) == [0.5, 0.5]
    assert all(m.temperature != 1.0 for m in fixed.members), [m.temperature for m in fixed.members]
    fitted = EnsembleClassifier(members(), classes)
    fitted.tune(texts, labels)
    assert not fitted.fixed and fitted.weights[0] > 0.5, fitted.weights   # the stronger member gets more


def test_the_default_is_a_plain_mean_and_fit_or_weights_change_it(catalog):
    """`[ensemble] weighting` "mean" (the default) gives fixed equal weights, "fit" leaves them to tune,
    `weights` fixes its own; a `weights` list of the wrong length is an error naming it."""
    classes = sorted(d.name for d in catalog.departments)

    def build(**ens):
        cfg = config.Settings()
        cfg.ensemble = config.Ensemble(members=["baseline", "baseline"], **ens)
        return EnsembleClassifier.from_settings(cfg, classes, catalog)

    mean = build()
    assert mean.fixed and list(mean.weights) == [0.5, 0.5]
    fit = build(weighting="fit")
    assert not fit.fixed and fit.weights is None
    own = build(weighting="fit", weights=[0.25, 0.75])
    assert own.fixed and list(own.weights) == [0.25, 0.75]
    with pytest.raises(ValueError, match=r"\[ensemble\] weights has 1 values for 2 members"):
        build(weights=[1.0])
