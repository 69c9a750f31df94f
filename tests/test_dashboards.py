"""Dashboards: every page renders with Streamlit's AppTest on a seeded store and on an empty one;
the SQL aggregations agree with counts done the slow way."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from dashboards import queries, seed, ui
from router import ROOT, config, webui
from router.store import Label, Prediction, QueueItem, Ticket, connect, now

APP = str(ROOT / "dashboards" / "app.py")
PAGES = ["views/0_Overview.py", "views/1_F1_by_department.py", "views/2_Confusion.py",
         "views/3_Calibration.py", "views/4_Review_queue.py", "views/5_Drift.py",
         "views/6_Model_history.py", "views/7_Returns.py"]
from tests.conftest import empty_store


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


def render(page: str, crash: bool = False) -> AppTest:
    """`page` run by AppTest; it must not fail (webui.guard's message) unless `crash`."""
    at = AppTest.from_file(APP, default_timeout=60).run()  # st.navigation registers the pages
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert crash == any(e.value == webui.CRASH for e in at.error), [e.value for e in at.error]
    return at


def headers(at) -> list[str]:
    """The column headers every grid on the page shows (its column_order, else its columns; labels from
    column_config), less the ones with an English word (three letters or more, F1/ECE aside)."""
    import json
    import re

    out = []
    for d in at.dataframe:
        config = json.loads(d.proto.columns or "{}")
        for c in list(d.proto.column_order) or [str(c) for c in d.value.reset_index().columns]:
            if not config.get(c, {}).get("hidden") and c != "index":
                out.append(config.get(c, {}).get("label", c))
    return [h for h in out if re.search(r"[A-Za-z]{3,}", re.sub(r"\b(ECE|F1)\b", "", h))]


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
        if page in (PAGES[4], PAGES[5], PAGES[7]):
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
        assert not [w for w in at.slider if "部门数" in w.label], page
        assert len(at.dataframe[0].value) == 3, page


def test_overview(store):
    engine, info = store
    at = render(PAGES[0])
    m = metrics(at)
    assert m["工单"] == f"{info['tickets'] + info['held_out'] + 1:,}"
    assert m["模型版本"] == "2"
    assert "北京时间" in at.caption[0].value


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
    assert metrics(at)["宏平均 F1"] == f"{rep['macro']['f1']:.3f}"
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
    held = at.dataframe[1].value  # the held-out tickets of the top pair, with their text from the store
    assert len(held) == top["tickets"]
    with Session(engine) as s:
        for tid, text in zip(held["ticket"], held["text"]):
            assert s.get(Ticket, tid).text == text
            assert s.exec(select(Label.department).where(Label.ticket_id == tid)).one() == top["true"]
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    shown = spec["encoding"]["y"]["sort"]
    assert len(shown) == 20  # only the most-confused departments, so the labels can be read
    errors = cm.sum(axis=1) + cm.sum(axis=0) - 2 * np.diag(cm)
    assert catalog.name(labels[int(errors.argmax())]) in shown
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
    day = queries.window(1, now(), "Asia/Shanghai")[0]  # today in Beijing, not in UTC
    with Session(engine) as s:
        conf = list(s.exec(select(Prediction.confidence).where(Prediction.created_at >= day)))
    assert m["分派条数"] == f"{len(conf):,}"
    assert m["低于阈值 0.6"] == f"{sum(c < 0.6 for c in conf):,}"
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
    assert m["当前待处理"] == f"{pending:,}"
    k = sum(a == b for a, b in audits)
    assert m["一致率（全部抽检）"] == f"{k / len(audits):.1%}"
    lo, hi = queries.wilson(k, len(audits))
    assert any(f"{lo:.1%} - {hi:.1%}" in c.value for c in at.caption)
    assert charts(at) == 4  # queue size, decisions, no-fit rate, audit
    assert set(at.dataframe[0].value["reviewer"]) == {*seed.REVIEWERS, seed.LEAD}


def test_drift_page(store):
    engine, _ = store
    at = render(PAGES[5])
    jsd = float(metrics(at)["JS 散度"])
    assert 0.005 < jsd < 1  # the seeded recent days lean towards three departments
    mix = at.dataframe[0].value
    assert mix["recent_share"].sum() == pytest.approx(100) and mix["training_share"].sum() == pytest.approx(100)
    assert charts(at) == 2


def test_grid_headers_are_chinese(store):
    """Every grid's header is Chinese (short, with help on hover), whatever the column is called in the data."""
    for page in PAGES:
        assert headers(render(page)) == [], page


def test_history_page(store):
    at = render(PAGES[6])
    m = metrics(at)
    assert (m["版本数"], m["上线次数"], m["回滚次数"]) == ("2", "3", "1")
    assert "在用模型：**baseline-20260101-000001-000**" in [x.value for x in at.markdown]
    events = at.table[0].value
    versions = next(h.proto.body for h in at.get("html") if "class='versions'" in h.proto.body)  # newest first
    rows = versions.split("<tbody>")[1].split("</tr>")[:-1]
    assert [r.split("<b>")[1].split("</b>")[0] for r in rows] == ["baseline-20260101-000001-000",
                                                                  "baseline-20260101-000000-000"]
    assert "基线（baseline） · 在用 · 训练 " in rows[0] and " · 已退役 · " in rows[1]
    assert list(events["决策"]) == ["上线", "回滚", "上线", "未上线（保留为候选）", "上线"]
    assert "分派有误" in events.iloc[1]["理由"]
    assert any("回滚" in w.value for w in at.warning)


# --- the aggregations against brute force ---------------------------------------------------

def test_returns_page_and_its_counts(store):
    from router import returns
    from router.store import TicketReturn

    engine, info = store
    assert info["returns"]["returns"] > 50 and info["returns"]["open"] > 0 and info["returns"]["chains"] > 0
    assert returns.violations(engine) == []
    at = render(PAGES[7])
    m = metrics(at)
    assert set(m) == {"一次派单准确率", "退单率", "分派工单", "待审核异议"} and charts(at) == 2
    assert int(m["待审核异议"].replace(",", "")) == info["returns"]["open"]
    fd = queries.first_dispatch(engine, now() - timedelta(days=400), "Asia/Shanghai")
    with Session(engine) as s:  # the slow way: tickets ever returned, over their first routing
        rets = set(s.exec(select(TicketReturn.ticket_id)))
        firsts = {}
        for p in s.exec(select(Prediction).order_by(Prediction.id)):
            firsts.setdefault(p.ticket_id, p)
    dispatched = [p for p in firsts.values() if p.department != "none"]
    assert fd["dispatched"].sum() == len(dispatched)
    assert fd["returned"].sum() == sum(p.ticket_id in rets for p in dispatched)
    assert fd["right"].sum() <= fd["dispatched"].sum() - fd["returned"].sum()
    chains = queries.redispatch_chains(engine)
    assert len(chains) == info["returns"]["chains"] and (chains["returns"] >= 2).all()


def test_queue_size_walks_back_to_the_true_open_count(store):
    check_queue_size(store[0])


def check_queue_size(engine):
    end = now()
    start, _ = queries.window(20, end, "Asia/Shanghai")
    size = queries.queue_size(engine, start, end, "Asia/Shanghai")
    with Session(engine) as s:
        items = s.exec(select(QueueItem)).all()
    assert len(size) == 20 and size["day"].iloc[-1].date() == queries.local(end, "Asia/Shanghai").date()
    for row in size.itertuples():  # the end of each Beijing day, in the store's naive UTC
        eod = row.day.to_pydatetime().replace(tzinfo=end.tzinfo) + timedelta(days=1) - timedelta(hours=8)
        truth = sum(q.created_at < eod and (q.status == "pending" or q.done_at >= eod) for q in items)
        assert row.open == truth, row.day


def test_wilson_and_js_divergence():
    lo, hi = queries.wilson(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)  # Wilson 1927 / Newcombe 1998
    assert queries.wilson(0, 0) == (0.0, 1.0)
    a = pd.Series({"x": 5, "y": 5})
    assert queries.js_divergence(a, a * 3) == pytest.approx(0)
    assert queries.js_divergence(pd.Series({"x": 1}), pd.Series({"y": 4})) == pytest.approx(1)


def test_pages_on_postgresql(tmp_path, monkeypatch, catalog, pg_url):
    """The same aggregations on PostgreSQL (date(), CAST/floor, booleans)."""
    url = pg_url

    monkeypatch.setenv("ROUTER_PATHS__HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ROUTER_STORE__URL", url)
    monkeypatch.delenv("ROUTER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    engine = empty_store(url)
    seed.demo(engine, config.load(), catalog, n=1500)
    check_queue_size(engine)  # Beijing days on PostgreSQL too
    for page in PAGES:
        at = render(page)
        infos = [i.value for i in at.info if "没有工单被模型判为或被标注员标为无合适部门" not in i.value]  # none in the demo
        assert not infos or page == PAGES[2], infos
    hist = queries.confidence_histogram(engine, now() - timedelta(days=400), now() + timedelta(days=1))
    with Session(engine) as s:
        conf = list(s.exec(select(Prediction.confidence)))
    assert hist["tickets"].tolist() == np.histogram(conf, bins=20, range=(0, 1))[0].tolist()


def test_f1_page_unchanged_model_shows_no_arrows(cfg, engine, catalog):
    """A retrained version with the same scores: deltas without arrows, a readable change axis."""
    from streamlit.proto.Metric_pb2 import Metric

    from router import registry
    from router.store import ModelVersion
    from training import evaluate

    rng = np.random.default_rng(3)
    ids = catalog.ids[:6]
    rep = evaluate.report(rng.dirichlet(np.ones(6), 60), [ids[i % 6] for i in range(60)], ids, catalog)
    for v in ("v1", "v2"):
        folder = config.home(cfg) / "models" / v
        evaluate.save(rep, folder, v)
        registry.register(engine, ModelVersion(version=v, kind="baseline", path=str(folder),
                                               metrics=evaluate.summary(rep)))
        registry.promote(engine, v, "test")
    at = render(PAGES[1])
    for m in at.metric:
        assert m.value != "-" and m.proto.delta == "+0.000", m.label
        assert m.proto.direction == Metric.MetricDirection.NONE, m.label
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    axis = spec["hconcat"][1]["encoding"]["x"]
    assert axis["scale"]["domain"] == [-0.05, 0.05] and axis["axis"]["format"] == "+.2f"


def test_queue_days_are_beijing_days_and_the_chart_starts_with_the_queue(engine):
    evening = (now() - timedelta(days=2)).replace(hour=17, minute=30)  # 01:30 the next day in Beijing
    with Session(engine) as s:
        s.add_all([Ticket(id=f"t{i}", text="路灯不亮") for i in range(2)])
        s.flush()
        s.add_all([QueueItem(ticket_id=f"t{i}", status="pending", created_at=t)
                   for i, t in enumerate((evening, now()))])
        s.commit()
    start, end = queries.window(3, evening + timedelta(hours=1), "Asia/Shanghai")
    size = queries.queue_size(engine, start, end, "Asia/Shanghai")
    day = evening.date() + timedelta(days=1)
    assert [d.date() for d in size["day"]] == [day - timedelta(days=2), day - timedelta(days=1), day]
    assert size["added"].tolist() == [0, 0, 1]
    start, end = queries.window(3, evening + timedelta(hours=1))
    assert queries.queue_size(engine, start, end)["day"].iloc[-1].date() == evening.date()  # UTC days
    at = render(PAGES[4])
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    days = spec["layer"][0]["encoding"]["x"]["sort"]
    first = queries.local(evening, "Asia/Shanghai").date()
    assert days[0] == f"{first:%m-%d}"  # not weeks of zeros before the first queued ticket
    assert days[-1] == f"{queries.local(now(), 'Asia/Shanghai'):%m-%d}"


def test_model_history_reasons_and_captions_are_chinese(cfg, engine, catalog):
    seed.demo(engine, cfg, catalog, n=300)
    from router import registry
    from router.store import Action
    cur = registry.current(engine).version
    registry.record(engine, cur, Action.kept_candidate, "gate: macro-F1 0.8000 -> 0.7900 (-0.0100): drops more "
                    "than the allowed 0.005")
    registry.record(engine, cur, Action.promoted, "gate: first trained model")
    at = render("views/6_Model_history.py")
    shown = " ".join(str(v) for t in at.table for v in t.value.to_numpy().ravel())
    assert "首个训练的模型" in shown and "宏平均 F1 0.8000 → 0.7900" in shown and "下降超过允许的 0.005" in shown
    assert "first trained model" not in shown and "gate:" not in shown
    at = render("views/3_Calibration.py")
    assert not any("classify.threshold" in c.value for c in at.caption)


def specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def test_no_fit_chart_axes_are_dates_and_short_percentages(store):
    """The seeded days have no no-fit ticket: the rates are all zero, drawn on a 0-1% axis (not a flat one
    with a single "0.0%"), and a note says nothing was flagged."""
    engine, _ = store
    assert queries.nofit_daily(engine, now() - timedelta(days=30))[["flagged", "no_fit_labels"]].sum().sum() == 0
    at = render(PAGES[4])
    share = [sp for sp in specs(at) if '"share"' in json.dumps(sp)]
    assert share, "the no-fit rate chart"
    enc = json.dumps(share[0])
    assert '"format": "%m-%d"' in enc and '"format": ".1%"' in enc
    assert share[0]["encoding"]["y"]["scale"]["domain"] == [0, 0.01]
    assert any("没有工单被模型判为或被标注员标为无合适部门" in i.value for i in at.info)


def test_every_chart_titles_its_vertical_axis_horizontally(store):
    """Chinese turned 90 degrees is hard to read: every chart on every page draws its y-axis title
    horizontally, above the axis (ui.chart's configuration)."""
    n = 0
    for page in PAGES:
        for sp in specs(render(page)):
            assert sp["config"]["axisY"] == {**sp["config"]["axisY"], **ui.Y_TITLE, "titleAngle": 0}, page
            n += 1
    assert n >= 10  # the seeded pages draw 15


def test_incident_counts_sort_as_numbers(engine):
    """The incidents' grids hold the day's and the running ticket counts as two numeric columns (当日, 累计),
    so they sort 10 after 9 (a "10 / 12" text column sorted "10" before "9")."""
    from datetime import datetime, timezone

    from router.store import Incident

    t0 = datetime(2026, 11, 20, 1, tzinfo=timezone.utc)
    with Session(engine) as s:
        for i, (today, size) in enumerate([(9, 9), (10, 12), (2, 30)], start=1):
            s.add(Incident(id=i, place=f"地点{i}", size=size, started_at=t0, last_at=t0 + timedelta(hours=today)))
            s.flush()
            s.add_all([Ticket(id=f"i{i}-{k}", text="停水", incident_id=i, received_at=t0 + timedelta(hours=k))
                       for k in range(today)])
        s.commit()
    at = render("views/9_Incidents.py")
    grid = at.dataframe[0]
    config = json.loads(grid.proto.columns)
    assert [config[c]["label"] for c in ("today", "size")] == ["当日", "累计"]
    assert list(grid.value["today"]) == [10, 9, 2] and list(grid.value["size"]) == [12, 9, 30]
    assert all(pd.api.types.is_integer_dtype(grid.value[c]) for c in ("today", "size"))


def test_a_page_that_fails_says_so_in_chinese(engine):
    """A broken store (the incidents' table gone): the page shows webui.CRASH, not Streamlit's exception."""
    with engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE incident RENAME TO incident_gone")
    at = render("views/9_Incidents.py", crash=True)
    assert [e.value for e in at.error] == [webui.CRASH]
