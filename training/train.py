"""Train a model version in steps, the same for every kind of model (the kind only decides
which Classifier `fit` builds). `train` runs them in order, each on what the one before gave:

    split_data  held-out test = split(data, test_size, seed)  (by a hash of the ticket id: held out forever)
                calibration   = stratified(rest, calibration_size, seed + 1)  (temperature, no-fit threshold)
                fit           = replay.mix(the remainder, since the last version)
    fit         a new model of `kind` on the fit slice
    calibrate   its temperature (and what `Classifier.tune` fits) and the no-fit threshold, on the
                calibration slice
    evaluate    the held-out report, and the current version's held-out fit's on the same tickets
                (those of them it never saw: training/gate.py `score`)
    refit       the version that is registered: for kinds that refit cheaply (the baseline, and an
                ensemble's baseline member), the same model fitted again on every label (its
                probability scale and the "auto" confidence threshold from a cross-validation over
                all of them); the reported figures stay those of the held-out fit, and the report
                says how many labels each fit saw
    settle      save (a refit version keeps its held-out fit in `held_out/`, and every version the ids
                its held-out fit saw, for later gates), register as a candidate, and let the gate
                (training/gate.py) promote it or not
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from router import calibration, classifier, config, nofit, parallel, registry
from router.calibration import ece
from router.catalog import RESERVED, Catalog
from router.store import ModelVersion, VersionStatus
from training import evaluate as metrics, gate as gate_mod, replay
from training.data import Labeled, split, stratified


@dataclass
class Splits:
    fit: Labeled
    cal: Labeled
    test: Labeled


@dataclass
class Calibrated:
    n: int = 0                       # calibration tickets
    temperature: float = 1.0
    threshold: float | None = None   # the fitted no-fit threshold (None: not fitted)
    n_nofit: int = 0                 # no-fit tickets in the calibration slice
    tuning: dict = field(default_factory=dict)   # what `Classifier.tune` found (the ensemble's weights)
    auto: dict = field(default_factory=dict)     # the confidence threshold "auto" uses (auto_threshold)


@dataclass
class Evaluated:
    report: dict
    current: dict | None = None      # the current model's report on the same held-out tickets
    paired: tuple | None = None      # (truth, candidate's routes, current's routes), for the gate's bootstrap
    compared: dict | None = None     # the candidate's report on the tickets the current one was scored on


@dataclass
class Trained:
    version: ModelVersion
    report: dict
    promoted: bool
    decision: gate_mod.Decision
    current_report: dict | None = None


def build(kind: str, cfg, catalog: Catalog, no_fit: bool = False, labels=()) -> classifier.Classifier:
    """A new model over the catalogue's departments, plus the `none` class when `no_fit`
    (the training data has "no department fits" labels) and each reserved disposition (an
    emergency line, the legal channel) that `labels` hold."""
    reserved = [r for r in RESERVED if r != nofit.NONE and r in set(labels)]
    classes = catalog.ids + ([nofit.NONE] if no_fit else []) + reserved
    shown = nofit.with_none(catalog) if no_fit else catalog
    return classifier.build(kind, cfg, classes, nofit.with_reserved(shown, reserved))


def routed(proba, score, classes, labels, catalog, thr, enabled) -> dict:
    """The report of routing as `router classify` does it (no-fit decision included)."""
    pred = nofit.decide(proba, score, classes, thr, enabled)
    return metrics.report(proba, labels, classes, catalog, pred, score)


def newest(test: Labeled, sources, n: int) -> list[int]:
    """Positions of the `n` newest held-out tickets whose label came from `sources`."""
    idx = [i for i, s in enumerate(test.sources) if s in sources]
    idx.sort(key=lambda i: (test.times[i] is not None, test.times[i] or 0), reverse=True)
    return sorted(idx[:n])


def _indices(classes: list[str], labels) -> np.ndarray:
    pos = {c: i for i, c in enumerate(classes)}
    return np.array([pos[y] for y in labels])


def _headline(rep: dict) -> dict:
    n = rep.get("nofit", {})
    return {"n": rep["n"], "accuracy": rep["accuracy"], "macro_f1": rep["macro"]["f1"],
            "weighted_f1": rep["weighted"]["f1"], "ece": rep["ece"],
            "nofit_precision": n.get("precision"), "nofit_recall": n.get("recall")}


def warm_start(engine, cfg, clf: classifier.Classifier, say) -> str | None:
    """Let `clf` go on from the current version when that is of its kind (else the newest of its
    kind), if the kind can and its settings say so ([sft] incremental); returns that version."""
    prev = registry.current(engine)
    if prev is None or prev.kind != clf.kind:
        prev = next((v for v in registry.versions(engine) if v.kind == clf.kind), None)
    if prev is None:
        return None
    try:
        ok = clf.warm_start(classifier.load(prev.path, cfg))
    except Exception as e:  # its files are gone: train from scratch
        say(f"no warm start from {prev.version}: {type(e).__name__}: {e}")
        return None
    if ok:
        say(f"warm start from {prev.version}")
    return prev.version if ok else None


def train(engine, cfg: config.Settings, catalog: Catalog, data: Labeled, kind: str = "baseline",
          snapshot: dict | None = None, console=None, since: datetime | None = None,
          gate: bool = False) -> Trained | None:
    """Fit, calibrate and evaluate a new version of `kind`, and register it as a candidate.

    since: labels newer than this are "new" (replay mixes them with older ones); None = all new.
    gate:  let the gate compare it with the current model and promote it (`router retrain`);
           otherwise only a first model is promoted (training/gate.py `settle`).
    """
    if len(data) < 2:
        raise ValueError("no labeled tickets to train on: import history with `router import` "
                         "or label tickets in the app")
    say = console.print if console is not None else (lambda *a, **k: None)
    s = split_data(cfg, data, since)
    version = registry.new_version(kind)
    say(f"{version}: fitting on {len(s.fit)} tickets, calibrating on {len(s.cal)}, testing on {len(s.test)}")
    clf = fit(engine, cfg, catalog, kind, s.fit, say)
    if clf.fit_info:
        snapshot = {**(snapshot or {}), "fit": clf.fit_info}
    if not parallel.world().lead:
        return None  # DDP (training/nightly.py): ranks > 0 only train; rank 0 evaluates and registers
    cal = calibrate(cfg, clf, s.cal)
    ev = evaluate(engine, cfg, catalog, clf, cal, s.test)
    final, cal = refit(cfg, catalog, kind, clf, cal, ev, s, data, since, say)
    return settle(engine, cfg, kind, version, final, s, cal, ev, data, snapshot, since, gate,
                  held_out=clf if final is not clf else None)


def split_data(cfg: config.Settings, data: Labeled, since: datetime | None) -> Splits:
    rt = cfg.retrain
    tr, te = split(data, cfg.train.test_size, cfg.train.seed)
    rest, test = data.subset(tr), data.subset(te)
    fit_idx, cal_idx = (stratified(rest, rt.calibration_size, cfg.train.seed + 1)
                        if rt.calibration_size > 0 else (list(range(len(rest))), []))
    fit_set = replay.mix(rest.subset(fit_idx), since, rt.old_sample, rt.recent_weight, tuple(rt.weighted_sources),
                         cfg.train.seed, rt.known_wrong_weight)
    return Splits(fit_set, rest.subset(cal_idx), test)


def fit(engine, cfg: config.Settings, catalog: Catalog, kind: str, data: Labeled, say) -> classifier.Classifier:
    """A new model of `kind` fitted on `data`, going on from the previous version where it can
    (`warm_start`); its `fit_info` then names that version (`from`)."""
    clf = build(kind, cfg, catalog, nofit.NONE in data.labels, data.labels)
    warm = warm_start(engine, cfg, clf, say)
    clf.fit(data.texts, data.labels)
    if warm or clf.fit_info:
        clf.fit_info = {"from": warm, **clf.fit_info}
    return clf


def auto_threshold(cfg: config.Settings, clf: classifier.Classifier, raw=None, labels=None,
                   temperature: float = 1.0) -> dict:
    """The confidence threshold `[classify] threshold = "auto"` uses with this model
    (calibration.auto_threshold, to `[classify] target_accuracy`): on its out-of-fold probabilities
    over its training labels where it has them (the baseline's cross-validation), else on `raw`,
    its probabilities over the calibration slice (`labels`)."""
    oof = getattr(clf, "oof_proba_", None)
    if oof is not None:
        p, y = calibration.temper(oof, temperature), np.searchsorted(clf.fitted_, clf.oof_labels_)
        source = f"out-of-fold over the {len(y)} training labels"
    elif raw is not None and len(labels):
        p, y = calibration.temper(raw, temperature), _indices([str(c) for c in clf.classes_], labels)
        source = f"the {len(y)} calibration tickets"
    else:
        return {"threshold": None, "source": "no calibration data"}
    return {**calibration.auto_threshold(p.max(axis=1), p.argmax(axis=1) == y, cfg.classify.target_accuracy),
            "source": source}


def calibrate(cfg: config.Settings, clf: classifier.Classifier, cal: Labeled) -> Calibrated:
    """On the calibration slice: the temperature (the model is left at 1: `evaluate` reports ECE before
    and after), what `clf.tune` fits, and the no-fit threshold that catches `[nofit] target_recall`
    of its no-fit tickets."""
    st = cfg.nofit
    out = Calibrated(n=len(cal), n_nofit=sum(y == nofit.NONE for y in cal.labels))
    clf.temperature = 1.0
    if not len(cal):
        out.auto = auto_threshold(cfg, clf)
        return out
    out.tuning = clf.tune(cal.texts, cal.labels)
    classes = [str(c) for c in clf.classes_]
    raw, score = nofit.predict(clf, cal.texts)
    out.temperature = calibration.fit_proba(raw, _indices(classes, cal.labels))
    out.auto = auto_threshold(cfg, clf, raw, cal.labels, out.temperature)
    if st.enabled and st.target_recall > 0 and out.n_nofit >= max(1, st.min_examples):
        if score is None:
            score = nofit.proba_score(calibration.temper(raw, out.temperature), classes)
        out.threshold = nofit.fit_threshold(score, np.array(cal.labels) == nofit.NONE, st.target_recall)
    return out


def evaluate(engine, cfg: config.Settings, catalog: Catalog, clf: classifier.Classifier, cal: Calibrated,
             test: Labeled) -> Evaluated:
    """The held-out report (routing as `router classify` does it, ECE before and after the temperature,
    which the model keeps from here), and the current model re-scored on the same tickets."""
    st = cfg.nofit
    classes = [str(c) for c in clf.classes_]
    raw, score = nofit.predict(clf, test.texts)
    proba = calibration.temper(raw, cal.temperature)
    clf.temperature = cal.temperature
    if score is None:
        score = nofit.proba_score(proba, classes)
    thr = nofit.threshold(st, cal.threshold)
    rep = routed(proba, score, classes, test.labels, catalog, thr, st.enabled)
    rep["nofit"].update(threshold=thr, n_calibration=cal.n_nofit, threshold_source=(
        "off" if not st.enabled else "config" if thr is not None and thr != cal.threshold else
        f"fitted to recall {st.target_recall} on {cal.n_nofit} calibration tickets" if cal.threshold is not None
        else f"none class only (< {st.min_examples} no-fit calibration tickets)"))
    rep["misrouted"] = metrics.misrouted(proba, test.labels, classes, test.ids)
    rep["calibration"] = {"temperature": cal.temperature, "n_calibration": cal.n,
                          "ece_before": ece(raw, _indices(classes, test.labels)),
                          "ece_after": rep["ece"]}
    if cal.tuning:
        rep["tuning"] = cal.tuning
    rep["threshold"] = cal.auto
    recent = newest(test, tuple(cfg.retrain.weighted_sources), cfg.retrain.newest_corrections)
    if recent:
        rep["newest_corrections"] = _headline(routed(proba[recent], score[recent], classes,
                                                     test.subset(recent).labels, catalog, thr, st.enabled))
    out = Evaluated(rep)
    _current(engine, cfg, catalog, test, recent, out, proba, score, classes, thr)
    return out


def _current(engine, cfg, catalog, test: Labeled, recent, out: Evaluated, proba, score, classes, thr) -> None:
    """The current version's held-out fit scored on the held-out tickets it never saw
    (gate_mod.score): its report, its headline in the candidate's (`current`, `delta_f1`), the
    candidate's report on the same tickets (`compared`), and both models' routes for the gate's
    bootstrap."""
    st, rep = cfg.nofit, out.report
    prev = registry.current(engine)
    if prev is None:
        return
    try:
        cur_proba, cur_score, cur_classes, keep = gate_mod.score(engine, prev, test.texts, cfg, test.ids)
    except Exception as e:  # its files are gone or its kind cannot load here
        rep["current"] = {"version": prev.version, "error": f"could not re-score: {e}"}
        return
    if not keep:
        rep["current"] = {"version": prev.version, "error": "it trained on every held-out ticket"}
        return
    sub = test.subset(keep)
    mine = (proba[keep], score[keep]) if len(keep) < len(test) else (proba, score)
    cur_thr = nofit.threshold(st, nofit.model_threshold(prev))
    out.current = routed(cur_proba, cur_score, cur_classes, sub.labels, catalog, cur_thr, st.enabled)
    out.compared = rep if len(keep) == len(test) else routed(*mine, classes, sub.labels, catalog, thr, st.enabled)
    rep["current"] = {"version": prev.version, "seen_left_out": len(test) - len(keep), **_headline(out.current)}
    rep["delta_f1"] = metrics.compare(out.compared, out.current)
    newer = set(recent)
    recent = [j for j, i in enumerate(keep) if i in newer]
    if recent:
        rep["current"]["newest_corrections"] = _headline(routed(
            cur_proba[recent], cur_score[recent], cur_classes, sub.subset(recent).labels, catalog,
            cur_thr, st.enabled))
    out.paired = (sub.labels, nofit.decide(*mine, classes, thr, st.enabled),
                  nofit.decide(cur_proba, cur_score, cur_classes, cur_thr, st.enabled))


def refit(cfg: config.Settings, catalog: Catalog, kind: str, clf: classifier.Classifier, cal: Calibrated,
          ev: Evaluated, s: Splits, data: Labeled, since: datetime | None, say) -> tuple:
    """The model to register and its calibration. With `[train] refit` and a kind that refits
    cheaply (`Classifier.refits`: the baseline), a new fit on every label (held-out test and
    calibration slices included, replay mixed as for the fit slice); its own cross-validation over
    all of them gives its probability scale (the temperature stays 1) and the "auto" threshold;
    the no-fit threshold stays the calibration slice's. An ensemble refits its cheap members only
    (EnsembleClassifier.carry) and keeps its weights, temperature and thresholds from the calibration
    slice. Otherwise the held-out fit itself."""
    rep, rt = ev.report, cfg.retrain
    rep["fits"] = {"held_out": {"fit": len(s.fit), "calibration": len(s.cal), "test": len(s.test)},
                   "registered": {"fit": len(s.fit), "refit_on_all_labels": False}}
    if not (cfg.train.refit and clf.refits and len(s.test) + len(s.cal)):
        return clf, cal
    every = replay.mix(data, since, rt.old_sample, rt.recent_weight, tuple(rt.weighted_sources), cfg.train.seed,
                       rt.known_wrong_weight)
    say(f"refitting on all {len(every)} labels")
    final = build(kind, cfg, catalog, nofit.NONE in every.labels, every.labels)
    final.carry(clf)
    final.fit(every.texts, every.labels)
    rep["fits"]["registered"] = {"fit": len(every), "refit_on_all_labels": True}
    if getattr(final, "member_fits", None):   # the ensemble: its LLM member kept, its baseline member refit
        rep["fits"]["registered"]["members"] = dict(final.member_fits)
    if getattr(final, "oof_proba_", None) is None:
        # no cross-validation over every label (the ensemble's mix): the temperature and the "auto"
        # threshold stay those fitted on the calibration slice (`carry` kept the temperature)
        return final, cal
    final.temperature = 1.0
    auto = auto_threshold(cfg, final)
    rep["threshold_held_out_fit"], rep["threshold"] = rep.get("threshold"), auto
    return final, Calibrated(cal.n, 1.0, cal.threshold, cal.n_nofit, cal.tuning, auto)


def settle(engine, cfg: config.Settings, kind: str, version: str, clf: classifier.Classifier, s: Splits,
           cal: Calibrated, ev: Evaluated, data: Labeled, snapshot: dict | None, since: datetime | None,
           gate: bool, held_out: classifier.Classifier | None = None) -> Trained:
    """Save the model and its report (and `held_out`, the held-out fit of a refit model, with the
    ids that fit saw: what later gates score this version by), register it as a candidate, and let
    the gate decide."""
    folder = config.home(cfg) / "models" / version
    clf.save(folder)
    if held_out is not None:
        held_out.save(folder / gate_mod.HELD_OUT)
    test = set(s.test.ids)
    (folder / gate_mod.SEEN).write_text("".join(f"{t}\n" for t in data.ids if t not in test), encoding="utf-8")
    metrics.save(ev.report, folder, f"{version}: held-out report")
    times = [t for t in data.times if t is not None]
    snap = {"n_train": len(s.fit), "n_calibration": len(s.cal), "n_test": len(s.test),
            "n_registered_fit": ev.report.get("fits", {}).get("registered", {}).get("fit", len(s.fit)),
            "test_ids_sha1": hashlib.sha1("\n".join(s.test.ids).encode()).hexdigest(),
            "labels_until": max(times).isoformat() if times else None,
            "since": since.isoformat() if since else None, **(snapshot or {})}
    registry.register(engine, ModelVersion(
        version=version, kind=kind, path=str(folder.resolve()), status=VersionStatus.candidate,
        base=clf.base and str(clf.base), data_snapshot=snap,
        config={**getattr(cfg, kind).model_dump(mode="json"),
                "classify": cal.auto, "nofit": {"threshold": cal.threshold, "target_recall": cfg.nofit.target_recall,
                          "n_calibration": cal.n_nofit}},
        metrics={**metrics.summary(ev.report), "ece_uncalibrated": ev.report["calibration"]["ece_before"]}))
    decision = gate_mod.settle(engine, version, cfg.gate if gate else None, ev.compared or ev.report, ev.current,
                               ev.paired)
    return Trained(registry.get(engine, version), ev.report, decision.promote, decision, ev.current)
