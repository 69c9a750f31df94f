"""Ticket reader throughput and memory: 100k tickets as JSONL, CSV (UTF-8 and GB18030) and 20k as Excel.

Each format is read in a fresh process (router.io.read_tickets, the same path `router classify`
streams through); prints a table and writes bench/results/io_read.json.

    python bench/io_read.py
"""

from __future__ import annotations

import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N, N_XLSX = 100_000, 20_000


def make(folder: Path) -> dict[str, Path]:
    from router.io import write_xlsx

    day = [json.loads(x) for x in (ROOT / "data/sample/day.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = [{"id": f"b{i}", "text": day[i % len(day)]["text"], "channel": "phone"} for i in range(N)]
    files = {"jsonl": folder / "t.jsonl", "csv utf-8": folder / "u.csv", "csv gb18030": folder / "g.csv",
             "xlsx": folder / "t.xlsx"}
    files["jsonl"].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    for key, enc in (("csv utf-8", "utf-8"), ("csv gb18030", "gb18030")):
        with open(files[key], "w", encoding=enc, newline="") as f:
            w = csv.writer(f)
            w.writerow(["工单编号", "诉求内容", "渠道"])
            w.writerows([r["id"], r["text"], r["channel"]] for r in rows)
    write_xlsx(files["xlsx"], rows[:N_XLSX])
    return files


def measure(path: str) -> dict:
    from router.io import Reject, TicketReader

    t0 = time.perf_counter()
    reader = TicketReader(path)
    ok = bad = 0
    for item in reader:
        bad += isinstance(item, Reject)
        ok += not isinstance(item, Reject)
    s = time.perf_counter() - t0
    return {"tickets": ok, "rejects": bad, "seconds": round(s, 2), "tickets_per_s": round(ok / s),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "encoding": reader.encoding}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(measure(sys.argv[2])))
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in make(Path(tmp)).items():
            out = subprocess.run([sys.executable, __file__, "--one", str(path)], capture_output=True, text=True,
                                 check=True, cwd=ROOT)
            results[name] = json.loads(out.stdout) | {"mb": round(path.stat().st_size / 2**20, 1)}
    print(f"{'format':<12} {'MB':>6} {'tickets':>8} {'s':>6} {'tickets/s':>10} {'peak RSS MB':>12} encoding")
    for name, r in results.items():
        print(f"{name:<12} {r['mb']:>6} {r['tickets']:>8} {r['seconds']:>6} {r['tickets_per_s']:>10} "
              f"{r['peak_rss_mb']:>12} {r['encoding']}")
    (ROOT / "bench/results/io_read.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
