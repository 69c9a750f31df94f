"""Benchmark the CPU baseline on Banking77 (stratified 80/20 split of train.csv, seed 42).

    python bench/baseline_banking77.py [--data ../shared/datasets/banking77/train.csv]

Writes bench/results/baseline_banking77.json and prints a table: accuracy, macro-F1,
fit time and tickets/s (single process, this machine's CPU).
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from router import ROOT
from router.baseline import BaselineClassifier
from router.calibration import ece

DEFAULT = ROOT.parent / "shared" / "datasets" / "banking77" / "train.csv"


def main(data: Path = typer.Option(DEFAULT, help="Banking77 train.csv (text,category)"),
         out: Path = typer.Option(ROOT / "bench" / "results" / "baseline_banking77.json")):
    if not data.exists():
        raise typer.BadParameter(f"{data} not found: the shared datasets live in ../shared/datasets")
    df = pd.read_csv(data)
    tr, te = train_test_split(df, test_size=0.2, stratify=df.category, random_state=42)
    clf = BaselineClassifier()
    t0 = time.perf_counter()
    clf.fit(tr.text.tolist(), tr.category.tolist())
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    proba = clf.predict_proba(te.text.tolist())
    pred_s = time.perf_counter() - t0
    pred = clf.classes_[proba.argmax(1)]
    pos = {c: i for i, c in enumerate(clf.classes_)}
    res = {
        "dataset": "banking77 train.csv, stratified 80/20, seed 42",
        "n_train": len(tr), "n_test": len(te),
        "accuracy": float(accuracy_score(te.category, pred)),
        "macro_f1": float(f1_score(te.category, pred, average="macro")),
        "ece": ece(proba, te.category.map(pos).to_numpy()),
        "fit_seconds": round(fit_s, 2),
        "tickets_per_s": round(len(te) / pred_s, 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "command": "python bench/baseline_banking77.py",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    t = Table(title="baseline on Banking77 (20% held out)")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k in ("n_train", "n_test", "accuracy", "macro_f1", "ece", "fit_seconds", "tickets_per_s"):
        t.add_row(k, f"{res[k]:.4f}" if isinstance(res[k], float) and res[k] < 1 else str(res[k]))
    Console().print(t)


if __name__ == "__main__":
    typer.run(main)
