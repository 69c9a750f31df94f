"""Ten dispatchers work the review queue while `router classify` and `router retrain` write.

    python bench/concurrency.py [--reviewers 10] [--decisions 1000] [--url postgresql+psycopg://...]

Sets up a store (SQLite in a temporary folder unless --url names another database, which is
emptied first) with imported history, a first baseline and reviewers x decisions x 1.3 pending
queue items. Then, at the same time:
- `router classify` runs over and over on fresh tickets (threshold 0.99: most of them are queued);
- `router retrain --force` runs over and over;
- each reviewer process claims, decides (accept, correct, skip, no fit), every 10th step undoes
  and every 25th step signs out (release), until it has made --decisions decisions.
Checks, from the reviewers' own logs against the store: errors (any exception in a reviewer,
a writer run that failed), lost decisions (a decision that is not in the store as made), and
tickets claimed by two reviewers at once. Writes bench/results/concurrency_<backend>.json
(--out) and prints a table; exits 1 when any check fails.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from labeling import actions  # noqa: E402
from router import store  # noqa: E402
from router.catalog import NONE, to_label  # noqa: E402
from router.store import Label, Prediction, QueueItem, Session, SQLModel, Ticket, connect, migrate, now  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import select  # noqa: E402

SAMPLE = ROOT / "data" / "sample"
DEPTS = ["police", "traffic-police", "urban-mgmt", "housing", "environment", "water", "transport", "health"]
TOML = ("[baseline]\nC = 2.0\nngram_max = 3\nmax_features = 30000\n"
        "[retrain]\nmin_new_labels = 1\n[gate]\nmax_macro_f1_drop = 1.0\nmax_department_f1_drop = 1.0\n"
        # one decision per item, as the check below counts them: an incident's decision labels every
        # member (tests/test_incidents.py covers that), which this log replay cannot attribute
        "[incidents]\nenabled = false\n")


def _cli(*args, env, log) -> int:
    with open(log, "a") as f:
        return subprocess.call([sys.executable, "-m", "router.cli", *args], env=env, stdout=f, stderr=f,
                               cwd=env["ROUTER_WORKDIR"])


def setup(url: str | None, folder: Path, pending: int) -> tuple[str, dict]:
    """Config, store with history and a first model, `pending` queue items; returns (url, env)."""
    (folder / "router.toml").write_text(TOML)
    env = {**os.environ, "ROUTER_CONFIG": str(folder / "router.toml"), "ROUTER_PATHS__HOME": str(folder / "home"),
           "ROUTER_WORKDIR": str(folder), "PYTHONPATH": str(ROOT)}
    if url:
        engine = connect(url)
        with engine.begin() as c:  # a clean slate
            for t in reversed(SQLModel.metadata.sorted_tables):
                c.execute(t.delete())
        migrate(url)
        env["ROUTER_STORE__URL"] = url
    else:
        url = f"sqlite:///{folder / 'home' / 'router.db'}"
        env.pop("ROUTER_STORE__URL", None)
    history = folder / "history.jsonl"
    history.write_text("".join((SAMPLE / "history.jsonl").read_text(encoding="utf-8").splitlines(True)[:1200]),
                       encoding="utf-8")
    log = folder / "setup.log"
    assert _cli("import", str(history), env=env, log=log) == 0, log.read_text()
    assert _cli("retrain", "--force", env=env, log=log) == 0, log.read_text()
    engine = connect(url)
    texts = [json.loads(x)["text"] for x in (SAMPLE / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    rng = random.Random(0)
    with Session(engine) as s:
        for i in range(pending):
            tid = f"Q{i:06d}"
            s.add(Ticket(id=tid, text=f"{texts[i % len(texts)]}（{i}）"))
            s.flush()
            top = rng.sample(DEPTS, 3)
            p = Prediction(ticket_id=tid, model_version="seed", department=top[0], confidence=0.4,
                           topk=[[top[0], 0.4], [top[1], 0.35], [top[2], 0.25]])
            s.add(p)
            s.flush()
            s.add(QueueItem(ticket_id=tid, prediction_id=p.id, priority=rng.random(),
                            reason="audit" if i % 20 == 0 else "low_confidence"))
        s.commit()
    return url, env


def writer(kind: str, env: dict, folder: Path, stop: Path, runs: Path) -> None:
    """Run `router classify` (fresh tickets each time) or `router retrain --force` until `stop` exists."""
    day = (SAMPLE / "day.jsonl").read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while not stop.exists():
        if kind == "classify":
            src = folder / f"day{i}.jsonl"
            src.write_text("".join(json.dumps({**json.loads(x), "id": f"W{i}-{j}"}, ensure_ascii=False) + "\n"
                                   for j, x in enumerate(day)), encoding="utf-8")
            args = ["classify", str(src), "--threshold", "0.99", "-o", str(folder / f"day{i}.routed.jsonl")]
        else:
            args = ["retrain", "--force"]
        t0 = time.time()
        rc = _cli(*args, env=env, log=folder / f"{kind}.log")
        out.append({"start": t0, "end": time.time(), "rc": rc})
        runs.write_text(json.dumps(out))
        i += 1


def reviewer(url: str, name: str, n: int, seed: int, result: str) -> None:
    """Work the queue for `n` decisions; log every claim, decision, undo and error."""
    engine = connect(url)
    rng = random.Random(seed)
    log = {"name": name, "claims": [], "events": [], "errors": [], "empty": 0}  # events: [d, qid, choice] | [u, qid]

    def attempt(f, *args):
        try:
            return True, f(*args)
        except Exception as e:  # noqa: BLE001 - every failure is counted
            log["errors"].append(f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
            return False, None

    log["start"] = time.time()
    made = 0
    while made < n:
        ok, item = attempt(actions.next_item, engine, name)
        if not ok:
            continue
        if item is None:
            log["empty"] += 1
            time.sleep(0.05)
            if log["empty"] > 600:
                break
            continue
        log["claims"].append(item.queue_id)
        choice = rng.choice([item.top[0][0], item.top[1][0], actions.SKIP, NONE])
        ok, label = attempt(actions.decide, engine, name, item.queue_id, choice)
        if not ok:
            continue
        made += 1
        log["events"].append(["d", item.queue_id, choice])
        if made % 25 == 0:
            attempt(actions.release, engine, name)  # holds nothing now: signs out and in again
        if made % 10 == 0:
            ok, qid = attempt(actions.undo, engine, name)
            if ok:
                log["events"].append(["u", qid])
    log["end"] = time.time()
    log["retried"] = store.retried[0]
    Path(result).write_text(json.dumps(log))


def check(url: str, logs: list[dict]) -> dict:
    """Errors, lost decisions and double claims, from the reviewers' logs against the store."""
    claimed_by = defaultdict(set)
    final: dict[int, tuple[str, str]] = {}  # queue id -> (reviewer, choice) still standing
    undone_labels, bad_undos = Counter(), 0
    for lg in logs:
        for q in lg["claims"]:
            claimed_by[q].add(lg["name"])
        for kind, qid, *choice in lg["events"]:  # replayed in order
            if kind == "d":
                final[qid] = (lg["name"], choice[0])
            elif (prev := final.pop(qid, None)) is None:
                bad_undos += 1  # undid something that was not this reviewer's last standing decision
            elif prev[1] != actions.SKIP:
                undone_labels[lg["name"]] += 1
    engine = connect(url)
    lost = []
    with Session(engine) as s:
        items = {q.id: q for q in s.exec(select(QueueItem).where(QueueItem.id.in_(list(final))))}
        app_labels = defaultdict(list)
        for lab in s.exec(select(Label).where(Label.source.in_(actions.SOURCES))):
            app_labels[lab.ticket_id].append(lab)
    for qid, (who, choice) in final.items():
        q = items.get(qid)
        want = "skipped" if choice == actions.SKIP else "done"
        standing = [lab for lab in app_labels.get(q.ticket_id, []) if not lab.undone] if q else []
        ok = q is not None and q.status == want and q.claimed_by == who
        if choice != actions.SKIP:
            dept = to_label(choice)
            ok = ok and [(lab.reviewer, lab.department) for lab in standing] == [(who, dept)]
        else:
            ok = ok and not standing
        if not ok:
            lost.append(qid)
    all_undone = sum(1 for labs in app_labels.values() for lab in labs if lab.undone)
    return {"errors": sum(len(lg["errors"]) for lg in logs),
            "error_kinds": dict(Counter(e.split(":")[0] + ": " + e.split(":", 1)[1][:60]
                                        for lg in logs for e in lg["errors"]).most_common(5)),
            "decisions": sum(e[0] == "d" for lg in logs for e in lg["events"]),
            "undos": sum(e[0] == "u" for lg in logs for e in lg["events"]),
            "standing_decisions": len(final),
            "lost_decisions": len(lost), "bad_undos": bad_undos,
            "retried_transactions": sum(lg.get("retried", 0) for lg in logs),
            "undone_labels_expected": sum(undone_labels.values()), "undone_labels_in_store": all_undone,
            "double_claims": sum(1 for v in claimed_by.values() if len(v) > 1)}


def _masked(arg: str) -> str:
    return make_url(arg).render_as_string(hide_password=True) if "://" in arg else arg


def main(reviewers: int = typer.Option(10, help="reviewer processes"),
         decisions: int = typer.Option(1000, help="decisions per reviewer"),
         url: str = typer.Option("", help="store URL (emptied first); default: SQLite in a temporary folder"),
         out: Path = typer.Option(None, help="JSON results (default bench/results/concurrency_<backend>.json)")):
    folder = Path(tempfile.mkdtemp(prefix="concurrency_"))
    t0 = time.time()
    url, env = setup(url or None, folder, int(reviewers * decisions * 1.3) + 50)
    setup_s = time.time() - t0
    backend = url.split(":", 1)[0].split("+")[0]
    stop = folder / "stop"
    ctx = mp.get_context("spawn")
    writers = {k: ctx.Process(target=writer, args=(k, env, folder, stop, folder / f"{k}.runs.json"))
               for k in ("classify", "retrain")}
    for w in writers.values():
        w.start()
    time.sleep(3)  # the writers' first runs are under way before the reviewers start
    procs = [ctx.Process(target=reviewer, args=(url, f"调度员{i}", decisions, i, str(folder / f"r{i}.json")))
             for i in range(reviewers)]
    t = time.time()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    work_s = time.time() - t
    stop.touch()
    for w in writers.values():
        w.join()
    logs = [json.loads((folder / f"r{i}.json").read_text()) for i in range(reviewers)
            if (folder / f"r{i}.json").exists()]
    res = check(url, logs)
    start, end = min(lg["start"] for lg in logs), max(lg["end"] for lg in logs)
    for k in writers:
        runs = json.loads((folder / f"{k}.runs.json").read_text()) if (folder / f"{k}.runs.json").exists() else []
        during = [r for r in runs if r["start"] < end and r["end"] > start]
        res[f"{k}_runs_during"] = len(during)
        res[f"{k}_failed_runs"] = sum(1 for r in runs if r["rc"] not in (0, 5))  # retrain 5: the gate kept it
    res["reviewer_processes_failed"] = sum(p.exitcode != 0 for p in procs) + reviewers - len(logs)
    res.update(backend=backend, reviewers=reviewers, decisions_per_reviewer=decisions,
               setup_seconds=round(setup_s, 1), work_seconds=round(work_s, 1),
               decisions_per_second=round(res["decisions"] / work_s, 1),
               machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               date=now().strftime("%Y-%m-%d"),
               command="python bench/concurrency.py " + " ".join(_masked(a) for a in sys.argv[1:]),
               folder=str(folder))
    res["ok"] = (res["errors"] == 0 and res["lost_decisions"] == 0 and res["bad_undos"] == 0 and res["double_claims"] == 0
                 and res["decisions"] == reviewers * decisions and res["reviewer_processes_failed"] == 0
                 and res["classify_failed_runs"] == 0 and res["retrain_failed_runs"] == 0
                 and res["undone_labels_expected"] == res["undone_labels_in_store"]
                 and res["classify_runs_during"] > 0 and res["retrain_runs_during"] > 0)
    out = out or ROOT / "bench" / "results" / f"concurrency_{backend}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, ensure_ascii=False))
    tab = Table(title=f"{reviewers} reviewers x {decisions} decisions with classify + retrain writing ({backend})")
    tab.add_column("measured")
    tab.add_column("value", justify="right")
    for k in ("decisions", "undos", "errors", "lost_decisions", "double_claims", "retried_transactions",
              "classify_runs_during",
              "retrain_runs_during", "classify_failed_runs", "retrain_failed_runs", "work_seconds",
              "decisions_per_second"):
        tab.add_row(k, str(res[k]))
    Console().print(tab)
    if res["error_kinds"]:
        Console().print(res["error_kinds"])
    Console().print(f"{'OK' if res['ok'] else 'FAILED'}; results in {out}; logs in {folder}")
    raise typer.Exit(0 if res["ok"] else 1)


if __name__ == "__main__":
    typer.run(main)
