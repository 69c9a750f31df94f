"""The dispatch catalogue's rules (派单目录, router/rules.py) on the Chinese month.

    python bench/rules.py [--store-days 5] [--keep DIR]

A rule set a lead would pin, written from the departments' duties in data/departments.json (their
三定 rules and 权责清单), not from the month's tickets: keywords and patterns -> department, two of
them limited to a district. Through the product's own commands in a fresh home per model:
`router import` of a history, `router train` (baseline), `router rules add` of each rule; then the
month's 30 days (11,830 tickets + the generated emergencies) go through the product's dispatch steps
(router/routing.classify: model -> places -> rules -> emergencies) twice, with the rules and without,
in one process (the same functions, so both runs see the same model answers). Two models: the
month's history (391 tickets, day 0 of the loop) and the sample's history (5,000).

Reported against the generated truth: per rule its hits (tickets it decided), precision (its
department is the truth), conflicts; in all: coverage (share of tickets a rule decided), rule
precision, tickets where the rule overturned a correct model answer (right -> wrong) and where it
mended a wrong one (wrong -> right), accuracy with and without the rules.

Then, in the month-history home, the first `--store-days` days are routed by `router classify`
(rules on) and every rule-decided ticket whose truth differs is returned by its department
(`router returns import`, 权属不清): the dashboards' 派单规则 page reads its hits and overturns from
that store (dashboards/queries.rule_stats, recorded here and checked against the in-process hits).
Writes bench/results/rules.json and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path.pop(0)  # bench/dashboards.py would hide the dashboards package
DATA = ROOT / "data" / "sample"
MONTH = DATA / "month"
OUT = ROOT / "bench" / "results" / "rules.json"

# (pattern, department, options): what a lead pins from the catalogue's duties, each citing its source.
RULES = [
    ("预付卡", "commerce", ["--note", "市商务局三定：单用途商业预付卡（办卡充值后跑路、倒闭、拒绝退卡）"]),
    ("公积金", "housing-fund", ["--note", "市住房公积金管理中心三定：公积金缴存、提取和贷款"]),
    ("医保", "medical-insurance", ["--note", "市医疗保障局权责清单：医保参保缴费、报销、异地就医备案"]),
    ("暖气", "heating", ["--note", "市热力公司权责清单：暖气不热、温度不达标、暖气漏水"]),
    ("快递", "postal", ["--note", "市邮政管理局三定：快递丢失、损坏、延误、驿站乱收费"]),
    ("井盖", "municipal-facilities", ["--note", "市市政设施管理中心三定：城区道路、桥梁、路灯和井盖养护"]),
    ("信号灯", "traffic-police", ["--note", "市交警支队三定：交通信号灯配时与故障"]),
    ("狂犬疫苗", "cdc", ["--note", "市疾控中心权责清单：预防接种、狂犬疫苗"]),
    ("非法集资", "financial-regulation", ["--note", "市地方金融管理局三定：防范和处置非法集资"]),
    ("人防", "civil-defense", ["--note", "市人防办三定：人防工程和人防车位"]),
    ("假烟", "tobacco", ["--note", "市烟草专卖局权责清单：销售假烟和走私烟"]),
    ("广场舞", "police", ["--note", "市公安局三定：广场舞扰民等治安类生活噪声"]),
    ("下水道|化粪池|雨水井", "drainage", ["--regex", "--note", "市排水公司权责清单：下水道堵塞、化粪池满溢、雨水井堵塞"]),
    ("燃气(表|费)", "gas", ["--regex", "--note", "市燃气公司权责清单：燃气表故障、燃气费"]),
    ("物业", "housing", ["--note", "市住建局三定：物业服务企业行业监管（物业服务差、乱收费）"]),
    ("宅基地", "county-qingshi", ["--district", "county-qingshi", "--note", "青石县权责清单：农村宅基地上的违法建房"]),
    ("宅基地", "county-yunxi", ["--district", "county-yunxi", "--note", "云溪县权责清单：农村宅基地上的违法建房"]),
]


def cli(args: list[str], ok=(0,)) -> str:
    from router.cli import app

    res = CliRunner().invoke(app, args)
    assert res.exit_code in ok, (args, res.output)
    return res.output


def make_home(home: Path, history: Path) -> list[dict]:
    """A fresh home: the history imported, a baseline trained, the rules added (their CLI answers kept)."""
    os.environ["ROUTER_PATHS__HOME"] = str(home)
    cli(["import", str(history)])
    cli(["train"])
    added = []
    for pattern, dept, opts in RULES:
        out = cli(["rules", "add", pattern, dept, *opts, "--by", "组长"], ok=(0, 2))
        added.append({"pattern": pattern, "department": dept, "answer": " ".join(out.split())})
    return added


def route(home: Path, files: list[Path], off: set[int] = frozenset()):
    """Each ticket of `files`: (truth, department with the rules, without any, with the rules but `off`,
    the rule that decided, its conflict, the guard)."""
    from router import config, dispatch, nofit, registry
    from router.catalog import load_catalog
    from router.classifier import model_input
    from router.io import load_tickets
    from router.places import Places
    from router.rules import Rules
    from router.store import Rule, connect
    from sqlmodel import Session, select

    os.environ["ROUTER_PATHS__HOME"] = str(home)
    cfg = config.load()
    catalog = load_catalog(config.resolve(cfg.paths.catalog))
    engine = connect(f"sqlite:///{home}/router.db")
    mv, clf = registry.load(engine, None, cfg)
    classes = [str(c) for c in clf.classes_]
    rules = Rules.load(engine, catalog)
    with Session(engine) as s:
        pruned = Rules([r for r in s.exec(select(Rule).where(Rule.active == True)) if r.id not in off], catalog)  # noqa: E712
    places = Places(catalog)
    nf = cfg.nofit
    thr = nofit.threshold(nf, nofit.model_threshold(mv))
    rows = []
    for day, f in enumerate(files, 1):
        batch, _ = load_tickets(f, catalog)
        truth = {r["id"]: r.get("label") for r in map(json.loads, f.open(encoding="utf-8"))}
        proba, score = nofit.scores(clf, [model_input(t.text, t.title) for t in batch])
        tops, _ = nofit.route(proba, score, classes, cfg.classify.top_k, thr, nf.enabled)
        res = {}
        for name, rs in (("with", rules), ("without", Rules([])), ("pruned", pruned)):
            infos = [dispatch.Info() for _ in batch]
            x = dispatch.jurisdiction(places, batch, tops, infos, proba, classes)
            x = dispatch.legal_channel(batch, x, infos)
            x = dispatch.catalogue_rules(rs, catalog, batch, x, infos, tops)
            x = dispatch.emergencies(batch, x, infos, cfg.emergency.model_min, cfg.emergency.legal_min)
            res[name] = (x, infos)
        for i, t in enumerate(batch):
            info = res["with"][1][i]
            rows.append({"id": t.id, "day": day, "truth": truth[t.id], "rule": info.rule_id, "conflict": info.conflict,
                         "guard": info.guard} | {k: v[0][i][0][0] for k, v in res.items()})
    return rows, {r.id: r for r in rules.rules}


def measure(rows: list[dict], compiled: dict) -> dict:
    truth = np.array([r["truth"] for r in rows], dtype=object)
    w = np.array([r["with"] for r in rows], dtype=object)
    wo = np.array([r["without"] for r in rows], dtype=object)
    ruled = np.array([r["rule"] is not None for r in rows])
    per = {}
    for rid, c in sorted(compiled.items()):
        m = np.array([r["rule"] == rid for r in rows])
        per[rid] = {"pattern": c.pattern.pattern, "department": c.department, "district": c.district,
                    "hits": int(m.sum()), "right": int((m & (w == truth)).sum()),
                    "precision": round(float((w[m] == truth[m]).mean()), 3) if m.any() else None,
                    "overturned_right_model": int((m & (wo == truth) & (w != truth)).sum()),
                    "mended_wrong_model": int((m & (wo != truth) & (w == truth)).sum()),
                    "top_truths": dict(Counter(truth[m]).most_common(3))}
    n = len(rows)
    return {"tickets": n, "ruled": int(ruled.sum()), "coverage": round(float(ruled.mean()), 4),
            "rule_precision": round(float((w[ruled] == truth[ruled]).mean()), 4) if ruled.any() else None,
            "model_precision_on_ruled": round(float((wo[ruled] == truth[ruled]).mean()), 4) if ruled.any() else None,
            "overturned_right_model": int((ruled & (wo == truth) & (w != truth)).sum()),
            "mended_wrong_model": int((ruled & (wo != truth) & (w == truth)).sum()),
            "conflicts": int(sum(r["conflict"] is not None for r in rows)),
            "guarded": int(sum(r["guard"] is not None for r in rows)),
            "accuracy_without": round(float((wo == truth).mean()), 4),
            "accuracy_with": round(float((w == truth).mean()), 4),
            "accuracy_pruned": round(float((np.array([r["pruned"] for r in rows], dtype=object) == truth).mean()), 4),
            "per_rule": per}


def store_days(home: Path, days: int, rows: list[dict]) -> dict:
    """Route the first `days` days by `router classify` (rules on), return every rule-decided ticket whose
    truth differs, and read the dashboards' rule_stats from that store."""
    from dashboards import queries
    from router.store import connect

    os.environ["ROUTER_PATHS__HOME"] = str(home)
    meta = json.loads((MONTH / "meta.json").read_text(encoding="utf-8"))
    truth = {r["id"]: r["truth"] for r in rows}
    returns = []
    for d in meta["days"][:days]:
        out = home.parent / f"rules-{d['file']}.routed.jsonl"
        cli(["classify", str(MONTH / d["file"]), "-o", str(out)])
        for line in out.open(encoding="utf-8"):
            r = json.loads(line)
            if str(r.get("by", "")).startswith("rule:") and r["department"] != truth[r["id"]]:
                returns.append({"id": r.get("stored_id") or r["id"], "department": r["department"],
                                "reason": "权属不清", "note": "不属于本部门职责"})
    src = home.parent / "rules-returns.jsonl"
    src.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in returns), encoding="utf-8")
    if returns:
        cli(["returns", "import", str(src), "--importer", "bench"])
    df = queries.rule_stats(connect(f"sqlite:///{home}/router.db"))
    stats = {int(r.id): {"hits": int(r.hits), "overturned": int(r.overturned), "returned": int(r.returned)}
             for r in df.itertuples()}
    stored = [r for r in rows if r["day"] <= days]
    expect = Counter(r["rule"] for r in stored if r["rule"] is not None)
    return {"days": days, "tickets": len(stored), "returns_filed": len(returns), "rule_stats": stats,
            "hits_match_in_process": all(stats.get(k, {}).get("hits", 0) == v for k, v in expect.items())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--store-days", type=int, default=5, help="days routed by `router classify` for the dashboard")
    ap.add_argument("--keep", type=Path, default=None, help="keep the month-history home here (router dashboard on it)")
    a = ap.parse_args()
    load = os.getloadavg()
    os.environ["ROUTER_INCIDENTS__ENABLED"] = "false"     # not measured here; linking only slows the routing
    meta = json.loads((MONTH / "meta.json").read_text(encoding="utf-8"))
    days = [MONTH / d["file"] for d in meta["days"]]
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        homes, answers = {}, {}
        for name, history in (("month history", MONTH / "history.jsonl"), ("sample history", DATA / "history.jsonl")):
            homes[name] = Path(tmp) / name.replace(" ", "-") / "home"
            homes[name].mkdir(parents=True)
            answers[name] = make_home(homes[name], history)
        # the dashboard first: what a lead would disable after the first days' returns
        rows, _ = route(homes["month history"], days[: a.store_days])
        store = store_days(homes["month history"], a.store_days, rows)
        off = {k for k, v in store["rule_stats"].items() if v["hits"] >= 5 and (v["overturned"] + v["returned"]) / v["hits"] > 0.5}
        store["disabled_after"] = sorted(off)
        if a.keep:
            shutil.copytree(homes["month history"], a.keep, dirs_exist_ok=True)
        for name, home, files in (("month history → month", homes["month history"], days),
                                  ("sample history → month", homes["sample history"], days),
                                  ("sample history → sample test", homes["sample history"], [DATA / "test.jsonl"])):
            t0 = time.perf_counter()
            rows, compiled = route(home, files, off)
            cases.append({"case": name, "seconds": round(time.perf_counter() - t0, 1)} | measure(rows, compiled))
    cases[0]["rules_added"], cases[0]["store"] = answers["month history"], store
    res = {"machine": platform.machine(), "date": time.strftime("%Y-%m-%d"), "loadavg": [round(x, 2) for x in load],
           "rules": [{"pattern": p, "department": d, "options": o} for p, d, o in RULES], "cases": cases}
    OUT.write_text(json.dumps(res, ensure_ascii=False, indent=1) + "\n")
    print("| model | tickets | decided by a rule (coverage) | rule precision | model alone on those | "
          "rule overturned a right model answer | rule mended a wrong one | conflicts | accuracy without → with rules "
          "→ with the overturned ones disabled |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        print(f"| {c['case']} | {c['tickets']:,} | {c['ruled']:,} ({c['coverage']:.1%}) | {c['rule_precision']:.3f} | "
              f"{c['model_precision_on_ruled']:.3f} | {c['overturned_right_model']} | {c['mended_wrong_model']} | "
              f"{c['conflicts']} | {c['accuracy_without']:.4f} → {c['accuracy_with']:.4f} → {c['accuracy_pruned']:.4f} |")
    print("\n| rule | department | hits (month / sample history) | precision | overturned right / mended wrong (month history) |")
    print("|---|---|---|---|---|")
    m, s = cases[0]["per_rule"], cases[1]["per_rule"]
    for rid, r in m.items():
        lim = f" ({r['district']})" if r["district"] else ""
        p = "–" if r["precision"] is None else f"{r['precision']:.2f}"
        print(f"| {rid} `{r['pattern']}`{lim} | {r['department']} | {r['hits']} / {s.get(rid, {}).get('hits', 0)} | {p} | "
              f"{r['overturned_right_model']} / {r['mended_wrong_model']} |")
    st = cases[0]["store"]
    print(f"\ndashboard store ({st['days']} days, {st['tickets']} tickets routed by `router classify`): "
          f"{sum(v['hits'] for v in st['rule_stats'].values())} rule hits, {st['returns_filed']} returned; "
          f"hits match the in-process run: {st['hits_match_in_process']}; overturn rate > 50% (disabled after): "
          f"{st['disabled_after']}")


if __name__ == "__main__":
    main()
