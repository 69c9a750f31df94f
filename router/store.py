"""The store: the only state the router, the labeling app, training and dashboards share.

SQLite by default (WAL, busy timeout); any SQLAlchemy URL works. The schema is owned by
Alembic migrations (router/migrations); `connect` brings a database up to date.

Concurrency: a transaction that reads and then writes (claim, decide, undo) runs in
`writing(engine)`, which takes SQLite's write lock when it begins (BEGIN IMMEDIATE, waiting up to
the busy timeout) so it never has to upgrade a read snapshot another writer has made stale;
`retry` repeats a transaction with backoff when the store still reports a lock, deadlock or
serialization failure, for at most `waits.budget` seconds in all (then StoreBusy: nothing was written).
Bulk writers (import, classify) commit in batches, so none holds the write lock for long.
"""

from __future__ import annotations

import fcntl
import functools
import os
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path
from typing import Callable, Optional

from sqlalchemy import JSON, Column, Index, event, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Field, Session, SQLModel, create_engine


class ItemStatus(StrEnum):
    """A review-queue item's state."""
    pending = "pending"          # open: waiting for (or claimed by) a dispatcher
    done = "done"                # decided
    skipped = "skipped"          # a dispatcher skipped it
    over_budget = "over_budget"  # dropped: beyond the day's review budget
    superseded = "superseded"    # a duplicate open item closed by migration 0004, or an incident's extra one (router/incidents.one_item)


class Reason(StrEnum):
    """Why a ticket is in the review queue (in the order a dispatcher sees them: no_fit first)."""
    low_confidence = "low_confidence"
    audit = "audit"              # a random check of a confident ticket
    no_fit = "no_fit"            # no department seems to fit
    emergency = "emergency"      # routed to 110/119/120/122: first in the queue (router/emergency.py)
    returned = "returned"        # a department sent it back (退单): a dispute for a lead (派单异议审核)


class Source(StrEnum):
    """Where a label came from."""
    imported = "import"          # history (`router import`)
    correction = "correction"    # a dispatcher chose another department
    confirmation = "confirmation"  # a dispatcher accepted the suggestion
    audit = "audit"              # a dispatcher's answer to an audit
    dispute = "dispute"          # a lead's decision on a returned ticket (router/returns.py)


class ReturnStatus(StrEnum):
    """A return's state: open until a lead decides its dispute."""
    open = "open"
    upheld = "upheld"            # the department was right to return it: re-dispatched elsewhere
    rejected = "rejected"        # the dispatch stands


class VersionStatus(StrEnum):
    """A model version's state in the registry: one current at a time."""
    candidate = "candidate"
    current = "current"
    retired = "retired"


class Action(StrEnum):
    """A registry event."""
    promoted = "promoted"
    kept_candidate = "kept_candidate"  # the gate refused it
    rolled_back = "rolled_back"


def now() -> datetime:
    return datetime.now(timezone.utc)  # sqlmodel stores aware datetimes, read back in UTC


class Ticket(SQLModel, table=True):
    id: str = Field(primary_key=True)
    text: str
    title: Optional[str] = None
    received_at: Optional[datetime] = Field(default=None, index=True)
    channel: Optional[str] = None
    created_at: datetime = Field(default_factory=now, index=True)
    places: Optional[str] = None               # the gazetteer names it gives, "、"-joined (router/places.py)
    district: Optional[str] = Field(default=None, index=True)  # their district, when one
    incident_id: Optional[int] = Field(default=None, index=True)  # the incident (并单) it belongs to
    duplicate_of: Optional[str] = None         # the earlier ticket it repeats


class Prediction(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    ticket_id: str = Field(foreign_key="ticket.id", index=True)
    model_version: str = Field(index=True)
    department: str = Field(index=True)
    confidence: float
    topk: list = Field(default_factory=list, sa_column=Column(JSON))  # [[dept, prob], ...]
    created_at: datetime = Field(default_factory=now, index=True)
    rule_id: Optional[int] = Field(default=None, index=True)  # the catalogue rule that decided it (None: the model)


OPEN = f"status = '{ItemStatus.pending}'"


class QueueItem(SQLModel, table=True):
    """A ticket waiting for a dispatcher: low confidence, or a random audit of a confident one."""
    __table_args__ = (Index("ix_queueitem_status_priority", "status", "priority"),
                      Index("ix_queueitem_claimed_by_status_done_at", "claimed_by", "status", "done_at"),
                      Index("ux_queueitem_open_ticket", "ticket_id", unique=True,  # one open item per ticket
                            sqlite_where=text(OPEN), postgresql_where=text(OPEN)))
    id: Optional[int] = Field(default=None, primary_key=True)
    ticket_id: str = Field(foreign_key="ticket.id", index=True)
    prediction_id: Optional[int] = Field(default=None, foreign_key="prediction.id")
    reason: str = Reason.low_confidence
    priority: float = Field(default=0.0, index=True)  # higher is shown first
    status: str = Field(default=ItemStatus.pending, index=True)
    claimed_by: Optional[str] = None
    claimed_until: Optional[datetime] = None
    created_at: datetime = Field(default_factory=now, index=True)
    done_at: Optional[datetime] = None


class Label(SQLModel, table=True):
    """A department assigned by a person (or imported history). Newest non-undone label wins."""
    __table_args__ = (Index("ix_label_reviewer_created_at", "reviewer", "created_at"),
                      Index("ix_label_department_undone_created_at", "department", "undone", "created_at"))
    id: Optional[int] = Field(default=None, primary_key=True)
    ticket_id: str = Field(foreign_key="ticket.id", index=True)
    department: Optional[str] = Field(default=None, index=True)  # None: "no department fits"
    reviewer: str = ""
    source: str = Field(default=Source.imported, index=True)
    prediction_id: Optional[int] = Field(default=None, foreign_key="prediction.id")
    undone: bool = False
    created_at: datetime = Field(default_factory=now, index=True)
    co_departments: list = Field(default_factory=list, sa_column=Column(JSON))  # 协办 (the lead one is `department`)
    wrong_departments: list = Field(default_factory=list, sa_column=Column(JSON))  # known wrong: upheld returns


class TicketReturn(SQLModel, table=True):
    """A department sending a ticket back (退单), imported with `router returns import`. Never
    changes the dispatch it returns: that prediction or label stays as it was."""
    __tablename__ = "ticketreturn"
    id: Optional[int] = Field(default=None, primary_key=True)
    ticket_id: str = Field(foreign_key="ticket.id", index=True)
    department: str = Field(index=True)        # the returning department
    reason: str = Field(index=True)            # one of returns.REASONS
    reason_given: Optional[str] = None         # the file's reason when it was not in the list (mapped to 其他)
    note: str = ""
    returned_at: datetime = Field(index=True)
    importer: str = ""
    prediction_id: Optional[int] = Field(default=None, foreign_key="prediction.id")  # the dispatch returned ...
    label_id: Optional[int] = Field(default=None, foreign_key="label.id")            # ... or a person's
    queue_id: Optional[int] = Field(default=None, foreign_key="queueitem.id")        # its dispute
    status: str = Field(default=ReturnStatus.open, index=True)
    decision_id: Optional[int] = Field(default=None, foreign_key="label.id")         # the lead's label
    created_at: datetime = Field(default_factory=now, index=True)


class Incident(SQLModel, table=True):
    """Repeated appeals about one matter (并单): near-duplicate tickets naming the same place within
    `[incidents] window_days` (router/incidents.py)."""
    id: Optional[int] = Field(default=None, primary_key=True)
    place: str                                 # the place its first tickets share
    district: Optional[str] = Field(default=None, index=True)
    department: Optional[str] = Field(default=None, index=True)  # where its first ticket was routed
    size: int = 1
    started_at: Optional[datetime] = Field(default=None, index=True)   # first ticket received
    last_at: Optional[datetime] = Field(default=None, index=True)      # newest ticket received
    created_at: datetime = Field(default_factory=now)


class Rule(SQLModel, table=True):
    """A dispatch catalogue rule (派单目录): tickets matching `pattern` (a keyword, or a regular expression)
    go to `department`, optionally only in `district`. Never deleted: disabling keeps it as history."""
    id: Optional[int] = Field(default=None, primary_key=True)
    pattern: str
    regex: bool = False
    department: str
    district: Optional[str] = None
    note: str = ""                             # the 三定 / 权责清单 item it rests on
    active: bool = Field(default=True, index=True)
    created_by: str = ""
    created_at: datetime = Field(default_factory=now)
    disabled_by: Optional[str] = None
    disabled_at: Optional[datetime] = None


class ModelVersion(SQLModel, table=True):
    version: str = Field(primary_key=True)
    kind: str                                  # baseline | llm
    path: str                                  # folder with the saved model and its reports
    base: Optional[str] = None                 # LLM base id (None for the baseline)
    status: str = Field(default=VersionStatus.candidate, index=True)
    data_snapshot: dict = Field(default_factory=dict, sa_column=Column(JSON))
    config: dict = Field(default_factory=dict, sa_column=Column(JSON))
    metrics: dict = Field(default_factory=dict, sa_column=Column(JSON))
    temperature: float = 1.0   # a copy of its model's (meta.json: the one the model uses), for listings
    created_at: datetime = Field(default_factory=now)
    promoted_at: Optional[datetime] = None


class ModelEvent(SQLModel, table=True):
    """Registry history: promotions, refusals by the gate, rollbacks."""
    id: Optional[int] = Field(default=None, primary_key=True)
    version: str = Field(foreign_key="modelversion.version", index=True)
    action: str                                # an Action
    reason: str = ""
    created_at: datetime = Field(default_factory=now)


class User(SQLModel, table=True):
    """A dispatcher's account for the labeling app (`router users add`)."""
    __tablename__ = "account"  # "user" is reserved in PostgreSQL
    name: str = Field(primary_key=True)
    password_hash: str                         # argon2id, salted (argon2-cffi)
    role: str = "dispatcher"                   # dispatcher | lead
    failed_sign_ins: int = 0                   # wrong passwords since the last good one
    last_failed_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=now)


def bulk_insert(model):
    """An INSERT of `model` rows for `Session.execute(stmt, rows)` that sends them in one executemany: None
    rendered as NULL. Without it SQLAlchemy's ORM bulk insert leaves out the None values and so splits the
    rows into a statement per run of rows with the same keys: a round trip every few rows (PostgreSQL imported
    160 tickets/s), and more time under SQLite's write lock."""
    from sqlalchemy import insert

    return insert(model).execution_options(render_nulls=True)


def insert_predictions(session: Session, rows: list[dict]) -> list[int]:
    """Insert Prediction rows in one executemany; their ids, in the rows' order. Not INSERT ... RETURNING: SQLite
    does not promise RETURNING's order over many rows, so SQLAlchemy sends such an insert a row at a time
    (milliseconds a row on a loaded machine, inside the write lock). The ids are read back: the newest
    prediction of each (ticket, model version)."""
    from sqlalchemy import select

    if not rows:
        return []
    session.execute(bulk_insert(Prediction), rows)
    got = {}
    for version in {r["model_version"] for r in rows}:
        tids = [r["ticket_id"] for r in rows if r["model_version"] == version]
        got.update(((tid, version), pid) for pid, tid in session.execute(
            select(Prediction.id, Prediction.ticket_id).where(Prediction.ticket_id.in_(tids),
                                                              Prediction.model_version == version)
            .order_by(Prediction.id)))
    return [got[(r["ticket_id"], r["model_version"])] for r in rows]


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, busy_timeout_ms: int = 5000, lock_log: str = "", retry_seconds: float | None = None):
    """An engine for `url`; `retry_seconds` ([store] retry_seconds) bounds `retry`'s waits for the writes made
    through it (None: the module's `waits.budget`)."""
    opts = {} if retry_seconds is None else {"execution_options": {"retry_seconds": float(retry_seconds)}}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000,
                                                  "check_same_thread": False},
                               hide_parameters=True, **opts)  # errors never print ticket texts
        event.listen(engine, "connect", _sqlite_pragmas)
        if path and path != ":memory:":
            _take_turns(engine, _gate(path), busy_timeout_ms / 1000)
        event.listen(engine, "begin", _sqlite_begin)
        if lock_log:
            _log_locks(engine, lock_log)
        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, **opts)


class _Gate:
    """SQLite writers on this host take turns, first come first served, before they take SQLite's write lock,
    whose busy handler sleeps up to 100 ms between tries: there a waiting writer missed turn after turn
    (seconds) while others took theirs, and so did one polling a single file lock. A writer draws the next
    number from the file `<db>-writer`, holds that number's byte of the file (a POSIX record lock, let go
    when its process ends however it ends) until its transaction ends, and goes in once the number before
    it is let go (tried every 2 ms): that writer has finished, died or stopped waiting. Waits at most
    `timeout` seconds, then goes on to SQLite's own busy wait, still in line. Record locks belong to a
    process: one gate per file and process (`_gate`), which its threads take one at a time."""

    SLOTS = 4096                               # numbers in use at once, at most (then one waits for SQLite alone)

    def __init__(self, path: str):
        self.path = path
        self.mutex = threading.Lock()
        self.fd, self.pid, self.mine = None, None, None

    def _byte(self, n: int, how: int) -> bool:
        try:
            fcntl.lockf(self.fd, how, 1, 8 + n % self.SLOTS)
            return True
        except OSError:                        # held by another process
            return False

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self.mutex.acquire(timeout=timeout):
            return False
        try:
            if self.pid != os.getpid():
                self.fd, self.pid = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
            fcntl.lockf(self.fd, fcntl.LOCK_EX, 8)  # the counter (bytes 0-7), held for three system calls
            try:
                n = int.from_bytes(os.pread(self.fd, 8, 0).ljust(8, b"\0"), "little")
                os.pwrite(self.fd, (n + 1).to_bytes(8, "little"), 0)
                self.mine = n if self._byte(n, fcntl.LOCK_EX | fcntl.LOCK_NB) else None
            finally:
                fcntl.lockf(self.fd, fcntl.LOCK_UN, 8)
        except OSError:                        # no gate (a read-only folder, say): SQLite's own lock alone
            self.mutex.release()
            return False
        while not self._byte(n - 1, fcntl.LOCK_SH | fcntl.LOCK_NB):
            if time.monotonic() > deadline:
                return True
            time.sleep(0.002)
        self._byte(n - 1, fcntl.LOCK_UN)
        return True

    def release(self) -> None:
        if self.mine is not None:
            self._byte(self.mine, fcntl.LOCK_UN)
            self.mine = None
        self.mutex.release()


_gates: dict[str, _Gate] = {}


def _gate(path: str) -> _Gate:
    """The process's gate for the SQLite file at `path`."""
    key = os.path.realpath(path) + "-writer"
    return _gates.setdefault(key, _Gate(key))


def _writes(statement: str) -> bool:
    """Whether a statement writes (so takes SQLite's write lock)."""
    return statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE")


def _take_turns(engine, gate: _Gate, timeout: float) -> None:
    """A transaction passes `gate` before its first write (a `writing` one before its BEGIN IMMEDIATE)
    and leaves it when its connection goes back to the pool, after the commit or rollback."""
    def enter(info):
        if "gate" not in info:
            info["gate"] = gate.acquire(timeout)

    def begin(conn):
        if conn.get_execution_options().get("write_lock"):
            enter(conn.connection.info)

    def write(conn, _cursor, statement, *_):
        if _writes(statement):
            enter(conn.connection.info)

    def leave(_dbapi, record):
        if record.info.pop("gate", False):
            gate.release()
    event.listen(engine, "begin", begin)           # before _sqlite_begin's BEGIN IMMEDIATE
    event.listen(engine, "before_cursor_execute", write)
    event.listen(engine.pool, "checkin", leave)


def _sqlite_begin(conn):
    """Transactions opened by `writing` begin with BEGIN IMMEDIATE; the others keep pysqlite's
    own BEGIN, sent before their first write (reads before it see the newest data)."""
    if conn.get_execution_options().get("write_lock"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _log_locks(engine, path: str) -> None:
    """Append one line per write transaction to `path`: pid, seconds it held SQLite's write lock (from the
    end of its first write statement, or of a `writing` transaction's BEGIN IMMEDIATE, to its commit or
    rollback), seconds that first statement took (mostly waiting for the lock), the statement's first words."""
    def begin(conn):
        if conn.get_execution_options().get("write_lock"):
            conn.connection.info["w0"] = (time.perf_counter(), 0.0, "BEGIN IMMEDIATE")

    def before(conn, _cursor, statement, *_):
        if "w0" not in conn.connection.info and _writes(statement):
            conn.connection.info["w_start"] = time.perf_counter()

    def after(conn, _cursor, statement, *_):
        t = conn.connection.info.pop("w_start", None)
        if t is not None:
            now_ = time.perf_counter()
            conn.connection.info["w0"] = (now_, now_ - t, " ".join(statement.split()[:3]))

    def end(conn):
        got = conn.connection.info.pop("w0", None)
        conn.connection.info.pop("w_start", None)
        if got:
            with open(path, "a") as f:
                f.write(f"{os.getpid()} {time.perf_counter() - got[0]:.4f} {got[1]:.4f} {got[2]}\n")
    event.listen(engine, "begin", begin)
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "commit", end)
    event.listen(engine, "rollback", end)


@contextmanager
def writing(engine):
    """A Session for one read-then-write transaction that holds the write lock from its start
    on SQLite (other writers wait for it; its reads cannot go stale before it writes). On
    PostgreSQL an ordinary transaction: use conditional UPDATEs or SELECT ... FOR UPDATE there."""
    with Session(engine) as s:
        s.connection(execution_options={"write_lock": True})
        yield s


def transient(e: BaseException) -> bool:
    """A lock or deadlock error that the same transaction, tried again, can get past."""
    if not isinstance(e, DBAPIError):
        return False
    code = getattr(e.orig, "sqlstate", None)  # psycopg: serialization failure, deadlock, lock timeout
    if code in ("40001", "40P01", "55P03"):
        return True
    msg = str(e.orig).lower()
    return "database is locked" in msg or "database table is locked" in msg or "database is busy" in msg


retried = [0]  # transactions this process has tried again (bench/concurrency.py reports it)


@dataclass
class Waits:
    """How `retry` waits: jittered exponential backoff from `first` up to `most` seconds between tries,
    `budget` seconds in all (busy timeouts included; an engine made with `retry_seconds` sets its own
    budget, [store] retry_seconds); `clock` and `sleep` are injectable for tests."""
    budget: float = 20.0
    first: float = 0.05
    most: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


waits = Waits()  # the process's default, read at each call


class StoreBusy(RuntimeError):
    """The store stayed locked (or kept failing serialization) past the retry budget: nothing was written."""


def retry(f=None, *, w: Waits | None = None):
    """Run `f` (one whole transaction) again after a transient store error (`transient`), with jittered
    exponential backoff on top of the busy timeout each try already waited, while the total time stays
    within the budget (`w`; else the module's `waits`, with the budget of the engine `f` is given first
    when it has one); then StoreBusy, one line naming the wait."""
    if f is None:
        return functools.partial(retry, w=w)

    @functools.wraps(f)
    def run(*args, **kw):
        ws = w or waits
        budget = ws.budget if w is not None or not args else budget_of(args[0], ws.budget)
        start, i = ws.clock(), 0
        while True:
            try:
                return f(*args, **kw)
            except DBAPIError as e:
                if not transient(e):
                    raise
                delay = min(ws.first * 2 ** i, ws.most) * random.uniform(0.5, 1.5)
                waited = ws.clock() - start
                if waited + delay > budget:
                    raise StoreBusy(f"the store stayed busy for {waited:.1f} s over {i + 1} tries (another "
                                    f"program is writing to it: {_brief(e)}); nothing was recorded, try again") from None
                retried[0] += 1
                ws.sleep(delay)
                i += 1
    return run


def budget_of(engine, default: float) -> float:
    """The retry budget an engine was made with (`make_engine`'s retry_seconds), else `default`."""
    get = getattr(engine, "get_execution_options", None)
    return float(get().get("retry_seconds", default)) if get else default


def _brief(e: DBAPIError) -> str:
    return str(e.orig).split("\n", 1)[0][:120]


class StoreVersionError(ValueError):
    """The store was written by a newer version of the router (a schema revision this one does not know)."""


def shipped_head() -> str | None:
    """The newest schema revision this version ships, read from the migration files (no Alembic
    import); None unless there is exactly one head."""
    import re

    revs, downs = set(), set()
    for f in (Path(__file__).with_name("migrations") / "versions").glob("*.py"):
        src = f.read_text(encoding="utf-8")
        rev = re.search(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", src, re.M)
        down = re.search(r"^down_revision\s*=\s*['\"]([^'\"]+)['\"]", src, re.M)
        if rev:
            revs.add(rev.group(1))
        if down:
            downs.add(down.group(1))
    heads = revs - downs
    return heads.pop() if len(heads) == 1 else None


def _at(url: str) -> list[str] | None:
    """The revisions stamped in the store at `url` (None: no Alembic table yet)."""
    probe = make_engine(url)
    try:
        with probe.connect() as c:
            return [r[0] for r in c.exec_driver_sql("SELECT version_num FROM alembic_version")]
    except DBAPIError:
        return None
    finally:
        probe.dispose()


def migrate(url: str) -> None:
    """Bring the database at `url` to the newest schema (alembic upgrade head). A store at a revision
    this version does not know is refused (StoreVersionError) before anything is changed. A store
    already at the newest revision costs one query (Alembic is not even imported: start-up time)."""
    head = shipped_head()
    if head is not None and _at(url) == [head]:
        return
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError
    from sqlalchemy.engine import make_url

    ini = Config()
    ini.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    ini.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    scripts = ScriptDirectory.from_config(ini)
    probe = make_engine(url)
    try:
        with probe.connect() as c:
            revisions = MigrationContext.configure(c).get_current_heads()
    finally:
        probe.dispose()
    for rev in revisions:
        try:
            scripts.get_revision(rev)
        except CommandError:
            shown = make_url(url).render_as_string(hide_password=True)
            raise StoreVersionError(
                f"the store {shown} is at schema revision {rev}, written by a newer version of the router; "
                f"this version knows revisions up to {scripts.get_current_head()}: upgrade the router "
                "(nothing in the store was changed)") from None
    command.upgrade(ini, "head")


_engines: dict[str, object] = {}


def connect(url: str, busy_timeout_ms: int = 5000, lock_log: str = "", retry_seconds: float | None = None):
    """An engine for `url`, migrated to the newest schema once per process."""
    if url not in _engines:
        migrate(url)
        _engines[url] = make_engine(url, busy_timeout_ms, lock_log, retry_seconds)
    return _engines[url]


def open_store(cfg):
    """The engine named by the settings (SQLite under paths.home unless store.url is set)."""
    from router import config

    return connect(config.store_url(cfg), cfg.store.busy_timeout_ms, cfg.store.lock_log, cfg.store.retry_seconds)


__all__ = ["Ticket", "Prediction", "Rule", "Incident", "QueueItem", "Label", "TicketReturn", "ModelVersion", "ModelEvent", "User",
           "Session", "SQLModel", "StoreBusy", "bulk_insert", "insert_predictions", "StoreVersionError", "Waits", "connect", "open_store", "make_engine", "migrate", "now", "writing", "retry",
           "transient"]
