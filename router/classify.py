"""Route a file of tickets: predict, write JSONL, store predictions, fill the review queue."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlmodel import Session, select

from router import config, registry
from router.catalog import Catalog
from router.classifier import top_k
from router.io import JsonlWriter, Reject, TicketIn, done_ids, read_tickets
from router.queue import Policy, enqueue, policy
from router.store import Prediction, Ticket

CST = timezone(timedelta(hours=8))  # naive times in hotline exports are China Standard Time


@dataclass
class Summary:
    routed: int = 0
    skipped: int = 0          # already in the output (--resume)
    queued: int = 0
    rejected: int = 0
    seconds: float = 0.0
    model_version: str = ""
    per_department: Counter = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.routed / self.seconds if self.seconds else 0.0


def parse_time(s: str | None) -> datetime | None:
    if not s:
        return None
    t = datetime.fromisoformat(s.replace("/", "-"))
    return t if t.tzinfo else t.replace(tzinfo=CST)


def store_batch(engine, batch: list[TicketIn], proba, tops, version: str, pol: Policy) -> int:
    """Tickets, predictions and queue items of one batch in one transaction; returns queued.
    `tops` holds each ticket's [(department, probability), ...], best first; `pol` the queue policy."""
    ids = [t.id for t in batch]
    with Session(engine) as s:
        known = set(s.exec(select(Ticket.id).where(Ticket.id.in_(ids))))
        predicted = set(s.exec(select(Prediction.ticket_id).where(
            Prediction.ticket_id.in_(ids), Prediction.model_version == version)))
        for t in batch:
            if t.id not in known:
                s.add(Ticket(id=t.id, text=t.text, title=t.title, channel=t.channel,
                             received_at=parse_time(t.received_at)))
        s.flush()
        preds, keep = [], []
        for i, (t, top) in enumerate(zip(batch, tops)):
            if t.id in predicted:
                continue  # a resumed run: stored before the crash, not written to the file
            preds.append(Prediction(ticket_id=t.id, model_version=version, department=top[0][0],
                                    confidence=top[0][1], topk=[list(x) for x in top]))
            keep.append(i)
        s.add_all(preds)
        s.flush()
        queued = enqueue(s, [ids[i] for i in keep], proba[keep], [p.id for p in preds],
                         texts=[batch[i].text for i in keep], pol=pol)
        s.commit()
    return queued


def classify(engine, catalog: Catalog, source: str, output: str | None, rejects: str | None,
             threshold: float, batch_size: int = 64, k: int = 3, version: str | None = None,
             resume: bool = False, progress=None, cfg=None) -> Summary:
    mv, clf = registry.load(engine, version)
    pol = policy(cfg if cfg is not None else config.load(), threshold=threshold)  # once per run
    classes = [str(c) for c in clf.classes_]
    summary = Summary(model_version=mv.version)
    done = done_ids(output) if resume and output not in (None, "-") else set()
    rejected_before = done_ids(rejects, key="line") if resume and rejects else set()
    items = list(read_tickets(source, catalog))
    todo = [t for t in items if isinstance(t, TicketIn) and t.id not in done]
    bad = [r for r in items if isinstance(r, Reject)]
    summary.skipped = sum(isinstance(t, TicketIn) for t in items) - len(todo)
    summary.rejected = len(bad)
    start = time.perf_counter()
    with JsonlWriter(rejects, append=resume) as rej:
        rej.write_many(r.as_dict() for r in bad if r.line not in rejected_before)
    task = progress.add_task("routing", total=len(todo)) if progress else None
    with JsonlWriter(output, append=resume) as out:
        for i in range(0, len(todo), batch_size):
            batch = todo[i:i + batch_size]
            proba = clf.predict_proba([t.text for t in batch])
            tops = top_k(proba, classes, k)
            summary.queued += store_batch(engine, batch, proba, tops, mv.version, pol)
            rows = []
            for t, top in zip(batch, tops):
                dept, conf = top[0]
                summary.per_department[dept] += 1
                rows.append({"id": t.id, "department": dept, "department_name": catalog.name(dept),
                             "confidence": round(conf, 4), "queued": conf < threshold,
                             "top": [{"department": d, "name": catalog.name(d), "p": round(p, 4)}
                                     for d, p in top],
                             "model_version": mv.version})
            out.write_many(rows)
            summary.routed += len(batch)
            if progress:
                progress.advance(task, len(batch))
    summary.seconds = time.perf_counter() - start
    return summary


def default_output(source: str) -> str:
    if source == "-":
        return "-"
    p = Path(source)
    return str(p.with_name(p.stem + ".routed.jsonl"))


def default_rejects(source: str, output: str) -> str:
    base = Path(output if output != "-" else (source if source != "-" else "stdin"))
    return str(base.with_name(base.stem.replace(".routed", "") + ".rejects.jsonl"))
