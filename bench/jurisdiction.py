"""District-vs-district confusion before and after the place resolver (router/places.py).

    python bench/jurisdiction.py

The product's baseline (no temperature) on two cases:
  - sample: trained on data/sample/history.jsonl, scored on data/sample/test.jsonl;
  - month: trained on data/sample/month/history.jsonl (5 per department, day 0 of the loop) and
    scored on the month's 30 days (11,830 tickets), and trained on the sample history and scored on
    the same days (a model that has seen enough districts).
Rules compared (router/dispatch.jurisdiction is `top1`):
  - model: the model alone;
  - top1: the place's district when the model's best department is territorial (the product);
  - top3: ... when any of the model's best three is territorial;
  - always: the place's district whenever one is named (functional matters too: what not to do).
Reported: district-vs-district errors (true and predicted both districts, different), district
recall (true district tickets routed to it), functional tickets moved to a district, accuracy;
plus how many tickets name a place and how many of those name the true district. Writes
bench/results/jurisdiction.json and prints a table.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

from router.baseline import BaselineClassifier
from router.catalog import load_catalog
from router.classifier import model_input, top_k
from router.dispatch import Info, jurisdiction
from router.io import load_tickets
from router.places import Places

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "sample"
OUT = ROOT / "bench" / "results" / "jurisdiction.json"


def rule(name, places, batch, tops, proba, classes):
    if name == "model":
        return tops
    if name == "top1":
        return jurisdiction(places, batch, tops, [Info() for _ in batch], proba, classes)
    out = []
    for t, top in zip(batch, tops):
        f = places.find(t.text, t.title)
        d = f.district
        hit = d is not None and (name == "always" or any(x in places.territorial for x, _ in top[:3]))
        out.append([(d, 1.0)] + top[1:] if hit else top)
    return out


def score(truth, pred, territorial):
    truth, pred = np.array(truth, dtype=object), np.array(pred, dtype=object)
    td = np.isin(truth, list(territorial))
    pd = np.isin(pred, list(territorial))
    return {"n": int(len(truth)), "accuracy": round(float((truth == pred).mean()), 4),
            "district_tickets": int(td.sum()),
            "district_vs_district_errors": int((td & pd & (truth != pred)).sum()),
            "district_recall": round(float((truth[td] == pred[td]).mean()), 4),
            "functional_moved_to_district": int((~td & pd & (truth != pred)).sum())}


def case(name, train_file, test_files, catalog, places):
    train, _ = load_tickets(train_file, catalog, require_label=True)
    train = [t for t in train if t.label != "none"]
    test = [t for f in test_files for t in load_tickets(f, catalog)[0] if t.label not in (None, "none")]
    t0 = time.perf_counter()
    clf = BaselineClassifier(classes=catalog.ids).fit([model_input(t.text, t.title) for t in train],
                                                      [t.label for t in train])
    fit_s = time.perf_counter() - t0
    proba = clf.predict_proba([model_input(t.text, t.title) for t in test])
    classes = [str(c) for c in clf.classes_]
    tops = top_k(proba, classes, 3)
    truth = [t.label for t in test]
    found = [places.find(t.text, t.title) for t in test]
    named = [f.district for f in found]
    out = {"case": name, "train": len(train), "test": len(test), "fit_s": round(fit_s, 1),
           "named_a_district": sum(d is not None for d in named),
           "named_true_district_of_district_tickets": sum(d == y for d, y in zip(named, truth) if y in places.territorial),
           "ambiguous": sum(bool(f.ambiguous) for f in found), "rules": {}}
    for r in ("model", "top1", "top3", "always"):
        out["rules"][r] = score(truth, [x[0][0] for x in rule(r, places, test, tops, proba, classes)], places.territorial)
    return out


def main():
    catalog = load_catalog(ROOT / "data" / "departments.json")
    places = Places(catalog)
    month = sorted((DATA / "month").glob("day*.jsonl"))
    cases = [case("sample", DATA / "history.jsonl", [DATA / "test.jsonl"], catalog, places),
             case("month (month history)", DATA / "month" / "history.jsonl", month, catalog, places),
             case("month (sample history)", DATA / "history.jsonl", month, catalog, places)]
    res = {"machine": platform.machine(), "date": time.strftime("%Y-%m-%d"), "cases": cases}
    OUT.write_text(json.dumps(res, ensure_ascii=False, indent=1) + "\n")
    print("| case | rule | district-vs-district errors | district recall | functional moved to a district | accuracy |")
    print("|---|---|---|---|---|---|")
    for c in cases:
        for r, m in c["rules"].items():
            print(f"| {c['case']} ({c['test']}; {m['district_tickets']} district) | {r} | "
                  f"{m['district_vs_district_errors']} | {m['district_recall']:.3f} | "
                  f"{m['functional_moved_to_district']} | {m['accuracy']:.4f} |")


if __name__ == "__main__":
    main()
