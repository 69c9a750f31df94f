"""Active-learning simulation on Banking77: how many labels each query strategy needs.

    python bench/al_sim.py [--data ../shared/datasets/banking77/train.csv] [--seeds 0,1,2] [--jobs 2]

Setup, per seed (stratified): 2,000 tickets of train.csv are the held-out set, the other 8,003
the unlabeled pool. Start: `--init` random labels per class (2 x 77 = 154). Each round:
train, score the held-out set, let the strategy pick `--batch` pool tickets, reveal their true
labels. Random picks run the same loop. The target is 95% of the accuracy of the same model
trained on the whole pool; "labels needed" is the first crossing of the curve (linear
interpolation between rounds); a strategy's saving is random's mean labels / its mean labels
over the seeds. One seed is not enough: a run's picks feed back into its model, so tiny
numeric differences (another scikit-learn build) move one seed's count by 10-20%.

The model is the baseline's (router/baseline.py: LinearSVC C=2 with class_weight=balanced,
sigmoid calibration over 3 folds, rare classes repeated to fill the folds), made fast for
hundreds of refits: its TF-IDF features (char_wb 1-4 + word 1-2, sublinear tf) are computed
once over all texts (unsupervised, no labels used) instead of refitted each round.
A strategy stops when it crosses the target or reaches `--max-labels` (random: `--max-random`).
The diversity-aware strategy compares tickets in a 300-dimension LSA space (truncated SVD of
the same TF-IDF; unsupervised), where similar wordings land close even without shared n-grams.
Reduced for 2 cores: runs in parallel (`--jobs`), random picks revealed 200 at a time (their
curve does not depend on the step), the others 25 at a time; the saving assumes the model is
retrained after every 25 labels.

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
from sklearn.decomposition import TruncatedSVD
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import normalize

from router import ROOT
from router.baseline import svm, vectorizer
from router.strategies import Diverse, Entropy, LeastConfidence, Margin, RandomSampling

DEFAULT = ROOT.parent / "shared" / "datasets" / "banking77" / "train.csv"


def strategies(seed: int) -> dict:
    return {
        "random": RandomSampling(seed),
        "least_confidence": LeastConfidence(),
        "entropy": Entropy(),
        "margin": Margin(),
        "diverse_margin": Diverse(Margin(), density=2.0, pool=8),
    }


def features(texts):
    return vectorizer().fit_transform(texts).tocsr()


def fit(X, y, folds: int = 3, C: float = 20.0):
    """The baseline's classifier on precomputed features (same rare-class repetition)."""
    classes, counts = np.unique(y, return_counts=True)
    extra = [i for c, n in zip(classes, counts) if n < folds for i in np.flatnonzero(y == c).tolist() * (folds - 1)]
    if extra:
        X, y = sp.vstack([X, X[extra]]), np.concatenate([y, y[extra]])
    return CalibratedClassifierCV(svm(C), method="sigmoid", cv=folds).fit(X, y)


def space(X, dims: int = 300):
    """L2-normalised LSA rows: a dot product is the cosine similarity of two tickets."""
    return normalize(TruncatedSVD(dims, random_state=0).fit_transform(X))


def run(name, strategy, X, Xn, y, test, start, batch, max_labels, target, seed):
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
    return name, seed, {"curve": curve, "seconds": round(time.perf_counter() - t0, 1), "strategy": repr(strategy)}


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


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for k, name in enumerate(res["strategies"]):
        bold = name in ("random", res["best"])
        for j, (seed, run) in enumerate(res["runs"].items()):
            n, acc = zip(*run["strategies"][name]["curve"])
            ax.plot(n, np.array(acc) / run["full_accuracy"], color=f"C{k}", label=None if j else name,
                    lw=2.2 if bold else 1.0, ls="--" if name == "random" else "-", alpha=0.9 if bold else 0.6)
    ax.axhline(0.95, color="grey", lw=0.8, ls=":")
    ax.text(ax.get_xlim()[1], 0.95, " target: 95% of full pool", va="bottom", ha="right", fontsize=8, color="grey")
    ax.set(xlabel="labels used", ylabel="held-out accuracy / full-pool accuracy", ylim=(0.4, 1.0),
           title=f"Active learning on Banking77 (pool {res['pool']}, {len(res['runs'])} seeds, one line each)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
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
         seeds: str = typer.Option("0,1,2", help="comma-separated seeds: held-out split and start labels"),
         jobs: int = typer.Option(2, help="runs simulated in parallel"),
         out: Path = typer.Option(ROOT / "bench" / "results" / "al_sim.json")):
    if not data.exists():
        raise typer.BadParameter(f"{data} not found: the shared datasets live in ../shared/datasets")
    t0 = time.perf_counter()
    df = pd.read_csv(data)
    X, y = features(df.text.tolist()), df.category.to_numpy()
    Xn = space(X)
    seeds_ = [int(s) for s in seeds.split(",")]
    chosen = strategies(0)
    if only:
        chosen = {k: v for k, v in chosen.items() if k in only.split(",") or k == "random"}
    setups = {}
    for seed in seeds_:
        pool, test = train_test_split(np.arange(len(y)), test_size=2000, stratify=y, random_state=seed)
        rng = np.random.default_rng(seed)
        start = np.concatenate([rng.choice(pool[y[pool] == c], init, replace=False) for c in np.unique(y)])
        full = float((fit(X[pool], y[pool]).predict(X[test]) == y[test]).mean())
        setups[seed] = dict(test=test, start=start, full=full, target=0.95 * full)
    tasks = [(k, seed) for k in sorted(chosen, key=lambda k: k != "random") for seed in seeds_]  # longest first
    done = Parallel(n_jobs=jobs)(delayed(run)(
        k, strategies(seed)[k], X, Xn, y, setups[seed]["test"], setups[seed]["start"],
        random_batch if k == "random" else batch, max_random if k == "random" else max_labels,
        setups[seed]["target"], seed) for k, seed in tasks)
    runs = {str(seed): {"full_accuracy": setups[seed]["full"], "target_accuracy": setups[seed]["target"],
                        "strategies": {}} for seed in seeds_}
    for k, seed, r in done:
        r["labels_to_target"] = labels_needed(r["curve"], setups[seed]["target"])
        runs[str(seed)]["strategies"][k] = r
    summary = {}
    for k in chosen:
        need = [runs[str(s)]["strategies"][k]["labels_to_target"] for s in seeds_]
        summary[k] = {"labels_to_target": need, "mean_labels": float(np.mean(need)) if all(need) else None}
    base, rand = summary["random"]["mean_labels"], summary["random"]["labels_to_target"]
    for r in summary.values():
        r["saving_vs_random"] = round(base / r["mean_labels"], 2) if base and r["mean_labels"] else None
        r["saving_per_seed"] = [round(b / n, 2) if b and n else None for b, n in zip(rand, r["labels_to_target"])]
    ranked = [k for k in summary if k != "random" and summary[k]["mean_labels"]]
    res = {"dataset": "banking77 train.csv", "pool": int(len(y) - len(test)), "test": int(len(test)), "init_per_class": init,
           "batch": batch, "random_batch": random_batch, "seeds": seeds_, "strategies": summary,
           "best": min(ranked, key=lambda k: summary[k]["mean_labels"]) if ranked else None,
           "repr": {k: repr(v) for k, v in chosen.items()}, "runs": runs}
    res.update(seconds=round(time.perf_counter() - t0), machine=f"{platform.processor() or platform.machine()}, "
               f"{os.cpu_count()} cores", date=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
               command="python bench/al_sim.py " + " ".join(sys.argv[1:]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    plot(res, out.with_suffix(".png"))
    fulls = ", ".join(f"{setups[s]['full']:.4f}" for s in seeds_)
    t = Table(title=f"labels to reach 95% of full-pool accuracy ({fulls}), start {init}/class, batch {batch}, "
                    f"seeds {seeds}")
    for col in ("strategy", "mean labels", "per seed", "x fewer than random", "per seed "):
        t.add_column(col, justify="left" if col == "strategy" else "right")
    for k, r in sorted(summary.items(), key=lambda kv: kv[1]["mean_labels"] or 1e9):
        t.add_row(k, f"{r['mean_labels']:.0f}" if r["mean_labels"] else "-",
                  " ".join(f"{n:.0f}" if n else "-" for n in r["labels_to_target"]),
                  f"{r['saving_vs_random']:.2f}" if r["saving_vs_random"] else "-",
                  " ".join(f"{x:.2f}" if x else "-" for x in r["saving_per_seed"]))
    Console().print(t)
    Console().print(f"{res['seconds']} s; {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    typer.run(main)
