"""The promotion gate: rules on report dicts, and a worse real model refused end to end."""

from __future__ import annotations

import random

import pytest
from sqlmodel import Session, select

from router import registry
from router.config import Gate
from router.store import ModelEvent
from tests.conftest import SAMPLE
from training import gate
from training.data import from_file
from training.train import train


@pytest.fixture
def cfg(home):
    """A lighter baseline (fewer features, stronger regularisation) so CPU tests stay quick."""
    from router import config

    c = config.load()
    c.baseline = c.baseline.model_copy(update=dict(C=2.0, ngram_max=3, max_features=30000))
    return c


def rep(macro: float, per: dict) -> dict:
    return {"macro": {"f1": macro}, "per_department": {d: {"f1": f, "support": s} for d, (f, s) in per.items()}}


LIMITS = Gate(max_macro_f1_drop=0.01, max_department_f1_drop=0.05, min_support=10)


def test_promotes_when_nothing_drops():
    d = gate.decide(rep(0.80, {"a": (0.8, 20), "b": (0.9, 20)}), rep(0.79, {"a": (0.8, 20), "b": (0.88, 20)}), LIMITS)
    assert d.promote and "0.7900 -> 0.8000" in d.reason


def test_refuses_a_macro_f1_drop_beyond_the_margin():
    assert gate.decide(rep(0.795, {}), rep(0.80, {}), LIMITS).promote          # within 0.01
    d = gate.decide(rep(0.78, {}), rep(0.80, {}), LIMITS)
    assert not d.promote and "drops more than" in d.reason


def test_refuses_a_department_drop_only_with_enough_support():
    cur = rep(0.80, {"a": (0.9, 30), "rare": (0.9, 3)})
    small = gate.decide(rep(0.80, {"a": (0.9, 30), "rare": (0.2, 3)}), cur, LIMITS)
    assert small.promote                                                        # 3 tickets: too few to judge
    big = gate.decide(rep(0.80, {"a": (0.8, 30), "rare": (0.9, 3)}), cur, LIMITS)
    assert not big.promote and big.drops == {"a": -0.1} and "a -0.100" in big.reason
    gone = gate.decide(rep(0.80, {"rare": (0.9, 3)}), cur, LIMITS)          # department never predicted
    assert not gone.promote and gone.drops == {"a": -0.9}


@pytest.fixture(scope="module")
def sample(catalog):
    data, _ = from_file(str(SAMPLE / "history.jsonl"), catalog)
    return data.subset(range(1200))


def test_a_worse_model_is_refused_and_kept_as_candidate(engine, cfg, catalog, sample):
    good = train(engine, cfg, catalog, sample, gate=True)
    assert good.promoted and registry.current(engine).version == good.version.version
    # The same tickets with 60% of the labels scrambled: a clearly worse model.
    rng = random.Random(0)
    noisy = sample.subset(range(len(sample)))
    tr_ids = set(noisy.ids)
    depts = sorted(set(noisy.labels))
    noisy.labels = [rng.choice(depts) if rng.random() < 0.6 else y for y in noisy.labels]
    # the held-out tickets keep their true labels, so both models are judged on the truth
    from training.data import split

    _, te = split(sample, cfg.train.test_size, cfg.train.seed)
    for i in te:
        noisy.labels[i] = sample.labels[i]
    assert tr_ids == set(sample.ids)
    bad = train(engine, cfg, catalog, noisy, gate=True)
    assert not bad.promoted and not bad.decision.promote
    assert bad.report["macro"]["f1"] < bad.current_report["macro"]["f1"] - 0.05
    assert registry.current(engine).version == good.version.version           # nothing switched
    assert registry.get(engine, bad.version.version).status == "candidate"
    with Session(engine) as s:
        ev = s.exec(select(ModelEvent).where(ModelEvent.version == bad.version.version)).one()
    assert ev.action == "kept_candidate" and ev.reason.startswith("gate: macro-F1")
    # the candidate's report names the current model, scored on the same tickets
    assert bad.report["current"]["version"] == good.version.version
    assert bad.report["current"]["n"] == bad.report["n"]


def test_the_gate_never_scores_a_model_on_tickets_it_trained_on(engine, cfg, catalog, sample):
    """The registered version is refit on every label; the gate scores it through its held-out fit,
    and only on held-out tickets that fit never saw, even when the held-out split itself moves."""
    from pathlib import Path

    import numpy as np

    from router import classifier
    from training.data import split

    first = train(engine, cfg, catalog, sample.subset(range(1000)), gate=True)
    folder = Path(first.version.path)
    seen = set((folder / "trained_ids.txt").read_text().splitlines())
    _, te = split(sample.subset(range(1000)), cfg.train.test_size, cfg.train.seed)
    assert first.report["fits"]["registered"]["refit_on_all_labels"]
    assert len(seen) == 1000 - len(te) and not seen & {sample.ids[i] for i in te}
    # more labels, same split: held out forever, so no held-out ticket was ever seen by the first fit
    second = train(engine, cfg, catalog, sample, gate=True)
    cur = second.report["current"]
    assert cur["version"] == first.version.version and cur["seen_left_out"] == 0 and cur["n"] == second.report["n"]
    # another seed moves the split: the tickets the first held-out fit trained on are left out
    cfg.train.seed = 7
    third = train(engine, cfg, catalog, sample, gate=True)
    test = sample.subset(split(sample, cfg.train.test_size, 7)[1])
    cur = third.report["current"]
    # (the current version is the first or the second, whichever the gate kept)
    current = registry.get(engine, cur["version"])
    seen = set((Path(current.path) / "trained_ids.txt").read_text().splitlines())
    scored = [i for i, t in enumerate(test.ids) if t not in seen]
    assert 0 < len(scored) < len(test) and cur["seen_left_out"] == len(test) - len(scored) == third.report["n"] - cur["n"]
    # what was scored is the held-out fit (not the refit that routes), on exactly those tickets
    held = classifier.load(Path(current.path) / "held_out", cfg)
    assert held.n_fit < classifier.load(current.path, cfg).n_fit
    pred = held.predict([test.texts[i] for i in scored])
    acc = float(np.mean(pred == np.array([test.labels[i] for i in scored])))
    assert cur["accuracy"] == pytest.approx(acc, abs=0.02)     # routing (no-fit decisions) aside, the same model


def test_a_wrong_gate_setting_is_an_error():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="max_f1_drop"):
        Gate(max_f1_drop=0.1)
