"""Emergencies and the legal channel on the Chinese month (router/emergency.py, router/dispatch.py).

    python bench/emergencies.py

The product's baseline trained with the reserved dispositions as classes (as `router train` does when
labels hold them), then the product's steps over every ticket of the month's 30 days (nofit.route,
dispatch.legal_channel, then dispatch.emergencies with `[emergency] model_min` and `legal_min`):
an emergency is a ticket routed to one of 110/119/120/122. Three models: trained on the month's history
(391 tickets: 16 emergencies, 10 legal-channel), scored on days 1-30; trained on the history + days 1-15
(dispatchers' labels of the first half), scored on days 16-30; and trained on the month's history + the
sample's (5,000), scored on the sample's test set (803 tickets, no emergency nor legal-channel one: every
flag there is wrong). Reported for the rules + model (the product), the rule layers alone, the model alone
(with model_min / legal_min) and the steps without the legal layer (the product before it): emergency
precision/recall (and right line), the near-misses flagged, legal-channel P/R/F1.
Writes bench/results/emergencies.json and prints a table.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

from router import nofit
from router.baseline import BaselineClassifier
from router.catalog import EMERGENCY, LEGAL, NONE, load_catalog
from router.config import Emergency
from router.classifier import model_input
from router.dispatch import Info, emergencies, legal_channel
from router.emergency import legal, line
from router.io import TicketIn, load_tickets

ROOT = Path(__file__).resolve().parents[1]
MONTH = ROOT / "data" / "sample" / "month"
OUT = ROOT / "bench" / "results" / "emergencies.json"
MODEL_MIN, LEGAL_MIN = Emergency().model_min, Emergency().legal_min
SAMPLE = ROOT / "data" / "sample"


def prf(truth, pred):
    tp = int(np.sum(truth & pred))
    p = tp / pred.sum() if pred.sum() else 0.0
    r = tp / truth.sum() if truth.sum() else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "support": int(truth.sum()), "flagged": int(pred.sum())}


def model_only(top):
    """The product's steps without the rule layers: the model's reserved answers count from their minimum."""
    return emergencies([TicketIn(id="", text="", line=0)], [top], [Info()], MODEL_MIN, LEGAL_MIN)[0][0][0]


def case(name, train, test, catalog, near):
    train = [t for t in train if t.label is not None]
    labels = [t.label for t in train]
    classes = catalog.ids + [c for c in (NONE, *EMERGENCY, LEGAL) if c in labels]
    t0 = time.perf_counter()
    clf = BaselineClassifier(classes=classes).fit([model_input(t.text, t.title) for t in train], labels)
    fit_s = time.perf_counter() - t0
    proba, score = nofit.scores(clf, [model_input(t.text, t.title) for t in test])
    tops, _ = nofit.route(proba, score, [str(c) for c in clf.classes_], 3, None, True)
    infos = [Info() for _ in test]
    routed = [top[0][0] for top in emergencies(test, legal_channel(test, tops, infos), infos, MODEL_MIN, LEGAL_MIN)]
    before = [top[0][0] for top in emergencies(test, tops, [Info() for _ in test], MODEL_MIN)]
    rules = [line(t.text, t.title) or (LEGAL if legal(t.text, t.title) else "") for t in test]
    truth = np.array([t.label or "" for t in test], dtype=object)
    is_em = np.isin(truth, list(EMERGENCY))
    out = {"case": name, "train": len(train), "test": len(test), "fit_s": round(fit_s, 1),
           "near_misses": int(sum(t.id in near for t in test))}
    for who, pred in (("rules + model", routed), ("rules alone", rules), ("model alone", [model_only(t) for t in tops]),
                      ("without the legal layer", before)):
        pred = np.array(pred, dtype=object)
        flag = np.isin(pred, list(EMERGENCY))
        out[who] = {"emergency": prf(is_em, flag) | {"right_line": int(np.sum(is_em & (pred == truth)))},
                    "near_misses_flagged": int(sum(f for f, t in zip(flag, test) if t.id in near)),
                    "legal_channel": prf(truth == LEGAL, pred == LEGAL)}
    return out


def main():
    catalog = load_catalog(ROOT / "data" / "departments.json")
    meta = json.loads((MONTH / "meta.json").read_text(encoding="utf-8"))
    near = {i for d in meta["days"] for i in d.get("near_misses", [])}
    days = [load_tickets(MONTH / d["file"], catalog)[0] for d in meta["days"]]
    hist = load_tickets(MONTH / "history.jsonl", catalog)[0]
    cases = [case("month history → days 1-30", hist, [t for d in days for t in d], catalog, near),
             case("history + days 1-15 → days 16-30", hist + [t for d in days[:15] for t in d],
                  [t for d in days[15:] for t in d], catalog, near),
             case("month + sample history → sample test", hist + load_tickets(SAMPLE / "history.jsonl", catalog)[0],
                  load_tickets(SAMPLE / "test.jsonl", catalog)[0], catalog, near)]
    OUT.write_text(json.dumps({"machine": platform.machine(), "date": time.strftime("%Y-%m-%d"),
                               "legal_min": LEGAL_MIN, "model_min": MODEL_MIN, "cases": cases},
                              ensure_ascii=False, indent=1) + "\n")
    print("| case | who | emergency P / R (right line) | near-misses flagged | legal-channel P / R / F1 |")
    print("|---|---|---|---|---|")
    for c in cases:
        for who in ("rules + model", "rules alone", "model alone", "without the legal layer"):
            e, lc = c[who]["emergency"], c[who]["legal_channel"]
            print(f"| {c['case']} ({c['test']}: {e['support']} emergencies, {c['near_misses']} near-misses, "
                  f"{lc['support']} legal) | {who} | {e['precision']:.3f} / {e['recall']:.3f} ({e['right_line']}) | "
                  f"{c[who]['near_misses_flagged']} | {lc['precision']:.3f} / {lc['recall']:.3f} / {lc['f1']:.3f} "
                  f"({lc['flagged']} flagged) |")


if __name__ == "__main__":
    main()
