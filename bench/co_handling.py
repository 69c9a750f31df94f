"""Co-handling suggestions (主办 / 协办): precision and recall on held-out tickets.

    python bench/co_handling.py [--share 0.12] [--seed 0]

The shipped sample's history and held-out test, with `share` of the tickets of departments that
have overlapping duties made co-handled (data/generate.py `co_handled`: the lead department's
matter plus a partner's, `co_departments` = [partner]). Through the product: `router import` of
the history (co_departments included), `router train`, `router classify` of the test (labels and
co_departments hidden). A suggestion is right when it names a true co-handler of the ticket.
Reported for the configured rule ([classify] co_min_p, co_min_pairs: the output's own
`co_departments`) and for other probability floors on the same output; plus the primary
department's accuracy on co-handled and other tickets.

Writes bench/results/co_handling.json and prints a table.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from router import ROOT

SAMPLE = ROOT / "data" / "sample"
OUT = ROOT / "bench" / "results" / "co_handling.json"


def _rows(name: str) -> list[dict]:
    return [json.loads(x) for x in (SAMPLE / name).read_text(encoding="utf-8").splitlines() if x.strip()]


def score(rows: list[dict], truth: dict[str, list[str]], suggested) -> dict:
    """Precision and recall of suggested co-handlers against the true ones."""
    tp = fp = fn = 0
    for r in rows:
        got, want = set(suggested(r)), set(truth.get(r["id"], []))
        tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
    return {"suggested": tp + fp, "true": tp + fn, "right": tp,
            "precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None}


def main(share: float = typer.Option(0.12, help="share of partner departments' tickets made co-handled"),
         seed: int = typer.Option(0), out: Path = typer.Option(OUT)):
    sys.path.insert(0, str(ROOT / "data"))
    import generate
    from typer.testing import CliRunner

    from router import cohandling, config
    from router.cli import app
    from router.store import connect

    t0 = time.perf_counter()
    history = generate.co_handled(random.Random(seed), _rows("history.jsonl"), share)
    test = generate.co_handled(random.Random(seed + 1), _rows("test.jsonl"), share)
    truth = {r["id"]: r.get("co_departments", []) for r in test}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg_path = tmp / "router.toml"
        cfg_path.write_text(f'[paths]\nhome = "{tmp / "home"}"\ncatalog = "{ROOT / "data" / "departments.json"}"\n')
        env = {"ROUTER_CONFIG": str(cfg_path)}
        (tmp / "h.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in history), encoding="utf-8")
        (tmp / "t.jsonl").write_text("".join(json.dumps({k: r[k] for k in ("id", "text", "received_at", "channel") if k in r},
                                                        ensure_ascii=False) + "\n" for r in test), encoding="utf-8")
        run = CliRunner()
        for args in (["import", str(tmp / "h.jsonl")], ["train"], ["classify", str(tmp / "t.jsonl"), "-o", str(tmp / "o.jsonl")]):
            res = run.invoke(app, args, env=env)
            assert res.exit_code == 0, res.output
        routed = [json.loads(x) for x in (tmp / "o.jsonl").read_text(encoding="utf-8").splitlines()]
        cfg = config.load(cfg_path, env={})
        known = cohandling.pairs(connect(config.store_url(cfg)))
    label = {r["id"]: r["label"] for r in test}
    configured = score(routed, truth, lambda r: [x["department"] for x in r["co_departments"]])
    grid = {}
    for p in (0.05, 0.1, 0.15, 0.2, 0.3, 0.4):
        grid[str(p)] = score(routed, truth, lambda r: [d for d, _ in cohandling.suggest(
            [(x["department"], x["p"]) for x in r["top"]], known, p, cfg.classify.co_min_pairs)])
    co_ids = {t for t, c in truth.items() if c}
    acc = lambda ids: sum(r["department"] == label[r["id"]] for r in routed if r["id"] in ids) / max(1, len(ids))  # noqa: E731
    res = {"share": share, "seed": seed, "n_test": len(test), "n_co_test": len(co_ids),
           "n_co_history": sum(bool(r.get("co_departments")) for r in history), "pairs_known": len(known),
           "rule": {"co_min_p": cfg.classify.co_min_p, "co_min_pairs": cfg.classify.co_min_pairs},
           "configured": configured, "by_min_p": grid,
           "primary_accuracy": {"co_handled": acc(co_ids), "others": acc({r["id"] for r in test} - co_ids)},
           "seconds": round(time.perf_counter() - t0, 1),
           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
           "command": "python bench/co_handling.py " + " ".join(sys.argv[1:])}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, ensure_ascii=False))
    t = Table(title=f"co-handling suggestions on {len(test)} held-out tickets ({len(co_ids)} co-handled), "
                    f"pairs seen together in >= {cfg.classify.co_min_pairs} labels")
    for col in ("min p", "suggested", "right", "precision", "recall"):
        t.add_column(col, justify="right")
    f = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
    for p, g in grid.items():
        mark = " (configured)" if float(p) == cfg.classify.co_min_p else ""
        t.add_row(p + mark, str(g["suggested"]), str(g["right"]), f(g["precision"]), f(g["recall"]))
    Console(width=150).print(t)
    print(f"primary department accuracy: co-handled {res['primary_accuracy']['co_handled']:.3f}, "
          f"others {res['primary_accuracy']['others']:.3f}; {res['seconds']} s; {out}")


if __name__ == "__main__":
    typer.run(main)
