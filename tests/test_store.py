"""The store: migrations, SQLite settings, rows round-trip; PostgreSQL when one is available."""

import subprocess
import sys

import pytest
from sqlalchemy import inspect, text
from sqlmodel import Session, select

from router import registry
from router.store import Label, ModelVersion, Prediction, QueueItem, Ticket, connect, migrate
from tests.conftest import empty_store

TABLES = {"ticket", "prediction", "queueitem", "label", "modelversion", "modelevent", "account", "alembic_version"}


def _roundtrip(engine, tmp_path):
    assert TABLES <= set(inspect(engine).get_table_names())
    with Session(engine) as s:
        s.add(Ticket(id="t1", text="燃气味很重"))
        s.flush()
        p = Prediction(ticket_id="t1", model_version="v1", department="gas", confidence=0.42,
                       topk=[["gas", 0.42], ["fire", 0.3]])
        s.add(p)
        s.flush()
        s.add(QueueItem(ticket_id="t1", prediction_id=p.id, priority=0.58))
        s.add(Label(ticket_id="t1", department="gas", reviewer="王", source="confirmation"))
        s.commit()
        assert s.exec(select(Prediction)).one().topk[1] == ["fire", 0.3]
        assert s.exec(select(Label)).one().created_at.tzinfo is not None
    for v in ("v1", "v2"):
        (tmp_path / v).mkdir()
        registry.register(engine, ModelVersion(version=v, kind="baseline", path=str(tmp_path / v)))
    registry.promote(engine, "v1")
    registry.promote(engine, "v2")
    assert registry.current(engine).version == "v2" and registry.get(engine, "v1").status == "retired"
    assert registry.rollback(engine).version == "v1"
    assert [e.action for e in registry.events(engine)][:1] == ["rolled_back"]


def test_sqlite_store(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    engine = connect(url)
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    _roundtrip(engine, tmp_path)
    migrate(url)  # idempotent
    with engine.connect() as c:
        assert c.execute(text("select count(*) from ticket")).scalar() == 1


def test_concurrent_writers_wait_instead_of_failing(tmp_path):
    url = f"sqlite:///{tmp_path}/c.db"
    connect(url)
    code = ("import sys; from sqlmodel import Session; from router.store import connect, Ticket;"
            "e = connect(sys.argv[1]);\n"
            "for i in range(200):\n"
            "    with Session(e) as s: s.add(Ticket(id=f'{sys.argv[2]}{i}', text='x')); s.commit()")
    procs = [subprocess.Popen([sys.executable, "-c", code, url, p]) for p in "ab"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with connect(url).connect() as c:
        assert c.execute(text("select count(*) from ticket")).scalar() == 400


def test_postgresql_store(tmp_path, pg_url):
    url = pg_url
    engine = empty_store(url)
    _roundtrip(engine, tmp_path)


def test_migrations_match_the_models(tmp_path):
    """Every table, column and index in router/store.py is created by a migration, and no more."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    engine = connect(f"sqlite:///{tmp_path}/m.db")
    with engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), SQLModel.metadata) == []


def test_writing_takes_the_write_lock_at_begin_and_retry_waits_it_out(tmp_path):
    """A `writing` transaction holds SQLite's write lock from its first statement (a read), so
    other writers wait; `retry` gets a transaction past a lock held longer than the busy timeout."""
    import sqlite3
    import threading
    import time

    from router.store import make_engine, retry, writing

    path = tmp_path / "w.db"
    connect(f"sqlite:///{path}")
    other = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    with Session(connect(f"sqlite:///{path}")) as s:          # a plain session's read takes no lock
        s.exec(select(Ticket)).all()
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    with writing(connect(f"sqlite:///{path}")) as s:
        s.exec(select(Ticket)).all()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")

    engine = make_engine(f"sqlite:///{path}", busy_timeout_ms=20)
    other.execute("BEGIN IMMEDIATE")                          # someone holds the lock for 0.4 s
    threading.Timer(0.4, lambda: other.execute("COMMIT")).start()
    tries = []

    def add():
        tries.append(time.monotonic())
        with writing(engine) as s:
            s.add(Ticket(id="r1", text="x"))
            s.commit()

    retry(add)()
    assert len(tries) > 1
    with Session(engine) as s:
        assert s.get(Ticket, "r1") is not None
    from router.store import StoreBusy, Waits
    other.execute("BEGIN IMMEDIATE")                          # a lock that outlasts the budget still fails
    with pytest.raises(StoreBusy, match="locked"):
        retry(w=Waits(budget=0.05, first=0.01))(add)()
    other.execute("ROLLBACK")


def test_writers_waiting_for_the_store_go_in_in_the_order_they_came(tmp_path):
    """Six processes ask for the write lock one after another while this one holds it: once it is let go
    they get it in the order they asked (SQLite's busy handler, and before it a polled file lock, let a
    later writer in first at random, so a reviewer could miss turn after turn)."""
    import time

    from router import ROOT
    from router.store import make_engine, writing

    url = f"sqlite:///{tmp_path / 'w.db'}"
    connect(url)
    holder = make_engine(url, busy_timeout_ms=300_000)
    with holder.begin() as c:
        c.exec_driver_sql("CREATE TABLE turn (k INTEGER)")
    writer = ("import sys\n"
              "from sqlalchemy import text\n"
              "from router.store import make_engine, writing\n"
              "with writing(make_engine(sys.argv[1], busy_timeout_ms=300_000)) as s:\n"
              "    s.execute(text('INSERT INTO turn VALUES (:k)'), {'k': int(sys.argv[2])})\n"
              "    s.commit()\n")
    counter = tmp_path / "w.db-writer"                        # the next number to draw: bytes 0-7

    def drawn() -> int:
        return int.from_bytes(counter.read_bytes()[:8].ljust(8, b"\0"), "little")

    procs = []
    with writing(holder) as s:
        for k in range(6):
            n, deadline = drawn(), time.monotonic() + 120
            procs.append(subprocess.Popen([sys.executable, "-c", writer, url, str(k)], cwd=ROOT))
            while drawn() == n:                               # until it is in line
                assert procs[-1].poll() is None and time.monotonic() < deadline, "the writer never got in line"
                time.sleep(0.01)
        s.commit()
    assert [p.wait(timeout=300) for p in procs] == [0] * 6
    with holder.connect() as c:
        assert [k for (k,) in c.exec_driver_sql("SELECT k FROM turn ORDER BY rowid")] == list(range(6))
