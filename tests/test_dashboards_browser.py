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
from router import webui
from tests.browser import artifacts, chromium, english, free_port, require_chromium, serve, spoken
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


# every chart's points (symbol marks) lie inside the chart's box, which cuts off what sticks out
POINTS_CUT = """() => [...document.querySelectorAll('.vega-embed')].flatMap(e => {
    const b = e.getBoundingClientRect();
    return [...e.querySelectorAll('.mark-symbol path')].map(p => p.getBoundingClientRect())
        .filter(r => r.width > 0 && (r.left < b.left - 1 || r.right > b.right + 1 || r.top < b.top - 1
                                     || r.bottom > b.bottom + 1))
        .map(r => `${Math.round(r.left)}-${Math.round(r.right)} of ${Math.round(b.left)}-${Math.round(b.right)}`);
})"""


# no axis repeats a label (a day format on ticks every 12 hours: "11-25 11-25 11-26")
AXIS_REPEATS = """() => [...document.querySelectorAll('.vega-embed .role-axis')].flatMap(a => {
    const labels = [...a.querySelectorAll('.role-axis-label text')].map(t => t.textContent);
    return labels.filter((l, i) => l && labels.indexOf(l) !== i);
})"""
# axis titles drawn turned (Vega's SVG: transform="translate(x,y) rotate(-90)"): Chinese is read horizontally
TITLES_TURNED = """() => [...document.querySelectorAll('.vega-embed .role-axis-title text')]
    .filter(t => /rotate\\((?!0\\))/.test(t.getAttribute('transform') || '')).map(t => t.textContent)"""
# no axis or legend label cut short by its limit (Vega ends it with an ellipsis)
LABELS_CUT = """() => [...document.querySelectorAll('.vega-embed .role-axis-label text, .vega-embed .role-legend-label text')]
    .map(t => t.textContent).filter(l => l.endsWith('…'))"""


def test_at_1024x768_every_page_is_chinese_and_the_model_history_fits(served, tmp_path):
    """Every page (dashboards/app.py's list): no English a user can see but department ids, commands and
    technical terms (tests/browser.py KNOWN), nor for a screen reader (labels, hidden texts, Vega's chart
    descriptions); no menu; no chart point cut off at the chart's edge, no axis label twice nor cut short, no axis
    title turned sideways; a narrower sidebar leaves the page
    700 px or more (the grids' columns fit). The model versions table shows
    every column at 1024 px, each header on one line with its help on hover, each version's name on one
    line; the decisions table fits too."""
    from dashboards.app import PAGES as ALL

    with chromium(tmp_path / "profile", 1024, 768) as page:
        for _, _, path, _ in ALL:
            page.goto(f"{served}/{'' if path == 'overview' else path}")  # the default page is served at /
            idle(page)
            page.locator("h1").first.wait_for(timeout=30_000)
            page.wait_for_timeout(1000)                      # charts drawn
            assert english(page) == [], path
            assert spoken(page) == [], path
            assert page.locator("[data-testid='stMainMenu']").count() == 0, path
            assert page.evaluate(POINTS_CUT) == [], path
            assert page.evaluate(AXIS_REPEATS) == [] and page.evaluate(LABELS_CUT) == [], path
            assert page.evaluate(TITLES_TURNED) == [], path
            width = page.locator("[data-testid='stMainBlockContainer']").evaluate(  # room for the grids' columns
                "e => e.clientWidth - parseFloat(getComputedStyle(e).paddingLeft) - parseFloat(getComputedStyle(e).paddingRight)")
            assert width >= 700, (path, width)
        page.goto(f"{served}/history")
        idle(page)
        page.get_by_role("heading", name="版本").first.wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        right = page.locator("[data-testid='stMainBlockContainer']").evaluate("e => e.getBoundingClientRect().right")
        versions, decisions = page.locator("table.versions"), page.locator("[data-testid='stTable']")
        assert versions.count() == 1 and decisions.count() == 1
        for t in (versions, decisions):
            t.scroll_into_view_if_needed()
            assert t.evaluate("e => [e, ...e.querySelectorAll('*')].every(x => x.scrollWidth <= x.clientWidth + 1"
                              " || getComputedStyle(x).overflowX === 'visible')")
            for cell in t.locator("th, td").all():
                box = cell.bounding_box()
                assert box["x"] + box["width"] <= min(right, 1024) + 1, cell.inner_text()
        line = versions.locator("td b").first.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
        for th in versions.locator("th").all():                # one line each, with a help text
            assert th.locator("span").bounding_box()["height"] < 1.5 * line, th.inner_text()
            assert len(th.get_attribute("title")) > 4, th.inner_text()
        assert [th.inner_text() for th in versions.locator("th").all()] == ["版本", "训练 / 上线", "准确率", "宏 F1", "ECE"]
        for name in versions.locator("td b").all():            # baseline-20260101-000001-000 on one line
            assert name.bounding_box()["height"] < 1.5 * line, name.inner_text()
        assert "训练 6,300 / 测试 700 张" in versions.locator("tbody tr").first.inner_text()
        shoot(page, artifacts("dashboards") / "history_1024x768.png", 1024, 768)
        page.locator("[data-testid='stSidebar']").hover()       # collapsed, the sidebar leaves no gutter
        page.get_by_role("button", name="收起侧栏").click()
        page.wait_for_timeout(1000)
        assert page.locator("[data-testid='stMainBlockContainer']").evaluate("e => e.getBoundingClientRect().left") < 50


def test_streamlit_dialogs_and_tooltips_are_chinese(served, tmp_path, engine):
    """A link to a page that does not exist opens the overview with Streamlit's "Page not found" dialog in
    Chinese; the data grids' toolbar says what its buttons do in Chinese, on hover and to screen readers, and
    so do a column's menu and its statistics. A page that fails (a broken store) says so in Chinese, its
    traceback in the server's log only."""
    with chromium(tmp_path / "profile", 1024, 768) as page:
        page.goto(f"{served}/no-such-page")
        idle(page)
        dialog = page.get_by_role("dialog")
        dialog.wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        assert dialog.locator("h2").inner_text() == "没有这个页面"
        assert "已打开首页" in dialog.inner_text()
        assert dialog.get_by_role("button", name="关闭").count() == 1
        assert english(page) == [] and spoken(page) == []
        page.keyboard.press("Escape")
        page.goto(f"{served}/returns")
        idle(page)
        grid = page.locator("[data-testid='stDataFrame']").first
        grid.scroll_into_view_if_needed()
        grid.hover()
        names = [b.get_attribute("aria-label") for b in grid.locator("xpath=..").locator("button[aria-label]").all()]
        assert names[-4:] == ["显示/隐藏列", "下载 CSV", "搜索", "全屏"]
        page.get_by_role("button", name="下载 CSV").first.hover()
        tip = page.locator("[data-testid='stTooltipContent']")
        tip.wait_for(timeout=10_000)
        assert tip.inner_text() == "下载 CSV"
        assert english(page) == [] and spoken(page) == []
        page.keyboard.press("Escape")                         # the first column's menu, and its statistics
        page.mouse.move(0, 0)
        page.wait_for_timeout(500)
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        page.mouse.move(box["x"] + 250, box["y"] + 17)        # the header's menu opens on a click once hovered
        page.wait_for_timeout(300)
        page.mouse.click(box["x"] + 250, box["y"] + 17)
        page.get_by_role("menuitem", name="升序").wait_for(timeout=10_000)
        page.get_by_role("menuitem", name="统计").hover()
        page.get_by_text("不同值", exact=True).wait_for(timeout=10_000)
        assert english(page) == [] and spoken(page) == []
        with engine.begin() as c:
            c.exec_driver_sql("ALTER TABLE incident RENAME TO incident_gone")
        page.goto(f"{served}/incidents")
        idle(page)
        page.get_by_text(webui.CRASH).wait_for(timeout=30_000)
        shown = page.locator("[data-testid='stMain']").inner_text()
        assert "Traceback" not in shown and "sqlite" not in shown, shown
        assert page.locator("[data-testid='stException']").count() == 0
        assert english(page) == [] and spoken(page) == []
        assert "no such table: incident" in (tmp_path / "dashboard.log").read_text()


