"""Ten dispatchers work the review queue while `router import`, `router classify` and `router retrain` write.

    python bench/concurrency.py [--reviewers 10] [--decisions 1000] [--import-tickets 100000]
                                [--incidents/--no-incidents] [--pg | --url postgresql+psycopg://...]

Sets up a store (SQLite in a temporary folder; --pg: the Debian PostgreSQL cluster, started and given
an empty database `router_bench`; --url: that database, emptied first) with imported history, a first
baseline and enough pending queue items. Two phases, the reviewers working through both:
1. classify + retrain: `router classify` runs over and over on fresh tickets (threshold 0.99: most are
   queued; with incidents on, each run repeats the last one's texts, so its tickets join incidents) and
   `router retrain --force` over and over, until each reviewer has made --decisions decisions;
2. import: `router import` loads --import-tickets labeled tickets; the reviewers work until it ends
   (after phase 1: a retrain over 100,000 more labels would take most of an hour on 2 shared cores).
Each reviewer process claims, decides (accept, correct, skip, no fit), every 10th step undoes and
every 25th step signs out (release), timing each call. Checks, from the reviewers' own logs against
the store: errors (any exception in a reviewer; a DecisionError because another reviewer's incident
decision settled the ticket is counted apart, as a conflict), lost decisions, tickets claimed by two
reviewers at once, undone labels (an incident decision and its undo cover every member: each group of
labels one decision wrote must be one ticket or one incident's), and that the import stored every
ticket once. On SQLite each writer logs how long each of its transactions held the write lock
([store] lock_log). Records os.getloadavg() (the machine is shared). Writes
bench/results/concurrency_<backend>[_incidents].json (--out) and prints a table; exits 1 when a check fails.
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
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
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
from sqlalchemy import func  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import select  # noqa: E402

SAMPLE = ROOT / "data" / "sample"
DEPTS = ["police", "traffic-police", "urban-mgmt", "housing", "environment", "water", "transport", "health"]
TOML = ("[baseline]\nC = 2.0\nngram_max = 3\nmax_features = 30000\n"
        "[retrain]\nmin_new_labels = 1\n[gate]\nmax_macro_f1_drop = 1.0\nmax_department_f1_drop = 1.0\n")
CALLS = ("claim", "decide", "undo", "release")
PARTS = ("waited_for_lock", "held_lock", "commit", "cpu", "statements")


def _cli(*args, env, log) -> int:
    with open(log, "a") as f:
        return subprocess.call([sys.executable, "-m", "router.cli", *args], env=env, stdout=f, stderr=f,
                               cwd=env["ROUTER_WORKDIR"])


def start_postgres(db: str = "router_bench") -> str:
    """The Debian cluster (`apt-get install postgresql`), started, with an empty database `db` owned by
    the role router (password router); needs root, as .ci/run does."""
    subprocess.run(["service", "postgresql", "start"], check=True, capture_output=True)
    for _ in range(30):
        if subprocess.run(["su", "postgres", "-c", "pg_isready -q"]).returncode == 0:
            break
        time.sleep(1)
    psql = lambda q: subprocess.run(["su", "postgres", "-c", f'psql -qtc "{q}"'], check=True,  # noqa: E731
                                    capture_output=True, text=True).stdout
    if "1" not in psql("select 1 from pg_roles where rolname='router'"):
        psql("create user router password 'router' superuser")
    subprocess.run(["su", "postgres", "-c", f"dropdb --if-exists {db} && createdb -O router {db}"], check=True)
    return f"postgresql+psycopg://router:router@localhost/{db}"


def setup(url: str | None, folder: Path, pending: int, incidents: bool) -> tuple[str, dict]:
    """Config, store with history and a first model, `pending` queue items; returns (url, env)."""
    (folder / "router.toml").write_text(TOML + ("" if incidents else "[incidents]\nenabled = false\n"))
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


def big_history(path: Path, n: int) -> None:
    """`n` labeled tickets (ids I0000000...): the sample's history over and over, each text made unique."""
    rows = [json.loads(x) for x in (SAMPLE / "history.jsonl").read_text(encoding="utf-8").splitlines()]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            r = rows[i % len(rows)]
            f.write(json.dumps({**r, "id": f"I{i:07d}", "text": f"{r['text']}（{i}）"}, ensure_ascii=False) + "\n")


def writer(kind: str, env: dict, folder: Path, stop: Path, runs: Path) -> None:
    """Run `router classify` (fresh tickets each time) or `router retrain --force` until `stop` exists."""
    day = (SAMPLE / "day.jsonl").read_text(encoding="utf-8").splitlines()
    env = {**env, "ROUTER_STORE__LOCK_LOG": str(folder / f"{kind}.locks")}
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


def reviewer(url: str, name: str, n: int, seed: int, result: str, stop: str = "") -> None:
    """Work the queue for `n` decisions (or until the file `stop` exists); log every claim, decision,
    undo, error and each call's seconds."""
    engine = connect(url)
    rng = random.Random(seed)
    log = {"name": name, "claims": [], "events": [], "errors": [], "conflicts": [], "empty": 0,
           "seconds": {k: [] for k in CALLS}, "parts": {k: [] for k in CALLS}}  # events: [d, qid, choice] | [u, qid]
    part = _timed(engine)

    def attempt(call, f, *args):
        t = time.perf_counter()
        part.update(waited=0.0, held=0.0, commit=0.0, statements=0, cpu=time.process_time())
        try:
            return True, f(*args)
        except actions.DecisionError as e:  # another reviewer's incident decision settled this ticket
            log["conflicts"].append(f"{call}: {str(e)[:200]}")
            return False, None
        except Exception as e:  # noqa: BLE001 - every failure is counted
            log["errors"].append(f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
            return False, None
        finally:
            log["seconds"][call].append(time.perf_counter() - t)
            log["parts"][call].append([part["waited"], part["held"], part["commit"], time.process_time() - part["cpu"],
                                       part["statements"]])

    log["start"] = time.time()
    made = 0
    while made < n and not (stop and os.path.exists(stop)):
        ok, item = attempt("claim", actions.next_item, engine, name)
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
        ok, label = attempt("decide", actions.decide, engine, name, item.queue_id, choice)
        if not ok:
            continue
        made += 1
        log["events"].append(["d", item.queue_id, choice])
        if made % 25 == 0:
            attempt("release", actions.release, engine, name)  # holds nothing now: signs out and in again
        if made % 10 == 0:
            ok, qid = attempt("undo", actions.undo, engine, name)
            if ok:
                log["events"].append(["u", qid])
    log["end"] = time.time()
    log["retried"] = store.retried[0]
    Path(result).write_text(json.dumps(log))


def _timed(engine) -> dict:
    """Where a reviewer's call spends its time, kept in the dict returned: seconds waiting for SQLite's write
    lock (from taking a connection to the end of BEGIN IMMEDIATE: the writers' turn and SQLite's busy wait),
    seconds holding it (to the connection's return to the pool), of which in the commit (a WAL checkpoint
    runs there), and SQL statements sent."""
    from sqlalchemy import event

    part: dict = {}

    def out(*_):
        part["asked"] = time.perf_counter()

    def sent(*_):
        part["statements"] = part.get("statements", 0) + 1

    def begun(_conn, _cursor, statement, *_):
        if "asked" in part and statement.upper().startswith("BEGIN"):
            part["got"] = time.perf_counter()
            part["waited"] += part["got"] - part.pop("asked")

    def commit(_conn):
        part["committing"] = time.perf_counter()

    def back(*_):
        part.pop("asked", None)
        t = time.perf_counter()
        if "got" in part:
            part["held"] += t - part.pop("got")
        if "committing" in part:
            part["commit"] += t - part.pop("committing")
    event.listen(engine.pool, "checkout", out)  # before the writers' turn is taken
    event.listen(engine, "before_cursor_execute", sent)
    event.listen(engine, "after_cursor_execute", begun)
    event.listen(engine, "commit", commit)
    event.listen(engine.pool, "checkin", back)
    return part


def check(url: str, logs: list[dict]) -> dict:
    """Errors, lost decisions, double claims and undone labels, from the reviewers' logs against the store."""
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
        incident = dict(s.exec(select(Ticket.id, Ticket.incident_id).where(Ticket.incident_id.is_not(None))).all())
    groups = defaultdict(list)  # (reviewer, instant) -> the labels one decision wrote
    for labs in app_labels.values():
        for lab in labs:
            groups[(lab.reviewer, lab.created_at)].append(lab)
    for qid, (who, choice) in final.items():
        q = items.get(qid)
        want = "skipped" if choice == actions.SKIP else "done"
        standing = [lab for lab in app_labels.get(q.ticket_id, []) if not lab.undone] if q else []
        ok = q is not None and q.status == want and q.claimed_by == who
        if choice != actions.SKIP:
            dept = to_label(choice)
            ok = ok and [(lab.reviewer, lab.department) for lab in standing] == [(who, dept)]
        else:  # a skipped ticket may since be labeled by another decision on its incident, none other
            ok = ok and all(len(groups[(lab.reviewer, lab.created_at)]) > 1 for lab in standing)
        if not ok:
            lost.append(qid)
    # One decision writes its labels at one instant: the ticket's, and with incidents every undecided
    # member's. Group by (reviewer, instant): each group is one ticket, or members of one incident with
    # one department and one undone state; undone groups are the undone decisions.
    bad_groups = sum(1 for g in groups.values() if len(g) > 1 and not (
        len({incident.get(lab.ticket_id) for lab in g}) == 1 and incident.get(g[0].ticket_id) is not None
        and len({(lab.department, lab.undone) for lab in g}) == 1))
    undone_groups = sum(1 for g in groups.values() if g[0].undone)
    return {"errors": sum(len(lg["errors"]) for lg in logs),
            "error_kinds": dict(Counter(e.split(":")[0] + ": " + e.split(":", 1)[1][:60]
                                        for lg in logs for e in lg["errors"]).most_common(5)),
            "conflicts": sum(len(lg["conflicts"]) for lg in logs),
            "conflict_kinds": dict(Counter(c.split(":")[0] for lg in logs for c in lg["conflicts"])),
            "decisions": sum(e[0] == "d" for lg in logs for e in lg["events"]),
            "undos": sum(e[0] == "u" for lg in logs for e in lg["events"]),
            "standing_decisions": len(final),
            "lost_decisions": len(lost), "bad_undos": bad_undos,
            "retried_transactions": sum(lg.get("retried", 0) for lg in logs),
            "undone_labels_expected": sum(undone_labels.values()), "undone_decisions_in_store": undone_groups,
            "incident_decisions": sum(1 for g in groups.values() if len(g) > 1),
            "member_labels": sum(len(g) - 1 for g in groups.values()),
            "bad_label_groups": bad_groups,
            "double_claims": sum(1 for v in claimed_by.values() if len(v) > 1)}


def latency(logs: list[dict]) -> dict:
    """Seconds per call kind over every reviewer: p50, p95, p99, max, count; and where the time went
    (`_timed`), in the median call and on average over the slowest 1%: waiting for the write lock, holding
    it, the reviewer's own CPU, statements sent."""
    out = {}
    for k in CALLS:
        x = np.array([v for lg in logs for v in lg["seconds"][k]])
        if len(x):
            out[k] = {"p50": round(float(np.percentile(x, 50)), 4), "p95": round(float(np.percentile(x, 95)), 4),
                      "p99": round(float(np.percentile(x, 99)), 4), "max": round(float(x.max()), 4), "n": len(x)}
            parts = np.array([v for lg in logs for v in lg.get("parts", {}).get(k, [])]).reshape(-1, len(PARTS))
            if len(parts) == len(x):
                slow = parts[x >= np.percentile(x, 99)].mean(axis=0)
                out[k]["median_call"] = dict(zip(PARTS, (round(float(v), 4) for v in np.median(parts, axis=0))))
                out[k]["slowest_1pct"] = dict(zip(PARTS, (round(float(v), 4) for v in slow)))
    return out


def locks(path: Path) -> dict:
    """From a writer's [store] lock_log: its write transactions' lock-holding seconds."""
    if not path.exists():
        return {}
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        return {}
    x, w = np.array([float(r[1]) for r in rows]), np.array([float(r[2]) for r in rows])
    worst = max(rows, key=lambda r: float(r[1]))
    return {"transactions": len(x), "p50": round(float(np.percentile(x, 50)), 4),
            "p99": round(float(np.percentile(x, 99)), 4), "max": round(float(x.max()), 4),
            "longest": " ".join(worst[3:6]), "waited_for_lock_p99": round(float(np.percentile(w, 99)), 4),
            "waited_for_lock_max": round(float(w.max()), 4)}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def reviewers_run(ctx, url: str, folder: Path, phase: str, reviewers: int, n: int, stop: str = "") -> list[dict]:
    procs = [ctx.Process(target=reviewer, args=(url, f"调度员{i}", n, 100 * i + len(phase),
                                                str(folder / f"{phase}.r{i}.json"), stop))
             for i in range(reviewers)]
    for p in procs:
        p.start()
    return procs


def finish(procs, folder: Path, phase: str) -> tuple[list[dict], int]:
    for p in procs:
        p.join()
    logs = [json.loads((folder / f"{phase}.r{i}.json").read_text()) for i in range(len(procs))
            if (folder / f"{phase}.r{i}.json").exists()]
    return logs, sum(p.exitcode != 0 for p in procs) + len(procs) - len(logs)


def main(reviewers: int = typer.Option(10, help="reviewer processes"),
         decisions: int = typer.Option(1000, help="decisions per reviewer in the classify + retrain phase"),
         import_tickets: int = typer.Option(100_000, help="tickets `router import` loads in the import phase (0: no phase)"),
         incidents: bool = typer.Option(True, "--incidents/--no-incidents", help="[incidents] enabled"),
         pg: bool = typer.Option(False, "--pg", help="start the Debian PostgreSQL cluster and use a fresh database"),
         url: str = typer.Option("", help="store URL (emptied first); default: SQLite in a temporary folder"),
         out: Path = typer.Option(None, help="JSON results (default bench/results/concurrency_<backend>[_incidents].json)")):
    folder = Path(tempfile.mkdtemp(prefix="concurrency_"))
    res: dict = {"loadavg_start": load()}
    t0 = time.time()
    url = start_postgres() if pg else url
    url, env = setup(url or None, folder, int(reviewers * decisions * 1.3) + (12_000 if import_tickets else 0) + 50,
                     incidents)
    res["setup_seconds"] = round(time.time() - t0, 1)
    backend = url.split(":", 1)[0].split("+")[0]
    ctx = mp.get_context("spawn")
    all_logs, failed = [], 0
    phases = {}
    # 1. classify and retrain write over and over while each reviewer makes `decisions` decisions
    stop = folder / "stop"
    writers = {k: ctx.Process(target=writer, args=(k, env, folder, stop, folder / f"{k}.runs.json"))
               for k in ("classify", "retrain")}
    for w in writers.values():
        w.start()
    time.sleep(3)  # the writers' first runs are under way before the reviewers start
    t = time.time()
    procs = reviewers_run(ctx, url, folder, "write", reviewers, decisions)
    logs, f = finish(procs, folder, "write")
    work_s = time.time() - t
    stop.touch()
    for w in writers.values():
        w.join()
    failed += f
    start, end = min(lg["start"] for lg in logs), max(lg["end"] for lg in logs)
    ph = {"seconds": round(work_s, 1), "decisions": sum(e[0] == "d" for lg in logs for e in lg["events"])}
    for k in writers:
        runs = json.loads((folder / f"{k}.runs.json").read_text()) if (folder / f"{k}.runs.json").exists() else []
        during = [r for r in runs if r["start"] < end and r["end"] > start]
        ph[f"{k}_runs_during"] = len(during)
        ph[f"{k}_failed_runs"] = sum(1 for r in runs if r["rc"] not in (0, 5))  # retrain 5: the gate kept it
        ph[f"{k}_lock_held"] = locks(folder / f"{k}.locks")
    ph.update(decisions_per_second=round(ph["decisions"] / work_s, 1), latency=latency(logs), loadavg_end=load())
    phases["classify_retrain"] = ph
    all_logs += logs
    if import_tickets:  # 2. the reviewers work while `router import` loads the file
        src = folder / "big.jsonl"
        big_history(src, import_tickets)
        stop = folder / "import.stop"
        procs = reviewers_run(ctx, url, folder, "import", reviewers, 10 ** 9, str(stop))
        time.sleep(2)  # the reviewers are at work when the import starts
        t = time.time()
        rc = _cli("import", str(src), env={**env, "ROUTER_STORE__LOCK_LOG": str(folder / "import.locks")},
                  log=folder / "import.log")
        import_s = time.time() - t
        stop.touch()
        logs, f = finish(procs, folder, "import")
        with Session(connect(url)) as s:
            stored = s.exec(select(func.count()).select_from(Ticket).where(Ticket.id.like("I%"))).one()
            labeled = s.exec(select(func.count(func.distinct(Label.ticket_id))).where(
                Label.ticket_id.like("I%"), Label.source == "import")).one()
            labels = s.exec(select(func.count()).select_from(Label).where(Label.ticket_id.like("I%"))).one()
        phases["import"] = {"rc": rc, "seconds": round(import_s, 1), "tickets_per_second": round(import_tickets / import_s),
                            "tickets_stored": stored, "labels_stored": labels, "tickets_labeled": labeled,
                            "decisions": sum(e[0] == "d" for lg in logs for e in lg["events"]),
                            "latency": latency(logs), "lock_held": locks(folder / "import.locks"),
                            "loadavg_end": load()}
        all_logs += logs
        failed += f
    res.update(check(url, all_logs))
    res["latency"] = latency(all_logs)
    res["phases"] = phases
    res["reviewer_processes_failed"] = failed
    res.update(backend=backend, incidents=incidents, reviewers=reviewers, decisions_per_reviewer=decisions,
               import_tickets=import_tickets,
               machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               date=now().strftime("%Y-%m-%d %H:%M UTC"),
               command="python bench/concurrency.py " + " ".join(_masked(a) for a in sys.argv[1:]),
               folder=str(folder))
    imp = phases.get("import")
    res["targets"] = {"errors": res["errors"] == 0,
                      **{f"{k}_p99_le_0.5s": res["latency"].get(k, {}).get("p99", 0) <= 0.5 for k in ("claim", "decide")}}
    res["ok"] = (res["errors"] == 0 and res["lost_decisions"] == 0 and res["bad_undos"] == 0 and res["double_claims"] == 0
                 and ph["decisions"] == reviewers * decisions and failed == 0
                 and ph["classify_failed_runs"] == 0 and ph["retrain_failed_runs"] == 0
                 and res["undone_labels_expected"] == res["undone_decisions_in_store"] and res["bad_label_groups"] == 0
                 and (incidents or res["conflicts"] == 0)
                 and ph["classify_runs_during"] > 0 and ph["retrain_runs_during"] > 0
                 and (imp is None or (imp["rc"] == 0 and imp["tickets_stored"] == imp["tickets_labeled"]
                                      == imp["labels_stored"] == import_tickets)))
    out = out or ROOT / "bench" / "results" / f"concurrency_{backend}{'_incidents' if incidents else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, ensure_ascii=False))
    show(res)
    Console().print(f"{'OK' if res['ok'] else 'FAILED'}; results in {out}; logs in {folder}")
    raise typer.Exit(0 if res["ok"] else 1)


def show(res: dict) -> None:
    con = Console()
    tab = Table(title=f"{res['reviewers']} reviewers ({res['backend']}, incidents {'on' if res['incidents'] else 'off'}; "
                      f"load {res['loadavg_start']} -> {res['phases']['classify_retrain']['loadavg_end']})")
    tab.add_column("measured")
    tab.add_column("value", justify="right")
    for k in ("decisions", "undos", "errors", "conflicts", "lost_decisions", "double_claims", "retried_transactions",
              "incident_decisions", "member_labels"):
        tab.add_row(k, str(res[k]))
    for name, ph in res["phases"].items():
        for k, v in ph.items():
            if k == "latency":
                for call, d in v.items():
                    tab.add_row(f"{name}: {call} p50 / p99 / max s", f"{d['p50']} / {d['p99']} / {d['max']}")
                    if "slowest_1pct" in d:
                        tab.add_row(f"{name}: {call} slowest 1%: waited / held / commit / cpu s, statements",
                                    " / ".join(str(d["slowest_1pct"][p]) for p in PARTS))
            elif isinstance(v, dict):
                if v:
                    tab.add_row(f"{name}: {k} n / p99 / max s", f"{v['transactions']} / {v['p99']} / {v['max']}")
            else:
                tab.add_row(f"{name}: {k}", str(v))
    con.print(tab)
    if res["error_kinds"]:
        con.print(res["error_kinds"])


def _masked(arg: str) -> str:
    return make_url(arg).render_as_string(hide_password=True) if "://" in arg else arg


if __name__ == "__main__":
    typer.run(main)
