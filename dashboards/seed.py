"""A synthetic store for the dashboard tests, the benchmark and demos.

Model versions get a real report.json and metrics (training.evaluate on simulated held-out
predictions, whose tickets are in the store with imported labels, so a confused pair opens
them) and a registry history with a refusal, promotions and a rollback. Tickets,
predictions, queue items and labels are bulk-inserted (executemany in one transaction per
batch), spread over `days` UTC days ending at `end`: the recent days lean towards a few
departments (drift), the model confuses each department mostly with one neighbour, old
queue items are done (with a label by one of five dispatchers), and ~2% of confident
tickets are audited.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import func, insert, select
from sqlmodel import Session

from router import config, registry
from router.catalog import Catalog
from router.store import Action, ItemStatus, Label, ModelEvent, ModelVersion, Prediction, QueueItem, Reason, Source, Ticket, VersionStatus, now
from training import evaluate

REVIEWERS = ["wang.li", "zhang.wei", "chen.jing", "liu.yang", "zhao.min"]
LEAD = "lead.sun"  # decides the seeded disputes


def _proba(y: np.ndarray, k: int, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    """Held-out probabilities: the boosted class is the truth `accuracy` of the time, else mostly
    the next department; a noisy runner-up sometimes overtakes it; confidences spread widely."""
    n = len(y)
    pred = np.where(rng.random(n) < accuracy, y, np.where(rng.random(n) < 0.6, (y + 1) % k,
                                                            rng.integers(0, k, n)))
    proba = rng.dirichlet(np.full(k, 0.3), n)
    proba[np.arange(n), pred] += rng.gamma(1.5, 1.2, n) + 0.05
    proba[np.arange(n), (pred + 3) % k] += rng.gamma(1.0, 0.4, n)  # a runner-up, sometimes ahead
    return proba / proba.sum(axis=1, keepdims=True)


def make_versions(engine, cfg, catalog: Catalog, per_department: int = 10, seed: int = 0) -> list[str]:
    """Two baseline versions whose report.json (training.evaluate.report on simulated held-out
    predictions), metrics and registry history look like real training: the second is better,
    was kept as a candidate, promoted, rolled back and promoted again; it ends up current."""
    rng = np.random.default_rng(seed)
    classes = catalog.ids
    y = np.repeat(np.arange(len(classes)), per_department)
    ids = [f"HELD{seed:02d}{k:05d}" for k in range(len(y))]
    t = now() - timedelta(days=40)
    with engine.begin() as c:  # the held-out tickets, labeled before the models were trained
        c.execute(insert(Ticket.__table__), [
            {"id": i, "text": catalog.by_id[classes[j]].duties[:40], "title": None, "received_at": t,
             "channel": "phone", "created_at": t} for i, j in zip(ids, y)])
        c.execute(insert(Label.__table__), [
            {"ticket_id": i, "department": classes[j], "reviewer": "", "source": Source.imported, "prediction_id": None,
             "undone": False, "created_at": t} for i, j in zip(ids, y)])
    out, prev = [], None
    for i, accuracy in enumerate((0.75, 0.88)):
        version = f"baseline-20260101-00000{i}-000"
        folder = config.home(cfg) / "models" / version
        proba, truth = _proba(y, len(classes), accuracy, rng), [classes[j] for j in y]
        rep = evaluate.report(proba, truth, classes, catalog)
        rep["misrouted"] = evaluate.misrouted(proba, truth, classes, ids)
        if prev:
            rep["delta_f1"] = evaluate.compare(rep, prev)
        evaluate.save(rep, folder, f"{version}: held-out report")
        registry.register(engine, ModelVersion(
            version=version, kind="baseline", path=str(folder.resolve()), status=VersionStatus.candidate,
            data_snapshot={"source": "synthetic", "n_train": 9 * len(y), "n_test": len(y)},
            config=cfg.baseline.model_dump(), metrics=evaluate.summary(rep),
            created_at=now() - timedelta(days=30 - 18 * i)))
        out.append(version)
        prev = rep
    v1, v2 = out
    registry.promote(engine, v1, "first trained model")
    registry.record(engine, v2, Action.kept_candidate, "等待夜间上线检查")
    registry.promote(engine, v2, "固定留出集上的宏平均 F1 提高")
    registry.rollback(engine, "标注员反映噪声投诉分派有误")
    registry.promote(engine, v2, "核查噪声投诉后重新上线")
    with Session(engine) as s:  # spread the history over the days after training, oldest first
        start = now() - timedelta(days=10)
        for i, ev in enumerate(s.scalars(select(ModelEvent).order_by(ModelEvent.id)).all()):
            ev.created_at = start + timedelta(days=2 * i, hours=9)
            s.add(ev)
        for v in s.scalars(select(ModelVersion)).all():
            v.promoted_at = max(e.created_at for e in s.scalars(select(ModelEvent).where(
                ModelEvent.version == v.version, ModelEvent.action != Action.kept_candidate)).all())
            s.add(v)
        s.commit()
    return out


def _chunks(n: int, size: int):
    for a in range(0, n, size):
        yield a, min(n, a + size)


def seed_tickets(engine, catalog: Catalog, n: int, version: str, *, days: int = 90,
                 end: datetime | None = None, threshold: float = 0.6, accuracy: float = 0.85,
                 import_share: float = 0.3, seed: int = 0, batch: int = 50_000, progress=None) -> dict:
    """Insert `n` routed tickets with their predictions, queue items and labels; returns counts."""
    rng = np.random.default_rng(seed)
    end = end or now()
    start = end - timedelta(days=days)
    ids = np.array(catalog.ids)
    k = len(ids)
    base = 1.0 / np.arange(1, k + 1) ** 0.8
    base /= base.sum()
    drifted = base.copy()
    drifted[[3, 11, 25]] *= 4
    drifted /= drifted.sum()
    confuser = rng.permutation(k)
    duties = [d.duties for d in catalog.active]
    with engine.connect() as c:
        pid0 = (c.execute(select(func.max(Prediction.id))).scalar() or 0) + 1
        tid0 = c.execute(select(func.count()).select_from(Ticket)).scalar() or 0
    totals = {"tickets": 0, "predictions": 0, "queue": 0, "labels": 0}
    task = progress.add_task("seeding", total=n) if progress else None
    recent = end - timedelta(days=14)
    for a, b in _chunks(n, batch):
        m = b - a
        offs = (np.arange(a, b) + rng.random(m)) / n  # increasing with the ticket id
        created = [start + timedelta(seconds=float(x * days * 86400)) for x in offs]
        is_recent = np.array([t >= recent for t in created])
        truth = np.where(is_recent, rng.choice(k, m, p=drifted), rng.choice(k, m, p=base))
        right = rng.random(m) < accuracy
        other = np.where(rng.random(m) < 0.7, confuser[truth], rng.integers(0, k, m))
        other = np.where(other == truth, (truth + 1) % k, other)
        pred = np.where(right, truth, other)
        conf = np.where(right, rng.beta(8, 2, m), rng.beta(3, 3, m)).clip(0.02, 0.999)
        second = np.where(right, other, truth)
        tickets, preds, queue, labels = [], [], [], []
        for i in range(m):
            tid = f"T{tid0 + a + i:09d}"
            pid = pid0 + a + i
            t = created[i]
            src = duties[truth[i]]
            cut = int(rng.integers(0, max(1, len(src) - 40)))
            tickets.append({"id": tid, "text": src[cut:cut + 40], "title": None, "received_at": t,
                            "channel": "phone", "created_at": t})
            p, c2 = float(conf[i]), float((1 - conf[i]) * 0.7)
            preds.append({"id": pid, "ticket_id": tid, "model_version": version,
                          "department": ids[pred[i]], "confidence": p,
                          "topk": [[ids[pred[i]], p], [ids[second[i]], c2]], "created_at": t})
            old = (end - t).days
            if old > days * 0.5 and rng.random() < import_share:
                labels.append({"ticket_id": tid, "department": ids[truth[i]], "reviewer": "",
                               "source": Source.imported, "prediction_id": None, "undone": False,
                               "created_at": t + timedelta(hours=1)})
            reason = Reason.low_confidence if p < threshold else (Reason.audit if rng.random() < 0.02 else None)
            if reason is None:
                continue
            done_at = t + timedelta(hours=float(rng.exponential(10)))
            status = (ItemStatus.done if rng.random() > 0.02 else ItemStatus.skipped) \
                if done_at < end - timedelta(hours=6) else ItemStatus.pending
            queue.append({"ticket_id": tid, "prediction_id": pid, "reason": reason,
                          "priority": 1 - p if reason == "low_confidence" else 0.0, "status": status,
                          "claimed_by": None, "claimed_until": None, "created_at": t,
                          "done_at": done_at if status != ItemStatus.pending else None})
            if status == ItemStatus.done:
                source = Source.audit if reason == Reason.audit else (
                    Source.confirmation if right[i] else Source.correction)
                labels.append({"ticket_id": tid, "department": ids[truth[i]],
                               "reviewer": REVIEWERS[int(rng.integers(0, len(REVIEWERS)))],
                               "source": source, "prediction_id": pid, "undone": rng.random() < 0.01,
                               "created_at": done_at})
        with engine.begin() as c:
            c.execute(insert(Ticket.__table__), tickets)
            c.execute(insert(Prediction.__table__), preds)
            if queue:
                c.execute(insert(QueueItem.__table__), queue)
            if labels:
                c.execute(insert(Label.__table__), labels)
        for key, rows in (("tickets", tickets), ("predictions", preds), ("queue", queue), ("labels", labels)):
            totals[key] += len(rows)
        if progress:
            progress.advance(task, m)
    if engine.dialect.name == "postgresql":  # explicit ids leave the id sequence behind
        with engine.begin() as c:
            c.exec_driver_sql("SELECT setval(pg_get_serial_sequence('prediction', 'id'), "
                              "(SELECT MAX(id) FROM prediction))")
    return totals


MARKUP = "<b>不是HTML</b> **也不是markdown** [链接](http://example.com) 小区垃圾无人清运"


def demo(engine, cfg, catalog: Catalog, n: int = 3000, days: int = 60, seed: int = 0) -> dict:
    """A small complete store: two versions, `n` routed tickets over `days` days, and one ticket
    whose text looks like HTML/markdown, in the pair most corrected in the last 29 days (it gets
    the newest label)."""
    versions = make_versions(engine, cfg, catalog, seed=seed)
    held_out = len(catalog.ids) * 10
    totals = seed_tickets(engine, catalog, n, versions[-1], days=days,
                          threshold=registry.threshold(cfg, None)[0], seed=seed)
    with engine.connect() as c:
        true, predicted, _ = c.execute(
            select(Label.department, Prediction.department, func.count())
            .join(Prediction, Prediction.id == Label.prediction_id)
            .where(Label.source == Source.correction, Label.created_at >= now() - timedelta(days=29))
            .group_by(Label.department, Prediction.department)
            .order_by(func.count().desc()).limit(1)).one()
    t = now()
    with engine.begin() as c:
        c.execute(insert(Ticket.__table__).values(id="MARKUP", text=MARKUP, created_at=t, received_at=t))
        pid = c.execute(insert(Prediction.__table__).values(
            ticket_id="MARKUP", model_version=versions[-1], department=predicted, confidence=0.41,
            topk=[[predicted, 0.41]], created_at=t)).inserted_primary_key[0]
        c.execute(insert(QueueItem.__table__).values(ticket_id="MARKUP", prediction_id=pid, priority=0.59,
                                                     reason=Reason.low_confidence, status=ItemStatus.done, created_at=t,
                                                     done_at=t))
        c.execute(insert(Label.__table__).values(ticket_id="MARKUP", department=true, reviewer=REVIEWERS[0],
                                                 source=Source.correction, prediction_id=pid, undone=False,
                                                 created_at=t + timedelta(seconds=1)))
    returned = seed_returns(engine, catalog, seed=seed)
    return {**totals, "held_out": held_out, "versions": versions, "markup_pair": (predicted, true),
            "returns": returned}


def seed_returns(engine, catalog: Catalog, share: float = 0.05, seed: int = 0) -> dict:
    """Departments' returns (router/returns.py) of `share` of the confident predictions a day or
    two after routing, in the usual reason mix: a lead re-dispatched most of them (a dispute label
    naming the returning department as known wrong), upheld a few; the newest stay open, and some
    re-dispatched tickets are returned again by their new department (chains)."""
    from router.returns import open_dispute
    from router.store import ReturnStatus, TicketReturn

    rng = np.random.default_rng(seed + 7)
    reasons, weights = ["属地不符", "职能交叉", "权属不清", "不属于受理范围", "信息不全", "其他"], [35, 25, 20, 8, 7, 5]
    t = now()
    with Session(engine) as s:
        preds = s.exec(select(Prediction.id, Prediction.ticket_id, Prediction.department, Prediction.created_at)
                       .where(Prediction.confidence >= 0.6, Prediction.department != "none",
                              ~Prediction.ticket_id.in_(select(Label.ticket_id)))).all()
        chosen = [preds[i] for i in rng.choice(len(preds), int(len(preds) * share), replace=False)] if preds else []
        n = {"returns": 0, "open": 0, "chains": 0}
        for k, (pid, tid, dept, at) in enumerate(chosen):
            chain = [dept] + ([catalog.ids[(catalog.ids.index(dept) + 1) % len(catalog.ids)]] if k % 15 == 0 else [])
            label_id = None
            for j, d in enumerate(chain):
                when = min(at + timedelta(days=1 + j + float(rng.random())), t)
                r = TicketReturn(ticket_id=tid, department=d, reason=str(rng.choice(reasons, p=np.array(weights) / 100)),
                                 note="非本单位职责", returned_at=when, importer="seed", prediction_id=pid,
                                 label_id=label_id, created_at=when)
                s.add(r)
                s.flush()
                n["returns"] += 1
                if when > t - timedelta(days=2) and j == len(chain) - 1:
                    r.queue_id = open_dispute(s, r).id
                    n["open"] += 1
                    break
                uphold = rng.random() < 0.1 and j == len(chain) - 1
                target = d if uphold else catalog.ids[(catalog.ids.index(d) + 1) % len(catalog.ids)]
                lab = Label(ticket_id=tid, department=target, reviewer=LEAD, source=Source.dispute,
                            wrong_departments=[] if uphold else chain[:j + 1], prediction_id=pid,
                            created_at=when + timedelta(hours=3))
                s.add(lab)
                s.flush()
                r.status, r.decision_id = (ReturnStatus.rejected if uphold else ReturnStatus.upheld), lab.id
                label_id = lab.id
            n["chains"] += len(chain) > 1
        s.commit()
    return n
