"""Dashboards: every page renders with Streamlit's AppTest on a seeded store and on an empty one;
the SQL aggregations agree with counts done the slow way."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from dashboards import queries, seed
from router import ROOT, config
from router.store import Label, Prediction, QueueItem, connect, now

APP = str(ROOT / "dashboards" / "app.py")
PAGES = ["views/0_Overview.py", "views/1_F1_by_department.py", "views/2_Confusion.py",
         "views/3_Calibration.py", "views/4_Review_queue.py", "views/5_Drift.py",
         "views/6_Model_history.py"]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, catalog):
    """A store with two model versions and 3,000 routed tickets over 60 days."""
    home = tmp_path_factory.mktemp("dash") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ROUTER_PATHS__HOME", str(home))
        mp.delenv("ROUTER_STORE__URL", raising=False)
        mp.delenv("ROUTER_CONFIG", raising=False)
        cfg = config.load()
        engine = connect(config.store_url(cfg))
        info = seed.demo(engine, cfg, catalog, n=3000)
    return home, engine, info


@pytest.fixture
def store(seeded, monkeypatch, tmp_path):
    home, engine, info = seeded
    monkeypatch.setenv("ROUTER_PATHS__HOME", str(home))
    monkeypatch.delenv("ROUTER_STORE__URL", raising=False)
    monkeypatch.delenv("ROUTER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return engine, info


def render(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()  # st.navigation registers the pages
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def charts(at) -> int:
    return len(at.get("vega_lite_chart"))


def current_report(engine) -> dict:
    cur, _ = queries.current_and_previous(queries.versions(engine))
    return json.loads((Path(cur["path"]) / "report.json").read_text())


@pytest.mark.parametrize("page", PAGES)
def test_page_on_empty_store_says_what_to_do(page, home):
    at = render(page)
    assert at.title
    guidance = " ".join(i.value for i in at.info)
    assert "router train" in guidance or "router classify" in guidance, guidance
    assert not at.dataframe and not charts(at)


def test_pages_after_training_before_routing(cfg, engine, catalog):
    """A model but no routed ticket: model pages work, routing pages say to run classify."""
    seed.make_versions(engine, cfg, catalog)
    for page in PAGES:
        at = render(page)
        guidance = " ".join(i.value for i in at.info)
        if page in (PAGES[4], PAGES[5]):
            assert "router classify" in guidance and not charts(at), page
        elif page == PAGES[3]:
            assert "router classify" in guidance and charts(at) == 1  # the reliability diagram
        else:
            assert "router train" not in guidance and (charts(at) or page == PAGES[0]), page


def test_pages_with_few_departments(cfg, engine, catalog):
    """A first model trained on three departments: no slider over fewer than five rows."""
    from router import registry
    from router.store import Label, ModelVersion, Ticket
    from training import evaluate

    few = catalog.ids[:3]
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(3), 30)
    rep = evaluate.report(proba, [few[i % 3] for i in range(30)], few, catalog)
    folder = config.home(cfg) / "models" / "v1"
    evaluate.save(rep, folder, "v1")
    registry.register(engine, ModelVersion(version="v1", kind="baseline", path=str(folder),
                                           metrics=evaluate.summary(rep)))
    registry.promote(engine, "v1", "first trained model")
    with Session(engine) as s:
        s.add_all([Ticket(id=f"t{i}", text="路灯不亮") for i in range(6)])
        s.flush()
        for i in range(6):
            s.add(Prediction(ticket_id=f"t{i}", model_version="v1", department=few[i % 2], confidence=0.5))
            s.add(Label(ticket_id=f"t{i}", department=few[i % 3], source="import",
                        created_at=now() - timedelta(days=1)))  # before the model was trained
        s.commit()
    for page in (PAGES[1], PAGES[5]):
        at = render(page)
        assert not [w for w in at.slider if "departments" in w.label], page
        assert len(at.dataframe[0].value) == 3, page


def test_overview(store):
    engine, info = store
    at = render(PAGES[0])
    m = metrics(at)
    assert m["tickets"] == f"{info['tickets'] + 1:,}"
    assert m["model versions"] == "2"


def test_f1_page_worst_first_with_change(store, catalog):
    engine, _ = store
    at = render(PAGES[1])
    rep = current_report(engine)
    df = at.dataframe[0].value
    assert len(df) == len(rep["per_department"]) == 70
    assert list(df["f1"]) == sorted(df["f1"])
    worst = df.iloc[0]
    assert worst["department_name"] == catalog.name(worst["department"])
    prev = queries.versions(engine)[0]["metrics"]["per_department_f1"]
    d = worst["department"]
    assert worst["change"] == pytest.approx(rep["per_department"][d]["f1"] - prev[d])
    assert metrics(at)["macro-F1"] == f"{rep['macro']['f1']:.3f}"
    assert charts(at) == 2  # F1 with its change, and F1 over versions


def test_confusion_page_pairs_open_plain_text_tickets(store, catalog):
    engine, info = store
    at = render(PAGES[2])
    rep = current_report(engine)
    assert charts(at) == 1
    pairs = at.dataframe[0].value
    cm = np.array(rep["confusion"]["matrix"])
    labels = rep["confusion"]["labels"]
    top = pairs.iloc[0]
    assert top["tickets"] == (cm - np.diag(np.diag(cm))).max()
    assert cm[labels.index(top["true"]), labels.index(top["predicted"])] == top["tickets"]
    at.radio[0].set_value(at.radio[0].options[1]).run()
    assert not at.exception
    pairs = at.dataframe[0].value
    predicted, true = info["markup_pair"]
    assert (pairs.iloc[0]["predicted"], pairs.iloc[0]["true"]) == (predicted, true)
    examples = at.dataframe[1].value
    assert examples.iloc[0]["text"] == seed.MARKUP  # the newest label first, text untouched
    with Session(engine) as s:
        n = len(s.exec(select(Label.id).join(Prediction, Prediction.ticket_id == Label.ticket_id).where(
            Label.department == true, Prediction.department == predicted, Label.undone == False)).all())  # noqa: E712
    assert len(examples) == min(n, 20)
    assert catalog.name(predicted) in at.subheader[-1].value


def test_calibration_page(store):
    engine, _ = store
    at = render(PAGES[3])
    rep = current_report(engine)
    m = metrics(at)
    assert m["ECE"] == f"{rep['ece']:.3f}"
    day = now().replace(hour=0, minute=0, second=0, microsecond=0)
    with Session(engine) as s:
        conf = list(s.exec(select(Prediction.confidence).where(Prediction.created_at >= day)))
    assert m["predictions"] == f"{len(conf):,}"
    assert m["below the threshold 0.6"] == f"{sum(c < 0.6 for c in conf):,}"
    assert charts(at) == 2


def test_review_queue_page(store):
    engine, _ = store
    at = render(PAGES[4])
    m = metrics(at)
    with Session(engine) as s:
        pending = len(s.exec(select(QueueItem.id).where(QueueItem.status == "pending")).all())
        audits = s.exec(select(Label.department, Prediction.department).join(
            Prediction, Prediction.id == Label.prediction_id).where(
            Label.source == "audit", Label.undone == False)).all()  # noqa: E712
    assert m["open now"] == f"{pending:,}"
    k = sum(a == b for a, b in audits)
    assert m["agreement, all audits"] == f"{k / len(audits):.1%}"
    lo, hi = queries.wilson(k, len(audits))
    assert any(f"{lo:.1%} - {hi:.1%}" in c.value for c in at.caption)
    assert charts(at) == 3
    assert set(at.dataframe[0].value["reviewer"]) == set(seed.REVIEWERS)


def test_drift_page(store):
    engine, _ = store
    at = render(PAGES[5])
    jsd = float(metrics(at)["Jensen-Shannon divergence"])
    assert 0.005 < jsd < 1  # the seeded recent days lean towards three departments
    mix = at.dataframe[0].value
    assert mix["recent_share"].sum() == pytest.approx(1) and mix["training_share"].sum() == pytest.approx(1)
    assert charts(at) == 2


def test_history_page(store):
    at = render(PAGES[6])
    m = metrics(at)
    assert (m["versions"], m["promotions"], m["rollbacks"]) == ("2", "3", "1")
    assert m["current"] == "baseline-20260101-000001-000"
    events = at.dataframe[1].value
    assert list(events["action"]) == ["promoted", "rolled_back", "promoted", "kept_candidate", "promoted"]
    assert "misrouted" in events.iloc[1]["reason"]
    assert any("rollback" in w.value for w in at.warning)


# --- the aggregations against brute force ---------------------------------------------------

def test_queue_size_walks_back_to_the_true_open_count(store):
    engine, _ = store
    end = now()
    start, _ = queries.window(20, end)
    size = queries.queue_size(engine, start, end)
    with Session(engine) as s:
        items = s.exec(select(QueueItem)).all()
    for row in size.itertuples():
        eod = row.day.to_pydatetime().replace(tzinfo=end.tzinfo) + timedelta(days=1)
        truth = sum(q.created_at < eod and (q.status == "pending" or q.done_at >= eod) for q in items)
        assert row.open == truth, row.day


def test_wilson_and_js_divergence():
    lo, hi = queries.wilson(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)  # Wilson 1927 / Newcombe 1998
    assert queries.wilson(0, 0) == (0.0, 1.0)
    a = pd.Series({"x": 5, "y": 5})
    assert queries.js_divergence(a, a * 3) == pytest.approx(0)
    assert queries.js_divergence(pd.Series({"x": 1}), pd.Series({"y": 4})) == pytest.approx(1)


def test_pages_on_postgresql(tmp_path, monkeypatch, catalog):
    """The same aggregations on PostgreSQL (date(), CAST/floor, booleans)."""
    url = os.environ.get("ROUTER_TEST_PG_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must provide PostgreSQL (ROUTER_TEST_PG_URL); see .ci/run")
        pytest.skip("no PostgreSQL: set ROUTER_TEST_PG_URL")
    from sqlmodel import SQLModel

    monkeypatch.setenv("ROUTER_PATHS__HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ROUTER_STORE__URL", url)
    monkeypatch.delenv("ROUTER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    engine = connect(url)
    with engine.begin() as c:  # a clean slate each run
        for t in reversed(SQLModel.metadata.sorted_tables):
            c.execute(t.delete())
    seed.demo(engine, config.load(), catalog, n=1500)
    for page in PAGES:
        at = render(page)
        assert not at.info or page == PAGES[2], [i.value for i in at.info]
    hist = queries.confidence_histogram(engine, now() - timedelta(days=400), now() + timedelta(days=1))
    with Session(engine) as s:
        conf = list(s.exec(select(Prediction.confidence)))
    assert hist["tickets"].tolist() == np.histogram(conf, bins=20, range=(0, 1))[0].tolist()
