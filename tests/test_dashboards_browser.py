"""The dashboards served by `router dashboard`, opened page by page in headless Chromium.

Each page must finish rendering without an exception and show its title and charts; a
full-page screenshot of each goes to $ROUTER_TEST_ARTIFACTS/dashboards when set, else
tests/artifacts/dashboards/ (git-ignored). Chromium is /usr/bin/chromium (Debian package
`chromium`; fonts-noto-cjk for the department names): missing, the test fails in CI and is
skipped on a developer machine (env CI unset).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from dashboards import seed
from router import ROOT
from tests.browser import CHROMIUM, FLAGS, free_port, require_chromium, serve

PAGES = [("f1", "Per-department F1", 2), ("", "Ticket router dashboards", 0),
         ("confusion", "Confusion", 1), ("calibration", "Calibration", 2), ("queue", "Review queue", 3),
         ("drift", "Drift", 2), ("history", "Model history", 2)]  # url path, title, charts
# a deep link first: a fresh server must serve it without a "Page not found" dialog


def artifacts() -> Path:
    base = os.environ.get("ROUTER_TEST_ARTIFACTS")
    out = Path(base) / "dashboards" if base else ROOT / "tests" / "artifacts" / "dashboards"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def served(cfg, engine, catalog, tmp_path):
    """`router dashboard` on a free port over a seeded store (env from the `home` fixture)."""
    require_chromium()
    seed.demo(engine, cfg, catalog, n=3000)
    port = free_port()
    cmd = [sys.executable, "-c", "from router.cli import app; app()", "dashboard",
           "--port", str(port), "--address", "127.0.0.1"]
    with serve(cmd, port, tmp_path / "dashboard.log") as url:
        yield url
    said = "".join((tmp_path / "dashboard.log").read_text().split())  # rich wraps long lines
    assert f"dashboardsforsqlite:///{cfg.paths.home}/router.dbonhttp://127.0.0.1:" in said


def test_every_page_renders_in_chromium(served, tmp_path):
    from playwright.sync_api import sync_playwright

    out = artifacts()
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=str(CHROMIUM),
                                                   args=FLAGS, headless=True,
                                                   viewport={"width": 1600, "height": 900})
        try:
            page = ctx.new_page()
            for path, title, n_charts in PAGES:
                page.set_viewport_size({"width": 1600, "height": 900})
                page.goto(f"{served}/{path}")
                page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']",
                                       timeout=60_000)
                page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
                if n_charts:
                    page.wait_for_function(
                        f"document.querySelectorAll('.vega-embed canvas, .vega-embed svg').length >= {n_charts}",
                        timeout=30_000)
                page.wait_for_timeout(500)
                assert page.locator("[data-testid='stException']").count() == 0, path
                assert page.get_by_text("Page not found").count() == 0, path
                height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
                page.set_viewport_size({"width": 1600, "height": min(max(900, height + 40), 8000)})
                page.wait_for_timeout(300)
                shot = out / f"{path or 'overview'}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 20_000
        finally:
            ctx.close()
