"""Active-learning simulation on Banking77: how many labels each query strategy needs.

    python bench/al_sim.py [--data ../shared/datasets/banking77/train.csv] [--jobs 2]

Setup (stratified, seed 0): 2,000 tickets of train.csv are the fixed held-out set, the other
8,003 the unlabeled pool. Start: `--init` random labels per class (2 x 77 = 154). Each round:
train, score the held-out set, let the strategy pick `--batch` pool tickets, reveal their true
labels. Random picks run the same loop. The target is 95% of the accuracy of the same model
trained on the whole pool; "labels needed" is the first crossing of the curve (linear
interpolation between rounds); a strategy's saving is random's labels / its labels.

The model is the baseline's (router/baseline.py: LinearSVC C=2 with class_weight=balanced,
sigmoid calibration over 3 folds, rare classes repeated to fill the folds), made fast for
hundreds of refits: its TF-IDF features (char_wb 1-4 + word 1-2, sublinear tf) are computed
once over all texts (unsupervised, no labels used) instead of refitted each round.
A strategy stops when it crosses the target or reaches `--max-labels` (random: `--max-random`).
Reduced for 2 cores in < 15 min: one seed, strategies in parallel (`--jobs`), random picks
revealed 200 at a time (their curve does not depend on the step), the others 25 at a time.
Smaller batches help every uncertainty strategy (diverse_margin: batch 100 -> 1,881 labels,
50 -> 1,661, 25 -> 1,526 in our runs): the saving assumes the model is retrained that often.

Writes bench/results/al_sim.json and bench/results/al_sim.png and prints a table.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import typer
from joblib import Parallel, delayed
from rich.console import Console
from rich.table import Table
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_union
from sklearn.preprocessing import normalize
from sklearn.svm import LinearSVC

from router import ROOT
from router.queue import Diverse, Entropy, LeastConfidence, Margin, RandomSampling

DEFAULT = ROOT.parent / "shared" / "datasets" / "banking77" / "train.csv"


def strategies(seed: int) -> dict:
    return {
        "random": RandomSampling(seed),
        "least_confidence": LeastConfidence(),
        "entropy": Entropy(),
        "margin": Margin(),
        "diverse_margin": Diverse(Margin(), density=1.0),
    }


def features(texts):
    vec = make_union(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True, max_features=300000),
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b"))
    return vec.fit_transform(texts).tocsr()


def fit(X, y, folds: int = 3, C: float = 20.0):
    """The baseline's classifier on precomputed features (same rare-class repetition)."""
    classes, counts = np.unique(y, return_counts=True)
    extra = [i for c, n in zip(classes, counts) if n < folds for i in np.flatnonzero(y == c).tolist() * (folds - 1)]
    if extra:
        X, y = sp.vstack([X, X[extra]]), np.concatenate([y, y[extra]])
    svm = LinearSVC(C=C / 10, class_weight="balanced")
    return CalibratedClassifierCV(svm, method="sigmoid", cv=folds).fit(X, y)


def run(name, strategy, X, y, test, start, batch, max_labels, target, seed):
    Xn = normalize(X)  # cosine similarity for the diversity-aware strategies
    rng = np.random.default_rng(seed)
    labeled = start.copy()
    curve, t0 = [], time.perf_counter()
    while True:
        m = fit(X[labeled], y[labeled])
        acc = float((m.predict(X[test]) == y[test]).mean())
        curve.append([int(len(labeled)), acc])
        if acc >= target or len(labeled) >= max_labels:
            break
        mask = np.ones(len(y), bool)
        mask[labeled] = False
        mask[test] = False
        pool = np.flatnonzero(mask)
        proba = m.predict_proba(X[pool])
        pick = strategy.query(proba, batch, features=Xn[pool], rng=rng, labeled=Xn[labeled])
        labeled = np.concatenate([labeled, pool[pick]])
    return name, {"curve": curve, "seconds": round(time.perf_counter() - t0, 1), "strategy": repr(strategy)}


def labels_needed(curve, target) -> float | None:
    prev = None
    for n, acc in curve:
        if acc >= target:
            if prev is None:
                return float(n)
            (n0, a0) = prev
            return float(n0 + (target - a0) / (acc - a0) * (n - n0))
        prev = (n, acc)
    return None


def plot(res: dict, target: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for name, r in res["strategies"].items():
        n, acc = zip(*r["curve"])
        ax.plot(n, acc, label=name, lw=2.5 if name in ("random", res["best"]) else 1.2,
                ls="--" if name == "random" else "-")
    ax.axhline(target, color="grey", lw=0.8, ls=":")
    ax.text(ax.get_xlim()[1], target, " 95% of full data", va="bottom", ha="right", fontsize=8, color="grey")
    ax.set(xlabel="labels used", ylabel="held-out accuracy",
           title=f"Active learning on Banking77 (full pool {res['pool']}: accuracy {res['full_accuracy']:.3f})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main(data: Path = typer.Option(DEFAULT, help="Banking77 train.csv (text,category)"),
         init: int = typer.Option(2, help="random labels per class to start from"),
         batch: int = typer.Option(25, help="labels revealed per round (the model is retrained after each)"),
         random_batch: int = typer.Option(200, help="the same for random picks (independent of the model, "
                                                    "so a coarser step only thins its curve)"),
         max_labels: int = typer.Option(2600, help="a strategy stops here if it never reaches the target"),
         max_random: int = typer.Option(5000, help="the same for random picks"),
         only: str = typer.Option("", help="comma-separated strategy names (default: all)"),
         jobs: int = typer.Option(2, help="strategies simulated in parallel"),
         seed: int = typer.Option(0),
         out: Path = typer.Option(ROOT / "bench" / "results" / "al_sim.json")):
    if not data.exists():
        raise typer.BadParameter(f"{data} not found: the shared datasets live in ../shared/datasets")
    t0 = time.perf_counter()
    df = pd.read_csv(data)
    X, y = features(df.text.tolist()), df.category.to_numpy()
    idx = np.arange(len(y))
    pool, test = train_test_split(idx, test_size=2000, stratify=y, random_state=seed)
    rng = np.random.default_rng(seed)
    start = np.concatenate([rng.choice(pool[y[pool] == c], init, replace=False) for c in np.unique(y)])
    full = float((fit(X[pool], y[pool]).predict(X[test]) == y[test]).mean())
    target = 0.95 * full
    chosen = strategies(seed)
    if only:
        chosen = {k: v for k, v in chosen.items() if k in only.split(",") or k == "random"}
    order = sorted(chosen, key=lambda k: k != "random")  # the longest run first
    done = Parallel(n_jobs=jobs)(delayed(run)(
        k, chosen[k], X, y, test, start, random_batch if k == "random" else batch,
        max_random if k == "random" else max_labels, target, seed)
        for k in order)
    res = {"dataset": "banking77 train.csv", "pool": int(len(pool)), "test": int(len(test)), "init_per_class": init,
           "batch": batch, "random_batch": random_batch, "full_accuracy": full, "target_accuracy": target, "strategies": dict(done)}
    base = labels_needed(res["strategies"]["random"]["curve"], target)
    for r in res["strategies"].values():
        r["labels_to_target"] = need = labels_needed(r["curve"], target)
        r["saving_vs_random"] = round(base / need, 2) if need and base else None
    ranked = [k for k in res["strategies"] if k != "random" and res["strategies"][k]["labels_to_target"]]
    res["best"] = min(ranked, key=lambda k: res["strategies"][k]["labels_to_target"]) if ranked else None
    res.update(seconds=round(time.perf_counter() - t0), machine=f"{platform.processor() or platform.machine()}, "
               f"{os.cpu_count()} cores", date=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
               command="python bench/al_sim.py " + " ".join(sys.argv[1:]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    plot(res, target, out.with_suffix(".png"))
    t = Table(title=f"labels to reach {target:.4f} (95% of full-pool accuracy {full:.4f}), start {init}/class, "
                    f"batch {batch}")
    for col in ("strategy", "labels needed", "x fewer than random", "last accuracy", "seconds"):
        t.add_column(col, justify="left" if col == "strategy" else "right")
    for k, r in sorted(res["strategies"].items(), key=lambda kv: kv[1]["labels_to_target"] or 1e9):
        need = r["labels_to_target"]
        t.add_row(k, f"{need:.0f}" if need else f"> {r['curve'][-1][0]}",
                  f"{r['saving_vs_random']:.2f}" if r["saving_vs_random"] else "-",
                  f"{r['curve'][-1][1]:.4f}", str(r["seconds"]))
    Console().print(t)
    Console().print(f"{res['seconds']} s; {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    typer.run(main)
