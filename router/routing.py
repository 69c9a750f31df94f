"""Route a file of tickets: predict, write JSONL, store predictions, fill the review queue."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlmodel import Session, select

from router import cohandling, dispatch, emergency, order, parallel, queue, registry, similarity
from router import incidents as incidents_mod
from router.catalog import Catalog, is_emergency
from router.places import Places
from router.rules import Rules
from router import nofit
from router.classifier import fold, model_input
from router.config import Settings
from router.io import (JsonlWriter, Reject, RoutedWriter, TicketIn, TicketReader, WriteError, count_records,
                       done_ids, parse_time)
from router.queue import Enqueued, Policy, policy
from router.store import Prediction, Ticket, bulk_insert, insert_predictions, now

__all__ = ["Job", "classify", "store_batch", "stored_ids", "default_output", "default_rejects",
           "Summary", "StoreError"]


RULES_VERSION = "rules"  # the model version recorded for what the rule layer alone routed (--emergencies-only)


class StoreError(RuntimeError):
    """The store cannot be reached or written (not a problem of one ticket)."""


_LOST = (OperationalError, InterfaceError, DisconnectionError)  # the store out of reach: StoreError
_REFUSED = (SQLAlchemyError, ValueError, OverflowError)         # the store refused the rows (or _LOST)


@dataclass
class Job:
    """One `router classify` run; None fields take their defaults (`resolved`)."""
    source: str                      # a file, or "-" for standard input
    output: str | None = None        # default <input>.routed.jsonl ("-": standard output)
    rejects: str | None = None       # default <output>.rejects.jsonl
    version: str | None = None       # default the current model
    threshold: float | None = None   # queue below this confidence; default [classify] threshold ("auto":
                                     # the version's own)
    batch_size: int | None = None    # default [classify] batch_size
    k: int | None = None             # suggestions per ticket; default [classify] top_k
    resume: bool = False             # skip the tickets already in the output
    encoding: str | None = None      # default detected
    emergencies_only: bool = False   # no model: only what the emergency rules flag (a cron every minute)

    def resolved(self, cfg: Settings) -> Job:
        c = cfg.classify
        output = self.output or default_output(self.source)
        return replace(self, output=output, rejects=self.rejects or default_rejects(self.source, output),
                       batch_size=self.batch_size or c.batch_size, k=self.k or c.top_k)


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
    threshold: float = 0.0
    threshold_source: str = ""
    auto: int = 0             # routed without review (no item of their own nor their incident's, not no-fit)
    auto_confidence: float = 0.0   # the sum of their confidences
    per_department: Counter = field(default_factory=Counter)
    by: Counter = field(default_factory=Counter)  # what decided each ticket: model, places, rule:<id>, ...
    ambiguous_places: int = 0   # tickets naming a place of two districts (reported, left to the model)
    emergencies: int = 0        # new emergency items (110/119/120/122), first in the queue
    skipped_calm: int = 0       # --emergencies-only: tickets that are no emergency (left for the regular run)
    merged: int = 0             # would be queued, but their incident already waits: settled through its item
    incident_members: int = 0   # tickets of this run in an incident (并单)
    rule_warnings: list = field(default_factory=list)  # catalogue rules the catalogue changed under (router/rules.py)
    model_warnings: list = field(default_factory=list)  # model classes the catalogue changed under (classifier.fold)

    @property
    def rate(self) -> float:
        return self.routed / self.seconds if self.seconds else 0.0

    def add(self, done: Enqueued) -> None:
        """Count what one batch did to the queue."""
        self.queued += len(done.low)
        self.audits += len(done.audit)
        self.no_fit += len(done.nofit)
        self.emergencies += len(done.emergency)
        self.merged += len(done.merged)
        self.incident_members += len(done.linked)
        self.waiting += len(done.waiting)
        self.decided += len(done.decided)
        self.over_budget += done.dropped

    @property
    def expected_accuracy(self) -> float | None:
        """The accuracy to expect of the tickets routed without review: their mean calibrated confidence."""
        return self.auto_confidence / self.auto if self.auto else None

    def as_dict(self) -> dict:
        """The machine-readable summary (`router classify --summary-json`)."""
        return {"model_version": self.model_version, "routed": self.routed, "per_department": dict(
                    self.per_department.most_common()), "routed_without_review": self.auto,
                "expected_accuracy": None if self.auto == 0 else round(self.expected_accuracy, 4),
                "threshold": self.threshold, "threshold_source": self.threshold_source,
                "queued": self.queued, "audits": self.audits, "no_fit": self.no_fit, "already_waiting": self.waiting,
                "merged_into_incidents": self.merged, "incident_members": self.incident_members,
                "already_decided": self.decided, "over_budget": self.over_budget, "rejected": self.rejected,
                "skipped": self.skipped, "decided_by": dict(self.by), "ambiguous_places": self.ambiguous_places,
                "seconds": round(self.seconds, 3), "tickets_per_s": round(self.rate, 1)}


@dataclass
class _Prepared:
    """One batch's writes, computed before any (`_prepare`): which tickets and predictions are new, the queue's
    reasons and priorities (`order.rank`), the incidents (`incidents.match`), and what each ticket's writes
    hang on (`part_of`). `_write` stores any share of it in one short transaction."""
    ids: list[str]
    proba: np.ndarray
    pol: Policy
    on: bool                          # [incidents] enabled
    keep: dict[int, int]              # position -> its row in `ranked`: the tickets not yet predicted by the version
    fresh: dict[int, dict]            # position -> its Ticket row: the tickets not stored yet
    preds: dict[int, dict]            # position -> its Prediction row
    ranked: order.Ranked
    plan: incidents_mod.Plan | None
    part_of: list                     # position -> the incident its writes go with (None: its own)
    again: list[int]                  # positions already predicted by the version (a resumed or repeated run)
    tops: list                        # position -> its [(department, probability), ...], best first

    def parts(self, chunk: int) -> list[list[int]]:
        """The positions in parts of about `chunk`: the tickets of one incident always in one part (the
        incident's rows and queue item are written with them), so a part may hold more than `chunk`. The
        order is the same for any `chunk`: incidents by their first ticket, then the batch's order."""
        groups: dict = {}
        for i, key in enumerate(self.part_of):
            groups.setdefault(("i", i) if key is None else key, []).append(i)
        out, cur = [], []
        for g in groups.values():
            if cur and len(cur) + len(g) > chunk:
                out.append(cur)
                cur = []
            cur += g
        return out + [cur] if cur else out


def _prepare(engine, batch: list[TicketIn], proba, tops, version: str, pol: Policy, flagged=None,
             waiting: order.Waiting | None = None, infos=None, incidents=None,
             window: incidents_mod.Window | None = None) -> _Prepared:
    """Everything `store_batch` computes, read from the store without writing (no lock held)."""
    ids = [t.id for t in batch]
    t0 = now()
    on = incidents is not None and incidents.enabled
    info = infos or [dispatch.Info() for _ in batch]
    with Session(engine) as s:
        known = set(s.exec(select(Ticket.id).where(Ticket.id.in_(ids))))
        predicted = set(s.exec(select(Prediction.ticket_id).where(
            Prediction.ticket_id.in_(ids), Prediction.model_version == version)))
        new = [i for i in range(len(batch)) if ids[i] not in known]
        keep = [i for i in range(len(batch)) if ids[i] not in predicted]
        texts = [model_input(t.text, t.title) for t in batch]
        nofit_conf = None if flagged is None else \
            np.array([tops[i][0][1] if flagged[i] else np.nan for i in keep], dtype=float)
        ranked = order.rank(s, [ids[i] for i in keep], proba[keep], pol, [texts[i] for i in keep], nofit_conf,
                            waiting, [is_emergency(tops[i][0][0]) for i in keep])
        fresh = {i: dict(id=ids[i], text=batch[i].text, title=batch[i].title, channel=batch[i].channel,
                         received_at=parse_time(batch[i].received_at), created_at=t0,
                         places=incidents_mod.SEP.join(info[i].names) or None, district=info[i].district)
                 for i in new}
        plan, held = None, {}
        if on:
            if new:
                plan = incidents_mod.match(s, [ids[i] for i in new], [texts[i] for i in new],
                                           [info[i].names for i in new], [info[i].district for i in new],
                                           [fresh[i]["received_at"] or t0 for i in new], [tops[i][0][0] for i in new],
                                           incidents.window_days, incidents.similarity, cache=window)
            stored = [ids[i] for i in keep if ids[i] in known]   # their queue items hang on their incident's
            held = dict(s.exec(select(Ticket.id, Ticket.incident_id).where(
                Ticket.id.in_(stored), Ticket.incident_id.is_not(None))).all()) if stored else {}
    part_of = [None] * len(batch)
    for i, tid in enumerate(ids):
        inc = plan.incident(tid) if plan is not None else None
        if inc is None and tid in held:
            inc = plan.final(held[tid]) if plan is not None else held[tid]
        part_of[i] = inc
    preds = {i: dict(ticket_id=ids[i], model_version=version, department=tops[i][0][0], confidence=tops[i][0][1],
                     topk=[list(x) for x in tops[i]], created_at=t0, rule_id=info[i].rule_id) for i in keep}
    return _Prepared(ids, proba, pol, on, {i: k for k, i in enumerate(keep)}, fresh, preds, ranked, plan,
                     part_of, [i for i in range(len(batch)) if ids[i] in predicted], tops)


def _write(engine, p: _Prepared, part: list[int]) -> Enqueued:
    """The tickets `part` (positions) of a prepared batch in one transaction: their incidents, tickets,
    predictions and queue items."""
    with Session(engine) as s:
        keys = {p.part_of[i] for i in part} & set(p.plan.state) if p.plan is not None else set()
        linked = incidents_mod.apply(s, p.plan, keys, batch_stored=False) if keys else {}
        fresh = [p.fresh[i] | dict(zip(("incident_id", "duplicate_of"), linked.get(p.ids[i], (None, None))))
                 for i in part if i in p.fresh]
        if fresh:
            s.execute(bulk_insert(Ticket), fresh)
        keep = [i for i in part if i in p.keep]
        rows = [p.keep[i] for i in keep]
        tids = [p.ids[i] for i in keep]
        done = order.enqueue(s, tids, p.proba[keep], insert_predictions(s, [p.preds[i] for i in keep]), p.pol,
                             ranked=order.Ranked([p.ranked.reasons[k] for k in rows], p.ranked.priorities[rows]),
                             incidents=incidents_mod.queue_state(s, tids) if p.on else None)
        s.commit()
    return done


def _settle(engine, p: _Prepared, done: Enqueued, stored: set[int]) -> Enqueued:
    """After the batch's parts: the incidents its tickets are in, and whether the repeated ones (of the positions
    `stored`) wait in the queue."""
    again = [i for i in p.again if i in stored]
    with Session(engine) as s:
        done.linked = dict((tid, (inc, dup)) for tid, inc, dup in s.exec(
            select(Ticket.id, Ticket.incident_id, Ticket.duplicate_of).where(Ticket.id.in_(p.ids),
                                                                            Ticket.incident_id.is_not(None))))
        if again:  # say truthfully whether a repeated ticket waits in the queue: in its own item or its incident's
            own = queue.open_items(s, [p.ids[i] for i in again])
            done.waiting += list(own)
            if p.on:
                done.merged += _through_incident(s, [i for i in again if p.ids[i] not in own], p.ids, p.tops, p.pol)
    return done


def store_batch(engine, batch: list[TicketIn], proba, tops, version: str, pol: Policy,
                flagged=None, waiting: order.Waiting | None = None, infos=None, incidents=None,
                window: incidents_mod.Window | None = None, chunk: int | None = None,
                refused: list[int] | None = None) -> Enqueued:
    """Tickets, predictions and queue items of one batch, in transactions of about `chunk` tickets (one when
    None; see `_Prepared.parts`). `tops` holds each ticket's [(department, probability), ...], best first;
    `pol` the queue policy; `flagged` marks the no-fit tickets (their top is ("none", confidence)); `waiting`
    is the run's cache for the near-duplicate check; `infos` what the dispatch steps found (places, the
    deciding rule); `incidents` the [incidents] settings: new tickets join incidents (router/incidents.py) and
    a member of an incident with an open queue item gets none (`window`: the run's features of the tickets
    compared). The queue's ranking and the incidents' matching run once for the batch, before any write (on
    SQLite the first INSERT/UPDATE takes the write lock until the commit); the parts only write. A ticket
    already predicted by `version` (a resumed or repeated run) is not predicted again. With `refused`, what
    the store refuses (the batch before any write, or a part; a lost connection is still raised) goes into
    `refused` (its positions) instead of being raised, and the other parts are written."""
    done = Enqueued()
    try:
        p = _prepare(engine, batch, proba, tops, version, pol, flagged, waiting, infos, incidents, window)
    except _REFUSED as e:
        if refused is None or isinstance(e, _LOST):
            raise
        refused += range(len(batch))
        return done
    for part in p.parts(chunk or len(batch)):
        try:
            done += _write(engine, p, part)
        except _REFUSED as e:
            if refused is None or isinstance(e, _LOST):
                raise
            refused += part
    return _settle(engine, p, done, set(range(len(batch))) - set(refused or ()))


def _through_incident(s: Session, rows: list[int], ids: list[str], tops, pol: Policy) -> list[str]:
    """Of the repeated tickets `rows` (positions in the batch, no item of their own), those that wait through
    their incident's open item: undecided, and low-confidence or no-fit (a confident member stays routed)."""
    inc_of, busy = incidents_mod.queue_state(s, [ids[i] for i in rows])
    low = [ids[i] for i in rows if inc_of.get(ids[i]) in busy
           and (tops[i][0][1] < pol.threshold or tops[i][0][0] == nofit.NONE)]
    done = queue.decided(s, low) if low else set()
    return [t for t in low if t not in done]


def stored_ids(engine, batch: list[TicketIn]) -> list[str]:
    """Each ticket's id in the store: its own, unless the store holds that id with another text (a later
    day's file reusing ids); then `<id>~2` (`~3`, ...): the first such id that is free or holds this text,
    so a rerun or --resume finds the same ticket again."""
    with Session(engine) as s:
        have = dict(s.exec(select(Ticket.id, Ticket.text).where(Ticket.id.in_([t.id for t in batch]))).all())
        out = []
        for t in batch:
            if have.get(t.id, t.text) == t.text:
                out.append(t.id)
                continue
            taken = dict(s.exec(select(Ticket.id, Ticket.text).where(
                Ticket.id.startswith(t.id + "~", autoescape=True))).all())
            n = 2
            while taken.get(f"{t.id}~{n}", t.text) != t.text:
                n += 1
            out.append(f"{t.id}~{n}")
    return out


def _brief(e: Exception) -> str:
    """An error in one line, without the statement's parameters (ticket texts are personal data)."""
    orig = e.orig if isinstance(e, DBAPIError) and e.orig is not None else e
    if isinstance(e, SQLAlchemyError) and not isinstance(e, DBAPIError) and e.__cause__ is not None:
        orig = e.__cause__
    msg = str(orig).split("\n", 1)[0].split("[SQL:", 1)[0].strip()
    return f"{type(orig).__name__}: {msg[:200]}"


def _store(engine, batch, proba, tops, version, pol, rejects: list, flagged=None,
           waiting=None, infos=None, incidents=None, window=None, *, chunk: int) -> tuple[list[int], Enqueued]:
    """store_batch, each part ([store] write_batch) holding SQLite's write lock briefly and whole or not at all;
    after a crash, --resume (the output's journal) routes the batch again and the store keeps what it already
    has (a ticket, its prediction and its queue item are stored once). When the store refuses a part, its
    tickets go alone: a ticket it still refuses becomes a reject naming its line and the problem (the other
    parts hang on none of that part's incidents). Returns (stored positions, what was queued)."""
    def alone(i: int) -> Enqueued | None:
        t = batch[i]
        try:
            return store_batch(engine, [t], proba[i:i + 1], tops[i:i + 1], version, pol,
                               None if flagged is None else flagged[i:i + 1], waiting,
                               None if infos is None else infos[i:i + 1], incidents, window)
        except _LOST as e:
            raise StoreError(_brief(e)) from None
        except _REFUSED as e:
            rejects.append(Reject(t.line, f"ticket {t.id}: the store refused it ({_brief(e)})", t.raw))
            return None

    refused: list[int] = []
    try:
        done = store_batch(engine, batch, proba, tops, version, pol, flagged, waiting, infos, incidents, window,
                           chunk=chunk, refused=refused)
    except _LOST as e:
        raise StoreError(_brief(e)) from None
    kept = list(set(range(len(batch))) - set(refused))
    for i in refused:
        one = alone(i)
        if one is not None:
            kept.append(i)
            done += one
    return sorted(kept), done


def classify(engine, catalog: Catalog, job: Job, cfg: Settings, progress=None) -> Summary:
    """Stream `job.source` through the model a batch at a time: rows to `job.output` (JSONL, CSV or
    Excel by its suffix), bad lines to `job.rejects`; emergencies first in each batch's rows, and in the
    finished file before every other ticket (RoutedWriter.finish).
    `job.threshold` None: the one `[classify] threshold` says (a number, or the version's own for
    "auto"). `job.emergencies_only`: no model, only the tickets the emergency rules flag are routed,
    stored and queued (the others are counted in `skipped_calm` and left for the regular run).
    Raises TicketFileError for an unreadable file, StoreError when the store fails."""
    job = job.resolved(cfg)
    reader = TicketReader(job.source, catalog, encoding=job.encoding)
    if job.emergencies_only:  # no model: the rule layer decides (a cron every minute)
        mv, clf, folds = None, None, []
        thr, thr_source = (float(job.threshold), "--threshold") if job.threshold is not None else (
            cfg.classify.threshold if isinstance(cfg.classify.threshold, float) else 0.6, "[classify] threshold")
    else:
        mv, clf = registry.load(engine, job.version, cfg)
        clf = parallel.shard(clf, mv.version)  # several processes (torchrun): every rank scores a share
        clf, folds = fold(clf, catalog)        # trained before a catalogue change: merged/inactive departments
        thr, thr_source = ((float(job.threshold), "--threshold") if job.threshold is not None
                           else registry.threshold(cfg, mv))
    version = mv.version if mv else RULES_VERSION
    pol = policy(cfg, threshold=thr)  # once per run
    weights = similarity.Idf()  # the n-grams' weights of the run: one measure of alike for the two below
    waiting = order.Waiting(pol.duplicate_window, weights)  # the near-duplicate check's features, kept for the run
    nf = cfg.nofit
    nofit_thr = nofit.threshold(nf, nofit.model_threshold(mv)) if mv else None
    classes = [str(c) for c in clf.classes_] if clf is not None else []
    places, rules = Places(catalog), Rules.load(engine, catalog)
    window = incidents_mod.Window(places, weights) if cfg.incidents.enabled else None   # linking's features, kept
    summary = Summary(model_version=version, threshold=thr, threshold_source=thr_source, rule_warnings=rules.warnings,
                      model_warnings=[f"{version} was trained before a catalogue change: {x}" for x in folds])
    together = cohandling.pairs(engine)  # once per run
    co_p, co_n = cfg.classify.co_min_p, cfg.classify.co_min_pairs
    rejected_before = done_ids(job.rejects, key="line") if job.resume else set()
    start = time.perf_counter()
    task = progress.add_task("routing", total=count_records(job.source)) if progress else None
    out = RoutedWriter(job.output, append=job.resume)
    done_before = out.done() if job.resume else set()
    with JsonlWriter(job.rejects, append=job.resume, keep_empty=False) as rej:
        bad: list[Reject] = []

        def route(batch: list[TicketIn]) -> None:
            if job.emergencies_only:  # the per-minute check: the rule layer alone, nothing else written
                urgent = [t for t in batch if emergency.line(t.text, t.title)]
                summary.skipped_calm += len(batch) - len(urgent)
                if not urgent:
                    return
                batch = urgent
                proba, flagged = np.ones((len(batch), 1)), None
                infos = [dispatch.Info() for _ in batch]
                tops = dispatch.emergencies(batch, [[] for _ in batch], infos)
            else:
                proba, score = nofit.scores(clf, [model_input(t.text, t.title) for t in batch])
                tops, flagged = nofit.route(proba, score, classes, job.k, nofit_thr, nf.enabled)
                infos = [dispatch.Info() for _ in batch]
                model_tops = tops
                tops = dispatch.jurisdiction(places, batch, tops, infos, proba, classes)
                tops = dispatch.legal_channel(batch, tops, infos)
                tops = dispatch.catalogue_rules(rules, catalog, batch, tops, infos, model_tops)
                tops = dispatch.emergencies(batch, tops, infos, cfg.emergency.model_min, cfg.emergency.legal_min)
                proba = dispatch.reweigh(proba, classes, tops, model_tops)
            summary.by.update(x.by for x in infos)
            summary.ambiguous_places += sum(bool(x.ambiguous) for x in infos)
            keys = stored_ids(engine, batch)
            kept, done = _store(engine, [replace(t, id=key) for t, key in zip(batch, keys)],
                                proba, tops, version, pol, bad, flagged, waiting, infos, cfg.incidents, window,
                                chunk=cfg.store.write_batch)
            summary.add(done)
            queued = done.queued
            rows = []
            kept = [kept[j] for j in dispatch.urgent_first(len(kept), [tops[i] for i in kept])]
            for i in kept:
                t, top = batch[i], tops[i]
                dept, conf = top[0]
                summary.per_department[dept] += 1
                if keys[i] not in queued and dept != nofit.NONE:
                    summary.auto += 1
                    summary.auto_confidence += conf
                rows.append({"id": t.id, "department": dept, "department_name": catalog.name(dept),
                             "confidence": round(conf, 4), "queued": keys[i] in queued,
                             "top": [{"department": d, "name": catalog.name(d), "p": round(p, 4)}
                                     for d, p in top],
                             "co_departments": [{"department": d, "name": catalog.name(d), "p": round(p, 4)}
                                                for d, p in cohandling.suggest(top, together, co_p, co_n)],
                             "model_version": version}
                            | ({"stored_id": keys[i]} if keys[i] != t.id else {}) | infos[i].fields()
                            | dict(zip(("incident_id", "duplicate_of"), done.linked.get(keys[i], (None, None)))))
            out.write([batch[i] for i in kept], rows)
            summary.routed += len(rows)
            flush_rejects()
            if progress:  # lines done: routed, rejected or already in the output
                progress.update(task, completed=summary.routed + summary.rejected + summary.skipped)

        def flush_rejects() -> None:
            summary.rejected += len(bad)
            rej.write_many(r.as_dict() for r in bad if r.line not in rejected_before)
            bad.clear()

        try:
            batch: list[TicketIn] = []
            for item in reader:
                if isinstance(item, Reject):
                    bad.append(item)
                elif item.id in done_before:
                    summary.skipped += 1
                else:
                    batch.append(item)
                    if len(batch) >= job.batch_size:
                        route(batch)
                        batch = []
            if batch:
                route(batch)
            flush_rejects()
            if progress:
                done = summary.routed + summary.rejected + summary.skipped
                progress.update(task, completed=done, total=done)
            out.finish(reader.encoding)
        except WriteError as e:
            e.routed = summary.routed  # how far it got: the journal keeps it for --resume
            raise
        finally:
            out.close()
    if summary.routed and clf is not None:
        order.prioritize(engine, clf, mv.version, pol, (nofit_thr, nf.enabled), chunk=cfg.store.write_batch)
        summary.over_budget += _trim(engine, pol)
    summary.seconds = time.perf_counter() - start
    return summary


def _trim(engine, pol: Policy) -> int:
    with Session(engine) as s:
        n = queue.trim_to_budget(s, pol)
        s.commit()
    return n


def default_output(source: str) -> str:
    """<input>.routed.jsonl beside the input: `day.jsonl` -> `day.routed.jsonl`, `cn.csv` ->
    `cn.csv.routed.jsonl` (so cn.csv and cn.xlsx never share an output)."""
    if source == "-":
        return "-"
    p = Path(source)
    stem = p.stem if p.suffix.lower() == ".jsonl" else p.name
    return str(p.with_name(stem + ".routed.jsonl"))


def default_rejects(source: str, output: str) -> str:
    """<output without .routed.jsonl / .jsonl>.rejects.jsonl (from the input's name when writing to stdout)."""
    base = Path(output if output != "-" else (default_output(source) if source != "-" else "stdin.jsonl"))
    name = base.name
    for suffix in (".routed.jsonl", ".jsonl"):
        if name.lower().endswith(suffix):
            name = name[:-len(suffix)]
            break
    return str(base.with_name(name + ".rejects.jsonl"))
