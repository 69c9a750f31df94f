"""`router classify` end to end on the CPU baseline: tickets/s, start-up, CPU seconds and peak memory.

    taskset -c 0,1 python bench/classify_speed.py [--tickets 50000] [--long 20000] [--big 20] [--before main]

Two stores are made once, each with a trained baseline: the sample history (short tickets) and
the realistic history (data/realistic: a title, then ~400 characters). Each case runs the real
CLI in a fresh copy of one, as a separate process (peak RSS of that process):
- `--tickets` sample tickets (cycled, unique ids and texts), default batch size;
- `--long` realistic tickets (cycled from data/realistic, unique ids and texts), with incidents (并单) on,
  then off (`[incidents] enabled = false`): the cycled copies keep their history ticket's time and place,
  so nearly every one joins an incident, the costliest case for linking;
- `--big` tickets of 1 MB of text each (models and the near-duplicate check read the first
  `classifier.MAX_CHARS` characters; the store keeps all of it), every one queued;
- start-up: `router classify` of one realistic ticket, wall seconds of the whole process
  (interpreter, imports, model load, one ticket, exit).
`--write-batch N` adds the realistic case with incidents on, stored in parts of N ([store] write_batch; this
checkout only). Every case logs its write transactions ([store] lock_log): the longest time one held SQLite's
write lock is in the JSON and the table (reviewers share the store).
`--before REV` runs the same cases with another version of the code in the same run (a
temporary `git worktree` of REV, or a folder holding a checkout), and the table gives the
ratio this/before for each case: on a shared machine only ratios within one run compare.
Each case also records the CPU seconds (user + system) of its process, which a loaded machine
inflates far less than wall time, and the JSON the load average before and after the run.
The model alone (`predict_proba` over the same tickets, in one process) gives the ceiling.
Writes bench/results/classify_speed.json and prints a table.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from router import ROOT

RUN = ("import resource, sys\nfrom router.cli import app\n"
       "try:\n    app(sys.argv[1:])\nfinally:\n"
       "    print(f'maxrss_kb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}', file=sys.stderr)\n")


def _cli(home: Path, *args: str, code: Path = ROOT, env_extra: dict | None = None) -> tuple[str, int, float, float]:
    """(what it printed, peak RSS kB, wall seconds, CPU seconds) of one `router` process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")} | {"ROUTER_PATHS__HOME": str(home)}
    env["PYTHONPATH"] = str(code)
    env |= env_extra or {}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", RUN, *args], env=env, capture_output=True, text=True, cwd=code)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if res.returncode:
        raise RuntimeError(f"router {' '.join(args)} exited {res.returncode}:\n{res.stderr[-2000:]}")
    rss = int(re.search(r"maxrss_kb=(\d+)", res.stderr).group(1))
    return " ".join(res.stderr.split()), rss, wall, cpu


def _tickets(path: Path, n: int, big: bool = False, folder: str = "sample") -> Path:
    rows = [json.loads(x) for x in (ROOT / "data" / folder / "history.jsonl").read_text(encoding="utf-8").splitlines()]
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            r = rows[i % len(rows)]
            text = (r["text"] * (1_000_000 // len(r["text"]) + 1))[:1_000_000] if big else f"{r['text']} {i}"
            f.write(json.dumps({"id": f"S{i:07d}", "text": text, "title": r.get("title"),
                                "received_at": r["received_at"], "channel": r.get("channel")}, ensure_ascii=False) + "\n")
    return path


@contextmanager
def _checkout(before: str | None):
    """The code to compare with: a folder as it is, or a temporary git worktree of a revision."""
    if before is None or Path(before).is_dir():
        yield Path(before) if before else None
        return
    tmp = Path(tempfile.mkdtemp()) / "before"
    subprocess.run(["git", "worktree", "add", "--detach", str(tmp), before], cwd=ROOT, check=True, capture_output=True)
    try:
        yield tmp
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tmp)], cwd=ROOT, capture_output=True)


def _longest_hold(path: Path) -> float | None:
    """The longest a write transaction held SQLite's write lock, from a [store] lock_log."""
    held = [float(x.split()[1]) for x in path.read_text().splitlines()] if path.exists() else []
    return round(max(held), 3) if held else None


def main(tickets: int = typer.Option(50_000), long: int = typer.Option(20_000), big: int = typer.Option(20),
         write_batch: int = typer.Option(None, help="also the realistic case with incidents on, stored in parts of this "
                                                    "many tickets ([store] write_batch; this checkout only)"),
         before: str = typer.Option(None, help="a git revision (checked out in a temporary worktree) or a folder "
                                               "with another checkout: the same cases with that code, in this run"),
         out: Path = typer.Option(ROOT / "bench" / "results" / "classify_speed.json")):
    from router import config, registry
    from router.classifier import model_input
    from router.store import connect

    res = {"cases": [], "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    off = {"ROUTER_INCIDENTS__ENABLED": "false"}
    with tempfile.TemporaryDirectory() as tmp, _checkout(before) as other:
        tmp = Path(tmp)
        templates = {}
        cases = [(f"{tickets:,} sample tickets", "sample", tickets, False, [], {}),
                 (f"{long:,} realistic tickets (~400 characters)", "realistic", long, False, [], {}),
                 (f"{long:,} realistic tickets, incidents off", "realistic", long, False, [], off),
                 (f"{big} tickets of 1 MB", "sample", big, True, ["--threshold", "1"], {}),
                 ("start-up: one realistic ticket", "realistic", 1, False, [], {})]
        srcs = {name: _tickets(tmp / f"case{i}.jsonl", n, is_big, folder)
                for i, (name, folder, n, is_big, _, _) in enumerate(cases)}
        if write_batch:
            srcs[f"{long:,} realistic tickets, write_batch {write_batch}"] = srcs[cases[1][0]]
        for code, label in [(ROOT, "this checkout")] + ([(other, f"before ({before})")] if other else []):
            for folder in ("sample", "realistic"):
                template = templates[label, folder] = tmp / f"template-{len(templates)}"
                _cli(template, "import", str(ROOT / "data" / folder / "history.jsonl"), code=code)
                t0 = time.perf_counter()
                _cli(template, "train", code=code)
                res.setdefault("train_s", {})[f"{label}, {folder}"] = round(time.perf_counter() - t0, 1)
            parts = [(f"{long:,} realistic tickets, write_batch {write_batch}", "realistic", long, False, [],
                      {"ROUTER_STORE__WRITE_BATCH": str(write_batch)})] if write_batch and code == ROOT else []
            for i, (name, folder, n, is_big, extra, env) in enumerate(cases + parts):
                home = tmp / f"{len(templates)}-{i}"
                shutil.copytree(templates[label, folder], home)
                log = tmp / f"locks-{len(templates)}-{i}"
                said, rss, wall, cpu = _cli(home, "classify", str(srcs[name]), "-o", str(tmp / f"routed-{i}.jsonl"),
                                            *extra, code=code, env_extra=env | {"ROUTER_STORE__LOCK_LOG": str(log)})
                rate = float(re.search(r"([\d.]+) tickets/s", said).group(1))
                res["cases"].append({"code": label, "case": name, "tickets": n, "tickets_per_s": rate,
                                     "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                                     "peak_rss_mb": round(rss / 1024), "lock_held_max_s": _longest_hold(log),
                                     "summary": said[-300:]})
        cfg = config.load(env={"ROUTER_PATHS__HOME": str(templates["this checkout", "realistic"])})
        _, clf = registry.load(connect(config.store_url(cfg)), None, cfg)
        src = [json.loads(x) for x in srcs[cases[1][0]].read_text(encoding="utf-8").splitlines()[:10000]]
        texts = [model_input(r["text"], r.get("title")) for r in src]
        t0 = time.perf_counter()
        for i in range(0, len(texts), 512):
            clf.predict_proba(texts[i:i + 512])
        res["model_alone_tickets_per_s"] = round(len(texts) / (time.perf_counter() - t0))
    base = {c["case"]: c for c in res["cases"] if c["code"] != "this checkout"}
    for c in res["cases"]:
        b = base.get(c["case"]) if c["code"] == "this checkout" else None
        if b:
            key = "wall_s" if c["case"].startswith("start-up") else "tickets_per_s"
            c["ratio_to_before"] = round(c[key] / b[key], 2) if b[key] else None
            c["cpu_ratio_to_before"] = round(c["cpu_s"] / b["cpu_s"], 2) if b["cpu_s"] else None
    res.update(machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               load_average_end=[round(x, 2) for x in os.getloadavg()],
               pinned=sorted(os.sched_getaffinity(0)), date=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
               command="python bench/classify_speed.py " + " ".join(sys.argv[1:]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, ensure_ascii=False))
    t = Table(title=f"router classify end to end, CPU baseline (model alone, realistic tickets: "
                    f"{res['model_alone_tickets_per_s']:,} tickets/s)")
    for col in ("code", "case", "tickets/s", "wall s", "CPU s", "peak RSS MB", "lock held s", "this / before",
                "CPU this / before"):
        t.add_column(col, justify="left" if col in ("code", "case") else "right")
    for c in res["cases"]:
        t.add_row(c["code"], c["case"], f"{c['tickets_per_s']:,.0f}", f"{c['wall_s']}", f"{c['cpu_s']}",
                  f"{c['peak_rss_mb']:,}", f"{c['lock_held_max_s']}", f"{c['ratio_to_before']}x" if c.get("ratio_to_before") else "",
                  f"{c['cpu_ratio_to_before']}x" if c.get("cpu_ratio_to_before") else "")
    Console(width=160).print(t)


if __name__ == "__main__":
    typer.run(main)
