"""Dashboard render times on a store with 1,000,000 routed tickets.

Seeds a SQLite store (dashboards.seed: two model versions with reports; tickets over 365
days with their predictions, queue items and labels, bulk-inserted), then renders every page
with Streamlit's AppTest: `runs` times with the query cache cleared (cold: every SQL
aggregation runs) and once more with it warm. That time is the whole script run - queries,
pandas, Altair chart specs. Then (--browser, default) `router dashboard` serves the store,
headless Chromium opens the app and picks each page in the sidebar: the first visit (its
queries run) and later visits (cached), until the script is done and all charts are drawn.
Target: every page <= 2 s cold.

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

PAGES = ["views/0_Overview.py", "views/1_F1_by_department.py", "views/2_Confusion.py",
         "views/3_Calibration.py", "views/4_Review_queue.py", "views/5_Drift.py",
         "views/6_Model_history.py"]
TARGET_S = 2.0


def seed_store(home: Path, tickets: int, console: Console) -> dict:
    from dashboards import seed
    from router import config, registry
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
                                   threshold=registry.threshold(cfg, None)[0], progress=progress)
    return {**totals, "seconds": round(time.perf_counter() - t, 1)}


def render_times(runs: int) -> dict:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    app = str(ROOT / "dashboards" / "app.py")
    out = {}
    for page in PAGES:
        cold = []
        for _ in range(runs + 1):
            at = AppTest.from_file(app, default_timeout=120).run()  # st.navigation registers the pages
            at.switch_page(page)
            st.cache_data.clear()
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


def browser_times(visits: int) -> dict:
    """`router dashboard` in headless Chromium: the time to open the app (the overview, cold), then
    each page picked in the sidebar, `visits` rounds (the first runs its queries, later ones are
    cached; the overview's are cached from the opening), until the script is done and every
    chart is drawn."""
    import socket
    import subprocess
    import urllib.request

    from playwright.sync_api import sync_playwright

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    charts = {  # url path: sidebar link, page heading, charts drawn when done
        "overview": ("Overview", "Ticket router dashboards", 0), "f1": ("Per-department F1", "Per-department F1", 2),
        "confusion": ("Confusion", "Confusion", 1), "calibration": ("Calibration", "Calibration", 2),
        "queue": ("Review queue", "Review queue", 3), "drift": ("Drift", "Drift", 2),
        "history": ("Model history", "Model history", 2)}
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
            done = "[data-testid='stApp'][data-test-script-state='notRunning']"
            t = time.perf_counter()
            page.goto(url)
            page.wait_for_selector(done, timeout=60_000)
            page.get_by_role("heading", name=charts["overview"][1]).first.wait_for(timeout=60_000)
            front_end = time.perf_counter() - t
            clicks = {name: [] for name in charts}
            for _ in range(visits):  # the first round runs each page's queries, later ones hit the cache
                for name, (link, heading, n) in list(charts.items())[1:] + list(charts.items())[:1]:
                    t = time.perf_counter()
                    page.locator("[data-testid='stSidebarNav'] a").filter(has_text=link).first.click()
                    page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)
                    page.wait_for_selector(done, timeout=60_000)
                    page.wait_for_function(f"document.querySelectorAll('.vega-embed canvas, .vega-embed svg')"
                                           f".length >= {n}", timeout=60_000)
                    clicks[name].append(time.perf_counter() - t)
            t = time.perf_counter()
            page.goto(url)  # open the app again: the browser has the front end, the server the queries
            page.wait_for_selector(done, timeout=60_000)
            page.get_by_role("heading", name=charts["overview"][1]).first.wait_for(timeout=60_000)
            reopen = time.perf_counter() - t
            out = {"open_app_s": round(front_end, 3), "reopen_app_s": round(reopen, 3),
                   "pages": {name: {"first_visit_s": round(ts[0], 3),
                                    "later_visits_p50_s": round(statistics.median(ts[1:]), 3)}
                             for name, ts in clicks.items()}}
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
        t = Table(title=f"headless Chromium, page picked in the sidebar until drawn (opening the app: "
                        f"{chromium['open_app_s']:.2f} s, again: {chromium['reopen_app_s']:.2f} s)")
        for col in ("page", "first visit s", "later visits p50 s"):
            t.add_column(col, justify="left" if col == "page" else "right")
        for name, c in chromium["pages"].items():
            t.add_row(name, f"{c['first_visit_s']:.3f}", f"{c['later_visits_p50_s']:.3f}")
        console.print(t)
    console.print(f"1-minute load average {load[0]} before, {load[1]} after, on {os.cpu_count()} cores; "
                  f"written {out}")


if __name__ == "__main__":
    typer.run(main)
