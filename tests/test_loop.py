"""The loop as a whole (bench/loop_sim.py, the same code as the benchmark): its invariants on a
short run, and the joints that leaked — re-routing decided tickets, audits said not queued,
the title ignored, the configured strategy not run."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from bench import loop_sim
from router.store import QueueItem


@pytest.fixture
def centre(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for k in ("ROUTER_CONFIG", "ROUTER_PATHS__HOME", "ROUTER_STORE__URL"):
        monkeypatch.delenv(k, raising=False)

    def make(strategy="diverse", days=2, **kw):
        c = loop_sim.Centre(loop_sim.sample(days), tmp_path / strategy, strategy, seed=0, **kw)
        c.cli("import", str(loop_sim._write(tmp_path / "h.jsonl", c.setup.history, keep_label=True)))
        c.cli("train")
        return c
    return make


def pending(c) -> dict[str, QueueItem]:
    with Session(c.engine) as s:
        return {q.ticket_id: q for q in s.exec(select(QueueItem).where(QueueItem.status == "pending"))}


def test_invariants_hold_over_a_short_loop(tmp_path, monkeypatch):
    """Three days: classify, reviews, retrain; each day's file routed again, a rollback and a
    promotion with re-routing; then a second run of the demo's steps. `check` raises on any break."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROUTER_CONFIG", raising=False)
    setup = loop_sim.sample(days=3)
    res = loop_sim.simulate(setup, "diverse", 0, budget=30, folder=tmp_path / "c", days=3, stress=True)
    days = res["days"]
    assert [d["day"] for d in days] == [0, 1, 2, 3]
    assert all(d["reviewed"] == 30 for d in days[1:])
    assert days[-1]["labels"] == len(setup.history) + 90
    assert all(0 < d["auto_share"] < 1 and d["run_routed"] == d["tickets"] for d in days[1:])
    # where each day's time went, within the day's seconds
    assert all(set(d["phases"]) == {"classify", "review", "retrain", "evaluate"} for d in days[1:])
    assert all(0 <= sum(d["phases"].values()) <= d["seconds"] - p["seconds"] + 0.5 for p, d in zip(days, days[1:]))
    # a second run of the demo: import the history again, train, route the same day again
    c = loop_sim.Centre(setup, tmp_path / "c", "diverse", 0)
    c.cli("import", str(tmp_path / "c" / "history.jsonl"))
    c.cli("train")
    c.classify(setup.days[0], "demo-again")     # check_run and check raise on any broken invariant


def test_rerouting_after_a_new_model_never_requeues_decided_tickets(centre):
    from labeling import actions
    from router import registry

    c = centre("margin")
    day = c.setup.days[0]
    c.classify(day, "d1")
    decided = []
    for _ in range(15):
        item = actions.next_item(c.engine, "a")
        actions.decide(c.engine, "a", item.queue_id, c.setup.truth[item.ticket_id])
        decided.append(item.ticket_id)
    waiting = set(pending(c))
    c.cli("train")                                  # a second version, promoted below
    new = max(registry.versions(c.engine), key=lambda v: v.created_at).version
    c.cli("models", "promote", new)
    c.classify(day, "d1-again")
    assert not set(decided) & set(pending(c))       # decided tickets stay out
    c.cli("models", "rollback")
    c.classify(day, "d1-rollback")
    q = pending(c)
    assert not set(decided) & set(q) and waiting <= set(q) | set(decided)
    loop_sim.check(c.engine, "after a rollback")   # at most one open item per ticket, no duplicate prediction


def test_audited_tickets_say_queued(centre, tmp_path):
    c = centre("margin")
    c.config.write_text(c.config.read_text().replace("[queue]\n", "[queue]\naudit_rate = 1.0\n"))
    rows, counts = c.classify(c.setup.days[0], "d1")
    confident = [r for r in rows if r["confidence"] >= c.threshold]
    assert confident and counts["audits"] == len(confident)
    assert all(r["queued"] for r in rows)           # low confidence or audited: every row is queued


def test_models_read_the_title(tmp_path, centre):
    """Tickets whose text says nothing ("如题") are told apart by their titles alone."""
    from router import registry
    from router.classifier import model_input

    c = centre("margin")
    titles = {"housing": "物业乱收费", "water-supply": "小区停水", "traffic-police": "路边违停"}
    rows = [{"id": f"x{d}{i}", "text": "如题，请尽快处理。", "title": t, "label": d}
            for d, t in titles.items() for i in range(12)]
    c.cli("import", str(loop_sim._write(tmp_path / "titles.jsonl", rows, keep_label=True)))
    c.cli("train")
    new = max(registry.versions(c.engine), key=lambda v: v.created_at).version
    c.cli("models", "promote", new)
    out, _ = c.classify([{"id": f"y{d}", "text": "如题，请尽快处理。", "title": t} for d, t in titles.items()], "t")
    assert [r["department"] for r in out] == list(titles)
    assert model_input("停水三天", "小区停水") != model_input("停水三天", None)


def test_the_queue_runs_the_configured_strategy(centre):
    """The waiting tickets are ordered by the strategy the config names: `balanced` differs from
    `margin`, and `diverse` is exactly the benchmarks' Diverse(Margin(), density=2, pool=8)."""
    from router.strategies import make_strategy

    orders = {}
    for name in ("margin", "balanced", "diverse"):
        c = centre(name, window=20)
        c.classify(c.setup.days[0] + c.setup.days[1], "d")
        q = pending(c)
        orders[name] = [t for t, _ in sorted(q.items(), key=lambda kv: -kv[1].priority)][:20]
        if name == "margin":
            with Session(c.engine) as s:
                from router.store import Prediction
                tops = {t: s.get(Prediction, q[t].prediction_id).topk for t in q}
            gap = {t: tops[t][0][1] - tops[t][1][1] for t in q}
            assert orders[name] == sorted(q, key=lambda t: gap[t])[:20]
    assert orders["balanced"] != orders["margin"] and orders["diverse"] != orders["margin"]
    assert repr(make_strategy("diverse")).startswith("Diverse(Margin(), similarity=0.8, pool=8, density=2.0")


def test_returns_and_disputes_in_the_loop(tmp_path, monkeypatch):
    """Departments return every wrongly auto-routed ticket; the lead decides the disputes within the
    budget (every 5th undone and checked); the returns' invariants are checked after every step."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROUTER_CONFIG", raising=False)
    setup = loop_sim.sample(days=3)
    res = loop_sim.simulate(setup, "margin", 0, budget=20, folder=tmp_path / "c", days=3, return_rate=1.0)
    days = res["days"][1:]
    assert days[0]["returns"] == 0 and sum(d["returns"] for d in days) > 0
    assert sum(d["disputes"] for d in days) > 0 and all(d["reviewed"] == 20 for d in days)
    assert all(0 <= d["first_dispatch_accuracy"] <= 1 for d in days)


def test_the_loop_on_the_llm_and_the_ensemble(tmp_path, monkeypatch, catalog):
    """bench/loop_sim.py on the kinds the GPU runs use (the tiny random LLM on the CPU): a day of the loop
    with the LLM alone and with the ensemble. The ensemble's default plain mean records both members
    each day; its LLM member is at chance, and once tempered on the calibration slice it does not pull
    the mean below the baseline member."""
    from tests.conftest import read_jsonl
    from tests.tiny_think import tiny_config, tiny_model

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROUTER_CONFIG", raising=False)
    setup = loop_sim.sample(days=1)
    texts = [d.name + "：" + d.duties for d in catalog.departments] + [r["text"] for r in setup.history[:200]]
    extra = tiny_config(tiny_model(tmp_path / "tiny", texts))
    runs = {k: loop_sim.simulate(setup, "diverse", 0, budget=30, folder=tmp_path / k, days=1, kind=k, extra=extra,
                                 log=tmp_path / f"{k}.jsonl")["days"] for k in ("llm", "ensemble")}
    for k, days in runs.items():
        assert [d["day"] for d in days] == [0, 1] and days[1]["reviewed"] == 30, k
        assert days[1]["labels"] == len(setup.history) + 30 and days[1]["version"].startswith(k), k
        assert [r["day"] for r in read_jsonl(tmp_path / f"{k}.jsonl")] == [0, 1], k
    assert "members" not in runs["llm"][1]
    for d in runs["ensemble"]:
        assert d["weights"] == {"llm": 0.5, "baseline": 0.5}
        m = d["members"]
        assert m["llm"] < 0.15 < m["baseline"] and d["accuracy"] >= m["baseline"] - 0.02, d
