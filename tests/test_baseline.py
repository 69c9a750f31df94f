"""The CPU baseline of issue 21: title and text blocks, a probability scale by cross-validation,
a model that loads without scikit-learn, an "auto" threshold per version, the classify summary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from router import ROOT, calibration
from router.baseline import TITLE_WEIGHTS, BaselineClassifier, split
from router.classifier import load, model_input
from router.cli import app
from router.config import Settings
from router.ngrams import Tfidf, grams, words
from router.store import ModelVersion, connect
from tests.conftest import SAMPLE, read_jsonl, write_jsonl

REALISTIC = ROOT / "data" / "realistic"
runner = CliRunner()


def _xy(rows):
    return [model_input(r["text"], r.get("title")) for r in rows], [r["label"] for r in rows]


def test_ngrams_are_the_characters_of_each_text_alone():
    d, h = grams(["ab", "", "abc"], 1, 2)
    assert list(np.bincount(d, minlength=3)) == [3, 0, 5]       # a b ab | - | a b c ab bc
    same = {x for x, i in zip(h, d) if i == 0}
    assert same <= {x for x, i in zip(h, d) if i == 2} and len(set(h)) == 5
    v = Tfidf(1, 2, min_df=1).fit(["ab", "abc"])
    X = v.transform(["ab", "zz"])
    assert X.shape == (2, 5) and X[1].nnz == 0 and np.isclose((X[0].toarray() ** 2).sum(), 1.0)


def test_word_ngrams_of_latin_words_and_numbers_beside_the_characters():
    d, h = words(["Card arrived? card 42", "卡到了3号楼", ""], 2)
    assert list(np.bincount(d, minlength=3)) == [7, 1, 0]   # card arrived card 42 + 3 pairs | 3 | -
    assert h[0] == h[2] and len(set(h[:4])) == 3 and not set(h) & set(grams(["card"], 1, 4)[1])
    both = Tfidf(1, 3, min_df=1, words=2).fit(["my card", "your card"])
    assert len(both.vocab_) == len(Tfidf(1, 3, min_df=1).fit(["my card", "your card"]).vocab_) + 5   # my card your, 2 pairs


def test_title_and_text_are_blocks_with_their_own_weight():
    """The same texts under two titles: with the text's weight at 0 only the title decides, with the
    title's at 0 the title is ignored."""
    assert split(["【停水】今天没水", "没有标题"]) == (["停水", ""], ["今天没水", "没有标题"])
    texts, labels = [], []
    for i in range(30):
        body = f"我家住在{i}号楼，这个问题已经反映好几次了，{'楼道灯坏了' if i % 2 else '门口垃圾没人清'}"
        texts += [f"【停水了】{body}", f"【停电了】{body}"]
        labels += ["water", "power"]
    only_title = BaselineClassifier(text_weight=0.0, calibration_folds=0).fit(texts, labels)
    assert (only_title.predict(texts) == np.array(labels)).all()
    no_title = BaselineClassifier(title_weight=0.0, calibration_folds=0).fit(texts, labels)
    p = no_title.predict_proba(texts)
    assert np.allclose(p[0::2], p[1::2])       # same text, other title: the same probabilities


def test_scale_by_cross_validation_over_all_labels_and_a_fast_format(tmp_path):
    rows = read_jsonl(REALISTIC / "history.jsonl")[:700]
    texts, labels = _xy(rows)
    clf = BaselineClassifier().fit(texts, labels)
    assert clf.n_fit == 700 and clf.oof_proba_.shape == (700, len(clf.fitted_)) and clf.scale != 1.0
    assert set(clf.title_weights_tried) == set(TITLE_WEIGHTS) and clf.title_w in TITLE_WEIGHTS
    # the scale makes the out-of-fold probabilities calibrated: a lower NLL than without it
    y = np.searchsorted(clf.fitted_, labels)
    oof_logits = np.log(clf.oof_proba_) * clf.scale
    nll = lambda p: -np.log(p[np.arange(len(y)), y]).mean()  # noqa: E731
    assert nll(clf.oof_proba_) < nll(calibration.softmax(oof_logits, 1.0))
    clf.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["meta.json", "model.npz", "weights.npy"]
    test = _xy(read_jsonl(REALISTIC / "test.jsonl")[:50])[0]
    code = ("import sys, json; from router.classifier import load; from router.config import Settings; "
            "clf = load(sys.argv[1], Settings()); "
            "p = clf.predict_proba(json.loads(sys.argv[2])); "
            "print(json.dumps([p.tolist(), 'sklearn' in sys.modules, 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m"), json.dumps(test)], capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    p, sklearn, torch = json.loads(out.stdout)
    assert np.allclose(p, clf.predict_proba(test), atol=1e-5) and not sklearn and not torch


def test_auto_threshold_is_the_lowest_that_reaches_the_target():
    conf = np.array([0.99, 0.95, 0.9, 0.9, 0.8, 0.7, 0.6])
    ok = np.array([1, 1, 1, 0, 1, 0, 0], bool)
    t = calibration.auto_threshold(conf, ok, 0.8)
    assert t["threshold"] == 0.8 and t["expected_accuracy"] == 0.8 and t["routed_share"] == 5 / 7
    assert calibration.auto_threshold(conf, ok, 0.75)["threshold"] == 0.8      # at 0.7: 4 of 6
    assert calibration.auto_threshold(conf, ok, 1.0)["threshold"] == 0.95      # ties at 0.9 go together
    assert calibration.auto_threshold(conf, ~ok, 0.9)["threshold"] == 1.0      # nothing reaches it: review all


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    h = tmp_path_factory.mktemp("home") / "home"
    env = {**os.environ, "ROUTER_PATHS__HOME": str(h), "PYTHONPATH": str(ROOT), "ROUTER_TRAIN__REFIT": "true"}
    src = write_jsonl(h.parent / "hist.jsonl", read_jsonl(SAMPLE / "history.jsonl")[:900])
    for args in (["import", str(src)], ["train"]):
        subprocess.run([sys.executable, "-m", "router.cli", *args], env=env, check=True, capture_output=True)
    return h


def test_auto_threshold_is_stored_with_the_version_and_used(trained, tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(trained, home)
    monkeypatch.setenv("ROUTER_PATHS__HOME", str(home))
    monkeypatch.setenv("ROUTER_TRAIN__REFIT", "true")
    with Session(connect(f"sqlite:///{home}/router.db")) as s:
        mv = s.exec(select(ModelVersion)).one()
    fitted = mv.config["classify"]
    assert 0 < fitted["threshold"] <= 1 and fitted["target_accuracy"] == 0.95
    # the registered version is refit on all 900 labels; the threshold from its cross-validation over them
    assert fitted["source"] == "out-of-fold over the 900 training labels" and fitted["n"] == 900
    rep = json.loads((home / "models" / mv.version / "report.json").read_text())
    assert rep["threshold"] == fitted and rep["threshold_held_out_fit"]["n"] < 900
    held = rep["fits"]["held_out"]
    assert sum(held.values()) == 900 and held["test"] == rep["n"] and 0 < held["calibration"] < held["fit"]
    assert rep["fits"]["registered"] == {"fit": 900, "refit_on_all_labels": True}
    assert mv.data_snapshot["n_registered_fit"] == 900 and mv.data_snapshot["n_train"] == held["fit"]
    meta = json.loads((home / "models" / mv.version / "meta.json").read_text())
    assert meta["n_fit"] == 900 and meta["temperature"] == 1.0 and mv.temperature == 1.0
    assert meta["params"]["title_weight"] == meta["title_weight_used"]   # the held-out fit's choice, carried
    day = write_jsonl(tmp_path / "day.jsonl", read_jsonl(SAMPLE / "day.jsonl")[:60])
    res = runner.invoke(app, ["classify", str(day), "--summary-json", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    out, s = read_jsonl(tmp_path / "day.routed.jsonl"), json.loads((tmp_path / "s.json").read_text())
    low = [r for r in out if r["confidence"] < fitted["threshold"]]
    assert s["threshold"] == fitted["threshold"] and s["threshold_source"].startswith("fitted")
    # every low-confidence ticket waits: in an item of its own, or in its incident's (并单)
    assert all(r["queued"] for r in low) and s["queued"] <= len(low) <= s["queued"] + s["merged_into_incidents"]
    assert sum(r["queued"] for r in out) == s["queued"] + s["audits"] + s["merged_into_incidents"]
    auto = [r for r in out if not r["queued"]]
    assert s["routed_without_review"] == len(auto) > 0
    assert s["expected_accuracy"] == pytest.approx(np.mean([r["confidence"] for r in auto]), abs=1e-4)
    assert s["model_version"] == mv.version and s["routed"] == 60 and s["rejected"] == 0
    assert sum(s["per_department"].values()) == 60
    # the human summary: one line, whatever the width, with the expected accuracy
    line = [x for x in res.output.splitlines() if x.startswith("routed 60")]
    assert len(line) == 1 and "tickets/s" in line[0] and f"expected accuracy of the {len(auto)} routed" in line[0]
    # an explicit number still works
    monkeypatch.setenv("ROUTER_CLASSIFY__THRESHOLD", "0.99")
    res = runner.invoke(app, ["classify", str(day), "-o", str(tmp_path / "b.jsonl"), "--summary-json",
                              str(tmp_path / "b.json")])
    b = json.loads((tmp_path / "b.json").read_text())
    assert b["threshold"] == 0.99 and b["threshold_source"] == "[classify] threshold"


def test_classify_imports_neither_sklearn_nor_torch(trained, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(trained, home)
    day = write_jsonl(tmp_path / "day.jsonl", read_jsonl(SAMPLE / "day.jsonl")[:20])
    code = ("import sys\nfrom router.cli import app\ntry:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('sklearn', 'torch', 'joblib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, "classify", str(day)], capture_output=True, text=True,
                         env={**os.environ, "ROUTER_PATHS__HOME": str(home), "PYTHONPATH": str(ROOT)})
    assert "routed 20" in out.stderr and out.stdout.strip() == "[]", out.stderr[-2000:]
    assert load(next((home / "models").iterdir()), Settings()).kind == "baseline"
