"""One global "auto" threshold against per-department thresholds (issue 21), in one run.

    python bench/thresholds.py [--banking77 ../shared/datasets/banking77/train.csv] [--min-labels 30]

For each data set of bench/baseline_compare.py (month, realistic, Banking77 80/20): the baseline
(title weight 0.3, what its cross-validation picks on every set here, fixed to save fit time) is
fitted on the training split; its out-of-fold probabilities over those labels give the global
threshold (calibration.auto_threshold, target 0.95) and the per-department ones
(calibration.department_thresholds: each predicted department with >= --min-labels out-of-fold
tickets gets its own, the rest the global one). On the test split: the share of tickets routed
without review and their accuracy, for each.
Writes bench/results/thresholds.json and prints a table.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from bench.baseline_compare import B77, datasets
from router import ROOT, calibration
from router.baseline import BaselineClassifier


def routed(conf, pred, y, thr) -> dict:
    """Share routed (confidence at or above the threshold of its predicted class) and their accuracy."""
    r = conf >= thr
    return {"routed_share": round(float(r.mean()), 4),
            "routed_accuracy": round(float((pred[r] == y[r]).mean()), 4) if r.any() else None}


def measure(train, test, target: float, min_labels: int) -> dict:
    clf = BaselineClassifier(title_weight=0.3).fit(*train)
    fitted = np.array(clf.fitted_, dtype=object)
    oof, yo = clf.oof_proba_, np.searchsorted(fitted, clf.oof_labels_)
    conf, pred = oof.max(1), oof.argmax(1)
    glob = calibration.auto_threshold(conf, pred == yo, target)["threshold"]
    per = calibration.department_thresholds(conf, pred, pred == yo, target, min_labels)
    p = clf.predict_proba(test[0])
    cols = [list(clf.classes_).index(c) for c in fitted]
    p = p[:, cols]
    tc, tp, ty = p.max(1), p.argmax(1), np.array([np.searchsorted(fitted, c) if c in set(fitted) else -1
                                                  for c in test[1]])
    per_thr = np.array([per.get(int(d), glob) for d in tp])
    return {"global": {"threshold": round(glob, 4), **routed(tc, tp, ty, glob)},
            "per_department": {"departments_with_own": len(per), "of": len(fitted),
                               "thresholds_min_median_max": [round(float(x), 4) for x in
                                                             np.percentile(list(per.values()) or [glob], [0, 50, 100])],
                               **routed(tc, tp, ty, per_thr)},
            "test_accuracy": round(float((tp == ty).mean()), 4), "n_test": len(ty)}


def main(banking77: Path = typer.Option(B77, help="Banking77 train.csv; skipped if absent"),
         only: str = typer.Option("month,realistic,banking77"), target: float = 0.95,
         min_labels: int = typer.Option(30, help="out-of-fold tickets predicted as a department for its own threshold"),
         out: Path = typer.Option(ROOT / "bench" / "results" / "thresholds.json")):
    data = datasets(banking77)
    res = {"target_accuracy": target, "min_labels": min_labels, "results": {}}
    con = Console(width=150)
    for n in only.split(","):
        if n in data:
            res["results"][n] = measure(*data[n], target, min_labels)
            con.print(n, res["results"][n])
    res.update(machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               load_average=os.getloadavg()[0], date=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
               command="python bench/thresholds.py " + " ".join(sys.argv[1:]))
    out.write_text(json.dumps(res, indent=1, ensure_ascii=False))
    t = Table(title=f"routed without review: share / accuracy on the test split (target {target})")
    for c in ("data set", "global", "per department", "departments with their own"):
        t.add_column(c)
    for n, r in res["results"].items():
        g, p = r["global"], r["per_department"]
        t.add_row(n, f"{g['routed_share']:.3f} / {g['routed_accuracy']}", f"{p['routed_share']:.3f} / {p['routed_accuracy']}",
                  f"{p['departments_with_own']} of {p['of']}")
    con.print(t)


if __name__ == "__main__":
    typer.run(main)
