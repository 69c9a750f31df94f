"""No department fits on CLINC150 (Larson et al. 2019): the baseline with and without no-fit handling.

    python bench/clinc150_nofit.py [--data ../shared/datasets/clinc150/train_val.json] [--targets 0.8 0.85 0.9]

Train on `train` + `oos_train`; the tuning slice (10% of `train` and half of `oos_train`, seeded)
is held out of fitting and fits the temperature and the no-fit threshold, as `router train` does
with its calibration slice; report on `val` + `oos_val` (the test split is never read). Rows:
  - without handling: the product's baseline trained on the in-scope intents only, always routed
    to its best intent (in-scope accuracy is the reference for the 2-point budget);
  - none class only: trained with oos as the class `none`, flagged when `none` is its top class;
  - none class + score @t: ... and when the out-of-scope score reaches the threshold fitted to
    OOS recall t on the tuning slice (router/nofit.py, as `router train` / `router classify` do);
  - score only @t: no oos training examples, the max-margin score with the fitted threshold.
AUROC is that of each model's out-of-scope score on val + oos_val. Writes
bench/results/clinc150_nofit.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from router import nofit
from router.baseline import BaselineClassifier
from router.calibration import temper
from training import calibrate

ROOT = Path(__file__).resolve().parents[1]
# ../shared next to the checkout (or next to a folder holding worktrees)
DATA = next((p / "shared" / "datasets" / "clinc150" / "train_val.json" for p in ROOT.parents
             if (p / "shared" / "datasets" / "clinc150" / "train_val.json").exists()),
            ROOT.parent / "shared" / "datasets" / "clinc150" / "train_val.json")
OUT = ROOT / "bench" / "results" / "clinc150_nofit.json"
NONE = nofit.NONE


def load(path: Path, seed: int, tune_oos: float = 0.5):
    d = json.loads(path.read_text())
    rng = np.random.default_rng(seed)
    tr, oos = d["train"], [(t, NONE) for t, _ in d["oos_train"]]
    i, j = rng.permutation(len(tr)), rng.permutation(len(oos))
    n, m = len(tr) // 10, int(tune_oos * len(oos))
    tune = [tr[k] for k in i[:n]] + [oos[k] for k in j[:m]]
    fit_in, fit_oos = [tr[k] for k in i[n:]], [oos[k] for k in j[m:]]
    val = d["val"] + [(t, NONE) for t, _ in d["oos_val"]]
    return fit_in, fit_oos, tune, val


def fitted(fit: list, tune: list, val: list) -> dict:
    """Fit the product's baseline; its temperature on the tuning slice; scores on tune and val."""
    t0 = time.perf_counter()
    clf = BaselineClassifier().fit([t for t, _ in fit], [y for _, y in fit])
    classes = [str(c) for c in clf.classes_]
    pos = {c: k for k, c in enumerate(classes)}
    fit_s = time.perf_counter() - t0
    tp, ts = nofit.predict(clf, [t for t, _ in tune])
    known = [k for k, (_, y) in enumerate(tune) if y in pos]
    temperature = calibrate.fit(tp[known], np.array([pos[tune[k][1]] for k in known]))
    vp, vs = nofit.predict(clf, [t for t, _ in val])
    return {"classes": classes, "tune_score": ts, "proba": temper(vp, temperature), "score": vs,
            "temperature": temperature, "fit_seconds": round(fit_s, 1), "n_fit": len(fit)}


def row(name: str, m: dict, tune: list, val: list, target: float | None, none_class: bool) -> dict:
    """Route val as `router classify` does: the none class flags when it is on top (if trained),
    the score when it reaches the threshold fitted to `target` OOS recall on the tuning slice."""
    thr = None if target is None else nofit.fit_threshold(m["tune_score"], np.array([y == NONE for _, y in tune]),
                                                          target)
    pred = np.array(nofit.decide(m["proba"], m["score"], m["classes"], thr, enabled=target is not None or none_class),
                    dtype=object)
    truth = np.array([y for _, y in val], dtype=object)
    inn = truth != NONE
    r = nofit.metrics(truth, pred, m["score"])
    return {"name": name, "in_scope_accuracy": float((pred[inn] == truth[inn]).mean()),
            "oos_recall": r["recall"], "oos_precision": r["precision"], "auroc": r.get("auroc"),
            "target_recall": target, "threshold": thr, "temperature": m["temperature"],
            "fit_seconds": m["fit_seconds"], "n_fit": m["n_fit"], "n_tune": len(tune), "n_val": len(val)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--targets", type=float, nargs="+", default=[0.8, 0.85, 0.9],
                    help="OOS recalls the threshold is fitted to on the tuning slice")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tune-oos", type=float, default=0.5, help="share of oos_train held out for tuning")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    fit_in, fit_oos, tune, val = load(a.data, a.seed, a.tune_oos)
    plain, taught = fitted(fit_in, tune, val), fitted(fit_in + fit_oos, tune, val)
    rows = [row("without handling", plain, tune, val, None, False),
            row("none class only", taught, tune, val, None, True),
            *[row(f"none class + score @{t:g}", taught, tune, val, t, True) for t in a.targets],
            *[row(f"score only @{t:g}", plain, tune, val, t, False) for t in a.targets]]
    ref = rows[0]["in_scope_accuracy"]
    for r in rows:
        r["in_scope_drop_points"] = round(100 * (ref - r["in_scope_accuracy"]), 2)
    result = {"dataset": "CLINC150 (Larson et al. 2019), train + oos_train -> val + oos_val",
              "targets": a.targets, "tune_oos": a.tune_oos, "seed": a.seed, "model": "baseline (router/baseline.py defaults)",
              "machine": platform.platform(), "rows": rows,
              "llm": "not run: the SmolLM2-135M path needs the shared GPU"}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1))
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"CLINC150 val + oos_val ({rows[0]['n_val']}), thresholds fitted on the tuning slice "
                    f"({rows[0]['n_tune']} = 10% of train + {a.tune_oos:.0%} of oos_train)")
    for col in ("model", "in-scope acc", "drop (pts)", "OOS recall", "OOS precision", "AUROC", "threshold"):
        t.add_column(col, justify="left" if col == "model" else "right")
    f = lambda x, d=4: "-" if x is None else f"{x:.{d}f}"  # noqa: E731
    for r in rows:
        t.add_row(r["name"], f(r["in_scope_accuracy"]), f(r["in_scope_drop_points"], 2), f(r["oos_recall"], 3),
                  f(r["oos_precision"], 3), f(r["auroc"]), f(r["threshold"], 3))
    Console().print(t)
    return result


if __name__ == "__main__":
    main()
