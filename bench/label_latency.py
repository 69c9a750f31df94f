"""Latency of the labeling app with a big store: from a dispatcher's decision to the next
ticket ready to draw, on a SQLite store of 1,000,000 tickets.

    python bench/label_latency.py [--tickets 1000000] [--decisions 300] [--apptest 40]

Builds the store in a temporary folder with bulk inserts (executemany): N tickets with a
prediction each, 30% of them queued (low confidence or audit), two thirds of the queue already
decided with labels by 20 dispatchers. Then one dispatcher works the queue; each step times
what the app does between the click and the next ticket: `decide` + `next_item` + `counts`
(the sidebar), and every 10th step an `undo` + `next_item` + `counts`.
Measured twice: with the indexes of migration 0002_queue_indexes, and without them.
`--apptest N` also times N full app reruns through Streamlit's AppTest (the script run that
draws the page: decision callback, store calls, widgets), which is the server side of
"next ticket on screen" (the browser's own paint is not included).
Writes bench/results/label_latency.json and prints a table.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.progress import track
from rich.table import Table
from sqlalchemy import text

from labeling import actions
from router import ROOT
from router.catalog import NONE
from router.store import connect, now

DEPTS = ["police", "traffic-police", "urban-mgmt", "housing", "environment", "water", "transport", "health"]
WORDS = ["小区", "路灯", "噪音", "井盖", "物业", "停车", "施工", "垃圾", "漏水", "公交", "占道", "油烟", "电梯", "供暖"]
INDEXES = {"ix_queueitem_status_priority": "queueitem (status, priority)",
           "ix_queueitem_claimed_by_status_done_at": "queueitem (claimed_by, status, done_at)",
           "ix_label_reviewer_created_at": "label (reviewer, created_at)"}


def build(engine, n: int, chunk: int = 100_000) -> dict:
    """Bulk rows through the DB-API (executemany), in the formats SQLAlchemy writes."""
    rng = random.Random(0)
    t0 = now().replace(tzinfo=None) - timedelta(days=30)  # stored as naive UTC text
    ts = lambda d: d.strftime("%Y-%m-%d %H:%M:%S.%f")  # noqa: E731
    reviewers = [f"调度员{i}" for i in range(20)]
    n_queue = n_done = 0
    raw = engine.raw_connection()
    cur = raw.cursor()
    for start in track(range(0, n, chunk), description="building the store"):
        tickets, preds, queue, labels = [], [], [], []
        for i in range(start, min(n, start + chunk)):
            tid, pid = f"T{i:08d}", i + 1
            at = ts(t0 + timedelta(seconds=i * 2.6))
            tickets.append((tid, "".join(rng.choices(WORDS, k=12)) + f"，编号{i}", "电话", at, at))
            top = rng.sample(DEPTS, 3)
            p = sorted([rng.random() for _ in range(3)], reverse=True)
            s = sum(p) + 0.2
            preds.append((pid, tid, "v1", top[0], p[0] / s, json.dumps([[d, x / s] for d, x in zip(top, p)]), at))
            if rng.random() < 0.3:
                n_queue += 1
                done = rng.random() < 2 / 3
                who = rng.choice(reviewers) if done else None
                queue.append((tid, pid, "audit" if rng.random() < 0.05 else "low_confidence", rng.random(),
                              "done" if done else "pending", who, at, at if done else None))
                if done:
                    n_done += 1
                    labels.append((tid, rng.choice(DEPTS), who, "correction", pid, 0, at))
        cur.executemany("INSERT INTO ticket (id, text, channel, received_at, created_at) VALUES (?,?,?,?,?)", tickets)
        cur.executemany("INSERT INTO prediction (id, ticket_id, model_version, department, confidence, topk, "
                        "created_at) VALUES (?,?,?,?,?,?,?)", preds)
        cur.executemany("INSERT INTO queueitem (ticket_id, prediction_id, reason, priority, status, claimed_by, "
                        "created_at, done_at) VALUES (?,?,?,?,?,?,?,?)", queue)
        cur.executemany("INSERT INTO label (ticket_id, department, reviewer, source, prediction_id, undone, "
                        "created_at) VALUES (?,?,?,?,?,?,?)", labels)
        raw.commit()
    cur.execute("ANALYZE")
    raw.commit()
    raw.close()
    return {"tickets": n, "predictions": n, "queue_items": n_queue, "labels": n_done,
            "pending": n_queue - n_done}


def work(engine, steps: int, reviewer: str = "bench") -> np.ndarray:
    """Milliseconds from each decision to the next ticket (and the counts) being ready."""
    rng = random.Random(1)
    item = actions.next_item(engine, reviewer)
    out = []
    for i in range(steps):
        t = time.perf_counter()
        if i % 10 == 9:
            actions.undo(engine, reviewer)
        else:
            actions.decide(engine, reviewer, item.queue_id,
                           rng.choice([item.top[0][0], item.top[1][0], actions.SKIP, NONE]))
        item = actions.next_item(engine, reviewer)
        actions.counts(engine, reviewer)
        out.append((time.perf_counter() - t) * 1000)
    return np.array(out)


def apptest(steps: int) -> np.ndarray:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "labeling" / "app.py"), default_timeout=120).run()
    at.text_input[0].input("bench_app")
    at.button[0].click().run()
    out = []
    for i in range(steps):
        t = time.perf_counter()
        at.button(key="accept_1" if i % 2 else "skip").click().run()
        out.append((time.perf_counter() - t) * 1000)
    return np.array(out)


def stats(ms: np.ndarray) -> dict:
    return {"n": int(len(ms)), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "max_ms": round(float(ms.max()), 2)}


def main(tickets: int = typer.Option(1_000_000, help="tickets in the store"),
         decisions: int = typer.Option(300, help="timed decisions per run"),
         apptest_runs: int = typer.Option(40, "--apptest", help="timed AppTest reruns (0 = skip)"),
         out: Path = typer.Option(ROOT / "bench" / "results" / "label_latency.json")):
    folder = Path(tempfile.mkdtemp(prefix="label_latency_"))
    url = f"sqlite:///{folder / 'router.db'}"
    engine = connect(url)
    t = time.perf_counter()
    sizes = build(engine, tickets)
    build_s = time.perf_counter() - t
    res = {"store": sizes, "build_seconds": round(build_s, 1),
           "db_mb": round((folder / "router.db").stat().st_size / 2**20), "target_p95_ms": 150}
    res["with_indexes"] = stats(work(engine, decisions))
    if apptest_runs:
        os.environ["ROUTER_STORE__URL"] = url
        res["apptest_rerun"] = stats(apptest(apptest_runs))
    with engine.begin() as c:
        for name in INDEXES:
            c.execute(text(f"DROP INDEX {name}"))
        c.execute(text("ANALYZE"))
    res["without_0002_indexes"] = stats(work(engine, max(30, decisions // 10), "bench2"))
    res.update(indexes=INDEXES, machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               python=sys.version.split()[0], date=now().strftime("%Y-%m-%d"),
               command="python bench/label_latency.py " + " ".join(sys.argv[1:]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, ensure_ascii=False))
    tab = Table(title=f"decision -> next ticket ready, store of {tickets:,} tickets (SQLite, {res['db_mb']} MB)")
    for col in ("measured", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        tab.add_column(col, justify="left" if col == "measured" else "right")
    for key, label in [("with_indexes", "store calls (decide + next + counts)"),
                       ("apptest_rerun", "full app rerun (AppTest)"),
                       ("without_0002_indexes", "store calls, without 0002 indexes")]:
        if key in res:
            s = res[key]
            tab.add_row(label, str(s["n"]), *(f"{s[k]:.1f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")))
    Console().print(tab)
    Console().print(f"store built in {build_s:.0f} s: {sizes}; results in {out}")


if __name__ == "__main__":
    typer.run(main)
