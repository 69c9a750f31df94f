"""The numbers behind the dashboards.

The store does the counting: every query is a GROUP BY over an indexed column or a
date-bounded window, so a page reads at most a few thousand aggregated rows whatever the
size of the store. pandas only shapes the small results. Days are local days in `tz`
(`[queue] timezone`): the store keeps UTC, each query shifts it by the zone's offset.
"""

from __future__ import annotations

import re

import json
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import binomtest
from sqlalchemy import Integer, case, cast, func, select

from sqlmodel import Session

from router.store import (ItemStatus, Label, ModelEvent, ModelVersion, Prediction, QueueItem, Source, Ticket,
                          TicketReturn)


def _all(engine, stmt) -> list:
    with engine.connect() as c:
        return c.execute(stmt).all()


def _one(engine, stmt):
    with engine.connect() as c:
        return c.execute(stmt).scalar()


def _day(engine, col, tz: str):
    """The day in `tz` of a UTC datetime column, as the database computes it. PostgreSQL
    converts with the zone's rules; SQLite shifts by the zone's offset now (exact for zones
    without daylight saving time, such as Asia/Shanghai)."""
    if engine.dialect.name == "postgresql":  # timestamptz (sqlmodel's UTCDateTime)
        return func.date(func.timezone(tz, col))
    minutes = int(datetime.now(ZoneInfo(tz)).utcoffset().total_seconds() // 60)
    return func.date(col, f"{minutes:+d} minutes")


def utc(t: datetime) -> datetime:
    """`t` in UTC, as the store keeps it (SQLite would compare the wall-clock digits); naive
    means UTC already."""
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def local(t, tz: str):
    """A UTC datetime (naive as read back from the store, or aware), or a Series of them, as
    naive wall-clock time in `tz`: what a page shows (Vega-Lite draws naive times as given)."""
    if isinstance(t, pd.Series):
        s = pd.to_datetime(t)
        s = s.dt.tz_localize("UTC") if s.dt.tz is None else s
        return s.dt.tz_convert(tz).dt.tz_localize(None)
    if t is None:
        return None
    t = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    return t.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


# --- overview -------------------------------------------------------------------------------

def counts(engine) -> dict:
    """Row counts for the overview; zero everywhere means an empty store."""
    return {"tickets": _one(engine, select(func.count()).select_from(Ticket)),
            "predictions": _one(engine, select(func.count()).select_from(Prediction)),
            "labels": _one(engine, select(func.count()).select_from(Label)),
            "pending": _one(engine, select(func.count()).select_from(QueueItem)
                            .where(QueueItem.status == ItemStatus.pending)),
            "models": _one(engine, select(func.count()).select_from(ModelVersion))}


TABLES = {"ticket": Ticket, "prediction": Prediction, "queueitem": QueueItem, "label": Label,
          "modelversion": ModelVersion}


def has_rows(engine, table: str) -> bool:
    return _one(engine, select(1).select_from(TABLES[table]).limit(1)) is not None


# --- model versions -------------------------------------------------------------------------

def versions(engine) -> list[dict]:
    """Every model version, oldest first, as plain dicts (metrics included)."""
    with Session(engine) as s:
        rows = s.scalars(select(ModelVersion).order_by(ModelVersion.created_at)).all()
    return [{"version": v.version, "kind": v.kind, "status": v.status, "path": v.path,
             "created_at": v.created_at, "promoted_at": v.promoted_at, "metrics": v.metrics or {},
             "data_snapshot": v.data_snapshot or {}} for v in rows]


def current_and_previous(vs: list[dict]) -> tuple[dict | None, dict | None]:
    """The current version, and the one it replaced: the latest promoted before it (else the
    newest version created before it)."""
    cur = next((v for v in vs if v["status"] == "current"), None)
    if cur is None:
        return None, None
    others = [v for v in vs if v["version"] != cur["version"]]
    before = [v for v in others if v["promoted_at"] and cur["promoted_at"]
              and v["promoted_at"] < cur["promoted_at"]]
    if before:
        return cur, max(before, key=lambda v: v["promoted_at"])
    older = [v for v in others if v["created_at"] < cur["created_at"]]
    return cur, (older[-1] if older else None)


def report(path: str) -> dict | None:
    """The evaluation report (training/evaluate.report) saved next to a model, if any."""
    p = Path(path) / "report.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else None


def per_department(rep: dict, prev_metrics: dict | None) -> pd.DataFrame:
    """Per-department precision/recall/F1/support of a report, with F1 change against the
    previous version's metrics; worst F1 first."""
    prev = (prev_metrics or {}).get("per_department_f1", {})
    rows = [{"department": d, "precision": m["precision"], "recall": m["recall"], "f1": m["f1"],
             "support": m["support"], "previous_f1": prev.get(d),
             "change": (m["f1"] - prev[d]) if d in prev else None}
            for d, m in rep["per_department"].items()]
    df = pd.DataFrame(rows, columns=["department", "precision", "recall", "f1", "support",
                                     "previous_f1", "change"])
    return df.sort_values(["f1", "support"], ascending=[True, False]).reset_index(drop=True)


def f1_by_version(vs: list[dict]) -> pd.DataFrame:
    """Long frame: version, created_at, department, f1 (from the registry metrics)."""
    rows = [{"version": v["version"], "created_at": v["created_at"], "department": d, "f1": f}
            for v in vs for d, f in v["metrics"].get("per_department_f1", {}).items()]
    return pd.DataFrame(rows, columns=["version", "created_at", "department", "f1"])


# --- confusion ------------------------------------------------------------------------------

def confused_pairs(rep: dict, top: int = 20) -> pd.DataFrame:
    """Held-out tickets of department `true` predicted as `predicted`, largest counts first."""
    labels, cm = rep["confusion"]["labels"], np.asarray(rep["confusion"]["matrix"])
    rows = cm.sum(axis=1)
    out = [{"true": labels[i], "predicted": labels[j], "tickets": int(cm[i, j]),
            "share_of_true": float(cm[i, j] / rows[i])}
           for i, j in zip(*np.nonzero(cm)) if i != j]
    df = pd.DataFrame(out, columns=["true", "predicted", "tickets", "share_of_true"])
    return df.sort_values(["tickets", "share_of_true"], ascending=False).head(top).reset_index(drop=True)


def confusion_cells(rep: dict) -> pd.DataFrame:
    """Non-zero cells of the row-normalised confusion matrix: true, predicted, tickets, share."""
    labels, cm = rep["confusion"]["labels"], np.asarray(rep["confusion"]["matrix"], dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    i, j = np.nonzero(cm)
    return pd.DataFrame({"true": np.asarray(labels)[i], "predicted": np.asarray(labels)[j],
                         "tickets": cm[i, j].astype(int), "share": norm[i, j]})


def corrected_pairs(engine, since: datetime, top: int = 20) -> pd.DataFrame:
    """Dispatchers' labels since `since` that disagree with the model's prediction, by pair."""
    stmt = (select(Label.department.label("true"), Prediction.department.label("predicted"),
                   func.count().label("tickets"))
            .join(Prediction, Prediction.id == Label.prediction_id)
            .where(Label.created_at >= utc(since), Label.undone == False,  # noqa: E712
                   Label.department != Prediction.department)  # also drops "no department fits"
            # predicted first: SQLite then reads the window by created_at instead of walking
            # every label in department order (0.04 s instead of 0.8 s at 1M tickets)
            .group_by(Prediction.department, Label.department)
            .order_by(func.count().desc()).limit(top))
    return pd.DataFrame(_all(engine, stmt), columns=["true", "predicted", "tickets"])


def examples(engine, predicted: str, true: str, limit: int = 20) -> pd.DataFrame:
    """The newest tickets predicted as `predicted` whose label is `true`."""
    stmt = (select(Ticket.id, Ticket.text, Prediction.confidence, Prediction.model_version,
                   Label.source, Label.reviewer, Label.created_at)
            .select_from(Label)
            .join(Prediction, Prediction.ticket_id == Label.ticket_id)
            .join(Ticket, Ticket.id == Label.ticket_id)
            .where(Label.department == true, Prediction.department == predicted,
                   Label.undone == False)  # noqa: E712
            .order_by(Label.created_at.desc()).limit(limit))
    return pd.DataFrame(_all(engine, stmt), columns=["ticket", "text", "confidence", "model_version",
                                                     "label_source", "reviewer", "labeled_at"])


def held_out_examples(engine, rep: dict, predicted: str, true: str, limit: int = 20) -> pd.DataFrame | None:
    """The held-out tickets of `true` the model predicted as `predicted`, as training listed
    them in report.json (`misrouted`), with their text from the store; None for a report
    written before training kept that list."""
    if "misrouted" not in rep:
        return None
    rows = [m for m in rep["misrouted"] if m["true"] == true and m["predicted"] == predicted][:limit]
    ids = [m["ticket"] for m in rows]
    texts = dict(_all(engine, select(Ticket.id, Ticket.text).where(Ticket.id.in_(ids)))) if ids else {}
    return pd.DataFrame({"ticket": ids, "text": [texts.get(i) for i in ids],
                         "confidence": [m["confidence"] for m in rows]},
                        columns=["ticket", "text", "confidence"])


def confused_departments(rep: dict, n: int) -> list[str]:
    """The `n` departments with the most held-out errors (their own tickets sent elsewhere plus
    others' tickets sent to them), in catalogue order."""
    labels, cm = rep["confusion"]["labels"], np.asarray(rep["confusion"]["matrix"])
    off = cm - np.diag(np.diag(cm))
    errors = off.sum(axis=0) + off.sum(axis=1)
    keep = set(np.argsort(-errors, kind="stable")[:n])
    return [d for i, d in enumerate(labels) if i in keep]


# --- calibration ----------------------------------------------------------------------------

def last_prediction_at(engine) -> datetime | None:
    return _one(engine, select(func.max(Prediction.created_at)))


def confidence_histogram(engine, start: datetime, end: datetime, bins: int = 20) -> pd.DataFrame:
    """Counts of prediction confidences in [start, end), in `bins` equal-width bins."""
    scaled = Prediction.confidence * bins  # CAST truncates in SQLite, rounds in PostgreSQL
    b = cast(scaled if engine.dialect.name == "sqlite" else func.floor(scaled), Integer)
    stmt = (select(b.label("b"), func.count()).where(Prediction.created_at >= utc(start),
                                                     Prediction.created_at < utc(end)).group_by(b))
    n = np.zeros(bins, dtype=int)
    for k, c in _all(engine, stmt):
        n[min(max(int(k), 0), bins - 1)] += c
    edges = np.linspace(0, 1, bins + 1)
    return pd.DataFrame({"lo": edges[:-1], "hi": edges[1:], "tickets": n})


def below(engine, start: datetime, end: datetime, threshold: float) -> tuple[int, int]:
    """(predictions in [start, end) below `threshold`, all predictions in the window)."""
    stmt = select(func.count(), func.sum(case((Prediction.confidence < threshold, 1), else_=0))).where(
        Prediction.created_at >= utc(start), Prediction.created_at < utc(end))
    n, low = _all(engine, stmt)[0]
    return int(low or 0), int(n or 0)


def reliability(rep: dict) -> pd.DataFrame:
    rows = [r for r in rep.get("reliability", []) if r.get("count")]
    return pd.DataFrame(rows, columns=["lo", "hi", "count", "confidence", "accuracy"])


# --- review queue ---------------------------------------------------------------------------

def _by_day(rows) -> pd.Series:
    return pd.Series({pd.Timestamp(str(d)): n for d, n in rows if d is not None}, dtype="int64")


def first_queued_at(engine) -> datetime | None:
    return _one(engine, select(func.min(QueueItem.created_at)))


def queue_size(engine, start: datetime, end: datetime, tz: str = "UTC") -> pd.DataFrame:
    """Per day in `tz` from start to end: items added, items closed, and open items at the end
    of the day. Walks back from today's pending count, so only the window is read."""
    start, end = utc(start), utc(end)
    pending = _one(engine, select(func.count()).select_from(QueueItem).where(QueueItem.status == ItemStatus.pending))
    da, dd = _day(engine, QueueItem.created_at, tz), _day(engine, QueueItem.done_at, tz)
    added = _by_day(_all(engine, select(da, func.count()).where(QueueItem.created_at >= start).group_by(da)))
    closed = _by_day(_all(engine, select(dd, func.count())
                          .where(QueueItem.done_at >= start, QueueItem.status != ItemStatus.pending).group_by(dd)))
    days = pd.date_range(local(start, tz).date(), local(end, tz).date(), freq="D")
    df = pd.DataFrame({"day": days, "added": added.reindex(days, fill_value=0).values,
                       "closed": closed.reindex(days, fill_value=0).values})
    later = (df["added"] - df["closed"])[::-1].cumsum()[::-1].shift(-1, fill_value=0)
    df["open"] = pending - later
    return df


def pending_by_reason(engine) -> pd.DataFrame:
    stmt = (select(QueueItem.reason, func.count()).where(QueueItem.status == ItemStatus.pending)
            .group_by(QueueItem.reason))
    return pd.DataFrame(_all(engine, stmt), columns=["reason", "items"])


def decisions(engine, start: datetime, tz: str = "UTC") -> pd.DataFrame:
    """Dispatchers' labels (not imports, not undone) per day in `tz` and reviewer since `start`."""
    d = _day(engine, Label.created_at, tz)
    stmt = (select(d, Label.reviewer, func.count())
            .where(Label.created_at >= utc(start), Label.source != Source.imported, Label.undone == False)  # noqa: E712
            .group_by(d, Label.reviewer))
    df = pd.DataFrame(_all(engine, stmt), columns=["day", "reviewer", "decisions"])
    df["day"] = pd.to_datetime(df["day"].astype(str))
    return df


def audit_daily(engine, tz: str = "UTC") -> pd.DataFrame:
    """Audit labels per day in `tz`: how many, and how many agree with the model's prediction.
    The audit sample is a random draw of confident tickets, so its agreement estimates the
    accuracy on tickets that skip review, without the queue's selection bias."""
    d = _day(engine, Label.created_at, tz)
    agree = func.sum(case((Label.department == Prediction.department, 1), else_=0))
    stmt = (select(d, func.count(), agree).join(Prediction, Prediction.id == Label.prediction_id)
            .where(Label.source == Source.audit, Label.undone == False)  # noqa: E712
            .group_by(d))
    df = pd.DataFrame(_all(engine, stmt), columns=["day", "audited", "agree"])
    df["day"] = pd.to_datetime(df["day"].astype(str))
    df["agree"] = df["agree"].astype(int)
    return df


def nofit_daily(engine, start: datetime, tz: str = "UTC") -> pd.DataFrame:
    """Per day in `tz` since `start`: predictions made and those the router flagged "no department
    fits" (department none), and dispatchers' labels and their no-fit ones (N); rates in [0, 1]."""
    pd_, ld = _day(engine, Prediction.created_at, tz), _day(engine, Label.created_at, tz)
    none = func.sum(case((Prediction.department == "none", 1), else_=0))
    routed = _all(engine, select(pd_, func.count(), none).where(Prediction.created_at >= utc(start)).group_by(pd_))
    unfit = func.sum(case((Label.department == None, 1), else_=0))  # noqa: E711
    labels = _all(engine, select(ld, func.count(), unfit).where(
        Label.created_at >= utc(start), Label.source != Source.imported, Label.undone == False).group_by(ld))  # noqa: E712
    a = pd.DataFrame(routed, columns=["day", "routed", "flagged"])
    b = pd.DataFrame(labels, columns=["day", "labels", "no_fit_labels"])
    a["day"], b["day"] = a["day"].astype(str), b["day"].astype(str)
    df = a.merge(b, on="day", how="outer").fillna(0)
    df["day"] = pd.to_datetime(df["day"])
    for c in ("routed", "flagged", "labels", "no_fit_labels"):
        df[c] = df[c].astype(int)
    df["flagged_rate"] = df["flagged"] / df["routed"].where(df["routed"] > 0)
    df["label_rate"] = df["no_fit_labels"] / df["labels"].where(df["labels"] > 0)
    return df.sort_values("day").reset_index(drop=True)


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials."""
    if n == 0:
        return 0.0, 1.0
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


# --- drift ----------------------------------------------------------------------------------

def predicted_mix(engine, start: datetime, end: datetime) -> pd.Series:
    """Predictions per department in [start, end)."""
    stmt = (select(Prediction.department, func.count())
            .where(Prediction.created_at >= utc(start), Prediction.created_at < utc(end))
            .group_by(Prediction.department))
    return pd.Series(dict(_all(engine, stmt)), dtype="int64")


def predicted_daily_mix(engine, start: datetime, tz: str = "UTC") -> pd.DataFrame:
    """Predictions per day in `tz` and department since `start`."""
    d = _day(engine, Prediction.created_at, tz)
    stmt = (select(d, Prediction.department, func.count()).where(Prediction.created_at >= utc(start))
            .group_by(d, Prediction.department))
    df = pd.DataFrame(_all(engine, stmt), columns=["day", "department", "n"])
    df["day"] = pd.to_datetime(df["day"].astype(str))
    return df


def label_mix(engine, until: datetime | None = None) -> pd.Series:
    """Labels (not undone, with a department) per department, created up to `until`:
    the data a model trained then could learn from."""
    # an index-only scan of ix_label_department_undone_created_at (migration 0003)
    stmt = select(Label.department, func.count()).where(Label.undone == False)  # noqa: E712
    if until is not None:
        stmt = stmt.where(Label.created_at <= until)
    counts = dict(_all(engine, stmt.group_by(Label.department)))
    counts.pop(None, None)  # "no department fits"
    return pd.Series(counts, dtype="int64")


def js_divergence(p: pd.Series, q: pd.Series) -> float:
    """Jensen-Shannon divergence (base 2, 0 = same mix, 1 = disjoint) of two count series."""
    idx = p.index.union(q.index)
    a, b = p.reindex(idx, fill_value=0).to_numpy(float), q.reindex(idx, fill_value=0).to_numpy(float)
    if a.sum() == 0 or b.sum() == 0:
        return float("nan")
    return float(jensenshannon(a, b, base=2) ** 2)


def mix_table(recent: pd.Series, reference: pd.Series) -> pd.DataFrame:
    """Shares of each department in both mixes and their difference, largest change first."""
    idx = recent.index.union(reference.index)
    r = recent.reindex(idx, fill_value=0)
    t = reference.reindex(idx, fill_value=0)
    df = pd.DataFrame({"department": idx, "recent": r.values, "training": t.values,
                       "recent_share": (r / max(r.sum(), 1)).values,
                       "training_share": (t / max(t.sum(), 1)).values})
    df["change"] = df["recent_share"] - df["training_share"]
    return df.reindex(df["change"].abs().sort_values(ascending=False).index).reset_index(drop=True)


# --- model history --------------------------------------------------------------------------

# The registry's reasons are recorded in English (logs, `router models`); the dashboards show them in Chinese.
_REASONS_ZH = [
    (r"^gate: ", "上线关卡："),
    (r"zero-shot LLM \(first model\)", "零样本大模型（首个模型）"),
    (r"first trained model", "首个训练的模型"),
    (r"^manual promotion$", "手动上线"), (r"^manual rollback$", "手动回滚"),
    (r"macro-F1 ([-\d.]+) -> ([-\d.]+) \(([-+\d.]+)", r"宏平均 F1 \1 → \2（\3"),
    (r"; (\d+%) bootstrap bound ([-+\d.]+)\)", r"；\1 自助法界限 \2）"),
    (r"(\d)\)", r"\1）"),
    (r": drops more than the allowed ([-\d.]+)", r"：下降超过允许的 \1"),
    (r", but F1 fell by more than ([\d.]+) for (\d+) department\(s\) with >= (\d+) held-out tickets: ",
     r"，但有 \2 个测试工单不少于 \3 张的部门 F1 下降超过 \1："),
    (r"; no department with >= (\d+) held-out tickets lost more than ([\d.]+) F1",
     r"；测试工单不少于 \1 张的部门 F1 下降均未超过 \2"),
    (r"current model (\S+) could not be re-scored \((.*)\)", r"当前模型 \1 无法重新评分（\2）"),
    (r"no-fit (recall|precision) ([\d.]+) -> ([\d.]+)",
     lambda m: f"无合适部门{'召回率' if m[1] == 'recall' else '精确率'} {m[2]} → {m[3]}"),
    (r" \(more than ([\d.]+) worse on (\d+) no-fit held-out tickets\)",
     r"（在 \2 张无合适部门测试工单上变差超过 \1）"),
    (r", but ", "，但"),
]


def reason_zh(text: str) -> str:
    """A registry reason in Chinese, phrase by phrase; what is not known stays as it is."""
    for pattern, repl in _REASONS_ZH:
        text = re.sub(pattern, repl, text or "")
    return text


def events(engine) -> pd.DataFrame:
    stmt = select(ModelEvent.created_at, ModelEvent.version, ModelEvent.action, ModelEvent.reason).order_by(
        ModelEvent.created_at.desc(), ModelEvent.id.desc())
    return pd.DataFrame(_all(engine, stmt), columns=["at", "version", "action", "reason"])


def window(days: int, end: datetime, tz: str = "UTC") -> tuple[datetime, datetime]:
    """[midnight in `tz` of the day `days - 1` days before `end`, end), in UTC."""
    day = local(end, tz).date() - timedelta(days=days - 1)
    return utc(datetime.combine(day, time(0), tzinfo=ZoneInfo(tz))), utc(end)


# --- returns and disputes (router/returns.py) -----------------------------------------------

def first_dispatch(engine, start: datetime, tz: str = "UTC") -> pd.DataFrame:
    """Per day in `tz` (of the ticket's first routing since `start`) and department routed to:
    tickets dispatched, returned (退单, at least once), re-dispatched (a lead's or an auditor's
    label moved it to another department), and right the first time (一次派单准确: neither).
    "No department fits" routings are not dispatches."""
    first = select(Prediction.ticket_id, func.min(Prediction.id).label("pid")).group_by(Prediction.ticket_id).subquery()
    returned = select(TicketReturn.id).where(TicketReturn.ticket_id == Prediction.ticket_id).exists()
    moved = select(Label.id).where(Label.ticket_id == Prediction.ticket_id, Label.undone == False,  # noqa: E712
                                   Label.source.in_((Source.dispute, Source.audit)),
                                   (Label.department == None) | (Label.department != Prediction.department)).exists()  # noqa: E711
    d = _day(engine, Prediction.created_at, tz)
    r, m = case((returned, 1), else_=0), case((moved, 1), else_=0)
    stmt = (select(d, Prediction.department, func.count(), func.sum(r), func.sum(m),
                   func.sum(case((returned | moved, 0), else_=1)))
            .join(first, first.c.pid == Prediction.id)
            .where(Prediction.created_at >= utc(start), Prediction.department != "none")
            .group_by(d, Prediction.department))
    df = pd.DataFrame(_all(engine, stmt), columns=["day", "department", "dispatched", "returned", "redispatched", "right"])
    df["day"] = pd.to_datetime(df["day"].astype(str))
    for c in ("dispatched", "returned", "redispatched", "right"):
        df[c] = df[c].astype(int)
    return df


def return_reasons(engine, start: datetime, tz: str = "UTC") -> pd.DataFrame:
    """Returns per day in `tz` (when the department returned it), returning department and reason."""
    d = _day(engine, TicketReturn.returned_at, tz)
    stmt = (select(d, TicketReturn.department, TicketReturn.reason, func.count())
            .where(TicketReturn.returned_at >= utc(start)).group_by(d, TicketReturn.department, TicketReturn.reason))
    df = pd.DataFrame(_all(engine, stmt), columns=["day", "department", "reason", "returns"])
    df["day"] = pd.to_datetime(df["day"].astype(str))
    return df


def open_disputes(engine, at: datetime) -> pd.DataFrame:
    """Open disputes (returns no lead has decided), oldest first, with their age in days at `at`."""
    stmt = (select(TicketReturn.ticket_id, TicketReturn.department, TicketReturn.reason, TicketReturn.note,
                   TicketReturn.returned_at, TicketReturn.created_at)
            .where(TicketReturn.status == "open").order_by(TicketReturn.created_at, TicketReturn.id))
    df = pd.DataFrame(_all(engine, stmt), columns=["ticket", "department", "reason", "note", "returned_at", "created_at"])
    if not df.empty:
        df["age_days"] = (pd.Timestamp(utc(at)) - pd.to_datetime(df["created_at"], utc=True)).dt.total_seconds() / 86400
    return df


def redispatch_chains(engine, limit: int = 200) -> pd.DataFrame:
    """Tickets returned twice or more (re-dispatch chains), longest first: the returning
    departments in order."""
    twice = (select(TicketReturn.ticket_id).group_by(TicketReturn.ticket_id)
             .having(func.count() >= 2).limit(limit).subquery())
    rows = _all(engine, select(TicketReturn.ticket_id, TicketReturn.department, TicketReturn.status)
                .where(TicketReturn.ticket_id.in_(select(twice.c.ticket_id))).order_by(TicketReturn.ticket_id, TicketReturn.id))
    chains: dict[str, list] = {}
    for tid, dept, status in rows:
        chains.setdefault(tid, []).append(dept)
    df = pd.DataFrame([(t, len(c), c) for t, c in chains.items()], columns=["ticket", "returns", "departments"])
    return df.sort_values("returns", ascending=False, kind="stable").reset_index(drop=True)
def rule_stats(engine) -> pd.DataFrame:
    """Each catalogue rule (disabled ones too): tickets it decided (hits), how many of those a dispatcher
    decided otherwise (a label not undone, imports aside) and how many the department returned (退单)."""
    from router.store import Rule, TicketReturn

    rules = _all(engine, select(Rule.id, Rule.pattern, Rule.regex, Rule.department, Rule.district, Rule.note,
                                Rule.active, Rule.created_by, Rule.created_at).order_by(Rule.id))
    cols = ["id", "pattern", "regex", "department", "district", "note", "active", "created_by", "created_at"]
    df = pd.DataFrame(rules, columns=cols)
    if df.empty:
        return df.assign(hits=[], overturned=[], returned=[], overturn_rate=[])
    hits = dict(_all(engine, select(Prediction.rule_id, func.count(func.distinct(Prediction.ticket_id)))
                     .where(Prediction.rule_id.is_not(None)).group_by(Prediction.rule_id)))
    latest = (select(Label.ticket_id, func.max(Label.id).label("lid"))
              .where(Label.undone == False, Label.source != Source.imported).group_by(Label.ticket_id).subquery())  # noqa: E712
    over = dict(_all(engine, select(Prediction.rule_id, func.count(func.distinct(Prediction.ticket_id)))
                     .join(latest, latest.c.ticket_id == Prediction.ticket_id).join(Label, Label.id == latest.c.lid)
                     .where(Prediction.rule_id.is_not(None),
                            (Label.department.is_(None)) | (Label.department != Prediction.department))
                     .group_by(Prediction.rule_id)))
    ret = dict(_all(engine, select(Prediction.rule_id, func.count(func.distinct(TicketReturn.ticket_id)))
                    .join(TicketReturn, TicketReturn.prediction_id == Prediction.id)
                    .where(Prediction.rule_id.is_not(None)).group_by(Prediction.rule_id)))
    df["hits"] = df["id"].map(lambda i: hits.get(i, 0))
    df["overturned"] = df["id"].map(lambda i: over.get(i, 0))
    df["returned"] = df["id"].map(lambda i: ret.get(i, 0))
    df["overturn_rate"] = np.where(df["hits"] > 0, (df["overturned"] + df["returned"]) / df["hits"].clip(lower=1), np.nan)
    return df


def incident_days(engine) -> list:
    """Days (UTC bounds are the caller's) that have incident tickets: the newest received time, for the default."""
    from router.store import Incident

    return _one(engine, select(func.max(Incident.last_at)))


def incidents(engine, start: datetime, end: datetime, alert_size: int, alert_hours: float) -> pd.DataFrame:
    """The incidents (并单) with tickets received in [start, end): size that day and overall, span, growth
    (tickets per hour), the most tickets within any `alert_hours`, and whether that reaches `alert_size`
    (风险性苗头性诉求预警)."""
    from router.store import Incident

    rows = _all(engine, select(Ticket.incident_id, Ticket.received_at).where(
        Ticket.incident_id.is_not(None), Ticket.received_at >= utc(start), Ticket.received_at < utc(end)))
    cols = ["id", "place", "district", "department", "size", "today", "first", "last", "per_hour", "peak", "alert"]
    if not rows:
        return pd.DataFrame(columns=cols)
    times: dict[int, list] = {}
    for inc, at in rows:
        times.setdefault(inc, []).append(pd.Timestamp(at).tz_localize("UTC") if pd.Timestamp(at).tzinfo is None
                                         else pd.Timestamp(at))
    meta = {r[0]: r[1:] for r in _all(engine, select(Incident.id, Incident.place, Incident.district,
                                                     Incident.department, Incident.size)
                                     .where(Incident.id.in_(list(times))))}
    out = []
    win = pd.Timedelta(hours=alert_hours)
    for inc, ts in times.items():
        ts.sort()
        peak = max(int(np.searchsorted(ts, t + win, side="right")) - k for k, t in enumerate(ts))
        hours = max((ts[-1] - ts[0]).total_seconds() / 3600, 1.0)
        place, district, dept, size = meta.get(inc, ("", None, None, len(ts)))
        out.append([inc, place, district, dept, size, len(ts), ts[0], ts[-1], round(len(ts) / hours, 2), peak,
                    peak >= alert_size])
    return pd.DataFrame(out, columns=cols).sort_values(["today", "per_hour"], ascending=False)


def incident_tickets(engine, incident_id: int) -> pd.DataFrame:
    rows = _all(engine, select(Ticket.id, Ticket.received_at, Ticket.duplicate_of, Ticket.title, Ticket.text)
                .where(Ticket.incident_id == incident_id).order_by(Ticket.received_at, Ticket.id))
    return pd.DataFrame(rows, columns=["id", "received_at", "duplicate_of", "title", "text"])
