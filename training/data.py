"""Labeled data: from the store (imported history + dispatchers' decisions) or from a file,
the fixed held-out split and the calibration slice."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, select

from router.catalog import NONE, RESERVED, Catalog, from_label, to_label
from router.classifier import model_input
from router.cohandling import parse as parse_co
from router.config import Store
from router.io import Reject, load_tickets, parse_time
from router.store import Label, Source, Ticket, bulk_insert, now, retry


@dataclass
class Labeled:
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)      # model inputs: title + text (classifier.model_input)
    labels: list[str] = field(default_factory=list)     # department ids; NONE: no department fits
    sources: list[str] = field(default_factory=list)
    times: list[datetime | None] = field(default_factory=list)
    wrong: list[list[str]] = field(default_factory=list)   # known wrong departments (upheld returns)
    co: list[list[str]] = field(default_factory=list)      # co-handling departments (协办)

    def __post_init__(self):
        self.wrong = self.wrong or [[] for _ in self.ids]
        self.co = self.co or [[] for _ in self.ids]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, idx) -> "Labeled":
        return Labeled(*[[getattr(self, f)[i] for i in idx]
                         for f in ("ids", "texts", "labels", "sources", "times", "wrong", "co")])


def from_store(engine, catalog: Catalog) -> Labeled:
    """The newest decision per ticket (undone ones left out; "no department fits" as NONE),
    merged departments mapped onto their successor, retired departments dropped."""
    active = set(catalog.ids)
    with Session(engine) as s:
        rows = s.exec(select(Label, Ticket.text, Ticket.title).join(Ticket, Ticket.id == Label.ticket_id)
                      .where(Label.undone == False)  # noqa: E712
                      .order_by(Label.created_at, Label.id)).all()
    latest: dict[str, tuple[Label, str]] = {}
    for label, text, title in rows:
        latest[label.ticket_id] = (label, model_input(text, title))
    out = Labeled()
    for tid, (label, text) in sorted(latest.items()):
        dept = catalog.canonical(from_label(label.department))
        if dept not in active and dept not in RESERVED:
            continue
        out.ids.append(tid)
        out.texts.append(text)
        out.labels.append(dept)
        out.sources.append(label.source)
        out.times.append(label.created_at)
        out.wrong.append([catalog.canonical(d) for d in label.wrong_departments or []])
        out.co.append([catalog.canonical(d) for d in label.co_departments or []])
    return out


def from_file(path: str, catalog: Catalog) -> tuple[Labeled, list]:
    ok, rejects = load_tickets(path, catalog, require_label=True)
    data = Labeled([t.id for t in ok], [model_input(t.text, t.title) for t in ok], [t.label for t in ok],
                   ["file"] * len(ok), [parse_time(t.received_at) for t in ok])
    return data, rejects


def import_labeled(engine, path: str, catalog: Catalog, source: str = Source.imported,
                   batch: int = Store().write_batch) -> tuple[int, list]:
    """Load a labeled file into the store as tickets plus labels; returns (added, rejects).
    Commits every `batch` tickets ([store] write_batch), each batch whole or not at all (tickets with their labels), so the
    labeling app never waits long for the write lock; after a crash, a rerun adds only what is missing."""
    ok, rejects = load_tickets(path, catalog, require_label=True)
    co: dict[str, list[str]] = {}
    for t in list(ok):  # co-handling departments (协办): a JSON list, or names separated by , ; 、
        got, unknown = parse_co(t.row.get("co_departments", t.row.get("协办部门")), catalog.lookup)
        if unknown is not None:
            ok.remove(t)
            rejects.append(Reject(t.line, f"ticket {t.id}: unknown co-handling department {unknown[:60]!r}", t.raw))
        co[t.id] = [d for d in got if d != t.label]
    rejects.sort(key=lambda r: r.line)
    added = 0
    for i in range(0, len(ok), batch):
        added += _import_batch(engine, ok[i:i + batch], co, source)
    return added, rejects


@retry
def _import_batch(engine, part: list, co: dict, source: str) -> int:
    """One transaction: the batch's tickets not yet stored, and labels for those without one from `source`."""
    ids = [t.id for t in part]
    t0 = now()
    with Session(engine) as s:  # reads first (no lock in WAL); the first INSERT takes the write lock
        have = set(s.exec(select(Ticket.id).where(Ticket.id.in_(ids))))
        labeled = set(s.exec(select(Label.ticket_id).where(Label.ticket_id.in_(ids), Label.source == source)))
        tickets = [dict(id=t.id, text=t.text, title=t.title, channel=t.channel, received_at=parse_time(t.received_at),
                        created_at=t0) for t in part if t.id not in have]
        labels = [dict(ticket_id=t.id, department=to_label(t.label), reviewer="import", source=source, undone=False,
                       co_departments=co[t.id] if t.label != NONE else [], wrong_departments=[], created_at=t0)
                  for t in part if t.id not in labeled]
        if tickets:
            s.execute(bulk_insert(Ticket), tickets)  # tickets before their labels (foreign key)
        if labels:
            s.execute(bulk_insert(Label), labels)
        s.commit()
    return len(labels)


def _rank(seed: int, tid: str) -> str:
    return hashlib.sha1(f"{seed}:{tid}".encode()).hexdigest()


def split(data: Labeled, test_size: float = 0.1, seed: int = 42) -> tuple[list[int], list[int]]:
    """The held-out split: a ticket is held out when its seeded id hash falls below `test_size`, so
    it stays held out forever (the same seed and size): a later version's held-out tickets are never
    among those an earlier version's held-out fit trained on, and the gate can compare the two fits
    on them (training/train.py). About `test_size` of each department, not exactly."""
    test = [i for i, t in enumerate(data.ids) if int(_rank(seed, t)[:13], 16) < test_size * 16 ** 13]
    held = set(test)
    return [i for i in range(len(data)) if i not in held], test


def stratified(data: Labeled, size: float = 0.1, seed: int = 42) -> tuple[list[int], list[int]]:
    """(rest, slice): within each department the tickets with the lowest seeded hash of their id
    make up `size` of it (the calibration slice). Departments with fewer than 2 tickets stay in the rest."""
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, y in enumerate(data.labels):
        by_class[y].append(i)
    rest, part = [], []
    for idx in by_class.values():
        idx = sorted(idx, key=lambda i: _rank(seed, data.ids[i]))
        n = 0 if len(idx) < 2 else max(1, round(len(idx) * size))
        part += idx[:n]
        rest += idx[n:]
    return sorted(rest), sorted(part)
