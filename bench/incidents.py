"""Incidents (并单) on the Chinese month's 15 bursts (router/incidents.py).

    python bench/incidents.py [--similarity 0.5] [--window-days 2]

Through the product's own commands in a fresh home: `router import` of the month's history,
`router train` (baseline), then `router classify` of each of the 30 days in order, once with
`[incidents]` on and once off (ROUTER_INCIDENTS__ENABLED=false). No dispatcher works the queue, so
every day's low-confidence tickets stay waiting. Measured from the store against meta.json's bursts:
  - grouped: burst tickets in an incident holding another ticket of the same burst;
  - coverage: per burst, the share of its tickets in its largest incident;
  - wrongly merged: tickets outside any burst that share an incident with a burst ticket, and
    tickets outside any burst in any incident (some of those are real repeats: the generator writes
    regular tickets from the same phrasings and places);
  - reviews saved: queue items created with incidents off minus on (one item per incident).
Realistic case (long texts): `router import` of data/realistic/history.jsonl, `router train`, then
`router classify` of data/realistic/test.jsonl (501 distinct tickets over 25 days, no bursts: every
ticket grouped is a wrong merge); measured: tickets in an incident, incidents.
Writes bench/results/incidents.json and prints two tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
MONTH = ROOT / "data" / "sample" / "month"
REAL = ROOT / "data" / "realistic"
OUT = ROOT / "bench" / "results" / "incidents.json"


def run(home: Path, env: dict) -> dict:
    from router.cli import app

    os.environ.update(ROUTER_PATHS__HOME=str(home), **env)
    cli = CliRunner()
    for args in (["import", str(MONTH / "history.jsonl")], ["train"]):
        res = cli.invoke(app, args)
        assert res.exit_code == 0, res.output
    meta = json.loads((MONTH / "meta.json").read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    for d in meta["days"]:
        res = cli.invoke(app, ["classify", str(MONTH / d["file"]), "-o", str(home.parent / f"{home.name}-{d['file']}.routed.jsonl")])
        assert res.exit_code == 0, res.output
    seconds = time.perf_counter() - t0
    from sqlmodel import Session, select

    from router.store import QueueItem, Ticket, connect

    engine = connect(f"sqlite:///{home}/router.db")
    with Session(engine) as s:
        inc = dict(s.exec(select(Ticket.id, Ticket.incident_id).where(Ticket.incident_id.is_not(None))).all())
        items = Counter(r for r in s.exec(select(QueueItem.reason)))
    return {"incident_of": inc, "items": dict(items), "classify_s": round(seconds, 1), "meta": meta}


def realistic(home: Path, env: dict) -> dict:
    from router.cli import app

    os.environ.update(ROUTER_PATHS__HOME=str(home), **env)
    cli = CliRunner()
    for args in (["import", str(REAL / "history.jsonl")], ["train"],
                 ["classify", str(REAL / "test.jsonl"), "-o", str(home.parent / "realistic.routed.jsonl")]):
        res = cli.invoke(app, args)
        assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (home.parent / "realistic.routed.jsonl").read_text(encoding="utf-8").splitlines()]
    inc = [r["incident_id"] for r in rows if r.get("incident_id") is not None]
    return {"tickets": len(rows), "in_an_incident": len(inc), "incidents": len(set(inc))}


def measure(r: dict) -> dict:
    inc, meta = r["incident_of"], r["meta"]
    bursts = [(f"{d['day']}:{b['title']}", b["ids"]) for d in meta["days"] for b in d["bursts"]]
    burst_of = {i: name for name, ids in bursts for i in ids}
    members = defaultdict(list)
    for t, i in inc.items():
        members[i].append(t)
    grouped, per_burst = 0, {}
    for name, ids in bursts:
        c = Counter(inc[t] for t in ids if t in inc)
        grouped += sum(1 for t in ids if t in inc and sum(burst_of.get(x) == name for x in members[inc[t]]) > 1)
        per_burst[name] = round(c.most_common(1)[0][1] / len(ids), 3) if c else 0.0
    n_burst = sum(len(ids) for _, ids in bursts)
    with_burst = {i for t, i in inc.items() if t in burst_of}
    outside = [t for t in inc if t not in burst_of]
    n_total = sum(d["tickets"] for d in meta["days"])
    return {"burst_tickets": n_burst, "grouped": grouped, "grouped_share": round(grouped / n_burst, 4),
            "largest_incident_share_per_burst": per_burst,
            "outside_bursts": n_total - n_burst,
            "outside_merged_with_a_burst": sum(1 for t in outside if inc[t] in with_burst),
            "outside_in_any_incident": len(outside),
            "incidents": len(members), "incidents_with_a_burst": len(with_burst)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--similarity", type=float, default=None)
    ap.add_argument("--window-days", type=float, default=None)
    a = ap.parse_args()
    env = {k: str(v) for k, v in (("ROUTER_INCIDENTS__SIMILARITY", a.similarity),
                                  ("ROUTER_INCIDENTS__WINDOW_DAYS", a.window_days)) if v is not None}
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        on = run(Path(tmp) / "on", env | {"ROUTER_INCIDENTS__ENABLED": "true"})
        off = run(Path(tmp) / "off", env | {"ROUTER_INCIDENTS__ENABLED": "false"})
        real = realistic(Path(tmp) / "real", env | {"ROUTER_INCIDENTS__ENABLED": "true"})
    load_end = os.getloadavg()
    m = measure(on)
    items_on, items_off = sum(on["items"].values()), sum(off["items"].values())
    m |= {"queue_items_on": on["items"], "queue_items_off": off["items"], "reviews_saved": items_off - items_on,
          "classify_s_on": on["classify_s"], "classify_s_off": off["classify_s"]}
    from router.config import Incidents

    cfg = Incidents(**{k: v for k, v in (("similarity", a.similarity), ("window_days", a.window_days)) if v is not None})
    res = {"machine": platform.machine(), "date": time.strftime("%Y-%m-%d"), "loadavg": [round(x, 2) for x in load],
           "loadavg_end": [round(x, 2) for x in load_end], "settings": cfg.model_dump()} | m | {"realistic": real}
    OUT.write_text(json.dumps(res, ensure_ascii=False, indent=1) + "\n")
    print("| similarity, window | burst tickets grouped | smallest burst coverage | outside bursts merged with a burst "
          "| outside bursts in any incident | queue items off → on (reviews saved) | 30 days classify s off / on |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {cfg.similarity}, {cfg.window_days} d | {m['grouped']} / {m['burst_tickets']} ({m['grouped_share']:.1%}) | "
          f"{min(m['largest_incident_share_per_burst'].values()):.0%} | {m['outside_merged_with_a_burst']} / "
          f"{m['outside_bursts']} | {m['outside_in_any_incident']} ({m['outside_in_any_incident'] / m['outside_bursts']:.1%}) | "
          f"{items_off} → {items_on} ({m['reviews_saved']}) | {off['classify_s']} / {on['classify_s']} |")
    print(f"\nrealistic test ({real['tickets']} distinct tickets, no bursts): {real['in_an_incident']} in "
          f"{real['incidents']} incidents; load average {load[0]:.1f} at the start, {load_end[0]:.1f} at the end")


if __name__ == "__main__":
    main()
