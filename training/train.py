"""Train a model version: data, fixed split, fit, evaluate, register.

The same steps for every kind of model; the kind only decides which Classifier is built.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from router import classifier, config, registry
from router.catalog import Catalog
from router.store import ModelVersion
from training import evaluate
from training.data import Labeled, split


@dataclass
class Trained:
    version: ModelVersion
    report: dict
    promoted: bool


def build(kind: str, cfg, catalog: Catalog) -> classifier.Classifier:
    if kind == "baseline":
        return classifier.make("baseline", classes=catalog.ids, **dict(cfg.baseline))
    return classifier.make(kind, classes=catalog.ids, cfg=cfg, catalog=catalog)


def train(engine, cfg, catalog: Catalog, data: Labeled, kind: str = "baseline",
          snapshot: dict | None = None, console=None) -> Trained:
    if len(data) < 2:
        raise ValueError("no labeled tickets to train on: import history with `router import` "
                         "or label tickets in the app")
    tr, te = split(data, cfg.train.test_size, cfg.train.seed)
    train_set, test_set = data.subset(tr), data.subset(te)
    version = registry.new_version(kind)
    folder = config.home(cfg) / "models" / version
    clf = build(kind, cfg, catalog).fit(train_set.texts, train_set.labels)
    proba = clf.predict_proba(test_set.texts)
    rep = evaluate.report(proba, test_set.labels, list(clf.classes_), catalog)
    prev = registry.current(engine)
    if prev and (Path(prev.path) / "report.json").exists():
        rep["delta_f1"] = evaluate.compare(rep, json.loads((Path(prev.path) / "report.json").read_text()))
    clf.save(folder)
    evaluate.save(rep, folder, f"{version}: held-out report")
    snap = {"n_train": len(train_set), "n_test": len(test_set),
            "test_ids_sha1": hashlib.sha1("\n".join(test_set.ids).encode()).hexdigest(),
            **(snapshot or {})}
    mv = registry.register(engine, ModelVersion(
        version=version, kind=kind, path=str(folder.resolve()), status="candidate",
        base=getattr(clf, "base", None), data_snapshot=snap, config=dict(getattr(cfg, kind, {})),
        metrics=evaluate.summary(rep), temperature=float(getattr(clf, "temperature", 1.0))))
    promoted = prev is None
    if promoted:
        mv = registry.promote(engine, version, "first trained model")
    return Trained(mv, rep, promoted)
