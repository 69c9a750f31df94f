"""Train a model version: data, fixed split, replay mix, fit, calibrate, evaluate, register, gate.

The same steps for every kind of model; the kind only decides which Classifier is built.

    held-out test  = split(data, test_size, seed)                (stable as data grows)
    calibration    = split(rest, calibration_size, seed + 1)     (fits the temperature and the no-fit threshold)
    fit            = replay.mix(the remainder, since the last version)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from router import calibration, classifier, config, nofit, parallel, registry
from router.calibration import ece
from router.catalog import Catalog
from router.store import ModelVersion, VersionStatus
from training import evaluate, gate as gate_mod, replay
from training.data import Labeled, split


@dataclass
class Trained:
    version: ModelVersion
    report: dict
    promoted: bool
    decision: gate_mod.Decision | None = None
    current_report: dict | None = None


def build(kind: str, cfg, catalog: Catalog, no_fit: bool = False) -> classifier.Classifier:
    """A new model over the catalogue's departments, plus the `none` class when `no_fit`
    (the training data has "no department fits" labels)."""
    classes = catalog.ids + ([nofit.NONE] if no_fit else [])
    return classifier.build(kind, cfg, classes, nofit.with_none(catalog) if no_fit else catalog)


def routed(proba, score, classes, labels, catalog, thr, enabled) -> dict:
    """The report of routing as `router classify` does it (no-fit decision included)."""
    pred = nofit.decide(proba, score, classes, thr, enabled)
    return evaluate.report(proba, labels, classes, catalog, pred, score)


def newest(test: Labeled, sources, n: int) -> list[int]:
    """Positions of the `n` newest held-out tickets whose label came from `sources`."""
    idx = [i for i, s in enumerate(test.sources) if s in sources]
    idx.sort(key=lambda i: (test.times[i] is not None, test.times[i] or 0), reverse=True)
    return sorted(idx[:n])


def _headline(rep: dict) -> dict:
    n = rep.get("nofit", {})
    return {"n": rep["n"], "accuracy": rep["accuracy"], "macro_f1": rep["macro"]["f1"],
            "weighted_f1": rep["weighted"]["f1"], "ece": rep["ece"],
            "nofit_precision": n.get("precision"), "nofit_recall": n.get("recall")}


def train(engine, cfg, catalog: Catalog, data: Labeled, kind: str = "baseline",
          snapshot: dict | None = None, console=None, since: datetime | None = None,
          gate: bool = False) -> Trained | None:
    """Fit, calibrate and evaluate a new version of `kind`, and register it as a candidate.

    since: labels newer than this are "new" (replay mixes them with older ones); None = all new.
    gate:  promote through the gate (training.gate); otherwise only the first model is promoted.
    """
    rt, gt = cfg.retrain, cfg.gate
    if len(data) < 2:
        raise ValueError("no labeled tickets to train on: import history with `router import` "
                         "or label tickets in the app")
    say = console.print if console is not None else (lambda *a, **k: None)
    tr, te = split(data, cfg.train.test_size, cfg.train.seed)
    train_set, test_set = data.subset(tr), data.subset(te)
    fit_idx, cal_idx = (split(train_set, rt.calibration_size, cfg.train.seed + 1)
                        if rt.calibration_size > 0 else (list(range(len(train_set))), []))
    fit_set, cal_set = train_set.subset(fit_idx), train_set.subset(cal_idx)
    fit_set = replay.mix(fit_set, since, rt.old_sample, rt.recent_weight, tuple(rt.weighted_sources),
                         cfg.train.seed, rt.known_wrong_weight)
    version = registry.new_version(kind)
    folder = config.home(cfg) / "models" / version
    say(f"{version}: fitting on {len(fit_set)} tickets, calibrating on {len(cal_set)}, testing on {len(test_set)}")
    clf = build(kind, cfg, catalog, nofit.NONE in fit_set.labels).fit(fit_set.texts, fit_set.labels)
    if not parallel.world().lead:
        return None  # DDP (training/nightly.py): ranks > 0 only train; rank 0 evaluates and registers
    classes = [str(c) for c in clf.classes_]
    pos = {c: i for i, c in enumerate(classes)}

    # Temperature on the calibration slice; the test set only reports ECE before / after.
    clf.temperature = 1.0
    temperature, cal_raw, cal_score = 1.0, None, None
    tuning = clf.tune(cal_set.texts, cal_set.labels) if len(cal_set) else {}
    if len(cal_set):
        cal_raw, cal_score = nofit.predict(clf, cal_set.texts)
        temperature = calibration.fit_proba(cal_raw, np.array([pos[y] for y in cal_set.labels]))
    raw, score = nofit.predict(clf, test_set.texts)
    proba = calibration.temper(raw, temperature)
    clf.temperature = temperature

    # No department fits: the threshold that catches target_recall of the calibration slice's no-fit tickets.
    st, fitted, n_cal_nofit = cfg.nofit, None, sum(y == nofit.NONE for y in cal_set.labels)
    if score is None:
        score = nofit.proba_score(proba, classes)
    if st.enabled and st.target_recall > 0 and n_cal_nofit >= max(1, st.min_examples):
        if cal_score is None:
            cal_score = nofit.proba_score(calibration.temper(cal_raw, temperature), classes)
        fitted = nofit.fit_threshold(cal_score, np.array(cal_set.labels) == nofit.NONE, st.target_recall)
    thr = nofit.threshold(st, fitted)
    rep = routed(proba, score, classes, test_set.labels, catalog, thr, st.enabled)
    rep["nofit"].update(threshold=thr, n_calibration=n_cal_nofit, threshold_source=(
        "off" if not st.enabled else "config" if thr is not None and thr != fitted else
        f"fitted to recall {st.target_recall} on {n_cal_nofit} calibration tickets" if fitted is not None
        else f"none class only (< {st.min_examples} no-fit calibration tickets)"))
    rep["misrouted"] = evaluate.misrouted(proba, test_set.labels, classes, test_set.ids)
    rep["calibration"] = {"temperature": temperature, "n_calibration": len(cal_set),
                          "ece_before": ece(raw, np.array([pos[y] for y in test_set.labels])),
                          "ece_after": rep["ece"]}
    if tuning:
        rep["tuning"] = tuning
    recent = newest(test_set, tuple(rt.weighted_sources), rt.newest_corrections)
    if recent:
        sub = test_set.subset(recent)
        rep["newest_corrections"] = _headline(routed(proba[recent], score[recent], classes, sub.labels, catalog,
                                                     thr, st.enabled))

    # The current model, re-scored on the same held-out tickets.
    prev, cur_rep = registry.current(engine), None
    if prev is not None:
        try:
            cur_proba, cur_score, cur_classes = gate_mod.score(engine, prev, test_set.texts, cfg)
        except Exception as e:  # its files are gone or its kind cannot load here
            rep["current"] = {"version": prev.version, "error": f"could not re-score: {e}"}
        else:
            cur_thr = nofit.threshold(st, nofit.model_threshold(prev))
            cur_rep = routed(cur_proba, cur_score, cur_classes, test_set.labels, catalog, cur_thr, st.enabled)
            rep["current"] = {"version": prev.version, **_headline(cur_rep)}
            rep["delta_f1"] = evaluate.compare(rep, cur_rep)
            if recent:
                rep["current"]["newest_corrections"] = _headline(routed(
                    cur_proba[recent], cur_score[recent], cur_classes, test_set.subset(recent).labels, catalog,
                    cur_thr, st.enabled))

    clf.save(folder)
    evaluate.save(rep, folder, f"{version}: held-out report")
    times = [t for t in data.times if t is not None]
    snap = {"n_train": len(fit_set), "n_calibration": len(cal_set), "n_test": len(test_set),
            "test_ids_sha1": hashlib.sha1("\n".join(test_set.ids).encode()).hexdigest(),
            "labels_until": max(times).isoformat() if times else None,
            "since": since.isoformat() if since else None, **(snapshot or {})}
    mv = registry.register(engine, ModelVersion(
        version=version, kind=kind, path=str(folder.resolve()), status=VersionStatus.candidate,
        base=clf.base and str(clf.base), data_snapshot=snap,
        config={**getattr(cfg, kind).model_dump(mode="json"), "nofit": {"threshold": fitted, "target_recall": st.target_recall,
                                                     "n_calibration": n_cal_nofit}},
        metrics={**evaluate.summary(rep), "ece_uncalibrated": rep["calibration"]["ece_before"]},
        temperature=float(temperature)))

    decision = None
    if gate_mod.promote_first(engine, version, "first trained model"):
        mv, promoted = registry.get(engine, version), True
    elif gate:
        paired = None if cur_rep is None else (
            test_set.labels, nofit.decide(proba, score, classes, thr, st.enabled),
            nofit.decide(cur_proba, cur_score, cur_classes, cur_thr, st.enabled))
        decision = gate_mod.decide(rep, cur_rep, paired=paired, **gt.model_dump(),
                                   unscored=(prev.version, rep["current"]["error"]) if cur_rep is None else None)
        promoted = gate_mod.apply(engine, version, decision)
        mv = registry.get(engine, version)
    else:
        promoted = False
    return Trained(mv, rep, promoted, decision, cur_rep)
