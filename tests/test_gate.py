"""The promotion gate: rules on report dicts, and a worse real model refused end to end."""

from __future__ import annotations

import random

import numpy as np
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


def judge(truth: list[str], new: list[str], old: list[str], limits: Gate) -> gate.Decision:
    """`decide` on two models' routes of the same held-out tickets (`none`: no-fit), through the
    real report, with those routes paired for the bootstrap."""
    from training.evaluate import report

    def rep_of(pred):
        classes = sorted(set(truth) | set(new) | set(old))
        return report(np.eye(len(classes))[[classes.index(p) for p in pred]], truth, classes, y_pred=pred)
    return gate.decide(rep_of(new), rep_of(old), limits, (truth, new, old))


# 11 no-fit held-out tickets among 20 departments of 15: the nightly loop's scale
TRUTH = ["none"] * 11 + [f"d{k}" for k in range(20) for _ in range(15)]


@pytest.mark.parametrize("lost", ["recall", "precision"])
def test_one_no_fit_ticket_out_of_11_is_noise(lost):
    """One ticket moves no-fit recall (1.000 -> 0.909) or precision (1.000 -> 0.917) by more than
    max_nofit_drop; the paired bootstrap puts that down to chance, as for macro-F1."""
    new = list(TRUTH)
    if lost == "recall":
        new[0] = "d3"          # a no-fit ticket routed to a department
    else:
        new[11] = "none"       # a d0 ticket called no-fit
    d = judge(TRUTH, new, TRUTH, Gate())
    assert d.promote and f"within noise: no-fit {lost} 1.000" in d.reason and "90% bootstrap bound +0.000" in d.reason
    # confidence 0: the plain comparison, which refuses
    plain = judge(TRUTH, new, TRUTH, Gate(confidence=0))
    assert not plain.promote and f"no-fit {lost} 1.000" in plain.reason and "bootstrap" not in plain.reason


def test_a_model_clearly_worse_at_no_fit_is_still_refused():
    new = list(TRUTH)
    new[:6] = ["d0", "d1", "d2", "d3", "d4", "d5"]       # 6 of the 11 no-fit tickets lost
    d = judge(TRUTH, new, TRUTH, Gate(max_macro_f1_drop=0.05))  # (macro-F1 alone would refuse it too)
    assert not d.promote and "no-fit recall 1.000 -> 0.455 (-0.545; 90% bootstrap bound" in d.reason
    assert "on 11 no-fit held-out tickets" in d.reason


def test_one_ticket_of_a_department_of_10_is_noise_half_of_them_is_not():
    truth = [f"d{k}" for k in range(20) for _ in range(10)]
    one = list(truth)
    one[0] = "d1"                                         # d0: F1 1.000 -> 0.947
    d = judge(truth, one, truth, Gate())
    assert d.promote and "within noise: d0 F1 1.000 -> 0.947" in d.reason
    assert not judge(truth, one, truth, Gate(confidence=0)).promote
    half = list(truth)
    half[:5] = ["d1", "d2", "d3", "d4", "d5"]              # d0: half its tickets lost
    d = judge(truth, half, truth, Gate(max_macro_f1_drop=0.05))
    assert not d.promote and list(d.drops) == ["d0"] and "d0 (-0.333; 90% bootstrap bound" in d.reason


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
