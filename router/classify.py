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
import numpy as np

from router import nofit, queue
from router.classifier import model_input
from router.io import JsonlWriter, Reject, TicketIn, done_ids, read_tickets
from router.queue import Enqueued, Policy, policy
from router.store import Prediction, Ticket
from router.strategies import Diverse, featurize, make_strategy

CST = timezone(timedelta(hours=8))  # naive times in hotline exports are China Standard Time


@dataclass
class Summary:
    routed: int = 0
    skipped: int = 0          # already in the output (--resume)
    queued: int = 0           # new low-confidence queue items
    audits: int = 0           # new audit items (confident tickets sampled for an unbiased accuracy)
    no_fit: int = 0           # new no-fit items (department "none": no department fits, router/nofit.py)
    waiting: int = 0          # tickets already waiting: their item now shows this run's prediction
    decided: int = 0          # tickets a dispatcher already decided: never queued again
    over_budget: int = 0      # queue items set aside by the daily budget
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


def store_batch(engine, batch: list[TicketIn], proba, tops, version: str, pol: Policy,
                flagged=None) -> Enqueued:
    """Tickets, predictions and queue items of one batch in one transaction.
    `tops` holds each ticket's [(department, probability), ...], best first; `pol` the queue policy;
    `flagged` marks the no-fit tickets (their top is ("none", confidence)).
    A ticket already predicted by `version` (a resumed or repeated run) is not predicted again."""
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
                continue
            preds.append(Prediction(ticket_id=t.id, model_version=version, department=top[0][0],
                                    confidence=top[0][1], topk=[list(x) for x in top]))
            keep.append(i)
        s.add_all(preds)
        s.flush()
        nofit_conf = None if flagged is None else \
            np.array([tops[i][0][1] if flagged[i] else np.nan for i in keep], dtype=float)
        done = queue.enqueue(s, [ids[i] for i in keep], proba[keep], [p.id for p in preds], pol,
                             texts=[model_input(batch[i].text, batch[i].title) for i in keep], nofit=nofit_conf)
        again = [ids[i] for i in range(len(batch)) if ids[i] in predicted]
        if again:  # say truthfully whether a repeated ticket waits in the queue
            done.waiting += list(queue.open_items(s, again))
        s.commit()
    return done


def prioritize(engine, clf, version: str, pol: Policy, no_fit: tuple = (None, True)) -> int:
    """Order the waiting tickets with the configured strategy, as the benchmarks measure it:
    the `pol.window` best picks of `strategy.query` over the waiting pool come first, the rest
    follow by score. With `pol.rerank`, tickets routed by another model are re-scored (and
    re-predicted, so dispatchers see the current model's suggestions; `no_fit` = (threshold,
    enabled) of the no-fit decision for those). Returns the pool size."""
    strategy = make_strategy(pol.strategy)
    window = pol.window or 200
    with Session(engine) as s:
        p = queue.pool(s, window * getattr(strategy, "pool", 4))
        if not p.item_ids:
            return 0
        classes = [str(c) for c in clf.classes_]
        texts = [model_input(t, h) for t, h in zip(p.texts, p.titles)]
        stale = [k for k, v in enumerate(p.versions) if v != version] if pol.rerank else []
        proba = _stored_proba(p.tops, classes)
        new_preds = {}
        if stale:  # this model's prediction where there is one (a rollback), else a new one
            have = {x.ticket_id: x for x in s.exec(select(Prediction).where(
                Prediction.ticket_id.in_([p.ticket_ids[k] for k in stale]), Prediction.model_version == version))}
            for k in stale:
                if p.ticket_ids[k] in have:
                    proba[k] = _stored_proba([have[p.ticket_ids[k]].topk], classes)[0]
                    new_preds[k] = have[p.ticket_ids[k]].id
            todo = [k for k in stale if k not in new_preds]
            if todo:
                proba[todo], score = nofit.scores(clf, [texts[k] for k in todo])
                tops, _ = nofit.route(proba[todo], score, classes, len(p.tops[0]) if p.tops and p.tops[0] else 3,
                                      *no_fit)
                preds = [Prediction(ticket_id=p.ticket_ids[k], model_version=version, department=top[0][0],
                                    confidence=top[0][1], topk=[list(x) for x in top]) for k, top in zip(todo, tops)]
                s.add_all(preds)
                s.flush()
                new_preds.update(zip(todo, (x.id for x in preds)))
        features = labeled = None
        if isinstance(strategy, Diverse):
            features = featurize(texts)
            done = queue.labeled_texts(s, 2000)
            labeled = featurize([model_input(t, h) for t, h in done]) if done else None
        prio = strategy.priorities(proba, min(window, len(texts)), features, labeled)
        if new_preds:
            ids = [p.item_ids[k] for k in stale]
            queue.set_priorities(s, ids, prio[stale], [new_preds[k] for k in stale])
        fresh = [k for k in range(len(p.item_ids)) if k not in new_preds]
        queue.set_priorities(s, [p.item_ids[k] for k in fresh], prio[fresh])
        s.commit()
    return len(p.item_ids)


def _stored_proba(tops: list[list], classes: list[str]) -> np.ndarray:
    """Probabilities over `classes` from stored top-k lists (other departments 0): exact for
    margin and least confidence, which only look at the top two."""
    pos = {c: j for j, c in enumerate(classes)}
    out = np.zeros((len(tops), len(classes)))
    for i, top in enumerate(tops):
        for d, pr in top or []:
            if d in pos:
                out[i, pos[d]] = pr
    return out


def classify(engine, catalog: Catalog, source: str, output: str | None, rejects: str | None,
             threshold: float, batch_size: int = 64, k: int = 3, version: str | None = None,
             resume: bool = False, progress=None, cfg=None) -> Summary:
    mv, clf = registry.load(engine, version)
    cfg = cfg if cfg is not None else config.load()
    pol = policy(cfg, threshold=threshold)  # once per run
    nf = nofit.settings(cfg)
    nofit_thr = nofit.threshold(nf, nofit.model_threshold(mv))
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
            proba, score = nofit.scores(clf, [model_input(t.text, t.title) for t in batch])
            tops, flagged = nofit.route(proba, score, classes, k, nofit_thr, nf.enabled)
            done = store_batch(engine, batch, proba, tops, mv.version, pol, flagged)
            summary.queued += len(done.low)
            summary.audits += len(done.audit)
            summary.no_fit += len(done.nofit)
            summary.waiting += len(done.waiting)
            summary.decided += len(done.decided)
            summary.over_budget += done.dropped
            queued = done.queued
            rows = []
            for t, top in zip(batch, tops):
                dept, conf = top[0]
                summary.per_department[dept] += 1
                rows.append({"id": t.id, "department": dept, "department_name": catalog.name(dept),
                             "confidence": round(conf, 4), "queued": t.id in queued,
                             "top": [{"department": d, "name": catalog.name(d), "p": round(p, 4)}
                                     for d, p in top],
                             "model_version": mv.version})
            out.write_many(rows)
            summary.routed += len(batch)
            if progress:
                progress.advance(task, len(batch))
    if summary.routed:
        prioritize(engine, clf, mv.version, pol, (nofit_thr, nf.enabled))
        summary.over_budget += _trim(engine, pol)
    summary.seconds = time.perf_counter() - start
    return summary


def _trim(engine, pol: Policy) -> int:
    with Session(engine) as s:
        n = queue.trim_to_budget(s, pol)
        s.commit()
    return n


def default_output(source: str) -> str:
    if source == "-":
        return "-"
    p = Path(source)
    return str(p.with_name(p.stem + ".routed.jsonl"))


def default_rejects(source: str, output: str) -> str:
    base = Path(output if output != "-" else (source if source != "-" else "stdin"))
    return str(base.with_name(base.stem.replace(".routed", "") + ".rejects.jsonl"))
