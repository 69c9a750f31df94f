"""No department fits, end to end on CPU: no-fit labels are imported, the baseline learns the
`none` class and a threshold, `router classify` flags such tickets (department none, queue
reason no_fit), a dispatcher decides, the report shows no-fit precision/recall, the gate checks it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from router import config, nofit, registry
from router.catalog import NONE
from router.cli import app
from router.io import load_tickets
from router.store import QueueItem, open_store
from tests.conftest import SAMPLE, read_jsonl, write_jsonl
from training import gate
from training.data import from_store
from training.train import routed

runner = CliRunner()


def cli(*args):
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


@pytest.fixture
def light(home, tmp_path):
    """A lighter baseline so the test stays quick (./router.toml, the working directory is tmp_path)."""
    (tmp_path / "router.toml").write_text("[baseline]\nC = 2.0\nngram_max = 3\nmax_features = 30000\n")
    return home


def test_no_fit_labels_are_read_from_no_fit_none_and_the_chinese_name(tmp_path, catalog):
    path = write_jsonl(tmp_path / "l.jsonl", [
        {"id": "a", "text": "喂？喂？", "label": None, "no_fit": "incomplete"},
        {"id": "b", "text": "请问公积金电话？", "label": "无合适部门"},
        {"id": "c", "text": "测试", "label": "None"},
        {"id": "d", "text": "路灯坏了", "label": None},                    # no label, no no_fit: rejected
        {"id": "e", "text": "路灯坏了", "label": "urban-mgmt", "no_fit": ""}])
    ok, bad = load_tickets(path, catalog, require_label=True)
    assert [(t.id, t.label) for t in ok] == [("a", NONE), ("b", NONE), ("c", NONE), ("e", "urban-mgmt")]
    assert [(r.line, "no 'label'" in r.reason) for r in bad] == [(4, True)]


def test_fit_threshold_reaches_the_target_recall():
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1, 0.85, 0.3])
    is_nofit = np.array([1, 1, 1, 1, 1, 0, 0, 0], dtype=bool)
    thr = nofit.fit_threshold(score, is_nofit, 0.8)
    assert thr == 0.6 and (score[is_nofit] >= thr).mean() >= 0.8
    assert nofit.fit_threshold(score, is_nofit, 1.0) == 0.2


def test_route_flags_by_score_or_none_class():
    classes = ["a", "b", NONE]
    proba = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [0.2, 0.1, 0.7]])
    score = nofit.proba_score(proba, classes)
    tops, flagged = nofit.route(proba, score, classes, 2, 0.35)
    assert flagged.tolist() == [False, True, True]
    assert tops[0] == [("a", 0.7), ("b", 0.2)]
    assert tops[1][0] == (NONE, pytest.approx(0.6)) and tops[1][1] == ("a", 0.4)
    tops, flagged = nofit.route(proba, score, classes, 2, None, enabled=False)
    assert not flagged.any() and all(NONE not in dict(t) for t in tops)


def test_no_fit_end_to_end(light, tmp_path, catalog):
    from labeling import actions

    history = read_jsonl(SAMPLE / "history.jsonl")[:1500]
    nf = read_jsonl(SAMPLE / "nofit.jsonl")
    train_nf, day_nf = nf[:140], nf[140:]
    cli("import", str(write_jsonl(tmp_path / "h.jsonl", history + train_nf)))
    data = from_store(open_store(config.load()), catalog)
    assert data.labels.count(NONE) == 140

    res = cli("train")
    assert "no department fits: precision" in res.output
    engine = open_store(config.load())
    mv, clf = registry.load(engine, None, config.Settings())
    assert NONE in list(clf.classes_)
    assert mv.config["nofit"]["threshold"] is not None          # fitted on the calibration slice
    rep = json.loads((Path(mv.path) / "report.json").read_text())
    assert rep["nofit"]["support"] >= 10 and rep["nofit"]["recall"] >= 0.8 and rep["nofit"]["precision"] >= 0.5
    assert "no department fits: precision" in (Path(mv.path) / "report.md").read_text()

    # a day: 40 no-fit tickets among 200 ordinary ones, labels hidden
    day = [{k: r[k] for k in ("id", "text", "title", "received_at", "channel") if r.get(k)}
           for r in read_jsonl(SAMPLE / "test.jsonl")[:200] + day_nf]
    out = tmp_path / "day.routed.jsonl"
    res = cli("classify", str(write_jsonl(tmp_path / "day.jsonl", day)), "-o", str(out))
    rows = {r["id"]: r for r in read_jsonl(out)}
    flagged = [i for i, r in rows.items() if r["department"] == NONE]
    truth = {r["id"] for r in day_nf}
    assert len(set(flagged) & truth) >= 0.75 * len(truth)         # most no-fit tickets caught
    assert len(set(flagged) - truth) <= 10                          # few ordinary ones
    r = rows[flagged[0]]
    assert r["department_name"] == "无合适部门" and r["queued"] and 0 <= r["confidence"] <= 1
    assert f"+ {len(flagged)} no-fit" in " ".join(res.output.split())
    with Session(engine) as s:
        items = s.exec(select(QueueItem).where(QueueItem.reason == "no_fit")).all()
    assert sorted(q.ticket_id for q in items) == sorted(flagged)
    assert min(q.priority for q in items) > 2                       # shown before uncertain tickets

    # a dispatcher confirms the first with the model's suggestion, another is routed to a department
    item = actions.next_item(engine, "王芳")
    assert item.reason == "no_fit" and item.top[0][0] == NONE
    label = actions.decide(engine, "王芳", item.queue_id, item.top[0][0])
    assert label.department is None and label.source == "confirmation"
    item2 = actions.next_item(engine, "王芳")
    label2 = actions.decide(engine, "王芳", item2.queue_id, "urban-mgmt")
    assert label2.source == "correction"

    # routing the day again (same model): decided tickets stay out, the rest keep one open item
    cli("classify", str(tmp_path / "day.jsonl"), "-o", str(tmp_path / "again.jsonl"))
    with Session(engine) as s:
        pending = s.exec(select(QueueItem.ticket_id).where(QueueItem.status == "pending")).all()
    assert item.ticket_id not in pending and item2.ticket_id not in pending
    assert len(pending) == len(set(pending))
    data = from_store(engine, catalog)
    assert data.labels[data.ids.index(item.ticket_id)] == NONE

    # the gate: the current model's report against one that misses no-fit tickets
    proba, score, classes, _ = gate.score(engine, mv, data.texts[-300:], config.Settings())
    thr = nofit.threshold(config.Settings().nofit, nofit.model_threshold(mv))
    cur = routed(proba, score, classes, data.labels[-300:], catalog, thr, True)
    worse = json.loads(json.dumps(cur))
    worse["nofit"]["recall"] -= 0.2
    assert cur["nofit"]["support"] >= 10
    d = gate.decide(worse, cur, config.Gate(nofit_min_support=10))
    assert not d.promote and "no-fit recall" in d.reason
    assert gate.decide(cur, cur, config.Gate()).promote

    # waiting tickets an older model queued as uncertain, that the current model calls no-fit,
    # become no-fit items when the queue is re-ranked
    from router import order, queue
    from router.store import Prediction, Reason
    with Session(engine) as s:
        waiting = s.exec(select(QueueItem).where(QueueItem.status == "pending", QueueItem.reason == "no_fit")).all()[:5]
        for q in waiting:
            old = Prediction(ticket_id=q.ticket_id, model_version="old", department="urban-mgmt", confidence=0.3,
                             topk=[["urban-mgmt", 0.3]])
            s.add(old)
            s.flush()
            q.prediction_id, q.reason, q.priority = old.id, Reason.low_confidence, 0.5
            s.add(q)
        s.commit()
        ids = [q.id for q in waiting]
    order.prioritize(engine, clf, mv.version, queue.policy(config.Settings()), (thr, True))
    with Session(engine) as s:
        back = [s.get(QueueItem, i) for i in ids]
        assert all(q.reason == "no_fit" and q.priority > 2 for q in back)
        assert all(s.get(Prediction, q.prediction_id).model_version == mv.version for q in back)


def test_dashboard_no_fit_rate_per_day(engine):
    from datetime import datetime, timezone

    from dashboards import queries
    from router.store import Label, Prediction, Ticket

    d1, d2 = datetime(2026, 11, 2, 3, tzinfo=timezone.utc), datetime(2026, 11, 3, 3, tzinfo=timezone.utc)
    with Session(engine) as s:
        for i in range(6):
            s.add(Ticket(id=f"t{i}", text="x"))
        s.flush()
        for i, (day, dept) in enumerate([(d1, "none"), (d1, "water"), (d1, "water"), (d1, "gas"),
                                         (d2, "none"), (d2, "none")]):
            s.add(Prediction(ticket_id=f"t{i}", model_version="v", department=dept, confidence=0.5, created_at=day))
        s.add_all([Label(ticket_id="t0", department=None, source="correction", created_at=d1),
                   Label(ticket_id="t1", department="water", source="confirmation", created_at=d1),
                   Label(ticket_id="t2", department=None, source="import", created_at=d1),     # not a decision
                   Label(ticket_id="t4", department=None, source="audit", created_at=d2, undone=True)])
        s.commit()
    df = queries.nofit_daily(engine, datetime(2026, 11, 1, tzinfo=timezone.utc), "Asia/Shanghai")
    assert [str(d.date()) for d in df["day"]] == ["2026-11-02", "2026-11-03"]   # 03:00 UTC = 11:00 in 上海
    assert df["routed"].tolist() == [4, 2] and df["flagged"].tolist() == [1, 2]
    assert df["flagged_rate"].tolist() == [0.25, 1.0]
    assert df["labels"].tolist() == [2, 0] and df["no_fit_labels"].tolist() == [1, 0]
    assert df["label_rate"].iloc[0] == 0.5 and np.isnan(df["label_rate"].iloc[1])


def test_llm_gets_a_no_fit_answer_among_its_labels(tmp_path, cfg, catalog):
    """`router train --kind llm` on data with no-fit labels: 无合适部门 is one of the answers it
    scores (tiny random Qwen2 on CPU), its probability feeds the out-of-scope score, and the
    option survives save/load."""
    from router.classifier import load
    from tests.tiny_think import tiny_model
    from training.train import build

    texts = [d.name + "：" + d.duties for d in catalog.departments] + [nofit.NONE_DUTIES]
    cfg.llm.base, cfg.llm.device = str(tiny_model(tmp_path / "qwen2", texts)), "cpu"
    cfg.prompt.department, cfg.prompt.max_ticket_tokens = "{label}. {name}", 64
    clf = build("llm", cfg, catalog, no_fit=True)
    assert list(clf.classes_)[-1] == NONE and clf.labels[-1] == str(len(catalog.ids) + 1)
    assert f"{len(catalog.ids) + 1}. 无合适部门" in clf.prompt.tokenizer.decode(clf.prompt.ids("喂？"))
    proba, score = nofit.scores(clf, ["喂？喂？", "小区停水了"])
    assert proba.shape == (2, len(catalog.ids) + 1) and np.allclose(proba.sum(axis=1), 1)
    assert np.allclose(score, nofit.proba_score(proba, list(clf.classes_))) and ((0 < score) & (score < 1)).all()
    clf.save(tmp_path / "m")
    back = load(tmp_path / "m", cfg)
    assert list(back.classes_) == list(clf.classes_) and back.catalog.name(NONE) == "无合适部门"
