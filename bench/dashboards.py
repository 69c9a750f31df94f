"""Dashboard render times on a store with 1,000,000 routed tickets.

Seeds a SQLite store (dashboards.seed: two model versions with reports; tickets over 365
days with their predictions, queue items and labels, bulk-inserted), then renders every page
with Streamlit's AppTest: `runs` times with the query cache cleared (cold: every SQL
aggregation runs) and once more with it warm. That time is the whole script run - queries,
pandas, Altair chart specs. Then (--browser, default) `router dashboard` serves the store and
headless Chromium opens each page: the first view (queries run) and reloads (cached), until
the script is done and all charts are drawn. Target: every page <= 2 s cold.

Writes bench/results/dashboards.json and prints a table.
    python bench/dashboards.py [--tickets 1000000] [--runs 5] [--home /tmp/router-bench-dashboards]
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # this file is named like the dashboards package it measures

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from router import ROOT

PAGES = ["pages/0_Overview.py", "pages/1_F1_by_department.py", "pages/2_Confusion.py",
         "pages/3_Calibration.py", "pages/4_Review_queue.py", "pages/5_Drift.py",
         "pages/6_Model_history.py"]
TARGET_S = 2.0


def seed_store(home: Path, tickets: int, console: Console) -> dict:
    from dashboards import seed
    from router import config
    from router.catalog import load_catalog
    from router.store import connect

    cfg = config.load()
    engine = connect(config.store_url(cfg))
    catalog = load_catalog(config.resolve(cfg.paths.catalog))
    t = time.perf_counter()
    versions = seed.make_versions(engine, cfg, catalog)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console) as progress:
        totals = seed.seed_tickets(engine, catalog, tickets, versions[-1], days=365,
                                   threshold=float(cfg.classify.threshold), progress=progress)
    return {**totals, "seconds": round(time.perf_counter() - t, 1)}


def render_times(runs: int) -> dict:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    app = str(ROOT / "dashboards" / "app.py")
    out = {}
    for page in PAGES:
        cold = []
        for _ in range(runs + 1):
            st.cache_data.clear()
            at = AppTest.from_file(app, default_timeout=120)
            at.switch_page(page)
            t = time.perf_counter()
            at.run()
            cold.append(time.perf_counter() - t)
            if at.exception:
                raise RuntimeError(f"{page}: {at.exception[0].value}")
        cold = cold[1:]  # the first run also imports modules and reads the catalogue
        t = time.perf_counter()
        at.run()
        warm = time.perf_counter() - t
        out[Path(page).stem] = {"cold_p50_s": round(statistics.median(cold), 3), "cold_max_s": round(max(cold), 3),
                                "warm_s": round(warm, 3), "runs": runs}
    return out


def browser_times(reloads: int) -> dict:
    """Each page opened in headless Chromium from `router dashboard`: the first view (its queries
    run) and `reloads` reloads (cached), until the script is done and every chart is drawn."""
    import socket
    import subprocess
    import urllib.request

    from playwright.sync_api import sync_playwright

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    charts = {"overview": 0, "f1": 2, "confusion": 1, "calibration": 2, "queue": 3, "drift": 2, "history": 2}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", "from router.cli import app; app()", "dashboard",
                             "--port", str(port), "--address", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url, out = f"http://127.0.0.1:{port}", {}
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
            ctx = p.chromium.launch_persistent_context(profile, executable_path="/usr/bin/chromium", args=flags,
                                                       headless=True, viewport={"width": 1600, "height": 1000})
            page = ctx.new_page()
            page.goto(url + "/history")  # load the front end once; history's queries are tiny
            page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")
            for name, n in charts.items():
                times = []
                for _ in range(reloads + 1):
                    t = time.perf_counter()
                    page.goto(f"{url}/{name}")
                    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']",
                                           timeout=60_000)
                    page.wait_for_function(f"document.querySelectorAll('.vega-embed canvas, .vega-embed svg')"
                                           f".length >= {n}", timeout=60_000)
                    times.append(time.perf_counter() - t)
                out[name] = {"first_view_s": round(times[0], 3),
                             "reload_p50_s": round(statistics.median(times[1:]), 3)}
            ctx.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return out


def main(tickets: int = typer.Option(1_000_000, help="tickets to seed"),
         runs: int = typer.Option(5, help="cold renders per page"),
         home: Path = typer.Option(Path("/tmp/router-bench-dashboards"), help="state folder (its store is reused)"),
         browser: bool = typer.Option(True, help="also time the pages in headless Chromium"),
         out: Path = typer.Option(ROOT / "bench" / "results" / "dashboards.json")):
    console = Console()
    os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # AppTest's bare-mode warnings
    os.environ["ROUTER_PATHS__HOME"] = str(home)
    os.environ.pop("ROUTER_STORE__URL", None)
    db = home / "router.db"
    marker = home / "seeded.json"
    if marker.exists() and json.loads(marker.read_text()).get("tickets") == tickets:
        seeded = json.loads(marker.read_text())
        console.print(f"reusing the seeded store {db}")
    else:
        for f in home.glob("router.db*"):
            f.unlink()
        seeded = seed_store(home, tickets, console)
        marker.write_text(json.dumps(seeded))
    load_before = os.getloadavg()[0]
    pages = render_times(runs)
    chromium = browser_times(runs) if browser and Path("/usr/bin/chromium").exists() else {}
    load = [round(load_before, 1), round(os.getloadavg()[0], 1)]  # other work on the machine slows pages
    res = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores",
           "load_average_1min_before_after": load,
           "store": {"engine": "sqlite", "size_mb": round(db.stat().st_size / 2**20), **seeded},
           "target_s": TARGET_S, "pages": pages, "chromium": chromium,
           "all_within_target": all(p["cold_max_s"] <= TARGET_S for p in pages.values())}
    out.write_text(json.dumps(res, indent=1))
    t = Table(title=f"dashboard renders (AppTest), {seeded['tickets']:,} tickets, {res['store']['size_mb']} MB SQLite")
    for col in ("page", "cold p50 s", "cold max s", "warm s", f"<= {TARGET_S} s"):
        t.add_column(col, justify="left" if col == "page" else "right")
    for name, p in pages.items():
        t.add_row(name, f"{p['cold_p50_s']:.3f}", f"{p['cold_max_s']:.3f}", f"{p['warm_s']:.3f}",
                  "yes" if p["cold_max_s"] <= TARGET_S else "[red]no[/red]")
    console.print(t)
    if chromium:
        t = Table(title="the same pages in headless Chromium (script done, charts drawn)")
        for col in ("page", "first view s", "reload p50 s"):
            t.add_column(col, justify="left" if col == "page" else "right")
        for name, c in chromium.items():
            t.add_row(name, f"{c['first_view_s']:.3f}", f"{c['reload_p50_s']:.3f}")
        console.print(t)
    console.print(f"1-minute load average {load[0]} before, {load[1]} after, on {os.cpu_count()} cores; "
                  f"written {out}")


if __name__ == "__main__":
    typer.run(main)
