"""Short transactions: `router import` commits in atomic batches (a crash leaves whole batches, a rerun
adds the rest once), and the app's writes retry a locked store with backoff within a bounded wait, on
an injected clock, against real SQLite locks."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from labeling import actions
from router import ROOT, store
from router.store import Label, Prediction, QueueItem, StoreBusy, Ticket, Waits, connect, make_engine, retry
from training.data import import_labeled

SAMPLE = ROOT / "data" / "sample"


class Clock:
    """A clock that moves only when `sleep` is called (plus `step` per reading: time spent trying)."""

    def __init__(self, step: float = 0.0, on_sleep=None):
        self.t, self.step, self.slept, self.on_sleep = 0.0, step, [], on_sleep

    def __call__(self) -> float:
        self.t += self.step
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s
        if self.on_sleep:
            self.on_sleep(len(self.slept))


def history(tmp_path, n: int):
    lines = (SAMPLE / "history.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, [json.loads(x)["id"] for x in lines]


def counts(engine) -> tuple[int, int, int]:
    with Session(engine) as s:
        return (s.execute(select(func.count()).select_from(Ticket)).scalar(),
                s.execute(select(func.count()).select_from(Label)).scalar(),
                s.execute(select(func.count(func.distinct(Label.ticket_id)))).scalar())


def test_import_killed_mid_batch_keeps_whole_batches_and_a_rerun_completes_it(tmp_path, catalog):
    """The importing process is killed (SIGKILL) inside its third batch, after the batch's inserts and
    before its commit: the store holds exactly the first two batches, tickets with their labels; the
    same import again adds the remaining tickets, each once."""
    url = f"sqlite:///{tmp_path}/r.db"
    path, ids = history(tmp_path, 35)
    connect(url)
    crash = ("import os, signal, sys\n"
             "from sqlalchemy import event\n"
             "from router.catalog import load_catalog\n"
             "from router.store import make_engine\n"
             "from training.data import import_labeled\n"
             "e = make_engine(sys.argv[1])\n"
             "n = [0]\n"
             "def commit(conn):\n"
             "    n[0] += 1\n"
             "    if n[0] == 3:\n"
             "        os.kill(os.getpid(), signal.SIGKILL)\n"
             "event.listen(e, 'commit', commit)\n"
             "import_labeled(e, sys.argv[2], load_catalog(sys.argv[3]), batch=10)\n")
    r = subprocess.run([sys.executable, "-c", crash, url, str(path), str(ROOT / "data" / "departments.json")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == -9, r.stderr
    engine = make_engine(url)
    assert counts(engine) == (20, 20, 20)
    with Session(engine) as s:
        assert set(s.exec(select(Ticket.id)).scalars()) == set(ids[:20])
    added, rejects = import_labeled(engine, str(path), catalog, batch=10)
    assert (added, rejects) == (15, [])
    assert counts(engine) == (35, 35, 35)
    assert import_labeled(engine, str(path), catalog, batch=10)[0] == 0  # again: nothing added
    assert counts(engine) == (35, 35, 35)


def test_import_batch_refused_by_the_store_is_absent_whole(tmp_path, catalog):
    """A batch the store refuses part-way (a trigger aborts its 4th ticket) leaves none of its tickets
    or labels; the batches before it stay."""
    url = f"sqlite:///{tmp_path}/r.db"
    path, ids = history(tmp_path, 30)
    engine = connect(url)
    raw = sqlite3.connect(tmp_path / "r.db")
    raw.execute(f"CREATE TRIGGER boom BEFORE INSERT ON label WHEN NEW.ticket_id = '{ids[13]}' "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    raw.commit()
    with pytest.raises(IntegrityError):
        import_labeled(engine, str(path), catalog, batch=10)
    assert counts(engine) == (10, 10, 10)
    raw.execute("DROP TRIGGER boom")
    raw.commit()
    raw.close()
    assert import_labeled(engine, str(path), catalog, batch=10)[0] == 20
    assert counts(engine) == (30, 30, 30)


@pytest.fixture()
def locked(tmp_path):
    """A store whose write lock another connection holds (BEGIN IMMEDIATE) until `.release()`;
    `engine` does not wait for it (busy timeout 0), so each try fails at once."""
    url = f"sqlite:///{tmp_path}/l.db"
    connect(url)
    other = sqlite3.connect(tmp_path / "l.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")

    class Lock:
        engine = make_engine(url, busy_timeout_ms=0)

        @staticmethod
        def release():
            if other.in_transaction:
                other.execute("COMMIT")
    yield Lock
    Lock.release()
    other.close()


def add(engine, tid: str):
    with store.writing(engine) as s:
        s.add(Ticket(id=tid, text="x"))
        s.commit()


def test_retry_backs_off_within_its_budget_then_says_so(locked):
    clock = Clock()
    w = Waits(budget=5.0, first=0.05, most=1.0, clock=clock, sleep=clock.sleep)
    with pytest.raises(StoreBusy, match=r"stayed busy for .* s over \d+ tries .*database is locked.*nothing was recorded"):
        retry(w=w)(add)(locked.engine, "t1")
    assert sum(clock.slept) <= 5.0 and len(clock.slept) >= 5
    for i, s in enumerate(clock.slept):  # 0.05, 0.1, 0.2, 0.4, 0.8, then 1.0 (`most`), each ±50% jitter
        assert 0.5 * min(0.05 * 2 ** i, 1.0) <= s <= 1.5 * min(0.05 * 2 ** i, 1.0)
    locked.release()
    with Session(locked.engine) as s:
        assert s.get(Ticket, "t1") is None


def test_retry_counts_time_spent_waiting_in_each_try(locked):
    """The budget covers the busy timeout each try spends too: a clock that moves 2 s per reading
    (as if every try waited out a 2 s busy timeout) stops at the third try, 6 s in, not after ~7 tries."""
    clock = Clock(step=2.0)
    with pytest.raises(StoreBusy):
        retry(w=Waits(budget=5.0, clock=clock, sleep=clock.sleep))(add)(locked.engine, "t1")
    assert len(clock.slept) == 2


def test_retry_gets_through_once_the_lock_is_released(locked):
    clock = Clock(on_sleep=lambda n: n == 3 and locked.release())
    retry(w=Waits(budget=5.0, clock=clock, sleep=clock.sleep))(add)(locked.engine, "t1")
    assert len(clock.slept) == 3
    with Session(locked.engine) as s:
        assert s.get(Ticket, "t1") is not None


def test_retry_leaves_other_errors_alone(tmp_path):
    engine = connect(f"sqlite:///{tmp_path}/e.db")
    add(engine, "t1")
    clock = Clock()
    with pytest.raises(IntegrityError):
        retry(w=Waits(clock=clock, sleep=clock.sleep))(add)(engine, "t1")
    assert clock.slept == []


def test_app_actions_wait_for_a_writer_and_give_up_with_storebusy(locked, monkeypatch):
    """Claim, decide, undo and release go through `retry`: held up by a writer, they get through
    once it commits; a writer that never lets go ends in StoreBusy, nothing recorded."""
    engine = locked.engine
    locked.release()
    with Session(engine) as s:
        s.add(Ticket(id="T1", text="路灯坏了"))
        s.flush()
        s.add(Prediction(id=1, ticket_id="T1", model_version="v1", department="urban-mgmt", confidence=0.4,
                         topk=[["urban-mgmt", 0.4], ["housing", 0.3]]))
        s.flush()
        s.add(QueueItem(ticket_id="T1", prediction_id=1, priority=1.0))
        s.commit()
    other = sqlite3.connect(engine.url.database, isolation_level=None, check_same_thread=False)

    def hold():
        other.execute("BEGIN IMMEDIATE")

    def held_for(tries: int):
        """Injected waits: the writer commits after `tries` backoffs."""
        hold()
        clock = Clock(on_sleep=lambda n: n == tries and other.execute("COMMIT"))
        monkeypatch.setattr(store, "waits", Waits(budget=5.0, clock=clock, sleep=clock.sleep))
        return clock

    clock = held_for(2)
    item = actions.next_item(engine, "alice")
    assert item.ticket_id == "T1" and len(clock.slept) == 2
    clock = held_for(3)
    label = actions.decide(engine, "alice", item.queue_id, "housing")
    assert label.department == "housing" and len(clock.slept) == 3
    clock = held_for(1)
    assert actions.undo(engine, "alice") == item.queue_id and len(clock.slept) == 1
    hold()                                     # never released: StoreBusy, the decision not recorded
    clock = Clock()
    monkeypatch.setattr(store, "waits", Waits(budget=3.0, clock=clock, sleep=clock.sleep))
    with pytest.raises(StoreBusy):
        actions.decide(engine, "alice", item.queue_id, "urban-mgmt")
    assert sum(clock.slept) <= 3.0
    other.execute("COMMIT")
    with Session(engine) as s:
        assert s.get(QueueItem, item.queue_id).status == "pending"
        assert [lab.undone for lab in s.exec(select(Label)).scalars()] == [True]
    other.close()


def test_lock_log_has_one_line_per_write_transaction(tmp_path, catalog):
    """[store] lock_log: an import of 25 tickets in batches of 10 writes 3 transactions; a `writing`
    transaction counts from its BEGIN IMMEDIATE; reads write nothing."""
    url, log = f"sqlite:///{tmp_path}/r.db", tmp_path / "locks"
    path, _ = history(tmp_path, 25)
    connect(url)
    engine = make_engine(url, lock_log=str(log))
    import_labeled(engine, str(path), catalog, batch=10)
    counts(engine)
    add(engine, "x1")
    lines = [line.split(" ", 3) for line in log.read_text().splitlines()]
    assert [x[3] for x in lines] == ["INSERT INTO ticket"] * 3 + ["BEGIN IMMEDIATE"]
    assert all(0 <= float(x[1]) < 60 and 0 <= float(x[2]) < 60 for x in lines)


def _per_transaction(engine) -> list[dict]:
    """Rows each write transaction on `engine` inserted (per table) and updated ("update <table>": rows given to
    an executemany, or 1), a list that grows."""
    from sqlalchemy import Insert, Update, event

    got, cur = [], {}

    def count(_conn, clause, multiparams, params, _opts):
        if isinstance(clause, (Insert, Update)):
            n = len(multiparams) if isinstance(multiparams, (list, tuple)) and multiparams else 1
            key = clause.table.name if isinstance(clause, Insert) else "update " + clause.table.name
            cur[key] = cur.get(key, 0) + n

    def end(_conn):
        if cur:
            got.append(dict(cur))
            cur.clear()
    event.listen(engine, "before_execute", count)
    event.listen(engine, "commit", end)
    return got


def _day(tmp_path, n: int, prefix: str = "D"):
    lines = (SAMPLE / "day.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    path = tmp_path / f"{prefix}.jsonl"
    path.write_text("".join(json.dumps({**json.loads(x), "id": f"{prefix}{i:04d}"}, ensure_ascii=False) + "\n"
                            for i, x in enumerate(lines)), encoding="utf-8")
    return path


def test_classify_writes_a_batch_in_transactions_of_write_batch_tickets(trained, cfg, catalog, tmp_path):
    """A 250-ticket batch ([classify] batch_size 512) is stored in transactions of at most [store] write_batch
    (100) tickets, each with its tickets' predictions and queue items; every ticket once."""
    from router import config, routing

    engine = connect(config.store_url(cfg))
    tx = _per_transaction(engine)
    cfg.store.write_batch = 100
    assert cfg.classify.batch_size >= 250
    s = routing.classify(engine, catalog, routing.Job(str(_day(tmp_path, 250)), threshold=0.99), cfg)
    assert s.routed == 250
    stored = [t.get("ticket", 0) for t in tx if "ticket" in t]
    assert sum(stored) == 250 and max(stored) <= 100 and len(stored) == 3
    assert all(t.get("prediction", 0) <= 100 and t.get("queueitem", 0) <= 100 for t in tx), tx


def test_classify_ranks_and_links_a_batch_once_whatever_its_write_batch(trained, cfg, catalog, tmp_path):
    """A 240-ticket batch, its second half repeating the first (so incidents span parts), stored with [store]
    write_batch 100 and 512 in two copies of one store: the queue's ranking and the incidents' matching run once
    for the batch either way (counted by their queries: the near-duplicate check's read of the waiting items,
    linking's read of the candidate tickets), and give the same incidents, queue and output."""
    from sqlalchemy import event

    from router import routing

    rows = [json.loads(x) for x in (SAMPLE / "day.jsonl").read_text(encoding="utf-8").splitlines()[:120]]
    src = tmp_path / "rep.jsonl"
    src.write_text("".join(json.dumps({**r, "id": f"R{k}{i:03d}", "text": r["text"] + "，还是没人管" * k},
                                      ensure_ascii=False) + "\n" for k in (0, 1) for i, r in enumerate(rows)),
                   encoding="utf-8")
    other = tmp_path / "other"
    shutil.copytree(trained, other)
    cfg.queue.seed, cfg.queue.audit_rate, cfg.classify.batch_size = 7, 0.2, 512

    def run(home, write_batch: int):
        engine = make_engine(f"sqlite:///{home}/router.db")
        passes = {"rank": 0, "link": 0}

        def count(_conn, _cur, statement, *_):
            passes["rank"] += "FROM queueitem" in statement and "ORDER BY queueitem.id DESC" in statement
            passes["link"] += "ticket.places IS NOT NULL" in statement
        event.listen(engine, "before_cursor_execute", count)
        cfg.store.write_batch = write_batch
        out = tmp_path / f"out{write_batch}.jsonl"
        s = routing.classify(engine, catalog, routing.Job(str(src), output=str(out), threshold=0.5), cfg)
        with Session(engine) as db:
            members = {}
            for tid, inc in db.execute(select(Ticket.id, Ticket.incident_id).where(Ticket.incident_id.is_not(None))):
                members.setdefault(inc, set()).add(tid)
            name = {inc: min(ts) for inc, ts in members.items()}   # incident ids may differ: named by a member
            tickets = {tid: (name.get(inc), dup) for tid, inc, dup in db.execute(
                select(Ticket.id, Ticket.incident_id, Ticket.duplicate_of))}
            items = db.execute(select(QueueItem.ticket_id, QueueItem.reason, QueueItem.priority, QueueItem.status)
                               .order_by(QueueItem.status, QueueItem.priority.desc(), QueueItem.id)).all()
        routed = [(r["id"], name.get(r["incident_id"]), r["duplicate_of"], r["queued"])
                  for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())]
        return passes, s.incident_members, tickets, items, routed

    small, large = run(trained, 100), run(other, 512)
    assert small[0] == large[0] == {"rank": 1, "link": 1}
    assert small[1] > 100                    # the repeats joined incidents
    assert small[2:] == large[2:]


def test_classify_killed_between_write_batches_resumes_each_ticket_once(trained, cfg, catalog, tmp_path):
    """The process is killed (SIGKILL) at the commit of a batch's second part: its first part is stored, the
    output's journal does not hold the batch yet. --resume routes the batch again: every ticket once in the
    output, stored once, one prediction of the version each, and a row says queued when its ticket waits
    (or its incident does)."""
    from router import config, registry, routing
    from router.incidents import queue_state
    from router.queue import open_items

    engine = connect(config.store_url(cfg))
    cfg.classify.batch_size, cfg.store.write_batch = 100, 40
    src, out = _day(tmp_path, 230), tmp_path / "out.jsonl"
    crash = ("import os, signal, sys\n"
             "from sqlalchemy import Insert, event\n"
             "from router import config, routing, store\n"
             "from router.catalog import load_catalog\n"
             "cfg = config.load()\n"
             "cfg.classify.batch_size, cfg.store.write_batch = 100, 40\n"
             "e = store.connect(config.store_url(cfg))\n"
             "n = [0]\n"
             "def count(_c, clause, many, *_):\n"
             "    if isinstance(clause, Insert) and clause.table.name == 'ticket':\n"
             "        n[0] += len(many) if isinstance(many, (list, tuple)) and many else 1\n"
             "def commit(_c):\n"
             "    if n[0] == 180:\n"   # batch 2 (parts of 40, 40, 20), its second part
             "        os.kill(os.getpid(), signal.SIGKILL)\n"
             "event.listen(e, 'before_execute', count)\n"
             "event.listen(e, 'commit', commit)\n"
             "routing.classify(e, load_catalog(config.resolve(cfg.paths.catalog)),\n"
             "                 routing.Job(sys.argv[1], output=sys.argv[2], threshold=0.99), cfg)\n")
    r = subprocess.run([sys.executable, "-c", crash, str(src), str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == -9, r.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 100
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(Ticket).where(Ticket.id.like("D%"))).scalar() == 140
    s_ = routing.classify(engine, catalog, routing.Job(str(src), output=str(out), threshold=0.99, resume=True), cfg)
    assert (s_.skipped, s_.routed) == (100, 130)
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["id"] for r in rows) == [f"D{i:04d}" for i in range(230)]
    version = registry.current(engine).version
    with Session(engine) as s:
        ids = [r["id"] for r in rows]
        assert s.execute(select(func.count()).select_from(Ticket).where(Ticket.id.like("D%"))).scalar() == 230
        preds = s.execute(select(Prediction.ticket_id, func.count()).where(
            Prediction.ticket_id.in_(ids), Prediction.model_version == version).group_by(Prediction.ticket_id)).all()
        assert len(preds) == 230 and {c for _, c in preds} == {1}
        waiting = open_items(s, ids)
        incident_of, busy = queue_state(s, ids)
    queued = {r["id"] for r in rows if r["queued"]}   # in an item of its own, or in its incident's
    assert set(waiting) <= queued and all(incident_of.get(t) in busy for t in queued - set(waiting))


def test_import_sends_each_batch_in_one_statement_per_table(tmp_path, catalog):
    """Tickets with and without a title (None) alternate: each batch is one INSERT executemany per table,
    not a statement per run of rows with the same keys (what made PostgreSQL import 160 tickets/s)."""
    from sqlalchemy import event

    lines = [json.loads(x) for x in (SAMPLE / "history.jsonl").read_text(encoding="utf-8").splitlines()[:30]]
    path = tmp_path / "h.jsonl"
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "title"} | ({"title": "标题"} if i % 2 else {}),
                                       ensure_ascii=False) + "\n" for i, r in enumerate(lines)), encoding="utf-8")
    engine = connect(f"sqlite:///{tmp_path}/r.db")
    inserts = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, st, *_: st.startswith("INSERT") and inserts.append(st.split()[2]))
    assert import_labeled(engine, str(path), catalog, batch=10) == (30, [])
    assert inserts == ["ticket", "label"] * 3
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(Ticket).where(Ticket.title.is_(None))).scalar() == 15


def test_reordering_the_queue_writes_in_parts_of_write_batch_items(trained, cfg, catalog, tmp_path):
    """After a new model version every waiting ticket is re-predicted and re-prioritized (`order.prioritize`):
    its new predictions and priorities go in transactions of at most [store] write_batch items."""
    from router import config, order, queue, registry, routing

    engine = connect(config.store_url(cfg))
    cfg.store.write_batch = 100
    routing.classify(engine, catalog, routing.Job(str(_day(tmp_path, 250)), threshold=0.99), cfg)
    tx = _per_transaction(engine)
    _, clf = registry.load(engine, None, cfg)
    pool = order.prioritize(engine, clf, "v-next", queue.policy(cfg, threshold=0.99), chunk=cfg.store.write_batch)
    assert pool > 100
    assert sum(t.get("prediction", 0) for t in tx) == pool and len(tx) == -(-pool // 100)
    assert all(t.get("prediction", 0) <= 100 and t.get("update queueitem", 0) <= 100 for t in tx), tx


def test_retry_budget_is_the_store_setting(tmp_path, monkeypatch):
    """[store] retry_seconds (typed, 0-3600, shown by `router config --defaults`) bounds the app's retries on
    the engine the settings open: a writer that never lets go ends in StoreBusy within it, nothing recorded."""
    from typer.testing import CliRunner

    from router import config
    from router.cli import app

    with pytest.raises(ValueError, match="retry_seconds"):
        config.load(env={"ROUTER_STORE__RETRY_SECONDS": "-1"})
    out = CliRunner().invoke(app, ["config", "--defaults"]).output
    assert "nothing recorded (>= 0, <= 3600)\nretry_seconds = 20.0\n" in out
    monkeypatch.setenv("ROUTER_PATHS__HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ROUTER_STORE__RETRY_SECONDS", "2.5")
    monkeypatch.setenv("ROUTER_STORE__BUSY_TIMEOUT_MS", "0")
    cfg = config.load()
    engine = store.open_store(cfg)
    other = sqlite3.connect(config.sqlite_file(cfg), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    clock = Clock()
    monkeypatch.setattr(store, "waits", Waits(budget=100.0, clock=clock, sleep=clock.sleep))  # the engine's wins
    with pytest.raises(StoreBusy):
        actions.next_item(engine, "alice")
    assert 0 < sum(clock.slept) <= 2.5
    other.execute("COMMIT")
    other.close()
