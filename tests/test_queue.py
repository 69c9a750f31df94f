"""Query strategies and how `enqueue` fills the queue: threshold, near-duplicates, audits, budget."""

from __future__ import annotations

import numpy as np
import pytest
from sqlmodel import Session, select

from router.classifier import top_k
from router.routing import store_batch
from router.io import TicketIn
from router.order import enqueue
from router.queue import Policy, policy
from router.strategies import ClassBalanced, Diverse, Entropy, LeastConfidence, Margin, featurize, make_strategy
from router.store import Prediction, QueueItem, Ticket

P = np.array([
    [0.90, 0.05, 0.05],   # confident
    [0.40, 0.35, 0.25],   # torn between two, low top
    [0.50, 0.48, 0.02],   # torn between two, smallest margin
    [0.34, 0.33, 0.33],   # no idea at all
])


def test_uncertainty_strategies_rank_as_defined():
    assert list(LeastConfidence().query(P, 4)) == [3, 1, 2, 0]
    assert list(Margin().query(P, 2)) == [3, 2]
    assert list(Entropy().query(P, 4)) == [3, 1, 2, 0]
    assert Entropy().scores(P)[3] == pytest.approx(1.0, abs=1e-3)
    assert Margin().scores(np.array([[0.5, 0.5]]))[0] == pytest.approx(1.0)


BURST = ["和平路12号小区门口水管爆裂，路面全是水", "和平路12号小区门口水管爆裂，路面都是水",
         "和平路12号小区门口的水管爆裂了，路面全是水"]
OTHER = ["夜里工地施工噪音太大", "公交车到站不停", "菜市场卫生太差"]


def test_diverse_spreads_picks_across_near_duplicates():
    texts = BURST + OTHER
    proba = np.array([[0.34, 0.33, 0.33]] * 3 + [[0.40, 0.35, 0.25], [0.45, 0.35, 0.2], [0.5, 0.3, 0.2]])
    assert set(Margin().query(proba, 3)) == {0, 1, 2}           # plain margin: the whole burst
    picks = Diverse(Margin(), similarity=0.7).query(proba, 3, features=featurize(texts))
    assert len(picks) == 3 and len(set(picks) & {0, 1, 2}) == 1   # one of the burst, two others
    dense = featurize(texts).toarray()   # any L2-normalised rows work (the AL benchmark uses LSA)
    assert sorted(Diverse(Margin(), similarity=0.7).query(proba, 3, features=dense)) == sorted(picks)
    sim = (featurize(BURST[:2]) @ featurize(BURST[:2]).T).toarray()
    assert sim[0, 1] > 0.8 and (featurize(BURST[:1]) @ featurize(OTHER).T).toarray().max() < 0.3


def test_make_strategy_names_the_unknown():
    assert isinstance(make_strategy("entropy"), Entropy)
    with pytest.raises(ValueError, match="unknown queue strategy 'nope'"):
        make_strategy("nope")


def test_every_configurable_strategy_is_built():
    from router import config
    from router.strategies import STRATEGIES

    assert set(STRATEGIES) == set(config.Strategy)


def add_batch(engine, texts, proba, pol, prefix="t"):
    ids = [f"{prefix}{i}" for i in range(len(texts))]
    with Session(engine) as s:
        s.add_all(Ticket(id=t, text=x) for t, x in zip(ids, texts))
        s.flush()
        preds = [Prediction(ticket_id=t, model_version="v", department="police", confidence=float(p.max()),
                            topk=[]) for t, p in zip(ids, proba)]
        s.add_all(preds)
        s.flush()
        n = enqueue(s, ids, proba, [p.id for p in preds], pol=pol, texts=texts)
        s.commit()
    return len(n.low) - n.dropped


def queue(engine) -> dict[str, QueueItem]:
    with Session(engine) as s:
        return {q.ticket_id: q for q in s.exec(select(QueueItem))}


def test_enqueue_threshold_duplicates_and_audit(engine):
    texts = BURST + OTHER + ["天然气味道很重", "路灯不亮"]
    proba = np.array([[0.34, 0.33, 0.33]] * 3 + [[0.40, 0.35, 0.25], [0.45, 0.35, 0.2], [0.5, 0.3, 0.2]]
                     + [[0.95, 0.03, 0.02], [0.97, 0.02, 0.01]])
    pol = Policy(threshold=0.6, strategy="diverse", audit_rate=1.0, duplicate_similarity=0.7, seed=1)
    assert add_batch(engine, texts, proba, pol) == 6
    q = queue(engine)
    assert {t for t, x in q.items() if x.reason == "audit"} == {"t6", "t7"}   # confident: audits only
    low = {t: x.priority for t, x in q.items() if x.reason == "low_confidence"}
    assert len(low) == 6
    burst = sorted(low[t] for t in ("t0", "t1", "t2"))
    assert burst[2] == pytest.approx(Margin().scores(proba[:1])[0])        # one copy keeps its place
    assert burst[1] < min(low["t3"], low["t4"], low["t5"])                  # the copies go behind others
    # a later batch: a fourth copy of the burst is a duplicate of a waiting ticket
    add_batch(engine, [BURST[0] + "！"], np.array([[0.34, 0.33, 0.33]]), pol, prefix="u")
    assert queue(engine)["u0"].priority < low["t5"]


def test_no_audit_when_rate_is_zero(engine):
    add_batch(engine, ["a", "b"], np.array([[0.9, 0.1], [0.95, 0.05]]), Policy(audit_rate=0.0))
    assert queue(engine) == {}


def test_daily_budget_keeps_the_best_of_the_day(engine):
    pol = Policy(threshold=0.6, strategy="least_confidence", daily_budget=3, audit_rate=0.0)
    first = np.array([[0.55, 0.45], [0.5, 0.5], [0.58, 0.42], [0.52, 0.48]])   # 4 > budget 3
    assert add_batch(engine, ["甲", "乙", "丙", "丁"], first, pol, "a") == 3
    q = queue(engine)
    assert q["a2"].status == "over_budget"                                      # least uncertain dropped
    assert add_batch(engine, ["戊"], np.array([[0.51, 0.49]]), pol, "b") == 0   # one in, one out
    q = queue(engine)
    assert sorted(t for t, x in q.items() if x.status == "pending") == ["a1", "a3", "b0"]
    assert q["a0"].status == "over_budget"


def test_policy_reads_config_and_classify_still_queues(engine, cfg):
    pol = policy(cfg)   # [classify] threshold "auto": the version's own, passed by routing (0.6 without one)
    assert cfg.classify.threshold == "auto" and pol.threshold == 0.6 and pol.strategy == cfg.queue.strategy
    cfg.classify.threshold = 0.7
    assert policy(cfg).threshold == 0.7
    batch = [TicketIn(id=f"k{i}", text=t, line=i + 1) for i, t in enumerate(["噪音扰民", "井盖丢失", "路灯不亮"])]
    proba = np.array([[0.97, 0.02, 0.01], [0.4, 0.35, 0.25], [0.5, 0.3, 0.2]])
    tops = top_k(proba, ["police", "urban-mgmt", "housing"], 3)
    queued = store_batch(engine, batch, proba, tops, "v1", policy(cfg, threshold=0.6))
    assert len(queued.low) == 2
    low = {t for t, x in queue(engine).items() if x.reason == "low_confidence"}
    assert low == {"k1", "k2"}


def test_class_balanced_caps_picks_per_predicted_department():
    # 6 uncertain tickets all predicted "A" (column 0), 3 a bit less uncertain predicted "B"/"C"
    proba = np.array([[0.50, 0.49, 0.01]] * 6 + [[0.30, 0.45, 0.25], [0.30, 0.25, 0.45], [0.25, 0.40, 0.35]])
    assert set(Margin().query(proba, 3)) <= set(range(6))
    picks = ClassBalanced(Margin(), share=1.0).query(proba, 3)  # cap: 1 per department
    assert sorted(proba[picks].argmax(axis=1)) == [0, 1, 2]
    assert len(ClassBalanced(Margin(), share=1.0).query(proba[:6], 4)) == 4  # topped up from the rest


def test_density_prefers_typical_tickets_over_outliers():
    texts = ["火星人占领了我家的阳台", "路灯不亮了", "路灯坏了不亮", "小区路灯不亮", "路灯晚上不亮"]
    proba = np.array([[0.5, 0.5]] * 5)   # equally uncertain: the first comes first without density
    f = featurize(texts)
    assert Diverse(Margin(), similarity=0.99).query(proba, 1, features=f)[0] == 0
    assert Diverse(Margin(), density=1.0, similarity=0.99).query(proba, 1, features=f)[0] != 0


def test_near_duplicates_are_told_by_the_measure_linking_uses(engine):
    """Petition-style tickets share greetings and set phrases: by the raw cosine two different matters read as
    near-duplicates, by the IDF-weighted cosine incident linking uses (router/similarity.py) they do not; a
    repeat of a waiting ticket still does."""
    import json
    from pathlib import Path

    from router.classifier import model_input

    rows = [json.loads(x) for x in (Path(__file__).parent.parent / "data/realistic/test.jsonl").open(encoding="utf-8")]
    texts = [model_input(r["text"], r.get("title")) for r in rows[:300]]
    raw = (featurize(texts) @ featurize(texts).T).toarray()
    a, b = next((i, j) for i in range(300) for j in range(i + 1, 300)
                if raw[i, j] >= 0.85 and rows[i]["label"] != rows[j]["label"])
    with Session(engine) as s:   # the stored tickets the n-grams' weights are counted over
        s.add_all(Ticket(id=f"r{i}", text=t) for i, t in enumerate(texts) if i not in (a, b))
        s.commit()
    pol = Policy(threshold=0.6, strategy="diverse", audit_rate=0.0, duplicate_similarity=0.8, seed=1)
    low = np.array([[0.4, 0.35, 0.25]])
    add_batch(engine, [texts[a]], low, pol, prefix="a")                                  # waits
    add_batch(engine, [texts[b], texts[a] + "请尽快处理！"], np.vstack([low, low]), pol, prefix="b")
    q, score = queue(engine), Margin().scores(low)[0]
    assert q["b0"].priority == pytest.approx(score)          # another matter: keeps its place
    assert q["b1"].priority == pytest.approx(score * pol.duplicate_discount)   # a repeat goes behind
