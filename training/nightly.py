"""The nightly retrain: enough new labels? -> train -> evaluate -> gate -> promote.

    router retrain [--kind baseline|llm] [--force]

Exit codes (for cron / systemd):
    0  a new model was promoted, or there was nothing to do (too few new labels)
    2  bad configuration or usage
    3  another retrain holds the lock (<home>/retrain.lock); nothing was done
    4  training or evaluation failed (traceback in <home>/logs/retrain.log)
    5  trained and evaluated, but the gate kept the candidate (reason in the log and in
       `router models`' history)
"""

from __future__ import annotations

import fcntl
import logging
import os
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from router import config, parallel
from router.catalog import Catalog
from router.store import Label, ModelVersion
from training import data as data_mod
from training.train import Trained, train

OK, USAGE, LOCKED, FAILED, KEPT = 0, 2, 3, 4, 5


class Locked(RuntimeError):
    pass


@dataclass
class Outcome:
    code: int
    message: str
    trained: Trained | None = None


@contextmanager
def lock(path):
    """An exclusive, non-blocking flock; raises Locked when another process holds it.
    The kernel drops it when the process dies, so a crashed run never blocks the next."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            raise Locked(f"another retrain is running ({path} held" + (f" by pid {holder})" if holder else ")"))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def logger(cfg) -> logging.Logger:
    """`router.retrain`, writing to <home>/logs/retrain.log (one handler per file)."""
    log = logging.getLogger("router.retrain")
    log.setLevel(logging.INFO)
    path = config.home(cfg) / "logs" / "retrain.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not any(getattr(h, "baseFilename", None) == str(path.resolve()) for h in log.handlers):
        for h in [h for h in log.handlers if isinstance(h, logging.FileHandler)]:
            log.removeHandler(h)
            h.close()
        h = logging.FileHandler(path, encoding="utf-8")
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s pid=%(process)d %(message)s"))
        log.addHandler(h)
    return log


def last_version(engine, kind: str) -> ModelVersion | None:
    with Session(engine) as s:
        return s.exec(select(ModelVersion).where(ModelVersion.kind == kind)
                      .order_by(ModelVersion.created_at.desc())).first()


def max_label_id(engine) -> int:
    with Session(engine) as s:
        return s.exec(select(func.max(Label.id))).one() or 0


def new_labels(engine, last: ModelVersion | None) -> int:
    """Labels (not undone) stored since version `last` was trained (all of them when None)."""
    q = select(func.count()).select_from(Label).where(Label.undone == False)  # noqa: E712
    if last is not None:
        after = (last.data_snapshot or {}).get("max_label_id")
        # versions trained by `router train` record no label id: count by time instead
        q = q.where(Label.id > int(after)) if after is not None else q.where(Label.created_at > last.created_at)
    with Session(engine) as s:
        return s.exec(q).one()


def run(engine, cfg, catalog: Catalog, kind: str | None = None, force: bool = False, console=None) -> Outcome:
    """One nightly run; never raises, returns the exit code and a one-line message.

    Several processes (torchrun, router/parallel.py) retraining the LLM: rank 0 does all of this and
    sends the others its decision, ("exit", code) or ("train", data, since, snapshot); they then
    train with it (DDP) and stop after `fit` (`follow`)."""
    kind = str(kind or cfg.retrain.kind)
    ddp = kind == "llm" and parallel.active()
    if ddp and not parallel.world().lead:
        return follow(engine, cfg, catalog, kind)
    log = logger(cfg)
    say = console.print if console is not None else (lambda *a, **k: None)
    told = not ddp                           # the other ranks know what to do

    def tell(*msg) -> None:
        nonlocal told
        if not told:
            parallel.send(msg)
            told = True
            if msg[0] == "exit":
                parallel.part()

    def done(code: int, message: str, trained=None) -> Outcome:
        tell("exit", code)
        (log.error if code in (FAILED, USAGE) else log.info)(f"exit {code}: {message}")
        say(message)
        return Outcome(code, message, trained)

    try:
        return _run(engine, cfg, catalog, kind, force, console, log, done, tell)
    finally:
        tell("exit", FAILED)                 # rank 0 failed before deciding: the others stop too


def follow(engine, cfg, catalog: Catalog, kind: str) -> Outcome:
    """Ranks > 0: exit with rank 0's code, or train on the data it sends (DDP) and stop."""
    msg = parallel.receive()
    if msg[0] == "exit":
        parallel.part()
        return Outcome(msg[1], f"rank 0 exited {msg[1]}")
    _, data, since, snapshot = msg
    rank = parallel.world().rank
    try:
        train(engine, cfg, catalog, data, kind, snapshot, since=since, gate=True)
    except Exception as e:
        return Outcome(FAILED, f"rank {rank}: training {kind} failed: {type(e).__name__}: {e}")
    return Outcome(OK, f"rank {rank}: trained")


def _run(engine, cfg, catalog, kind, force, console, log, done, tell) -> Outcome:
    try:
        with lock(config.home(cfg) / "retrain.lock"):
            last = last_version(engine, kind)
            fresh, need = new_labels(engine, last), int(cfg.retrain.min_new_labels)
            log.info(f"retrain {kind}: {fresh} new labels since " + (last.version if last else "the start")
                     + f" (need {need})" + (", forced" if force else ""))
            if fresh < need and not force:
                return done(OK, f"nothing to do: {fresh} new label(s) since "
                                + (f"{last.version}" if last else "the start") + f", fewer than {need}")
            since = None
            if last and (last.data_snapshot or {}).get("labels_until"):
                since = datetime.fromisoformat(last.data_snapshot["labels_until"])
            try:
                top = max_label_id(engine)
                data = data_mod.from_store(engine, catalog)
                snapshot = {"source": "store", "n_labels": len(data), "max_label_id": top, "new_labels": fresh}
                if parallel.active() and kind == "llm":
                    note = parallel.batch_note(cfg.sft.batch_size, cfg.sft.grad_accum, parallel.world().size)
                    log.info(note)
                    if console is not None:
                        console.print(note)
                tell("train", data, since, snapshot)
                res = train(engine, cfg, catalog, data, kind, snapshot, console=console, since=since, gate=True)
            except Exception as e:
                log.error("training failed:\n" + traceback.format_exc())
                return done(FAILED, f"training {kind} failed: {type(e).__name__}: {e} (see the retrain log)")
            rep, v = res.report, res.version.version
            log.info(f"{v}: accuracy {rep['accuracy']:.4f}, macro-F1 {rep['macro']['f1']:.4f}, ECE "
                     f"{rep['ece']:.4f} (before calibration {rep['calibration']['ece_before']:.4f}), "
                     f"report in {res.version.path}")
            if res.promoted:
                return done(OK, f"promoted {v}: {res.decision.reason}", res)
            return done(KEPT, f"kept {v} as a candidate: {res.decision.reason}", res)
    except Locked as e:
        return done(LOCKED, str(e))
