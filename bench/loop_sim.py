"""The loop over 30 days, through the product's own code: does routing get better every night?

    python bench/loop_sim.py [--dataset banking77|cn|realistic] [--strategies random,margin,diverse]
                             [--seeds 0,1,2] [--days 30] [--budget 50] [--jobs 2]

Each run is one dispatch centre with its own store (SQLite, under a temporary folder):
- day 0: `router import` of a small labeled history, `router train`;
- each day: the day's tickets (labels hidden) go through `router classify`; a team of three
  simulated dispatchers works the queue in its own order through the labeling app's store
  actions (`next_item` claims, `decide` accepts / corrects / flags no fit, 2% skips), up to the
  daily review budget, answering with the true label; at night `router retrain` (gate, then
  promotion);
- after every step the invariants (`check`) are asserted: a decided ticket never comes back to
  the queue, at most one open item per ticket, every decision is in the store, no prediction is
  duplicated, the summary's counts equal the queue rows the run created (audits included), and
  audited tickets say `queued: true`.

Returns (`--returns 0,0.6`): departments send back a share of the wrongly auto-routed tickets one
or two days later (reasons drawn from RETURN_REASONS; a no-department ticket as 不属于受理范围),
through `router returns import`; each morning a simulated lead (`lead-a`, role lead) decides the
open disputes with the true department (re-dispatch), taking them out of the same daily review
budget before the dispatchers start; every 5th decision is undone and checked to restore the
state before it, then made again. The returns' invariants (router/returns.py `violations`: a
return never loses the dispatch it returns, at most one open dispute per ticket, every decided
return has its label) and "every return and every decision is in the store" are checked after
each step. First-dispatch accuracy (一次派单准确率) of a day: the share of its tickets whose first
dispatch was right: the model's department for a ticket routed automatically or left unreviewed
that day, the dispatcher's answer for one reviewed that day.

Recorded per day: held-out accuracy and macro-F1 of the current model (after the night's
retrain), the share of the day's tickets routed above the threshold and their accuracy, tickets
reviewed, corrections, no-fit flags, and the queue size.

Data sets:
- banking77: `../shared/datasets/banking77/train.csv`; per seed a stratified 20% held-out test,
  an initial history of 5 labeled queries per class, the rest in `--days` days (random order);
  the 77 intents are the "departments".
- cn: the generated Chinese month (`data/sample/month/`, see data/README.md): a history of ~5
  tickets per department, 30 days of ~400 fresh tickets with incident bursts, a seasonal drift
  and ~3% no-department tickets, a held-out test of 1,500; the catalogue's 70 departments.
- realistic: the same catalogue in the realistic style (title + 150-800 characters of petition-site
  prose, `realistic` below): 5 labeled tickets per department of data/realistic/history.jsonl,
  30 days of 400 tickets generated in that style, data/realistic/test.jsonl (501) as the test.

Writes bench/results/loop_sim_<dataset>.json and .png and prints a table.
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from router import ROOT
from router.catalog import NONE, to_label

B77 = ROOT.parent / "shared" / "datasets" / "banking77" / "train.csv"
MONTH = ROOT / "data" / "sample" / "month"
RESULTS = ROOT / "bench" / "results"
REVIEWERS = ("dispatcher-a", "dispatcher-b", "dispatcher-c")
LEAD = "lead-a"
# A return's reason for a wrongly routed ticket (a no-department ticket: 不属于受理范围); the mix
# leans on jurisdiction and overlapping duties, as centres report.
RETURN_REASONS = {"属地不符": 0.35, "职能交叉": 0.25, "权属不清": 0.2, "不属于受理范围": 0.08, "信息不全": 0.07, "其他": 0.05}
ROUTE = 0.6  # [classify] threshold: tickets at or above it are routed without review


@dataclass
class Setup:
    """One centre's data: labeled history, the days' tickets (with their truth), a held-out test."""
    name: str
    catalog: Path
    history: list[dict]
    days: list[list[dict]]
    test: list[dict]
    truth: dict[str, str | None] = field(default_factory=dict)  # ticket id -> department ("" = no fit)

    def __post_init__(self):
        for day in self.days:
            self.truth.update((t["id"], t.get("label") or "") for t in day)


# ---- data ---------------------------------------------------------------------------------

def banking77(seed: int, days: int = 30, init: int = 5, path: Path = B77, workdir: Path | None = None,
              limit: int | None = None) -> Setup:
    """Stratified 20% test, `init` labeled queries per class, the rest spread over `days`."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    df = pd.read_csv(path)
    if limit:
        df = df.groupby("category", group_keys=False).apply(lambda g: g.head(limit // df.category.nunique()))
    rows = [{"id": f"b{i}", "text": t, "label": c} for i, (t, c) in enumerate(zip(df.text, df.category))]
    pool, test = train_test_split(rows, test_size=0.2, stratify=df.category, random_state=seed)
    rng = random.Random(seed)
    rng.shuffle(pool)
    history, rest, seen = [], [], Counter()
    for r in pool:
        if seen[r["label"]] < init:
            seen[r["label"]] += 1
            history.append(r)
        else:
            rest.append(r)
    start = datetime(2026, 11, 1, 8, tzinfo=timezone(timedelta(hours=8)))
    per_day = [rest[d::days] for d in range(days)]
    for d, day in enumerate(per_day):
        for k, r in enumerate(day):
            r["received_at"] = (start + timedelta(days=d, seconds=k * 120)).isoformat()
    cats = sorted(df.category.unique())
    catalog = (workdir or Path(tempfile.mkdtemp())) / "banking77_departments.json"
    catalog.parent.mkdir(parents=True, exist_ok=True)
    catalog.write_text(json.dumps({"version": 1, "city": "Banking77", "departments": [
        {"id": c, "name": c.replace("_", " "), "duties": c.replace("_", " "), "aliases": [], "active": True, "merged_into": None}
        for c in cats]}))
    return Setup("banking77", catalog, history, per_day, test)


def chinese(days: int = 30, folder: Path = MONTH) -> Setup:
    """The generated month (data/generate.py): history.jsonl, day01..day30.jsonl, test.jsonl.
    No-department tickets (`"label": null, "no_fit": kind`) are the truth "" (flagged N by the
    team); the history keeps them (`router import` reads them as "no department fits")."""
    read = lambda p: [json.loads(x) for x in (folder / p).read_text(encoding="utf-8").splitlines() if x.strip()]  # noqa: E731
    per_day = [read(f"day{d:02d}.jsonl") for d in range(1, days + 1)]
    return Setup("cn", ROOT / "data" / "departments.json", read("history.jsonl"),
                 per_day, read("test.jsonl"))


def realistic(days: int = 30, per_day: int = 400, folder: Path = ROOT / "data" / "realistic") -> Setup:
    """The realistic style (data/realistic/, `generate.py --style realistic`): a history of the first
    5 labeled tickets of each department in its history.jsonl, `days` days of `per_day` fresh tickets
    written in that style here (the generator's own functions, seed 21, the department mix of its
    day file; no bursts, drift or no-department tickets: the realistic style has none), and its
    test.jsonl (501) as the held-out test."""
    import random as rnd

    sys.path.insert(0, str(ROOT / "data"))
    import generate as g

    read = lambda p: [json.loads(x) for x in (folder / p).read_text(encoding="utf-8").splitlines() if x.strip()]  # noqa: E731
    seen: Counter = Counter()
    history = [r for r in read("history.jsonl") if (seen.update([r["label"]]) or seen[r["label"]] <= 5)]
    g.load_departments()
    mix = list(zip(g.POPULARITY, g.history_counts()))
    rng = rnd.Random(21)
    per = [g.build(rng, [g.wchoice(rng, mix) for _ in range(per_day)], f"RM{d:02d}", d, d, True, g.realistic_text)
           for d in range(1, days + 1)]
    return Setup("realistic", ROOT / "data" / "departments.json", history, per, read("test.jsonl"))


def sample(days: int = 3, history: int = 600, folder: Path = ROOT / "data" / "sample") -> Setup:
    """A short loop for tests: the shipped sample's first `history` labeled tickets, its held-out
    file cut into `days` days (their labels are the truth) and the last 150 of it as the test."""
    read = lambda p: [json.loads(x) for x in (folder / p).read_text(encoding="utf-8").splitlines() if x.strip()]  # noqa: E731
    held = read("test.jsonl")
    pool, test = held[:-150], held[-150:]
    return Setup("sample", ROOT / "data" / "departments.json", read("history.jsonl")[:history],
                 [pool[d::days] for d in range(days)], test)


# ---- the invariants -----------------------------------------------------------------------

class Broken(AssertionError):
    pass


def check(engine, when: str, decisions: list | None = None) -> None:
    """The loop's invariants on the whole store; raises Broken naming the first that fails."""
    from sqlalchemy import func
    from sqlmodel import Session, select

    from router.store import Label, Prediction, QueueItem

    with Session(engine) as s:
        twice = s.exec(select(QueueItem.ticket_id).where(QueueItem.status == "pending")
                       .group_by(QueueItem.ticket_id).having(func.count() > 1).limit(5)).all()
        if twice:
            raise Broken(f"{when}: tickets with more than one open queue item: {twice}")
        back = s.exec(select(QueueItem.ticket_id).join(Label, Label.ticket_id == QueueItem.ticket_id)
                      .where(QueueItem.status == "pending", QueueItem.reason != "returned",  # a dispute may
                             Label.undone == False)  # noqa: E712                              # follow a label
                      .limit(5)).all()
        if back:
            raise Broken(f"{when}: decided tickets back in the queue: {back}")
        dup = s.exec(select(Prediction.ticket_id, Prediction.model_version)
                     .group_by(Prediction.ticket_id, Prediction.model_version).having(func.count() > 1).limit(5)).all()
        if dup:
            raise Broken(f"{when}: duplicated predictions: {dup}")
        for qid, tid, choice in decisions or []:
            item = s.get(QueueItem, qid)
            if choice == "__skip__":
                if item.status != "skipped":
                    raise Broken(f"{when}: skip of {tid} not stored (status {item.status})")
                continue
            want = to_label(choice)
            got = s.exec(select(Label).where(Label.ticket_id == tid, Label.undone == False)  # noqa: E712
                         .order_by(Label.id.desc())).first()
            if item.status != "done" or got is None or got.department != want:
                raise Broken(f"{when}: decision on {tid} ({choice}) not in the store")
    check_returns(engine, when)


def check_returns(engine, when: str, imported: int | None = None, disputes: list | None = None) -> None:
    """The returns' invariants (router/returns.py), and: every imported return and every dispute
    decision (label id, return id) is in the store as made."""
    from sqlalchemy import func
    from sqlmodel import Session, select

    from router import returns
    from router.store import Label, TicketReturn

    bad = returns.violations(engine)
    if bad:
        raise Broken(f"{when}: " + "; ".join(bad))
    with Session(engine) as s:
        n = s.exec(select(func.count()).select_from(TicketReturn)).one()
        if imported is not None and n != imported:
            raise Broken(f"{when}: {imported} returns imported, {n} in the store")
        for label_id, ret_id in disputes or []:
            lab, ret = s.get(Label, label_id), s.get(TicketReturn, ret_id)
            if lab is None or lab.undone or ret is None or ret.decision_id != label_id or ret.status == "open":
                raise Broken(f"{when}: dispute decision {label_id} on return {ret_id} not in the store")


SUMMARY = re.compile(r"routed (\d+), queued for review (\d+) \(confidence < [\d.]+[^)]*\) \+ (\d+) audits"
                     r"(?: \+ (\d+) no-fit)?(?: \+ (\d+) emergencies)?(?:, (\d+) already waiting)?")
MERGED = re.compile(r"in incidents \(并单; (\d+) wait through their incident's item\)")


def check_run(engine, when: str, output: Path, printed: str, items_before: int) -> dict:
    """Invariants of one `router classify` run: its summary against the queue rows it created
    and against its output file."""
    from sqlmodel import Session, select

    from router.store import QueueItem

    m = SUMMARY.search(" ".join(printed.split()))
    if not m:
        raise Broken(f"{when}: no summary line in the output of router classify:\n{printed[-500:]}")
    routed, low, audits, no_fit, urgent, waiting = (int(x or 0) for x in m.groups())
    merged = MERGED.search(" ".join(printed.split()))   # 并单 members: they wait through their incident's item
    waiting += int(merged.group(1)) if merged else 0
    rows = [json.loads(x) for x in output.read_text(encoding="utf-8").splitlines()]
    with Session(engine) as s:
        new = s.exec(select(QueueItem.ticket_id, QueueItem.reason).where(QueueItem.id > items_before)).all()
    made = Counter(r for _, r in new)
    if made["low_confidence"] != low or made["audit"] != audits or made["no_fit"] != no_fit \
            or made["emergency"] != urgent:
        raise Broken(f"{when}: summary says {low} queued + {audits} audits + {no_fit} no-fit + {urgent} emergencies, "
                     f"the run created {made['low_confidence']} + {made['audit']} + {made['no_fit']} + "
                     f"{made['emergency']} queue rows")
    key = lambda r: r.get("stored_id", r["id"])  # noqa: E731  (a day reusing ids: the store's own id)
    said = {key(r) for r in rows if r["queued"]}
    if len(said) != low + audits + no_fit + urgent + waiting:
        raise Broken(f"{when}: {len(said)} rows say queued, the summary {low} + {audits} + {no_fit} no-fit + {urgent} "
                     f"emergencies "
                     f"+ {waiting} waiting")
    flagged = [key(r) for r in rows if r["department"] == "none" and not r["queued"]]
    if flagged:
        from router.queue import decided

        with Session(engine) as s:
            flagged = sorted(set(flagged) - decided(s, flagged))  # a decided ticket is never queued again
    if flagged:
        raise Broken(f"{when}: no-fit tickets not queued: {flagged[:5]}")
    silent = [t for t, r in new if r == "audit" and t not in said]
    if silent:
        raise Broken(f"{when}: audited tickets say queued: false: {silent[:5]}")
    return {"routed": routed, "queued": low, "audits": audits, "no_fit": no_fit, "waiting": waiting}


# ---- one centre over the days --------------------------------------------------------------

def _write(path: Path, rows: list[dict], keep_label: bool) -> Path:
    keys = ("id", "text", "title", "received_at", "channel") + (("label", "no_fit") if keep_label else ())
    path.write_text("".join(json.dumps({k: r[k] for k in keys if r.get(k) is not None or k == "label"},
                                       ensure_ascii=False) + "\n"
                            for r in rows), encoding="utf-8")
    return path


class Centre:
    """A store, a config and the CLI, as a centre runs them."""

    def __init__(self, setup: Setup, folder: Path, strategy: str, seed: int, rerank: bool = True,
                 threshold: float = 0.6, min_new_labels: int = 20, retrain: dict | None = None, extra: str = "",
                 **queue):
        self.setup, self.folder = setup, folder
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "router.toml"
        queue_keys = "".join(f"{k} = {json.dumps(v)}\n" for k, v in queue.items())
        self.config.write_text(
            f'[paths]\nhome = "{folder / "home"}"\ncatalog = "{setup.catalog}"\n'
            f"[classify]\nthreshold = {threshold}\n"
            f'[queue]\nstrategy = "{strategy}"\nseed = {seed}\nrerank = {str(rerank).lower()}\n{queue_keys}'
            f"[retrain]\nmin_new_labels = {min_new_labels}\n"
            + "".join(f"{k} = {json.dumps(v)}\n" for k, v in (retrain or {}).items()) + extra)
        from typer.testing import CliRunner

        from router import config
        from router.cli import app
        from router.store import connect

        self.app, self.runner = app, CliRunner()
        self.cfg = config.load(self.config, env={})
        self.engine = connect(config.store_url(self.cfg))
        self.threshold = threshold
        self.imported, self.disputes = 0, []  # returns in; (label id, return id) of the lead's decisions

    def cli(self, *args: str, ok=(0,)):
        res = self.runner.invoke(self.app, list(args), env={"ROUTER_CONFIG": str(self.config)})
        if res.exit_code not in ok:
            raise RuntimeError(f"router {' '.join(args)} exited {res.exit_code}:\n{res.output[-2000:]}"
                               + (f"\n{res.exception!r}" if res.exception else ""))
        return res

    def gate_reason(self, after: int = 0) -> tuple[int, str]:
        """(the registry's latest event id, why that event's version was promoted or kept; '' when no
        event came after id `after`: the night trained nothing)."""
        from sqlmodel import Session, select

        from router.store import ModelEvent

        with Session(self.engine) as s:
            ev = s.exec(select(ModelEvent).order_by(ModelEvent.id.desc()).limit(1)).first()
        if ev is None or ev.id <= after:
            return after, ""
        return ev.id, f"{ev.action}: {ev.reason}"

    def classify(self, rows: list[dict], name: str) -> tuple[list[dict], dict]:
        from sqlalchemy import func
        from sqlmodel import Session, select

        from router.store import QueueItem

        src = _write(self.folder / f"{name}.jsonl", rows, keep_label=False)
        out = self.folder / f"{name}.routed.jsonl"
        out.unlink(missing_ok=True)
        with Session(self.engine) as s:
            before = s.exec(select(func.max(QueueItem.id))).one() or 0
        res = self.cli("classify", str(src), "-o", str(out))
        counts = check_run(self.engine, f"classify {name}", out, res.output, before)
        check(self.engine, f"after classify {name}")
        return [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()], counts

    def review(self, budget: int, rng: random.Random, skip_rate: float = 0.02) -> dict:
        """The team works the queue: up to `budget` decisions (skips not counted)."""
        from labeling import actions

        decisions, n, corrections, no_fit, turns = [], 0, 0, 0, 0
        while n < budget and turns < 4 * budget + 20:
            turns += 1
            who = REVIEWERS[turns % len(REVIEWERS)]
            item = actions.next_item(self.engine, who)
            if item is None:
                break
            if rng.random() < skip_rate:
                actions.decide(self.engine, who, item.queue_id, actions.SKIP)
                decisions.append((item.queue_id, item.ticket_id, actions.SKIP))
                continue
            truth = self.setup.truth.get(item.ticket_id, "")
            choice = truth or NONE
            label = actions.decide(self.engine, who, item.queue_id, choice)
            decisions.append((item.queue_id, item.ticket_id, choice))
            n += 1
            corrections += label.source == "correction"
            no_fit += label.department is None
        for who in REVIEWERS:
            actions.release(self.engine, who)
        check(self.engine, "after the reviews", decisions)
        return {"reviewed": n, "corrections": corrections, "no_fit": no_fit,
                "skipped": sum(c == actions.SKIP for *_, c in decisions), "decided": decisions}

    def returns(self, rows: list[dict], name: str) -> dict:
        """Import the departments' returns of the day (`router returns import`)."""
        path = self.folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        res = self.cli("returns", "import", str(path), "--importer", "sim", ok=(0, 3, 4))
        m = re.search(r"imported (\d+) returns.*rejected (\d+)", " ".join(res.output.split()))
        self.imported += int(m.group(1))
        check_returns(self.engine, f"after returns {name}", self.imported, self.disputes)
        return {"returns": int(m.group(1)), "return_rejects": int(m.group(2))}

    def decide_disputes(self, budget: int, undo_every: int = 5) -> int:
        """The lead decides the open disputes (re-dispatch to the true department), at most `budget`;
        every `undo_every`-th decision is undone first and the state before it checked."""
        from labeling import actions
        from router import returns

        n = 0
        while n < budget:
            item = actions.next_item(self.engine, LEAD)
            if item is None or item.reason != "returned":
                break
            truth = self.setup.truth.get(item.ticket_id, "") or "none"
            args = (self.engine, LEAD, item.queue_id, returns.REDISPATCH, truth)
            if (len(self.disputes) + 1) % undo_every == 0:
                before = returns.snapshot(self.engine, item.ticket_id)
                returns.decide(*args)
                if actions.undo(self.engine, LEAD) != item.queue_id or returns.snapshot(self.engine, item.ticket_id) != before:
                    raise Broken(f"undoing the dispute decision on {item.ticket_id} did not restore the state before it")
            label = returns.decide(*args)
            from sqlmodel import Session, select

            from router.store import TicketReturn
            with Session(self.engine) as s:
                ret = s.exec(select(TicketReturn.id).where(TicketReturn.decision_id == label.id)).one()
            self.disputes.append((label.id, ret))
            n += 1
        actions.release(self.engine, LEAD)
        check_returns(self.engine, "after the disputes", self.imported, self.disputes)
        return n

    def open_disputes(self) -> int:
        from sqlalchemy import func
        from sqlmodel import Session, select

        from router.store import TicketReturn

        with Session(self.engine) as s:
            return s.exec(select(func.count()).select_from(TicketReturn).where(TicketReturn.status == "open")).one()

    def queue_size(self) -> int:
        from sqlalchemy import func
        from sqlmodel import Session, select

        from router.store import QueueItem

        with Session(self.engine) as s:
            return s.exec(select(func.count()).select_from(QueueItem).where(QueueItem.status == "pending")).one()

    def evaluate(self, rows: list[dict]) -> dict:
        """The current model on held-out labeled rows: accuracy and macro-F1."""
        from sklearn.metrics import accuracy_score, f1_score

        from router import registry
        from router.classifier import model_input

        mv, clf = registry.load(self.engine, None, self.cfg)
        rows = [r for r in rows if r.get("label")]
        texts = [model_input(r["text"], r.get("title")) for r in rows]
        pred = clf.predict(texts)
        truth = [r["label"] for r in rows]
        out = {"version": mv.version, "accuracy": float(accuracy_score(truth, pred)),
               "macro_f1": float(f1_score(truth, pred, average="macro", zero_division=0))}
        if getattr(clf, "members", None):  # an ensemble: each member's accuracy too (its scores are cached)
            classes = np.array(clf.classes, dtype=object)
            out["members"] = {m.kind: float(accuracy_score(truth, classes[p.argmax(axis=1)]))
                              for m, p in zip(clf.members, clf._member_probas(texts))}
            if clf.weights is not None:
                out["weights"] = {m.kind: float(w) for m, w in zip(clf.members, clf.weights)}
        return out


def simulate(setup: Setup, strategy: str, seed: int, budget: int, folder: Path, rerank: bool = True,
             days: int | None = None, stress: bool = False, review_all: bool = False,
             return_rate: float = 0.0, lead_budget: int = 0, known_wrong_weight: int | None = None,
             kind: str = "baseline", extra: str = "", minutes: float = 0, log: Path | None = None) -> dict:
    """One centre over the days; returns its daily records. `stress` also re-routes each day's
    file, rolls back and promotes again, checking the invariants after each. `return_rate`: the
    share of wrongly auto-routed tickets the departments return (one or two days later);
    `lead_budget` > 0: the lead decides up to that many disputes a day on top of the team's
    `budget` (0: the disputes come out of `budget`); `known_wrong_weight`: [retrain]'s. `kind`: the
    model kind trained and retrained; `extra`: TOML sections added to the centre's config ([llm],
    [sft], ...); `minutes` > 0: no new day starts after that many minutes (the run says how many days
    fit); `log`: each day's record is appended there as it is made (a run cut short keeps its days)."""
    c = Centre(setup, folder, strategy, seed, rerank, min_new_labels=min(20, budget),
               threshold=1.0 if review_all else ROUTE, extra=extra,
               retrain={"kind": kind, **({} if known_wrong_weight is None else
                                         {"known_wrong_weight": known_wrong_weight})})
    rng = random.Random(seed)
    back = random.Random(seed + 1)  # the departments' own randomness: the review draws stay as without returns
    due: dict[int, list[dict]] = {}  # day -> returns arriving that morning
    labeled: set[str] = set()        # tickets a dispatcher decided (a return of them would be refused)
    if return_rate:
        from router import users

        users.add(c.engine, LEAD, "lead-password-sim", "lead")
    t0 = time.perf_counter()
    c.cli("import", str(_write(folder / "history.jsonl", setup.history, keep_label=True)))
    c.cli("train", "--kind", kind)
    first = c.evaluate(setup.test)
    record = [{"day": 0, **first, "labels": len(setup.history), "seconds": round(time.perf_counter() - t0, 1)}]
    labels = len(setup.history)

    def say(r: dict) -> None:
        if log:
            with log.open("a") as f:
                f.write(json.dumps({"kind": kind, "strategy": strategy, "seed": seed, **r,
                                    "load": [round(x, 1) for x in os.getloadavg()]}) + "\n")

    say(record[0])
    for d, day in enumerate(setup.days[:days] if days else setup.days, start=1):
        if minutes and time.perf_counter() - t0 > minutes * 60:
            break
        arrived = {"returns": 0, "return_rejects": 0}
        todo = [r for r in due.pop(d, []) if r["id"] not in labeled]
        if todo:
            arrived = c.returns(todo, f"returns{d:02d}")
        tick = time.perf_counter()
        rows, counts = c.classify(day, f"day{d:02d}")
        phases = {"classify": time.perf_counter() - tick}
        truth = [setup.truth.get(r["id"], "") for r in rows]
        # routed without review at the default threshold (no-fit tickets always go to the queue)
        auto = [r["confidence"] >= ROUTE and r["department"] != "none" for r in rows]
        right = [r["department"] == (t or "none") for r, t in zip(rows, truth)]
        disputes = c.decide_disputes(lead_budget or budget) if return_rate else 0
        tick = time.perf_counter()
        worked = c.review(budget - (0 if lead_budget else disputes), rng)
        phases["review"] = time.perf_counter() - tick
        worked["reviewed"] += disputes
        labels += worked["reviewed"]
        decided_ids = {tid for _, tid, ch in worked.pop("decided") if ch != "__skip__"}
        labeled |= decided_ids
        first = [ok or (not a and r["id"] in decided_ids) for r, ok, a in zip(rows, right, auto)]
        for r, ok, a, t in zip(rows, right, auto, truth):
            if a and not ok and r["id"] not in decided_ids and back.random() < return_rate:
                why = "不属于受理范围" if not t else back.choices(list(RETURN_REASONS), list(RETURN_REASONS.values()))[0]
                due.setdefault(d + back.choice((1, 2)), []).append(
                    {"id": r["id"], "department": r["department"], "reason": why, "note": "非本单位职责，请改派",
                     "time": (datetime(2026, 11, 1, 9, tzinfo=timezone(timedelta(hours=8)))
                              + timedelta(days=d)).isoformat()})
        if stress:  # the same file again, then again after a rollback and a promotion
            c.classify(day, f"day{d:02d}-again")
        events = c.gate_reason()[0]
        tick = time.perf_counter()
        night = c.cli("retrain", ok=(0, 5))
        phases["retrain"] = time.perf_counter() - tick
        gate = c.gate_reason(events)[1]
        if stress and d == 2:
            c.cli("models", "rollback")
            c.classify(day, f"day{d:02d}-rollback")
            from router import registry

            latest = max(registry.versions(c.engine), key=lambda v: v.created_at)
            c.cli("models", "promote", latest.version)
            c.classify(day, f"day{d:02d}-promoted")
        tick = time.perf_counter()
        ev = c.evaluate(setup.test)
        phases["evaluate"] = time.perf_counter() - tick
        n_auto = sum(auto)
        record.append({
            "day": d, **ev, "labels": labels, "tickets": len(rows),
            "auto_share": n_auto / len(rows) if rows else 0.0,
            "auto_accuracy": (sum(r for r, a in zip(right, auto) if a) / n_auto) if n_auto else None,
            "day_accuracy": sum(right) / len(rows) if rows else None,
            "first_dispatch_accuracy": sum(first) / len(rows) if rows else None,
            "disputes": disputes, **arrived, "open_disputes": c.open_disputes(),
            **worked, **{f"run_{k}": v for k, v in counts.items()},
            "queue": c.queue_size(), "promoted": night.exit_code == 0, "gate": gate,
            # the last days' (confidence, right) pairs: what another threshold would have routed
            **({"pairs": [[round(r["confidence"], 4), int(ok)] for r, ok in zip(rows, right)]}
               if d > len(setup.days) - 5 else {}), "seconds": round(time.perf_counter() - t0, 1),
            "phases": {k: round(v, 1) for k, v in phases.items()}})   # where the day's seconds went
        say({k: v for k, v in record[-1].items() if k != "pairs"})
    return {"strategy": strategy, "seed": seed, "budget": budget, "rerank": rerank, "review_all": review_all,
            "return_rate": return_rate, "lead_budget": lead_budget, "known_wrong_weight": known_wrong_weight,
            "kind": kind, "days": record,
            "seconds": round(time.perf_counter() - t0, 1)}


# ---- the benchmark ---------------------------------------------------------------------------

def _one(dataset: str, strategy: str, seed: int, budget: int, days: int, rerank: bool, root: str, data: Path,
         review_all: bool = False, return_rate: float = 0.0, lead_budget: int = 0,
         known_wrong_weight: int | None = None, kind: str = "baseline", extra: str = "", minutes: float = 0,
         log: Path | None = None) -> dict:
    setup = banking77(seed, days, path=data, workdir=Path(root) / f"b77-{seed}-{return_rate}-{kind}") \
        if dataset == "banking77" else realistic(days) if dataset == "realistic" else chinese(days)
    return simulate(setup, strategy, seed, budget,
                    Path(root) / f"{dataset}-{kind}-{strategy}-{seed}-{budget}-{int(rerank)}-{int(review_all)}-{return_rate}",
                    rerank=rerank, review_all=review_all, return_rate=return_rate, lead_budget=lead_budget,
                    known_wrong_weight=known_wrong_weight, kind=kind, extra=extra, minutes=minutes, log=log)


def summarise(runs: list[dict]) -> dict:
    """Mean over seeds per (strategy, budget, rerank): the day-30 figures and the day random's
    day-30 accuracy is first reached."""
    groups: dict[str, list[dict]] = {}
    for r in runs:
        kind = r.get("kind", "baseline")
        groups.setdefault(("" if kind == "baseline" else f"{kind}:") + f"{r['strategy']}/{r['budget']}"
                          + ("" if r["rerank"] else "/no-rerank")
                          + ("/all" if r.get("review_all") else "")
                          + (f"/returns{r['return_rate']:g}" if r.get("return_rate") else "")
                          + (f"/lead{r['lead_budget']}" if r.get("lead_budget") else "")
                          + (f"/kw{r['known_wrong_weight']}" if r.get("known_wrong_weight") is not None else ""),
                          []).append(r)
    mean = lambda key, runs_, d: float(np.mean([x["days"][d][key] for x in runs_ if x["days"][d].get(key) is not None]))  # noqa: E731
    out = {}
    for name, rs in groups.items():
        n = min(len(x["days"]) for x in rs)
        curve = [mean("accuracy", rs, d) for d in range(n)]
        out[name] = {"seeds": len(rs), "accuracy": curve, "macro_f1": [mean("macro_f1", rs, d) for d in range(n)],
                     "auto_share": [None] + [mean("auto_share", rs, d) for d in range(1, n)],
                     "auto_accuracy": [None] + [mean("auto_accuracy", rs, d) for d in range(1, n)],
                     "reviewed": [None] + [mean("reviewed", rs, d) for d in range(1, n)],
                     "corrections": [None] + [mean("corrections", rs, d) for d in range(1, n)],
                     "queue": [None] + [mean("queue", rs, d) for d in range(1, n)],
                     "first_dispatch_accuracy": [None] + [mean("first_dispatch_accuracy", rs, d) for d in range(1, n)],
                     "returns": [None] + [mean("returns", rs, d) for d in range(1, n)],
                     "disputes": [None] + [mean("disputes", rs, d) for d in range(1, n)],
                     "labels": [mean("labels", rs, d) for d in range(n)]}
        kinds = sorted({k for x in rs for d in x["days"] for k in d.get("members", {})})
        if kinds:  # an ensemble's members, each scored on the held-out test every day
            out[name]["members"] = {k: [float(np.mean([x["days"][d]["members"][k] for x in rs])) for d in range(n)]
                                    for k in kinds}
    for name, rs in groups.items():  # the last days' tickets: which threshold routes them at 95%?
        pairs = np.array([p for r in rs for d in r["days"][-3:] for p in d.get("pairs", [])]).reshape(-1, 2)
        out[name].update(_at_accuracy(pairs, 0.95))
    for name, g in out.items():
        if "first_dispatch_accuracy" in g and n > 1:  # the last 5 days' mean (one day is noisy)
            g["first_dispatch_last5"] = float(np.mean([x for x in g["first_dispatch_accuracy"][-5:] if x is not None]))
    for name, g in out.items():
        b = name.split("/")[1]
        ref = out.get(f"random/{b}/all") or out.get(f"random/{b}")  # classic random sampling when run
        if ref:
            target = ref["accuracy"][-1]
            g["day_reaching_random_final"] = next((d for d, a in enumerate(g["accuracy"]) if a >= target), None)
    return out


def _compact(runs: list[dict]) -> list[dict]:
    """The runs without the last days' per-ticket (confidence, right) pairs: the summary's
    threshold_at_95 and auto_share_at_95 hold what they give."""
    return [{**r, "days": [{k: v for k, v in d.items() if k != "pairs"} for d in r["days"]]} for r in runs]


def _at_accuracy(pairs: np.ndarray, target: float) -> dict:
    """The lowest threshold whose automatically routed tickets are right at least `target` of the
    time, and the share of tickets it routes automatically."""
    if not len(pairs):
        return {}
    order = np.argsort(-pairs[:, 0], kind="stable")
    conf, right = pairs[order, 0], pairs[order, 1]
    acc = np.cumsum(right) / np.arange(1, len(right) + 1)
    ok = np.flatnonzero(acc >= target)
    if not len(ok):
        return {"threshold_at_95": None, "auto_share_at_95": 0.0}
    k = ok[-1]
    return {"threshold_at_95": float(conf[k]), "auto_share_at_95": float((k + 1) / len(conf))}


def _gpu() -> str | None:
    """The GPU the LLM ran on, if any (torch is imported only when it is already installed)."""
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), dpi=110)
    for k, (name, g) in enumerate(sorted(res["summary"].items())):
        days = range(len(g["accuracy"]))
        style = dict(color=f"C{k}", label=name, ls="--" if name.startswith("random") else "-")
        axes[0].plot(days, g["accuracy"], **style)
        axes[1].plot(days[1:], g["auto_share"][1:], **style)
        axes[1].plot(days[1:], g["auto_accuracy"][1:], **{**style, "ls": ":", "label": None})
        axes[2].plot(days[1:], g["queue"][1:], **style)
        for j, (member, curve) in enumerate(sorted(g.get("members", {}).items())):
            axes[0].plot(days, curve, color=f"C{k}", ls=(":", "-.")[j % 2], label=f"{name}, its {member} member")
    ref = res.get("compare")
    if ref:
        axes[0].plot(range(len(ref["accuracy"])), ref["accuracy"], color="k", ls="--",
                     label=f"{ref['name']} ({ref['file']})")
    axes[0].set(title="held-out accuracy of the current model", xlabel="day")
    axes[1].set(title="share routed automatically (solid) and its accuracy (dotted)", xlabel="day", ylim=(0, 1))
    axes[2].set(title="tickets waiting in the queue", xlabel="day")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    ran = min(res.get("days_run", {}).values(), default=res["days"])
    cut = f" (stopped after day {ran}: --minutes)" if ran < res["days"] else ""
    fig.suptitle(f"{res['days']}-day loop{cut}, {res['dataset']}: mean of seeds {res['seeds']}, "
                 f"{res['budgets']} reviews a day")
    fig.tight_layout()
    fig.savefig(path)


def main(dataset: str = typer.Option("banking77", help="banking77 | cn | realistic"),
         strategies: str = typer.Option("random,margin,diverse", help="comma-separated [queue] strategies"),
         seeds: str = typer.Option("0,1,2"),
         budget: str = typer.Option("50", help="reviews a day; comma-separated for several"),
         days: int = typer.Option(30),
         no_rerank: str = typer.Option("", help="strategies also run without re-ranking waiting tickets"),
         review_all: str = typer.Option("", help="strategies also run with every ticket queued (threshold 1: "
                                                 "'random' is then classic random sampling of the day's tickets)"),
         returns: str = typer.Option("0", help="return rates, comma-separated: each strategy also runs with "
                                              "departments returning this share of the wrongly auto-routed tickets"),
         lead_budget: int = typer.Option(0, help="with returns: the lead decides up to this many disputes a day "
                                                 "on top of the budget (0: disputes come out of the budget)"),
         known_wrong_weight: Optional[int] = typer.Option(None, help="[retrain] known_wrong_weight (default: the "
                                                          "setting's)"),
         jobs: int = typer.Option(2, help="centres simulated in parallel"),
         data: Path = typer.Option(B77, help="Banking77 train.csv"),
         kinds: str = typer.Option("baseline", help="comma-separated model kinds (baseline, llm, ensemble)"),
         extra: Optional[list[Path]] = typer.Option(None, help="a TOML file of sections added to every centre's "
                                                         "config ([llm], [sft], [prompt], [ensemble]; not paths/classify/"
                                                         "queue/retrain); repeat it to add several, in order"),
         minutes: float = typer.Option(0, help="> 0: no run starts a new day after this many minutes"),
         compare: Path = typer.Option(None, help="an earlier run's JSON (the baseline's): its first strategy's "
                                                 "curve at the first budget is drawn beside and kept as `compare`"),
         out: Path = typer.Option(None, help="default bench/results/loop_sim_<dataset>.json")):
    from joblib import Parallel, delayed

    out = out or RESULTS / f"loop_sim_{dataset}.json"
    extra_text = "".join(f.read_text(encoding="utf-8").rstrip("\n") + "\n" for f in extra or [])
    log = out.with_suffix(".days.jsonl")
    log.unlink(missing_ok=True)
    kinds_ = [k for k in kinds.split(",") if k]
    seeds_ = [int(s) for s in seeds.split(",")]
    budgets = [int(b) for b in budget.split(",")]
    rates = [float(x) for x in returns.split(",")]
    tasks = [(s, seed, b, True, False, r, k) for k in kinds_ for r in rates for b in budgets
             for s in strategies.split(",") if s for seed in seeds_]
    tasks += [(s, seed, b, False, False, 0.0, k) for k in kinds_ for b in budgets for s in no_rerank.split(",") if s
              for seed in seeds_]
    tasks += [(s, seed, b, True, True, 0.0, k) for k in kinds_ for b in budgets for s in review_all.split(",") if s
              for seed in seeds_]
    t0, load0 = time.perf_counter(), os.getloadavg()
    with tempfile.TemporaryDirectory() as root:
        runs = Parallel(n_jobs=jobs, verbose=10)(delayed(_one)(dataset, s, seed, b, days, rr, root, data, all_, r,
                                                               lead_budget if r else 0,
                                                               known_wrong_weight if r else None, k, extra_text,
                                                               minutes, log)
                                                 for s, seed, b, rr, all_, r, k in tasks)
    res = {"dataset": dataset, "seeds": seeds_, "budgets": budgets, "days": days, "kinds": kinds_,
           "days_run": {f"{r['kind']}:{r['strategy']}/{r['seed']}": len(r["days"]) - 1 for r in runs},
           "extra_config": extra_text, "summary": summarise(runs),
           "runs": _compact(runs), "invariants": "held on every day of every run (each day's check raises otherwise)",
           "seconds": round(time.perf_counter() - t0),
           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
           "load_average": {"start": [round(x, 1) for x in load0], "end": [round(x, 1) for x in os.getloadavg()],
                            "per_day": f"{log.name} (each day's 1/5/15-minute load)"},
           "gpu": _gpu(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
           "command": "python bench/loop_sim.py " + " ".join(sys.argv[1:])}
    if compare:  # the earlier run of the same strategy, seed and budget (re-ranking, no returns)
        strategy = strategies.split(",")[0]
        run = next(r for r in json.loads(compare.read_text())["runs"]
                   if (r["strategy"], r["seed"], r["budget"]) == (strategy, seeds_[0], budgets[0])
                   and r["rerank"] and not r.get("review_all") and not r.get("return_rate"))
        res["compare"] = {"file": compare.name, "name": f"{run.get('kind', 'baseline')}:{strategy}/{budgets[0]} seed "
                          f"{seeds_[0]}", "accuracy": [d["accuracy"] for d in run["days"]]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    plot(res, out.with_suffix(".png"))
    t = Table(title=f"{dataset}: day-{days} figures, mean of seeds {seeds}")
    for col in ("strategy/budget", "acc day 0", f"acc day {days}", f"macro-F1 day {days}", "auto share",
                "auto acc", "first-dispatch acc (last 5 days)", "returns/day", "share at 95% (thr)", "labels", "queue",
                "reaches random's final on day"):
        t.add_column(col, justify="left" if col == "strategy/budget" else "right")
    for name, g in sorted(res["summary"].items()):
        t.add_row(name, f"{g['accuracy'][0]:.3f}", f"{g['accuracy'][-1]:.3f}", f"{g['macro_f1'][-1]:.3f}",
                  f"{g['auto_share'][-1]:.2f}", f"{g['auto_accuracy'][-1]:.3f}",
                  f"{g.get('first_dispatch_last5', float('nan')):.3f}",
                  f"{np.mean([x for x in g['returns'][1:] if x is not None]):.1f}",
                  f"{g.get('auto_share_at_95', 0):.2f} ({g.get('threshold_at_95') or 0:.2f})", f"{g['labels'][-1]:.0f}",
                  f"{g['queue'][-1]:.0f}", str(g.get("day_reaching_random_final", "-")))
    console = Console(width=200)
    console.print(t)
    console.print(f"{res['seconds']} s; {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    typer.run(main)
