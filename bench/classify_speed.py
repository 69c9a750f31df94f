"""`router classify` end to end on the CPU baseline: tickets/s and peak memory.

    python bench/classify_speed.py [--tickets 100000] [--big 50]

A store with the sample history and a trained baseline is made once; then each case runs the
real CLI in a fresh copy of it, as a separate process (peak RSS of that process):
- `--tickets` sample tickets (cycled, unique ids and texts), default batch size;
- `--big` tickets of 1 MB of text each (models and the near-duplicate check read the first
  `classifier.MAX_CHARS` characters; the store keeps all of it), every one queued.
The model alone (`predict_proba` over the same tickets, in one process) gives the ceiling.
Writes bench/results/classify_speed.json and prints a table.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from router import ROOT

RUN = ("import resource, sys\nfrom router.cli import app\n"
       "try:\n    app(sys.argv[1:])\nfinally:\n"
       "    print(f'maxrss_kb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}', file=sys.stderr)\n")


def _cli(home: Path, *args: str, code: Path = ROOT) -> tuple[str, int, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")} | {"ROUTER_PATHS__HOME": str(home)}
    env["PYTHONPATH"] = str(code)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", RUN, *args], env=env, capture_output=True, text=True, cwd=code)
    wall = time.perf_counter() - t0
    if res.returncode:
        raise RuntimeError(f"router {' '.join(args)} exited {res.returncode}:\n{res.stderr[-2000:]}")
    rss = int(re.search(r"maxrss_kb=(\d+)", res.stderr).group(1))
    return " ".join(res.stderr.split()), rss, wall


def _tickets(path: Path, n: int, big: bool = False) -> Path:
    rows = [json.loads(x) for x in (ROOT / "data" / "sample" / "history.jsonl").read_text(encoding="utf-8").splitlines()]
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            r = rows[i % len(rows)]
            text = (r["text"] * (1_000_000 // len(r["text"]) + 1))[:1_000_000] if big else f"{r['text']} {i}"
            f.write(json.dumps({"id": f"S{i:07d}", "text": text, "title": r.get("title"),
                                "received_at": r["received_at"], "channel": r.get("channel")}, ensure_ascii=False) + "\n")
    return path


def main(tickets: int = typer.Option(100_000), big: int = typer.Option(50),
         before: Path = typer.Option(None, help="another checkout (e.g. `git worktree add /tmp/before REV`) "
                                                 "to run the same cases with, in the same run"),
         out: Path = typer.Option(ROOT / "bench" / "results" / "classify_speed.json")):
    from router import config, registry
    from router.classifier import model_input
    from router.store import connect

    res = {"cases": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        templates = {}
        cases = [(f"{tickets:,} sample tickets", tickets, False, []),
                 (f"{big} tickets of 1 MB", big, True, ["--threshold", "1"])]
        for code, label in [(ROOT, "this checkout")] + ([(before, f"before ({before})")] if before else []):
            template = templates[label] = tmp / f"template-{len(templates)}"
            _cli(template, "import", str(ROOT / "data" / "sample" / "history.jsonl"), code=code)
            _cli(template, "train", code=code)
            for name, n, is_big, extra in cases:
                home = tmp / f"{label[:6]}-{name}".replace(" ", "_")
                shutil.copytree(template, home)
                src = _tickets(tmp / f"{name}.jsonl".replace(" ", "_"), n, is_big)
                said, rss, wall = _cli(home, "classify", str(src), "-o", str(home / "routed.jsonl"), *extra, code=code)
                rate = float(re.search(r"([\d.]+) tickets/s", said).group(1))
                res["cases"].append({"code": label, "case": name, "tickets": n, "tickets_per_s": rate,
                                     "wall_s": round(wall, 1), "peak_rss_mb": round(rss / 1024), "summary": said[-300:]})
        cfg = config.load(env={"ROUTER_PATHS__HOME": str(templates["this checkout"])})
        _, clf = registry.load(connect(config.store_url(cfg)), None, cfg)
        src = [json.loads(x) for x in (tmp / f"{tickets:,} sample tickets.jsonl".replace(" ", "_"))
               .read_text(encoding="utf-8").splitlines()[:20000]]
        texts = [model_input(r["text"], r.get("title")) for r in src]
        t0 = time.perf_counter()
        for i in range(0, len(texts), 512):
            clf.predict_proba(texts[i:i + 512])
        res["model_alone_tickets_per_s"] = round(len(texts) / (time.perf_counter() - t0))
    res.update(machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               date=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
               command="python bench/classify_speed.py " + " ".join(sys.argv[1:]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, ensure_ascii=False))
    t = Table(title=f"router classify end to end, CPU baseline (model alone: {res['model_alone_tickets_per_s']:,} tickets/s)")
    for col in ("code", "case", "tickets/s", "wall s", "peak RSS MB"):
        t.add_column(col, justify="left" if col in ("code", "case") else "right")
    for c in res["cases"]:
        t.add_row(c["code"], c["case"], f"{c['tickets_per_s']:,.0f}", f"{c['wall_s']}", f"{c['peak_rss_mb']:,}")
    Console(width=150).print(t)


if __name__ == "__main__":
    typer.run(main)
