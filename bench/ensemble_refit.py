"""The ensemble's baseline member on day 0 of the Chinese month (issue 20): its held-out fit (what an
ensemble registered before it was refit) against its refit on every label (what it registers now),
each scored on the loop's 1,500 held-out tickets, as bench/loop_sim.py scores its members.

    python bench/ensemble_refit.py

The month's history is imported into a throwaway store as `router import` does, split as `router train`
does (training.train.split_data); the member is built, carried and refit as training.train.refit and
EnsembleClassifier.carry do for an ensemble. The LLM member is not run (it is not refit: no GPU here).
Writes bench/results/ensemble_refit.json and prints a table.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.loop_sim import chinese
from router import ROOT, config
from router.catalog import load_catalog
from router.classifier import model_input
from router.store import connect
from training import data as data_mod, replay, train as train_mod


def main() -> None:
    setup = chinese()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ROUTER_PATHS__HOME"] = str(Path(tmp) / "home")
        hist = Path(tmp) / "history.jsonl"
        hist.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in setup.history), encoding="utf-8")
        subprocess.run(["router", "import", str(hist)], check=True, capture_output=True)
        cfg = config.load()
        catalog = load_catalog(setup.catalog)
        labeled = data_mod.from_store(connect(config.store_url(cfg)), catalog)
        s = train_mod.split_data(cfg, labeled, None)
        every = replay.mix(labeled, None, cfg.retrain.old_sample, cfg.retrain.recent_weight,
                           tuple(cfg.retrain.weighted_sources), cfg.train.seed, cfg.retrain.known_wrong_weight)
        no_fit = "none" in labeled.labels
        t0 = time.perf_counter()
        held = train_mod.build("baseline", cfg, catalog, no_fit, s.fit.labels).fit(s.fit.texts, s.fit.labels)
        t1 = time.perf_counter()
        refit = train_mod.build("baseline", cfg, catalog, no_fit, every.labels)
        refit.carry(held)
        refit.fit(every.texts, every.labels)
        t2 = time.perf_counter()
    rows = [r for r in setup.test if r.get("label")]
    texts, truth = [model_input(r["text"], r.get("title")) for r in rows], np.array([r["label"] for r in rows])
    acc = {name: round(float((m.predict(texts) == truth).mean()), 4) for name, m in (("held_out_fit", held),
                                                                                    ("refit", refit))}
    res = {"dataset": "cn (data/sample/month/history.jsonl, test.jsonl)", "test": len(rows),
           "labels": {"history": len(labeled), "held_out_fit": len(s.fit), "calibration": len(s.cal),
                      "test_slice": len(s.test), "refit": len(every)},
           "accuracy": acc, "fit_seconds": {"held_out_fit": round(t1 - t0, 1), "refit": round(t2 - t1, 1)},
           "gpu_loop_day0": {"ensemble_baseline_member": 0.357, "baseline_kind": 0.447,
                             "source": "bench/results/loop_sim_cn_llm.json, loop_sim_cn_baseline.json"},
           "loadavg": os.getloadavg(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "command": "python bench/ensemble_refit.py"}
    (ROOT / "bench" / "results" / "ensemble_refit.json").write_text(json.dumps(res, indent=1) + "\n")
    t = Table(title=f"the ensemble's baseline member, day 0 of the Chinese month, {len(rows)} held-out tickets")
    for c in ("fit", "labels", "accuracy"):
        t.add_column(c)
    t.add_row("held-out fit (before)", str(len(s.fit)), f"{acc['held_out_fit']:.3f}")
    t.add_row("refit on every label (now)", str(len(every)), f"{acc['refit']:.3f}")
    Console().print(t)


if __name__ == "__main__":
    main()
