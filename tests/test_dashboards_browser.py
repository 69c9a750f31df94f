"""The dashboards served by `router dashboard`, opened page by page in headless Chromium at a
laptop's 1024x700 and at 1400x900.

Each page must finish rendering without an exception and show its Chinese title and charts,
without Streamlit's Deploy button; on the confusion page, selecting a held-out pair opens its
tickets. A full-page screenshot of each page at each size goes to
$ROUTER_TEST_ARTIFACTS/dashboards when set, else tests/artifacts/dashboards/ (git-ignored).
Chromium is /usr/bin/chromium (Debian package `chromium`; fonts-noto-cjk for the department
names): missing, the test fails in CI and is skipped on a developer machine (env CI unset).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dashboards import seed
from tests.browser import artifacts, chromium, free_port, require_chromium, serve
from tests.browser import idle as browser_idle

PAGES = [("f1", "各部门 F1", 2), ("", "工单分派看板", 0),
         ("confusion", "混淆分析", 1), ("calibration", "置信度校准", 2), ("queue", "复核队列", 3),
         ("drift", "分布漂移", 2), ("history", "模型历史", 2)]  # url path, title, charts
# a deep link first: a fresh server must serve it without a "Page not found" dialog
SIZES = [(1024, 700), (1400, 900)]


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


def idle(page) -> None:
    browser_idle(page, timeout=60_000)


def shoot(page, path: Path, width: int, height: int) -> None:
    """A full-page screenshot (the app scrolls inside stMain, so grow the viewport first)."""
    full = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": width, "height": min(max(height, full + 40), 8000)})
    page.wait_for_timeout(300)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": width, "height": height})
    assert path.stat().st_size > 20_000


@pytest.mark.parametrize("width,height", SIZES)
def test_every_page_renders_in_chromium(served, tmp_path, width, height):
    out = artifacts("dashboards")
    with chromium(tmp_path / "profile", width, height) as page:
        for path, title, n_charts in PAGES:
            page.goto(f"{served}/{path}")
            idle(page)
            page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
            if n_charts:
                page.wait_for_function(
                    f"document.querySelectorAll('.vega-embed canvas, .vega-embed svg').length >= {n_charts}",
                    timeout=30_000)
            page.wait_for_timeout(500)
            assert page.locator("[data-testid='stException']").count() == 0, path
            assert page.get_by_text("Page not found").count() == 0, path
            assert page.locator("[data-testid='stAppDeployButton']").count() == 0, path
            assert page.get_by_role("button", name="Deploy").count() == 0, path
            shoot(page, out / f"{path or 'overview'}_{width}x{height}.png", width, height)


def test_selecting_a_held_out_pair_opens_its_tickets(served, tmp_path, catalog):
    from playwright.sync_api import expect

    with chromium(tmp_path / "profile", 1400, 900) as page:
        page.goto(f"{served}/confusion")
        idle(page)
        first = page.locator("h3", has_text="分派到").first
        expect(first).to_be_visible(timeout=30_000)
        before = first.inner_text()
        grid = page.locator("[data-testid='stDataFrame']").first
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        page.mouse.click(box["x"] + 12, box["y"] + 35 + 35 * 2 + 17)  # the third pair's row marker
        idle(page)
        expect(page.locator("h3", has_text="分派到").first).not_to_have_text(before, timeout=30_000)
        assert page.get_by_text("这一对的留出工单未记录").count() == 0
        assert page.locator("[data-testid='stDataFrame']").count() == 2  # the pairs, and the tickets
        shoot(page, artifacts("dashboards") / "confusion_pair_selected_1400x900.png", 1400, 900)
