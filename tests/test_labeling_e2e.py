"""End to end: the labeling app served by `streamlit run`, worked in headless Chromium.

Accepts one suggestion with the key 1, corrects another through the searchable list, undoes
the correction, and checks the rows in the database. At a laptop's 1024x700 and at 1400x900:
suggestion buttons show whole department names and percentages, and 跳过 / 无合适部门 / 撤销
are visible without scrolling. Screenshots go to $ROUTER_TEST_ARTIFACTS/labeling when set,
else tests/artifacts/labeling/ (git-ignored).
Chromium is /usr/bin/chromium (Debian package `chromium`): missing, the test fails in CI and
is skipped on a developer machine (env CI unset).
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timezone

import pytest
from sqlmodel import Session, select

from router import ROOT
from router.store import Label, QueueItem, Ticket
from tests.browser import artifacts, chromium, free_port, idle, require_chromium, serve
from tests.test_labeling_actions import seed



@pytest.fixture
def served(engine, tmp_path):
    """The app on a free localhost port, over the test's store (env from the `home` fixture)."""
    require_chromium()
    ids = seed(engine)
    with Session(engine) as s:  # T1 came in by phone at 08:05 Beijing time
        t = s.get(Ticket, "T1")
        t.received_at, t.channel = datetime(2026, 11, 26, 0, 5, tzinfo=timezone.utc), "phone"
        s.add(t)
        s.commit()
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "labeling" / "app.py"),
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer"]
    with serve(cmd, port, tmp_path / "streamlit.log") as url:
        yield url, ids


def test_dispatcher_works_the_queue_in_chromium(served, engine, catalog, tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=20000)

    url, ids = served
    with chromium(tmp_path / "profile", 1400, 1000) as page:
        page.set_default_timeout(30000)
        page.goto(url)
        page.get_by_label("姓名").fill("王五")
        page.get_by_role("button", name="开始标注").click()
        expect(page.get_by_text("小区门口的井盖丢了，晚上很危险")).to_be_visible()
        expect(page.get_by_text("负责市容市貌", exact=False).first).to_be_visible()

        expect(page.get_by_role("button", name=re.compile(r"^1 · 市城市管理综合执法局"))).to_be_enabled()
        idle(page)
        page.evaluate("document.activeElement && document.activeElement.blur()")  # keys go to the page
        page.keyboard.press("1")                                # accept suggestion 1 by key
        raw = page.get_by_text("楼上每天半夜唱歌，吵得睡不着 <b>救命</b> **急**")  # HTML/markdown shown as typed
        expect(raw).to_be_visible()
        idle(page)

        page.get_by_role("combobox").first.click()  # 其他部门; the 协办 list follows it
        page.keyboard.type("住房", delay=50)
        page.get_by_role("option", name="市住房和城乡建设局（housing）").click()
        duties = catalog.by_id["housing"].duties          # shown under the list once the pick is in
        expect(page.get_by_text(duties, exact=True)).to_have_count(2)  # (and under suggestion 3)
        page.get_by_role("button", name="改派").click()
        expect(page.get_by_text("物业不给维修电梯")).to_be_visible()
        expect(page.get_by_text("已分派到 市住房和城乡建设局")).to_be_visible()

        page.get_by_role("button", name="撤销上一步").click()
        expect(raw).to_be_visible()                              # the corrected ticket is back
        expect(page.get_by_text("已撤销上一步。")).to_be_visible()
        page.screenshot(path=str(artifacts("labeling") / "labeling_e2e.png"), full_page=True)

    with Session(engine) as s:
        rows = [(r.ticket_id, r.department, r.source, r.reviewer, r.undone) for r in s.exec(select(Label).order_by(Label.id))]
        status = {q.ticket_id: (q.status, q.claimed_by) for q in s.exec(select(QueueItem))}
    assert rows == [("T1", "urban-mgmt", "confirmation", "王五", False),
                    ("T2", "housing", "correction", "王五", True)]
    assert status["T1"] == ("done", "王五")
    assert status["T2"] == ("pending", "王五")      # back in the queue, held by the dispatcher who undid it
    assert status["T3"][0] == "pending"


def fits(page, width: int, height: int) -> None:
    """Each suggestion shows its whole name and percentage; the decision buttons are on screen."""
    keys = ["accept_1", "accept_2", "accept_3", "skip", "no_fit", "undo"]
    for key in keys:
        button = page.locator(f".st-key-{key} button")
        label = button.locator("p").first.inner_text()
        assert key not in keys[:3] or re.search(r"^\d · .+\s\d+%$", label), label
        # nothing cut off: the label's text fits its box (no ellipsis, no hidden overflow)
        assert button.evaluate("b => [...b.querySelectorAll('p')].every(p => p.scrollWidth <= p.clientWidth + 1"
                               " && p.getBoundingClientRect().right <= b.getBoundingClientRect().right + 1)"), label
    for key, name in (("skip", "跳过"), ("no_fit", "无合适部门"), ("undo", "撤销上一步")):
        button = page.locator(f".st-key-{key} button")
        assert button.locator("p").first.inner_text() == name
        box = button.bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= height, (name, box, width, height)


@pytest.mark.parametrize("width,height", [(1024, 700), (1400, 900)])
def test_laptop_screen_shows_the_whole_decision(served, tmp_path, width, height):
    from playwright.sync_api import expect

    url, _ = served
    with chromium(tmp_path / "profile", width, height) as page:
        page.goto(url)
        page.get_by_label("姓名").fill("王五")
        page.get_by_role("button", name="开始标注").click()
        expect(page.get_by_text("小区门口的井盖丢了，晚上很危险")).to_be_visible(timeout=30000)
        idle(page)
        expect(page.get_by_text("工单 T1 · 受理 2026-11-26 08:05 · 电话")).to_be_visible()
        assert page.locator("[data-testid='stAppDeployButton']").count() == 0
        fits(page, width, height)
        page.screenshot(path=str(artifacts("labeling") / f"labeling_{width}x{height}.png"))  # what the screen shows
        page.locator(".st-key-no_fit button").click()
        expect(page.get_by_text("已标记：无合适部门")).to_be_visible(timeout=30000)
        idle(page)
        expect(page.get_by_text("确认 0 · 纠正 0 · 无合适部门 1", exact=False)).to_be_visible()
        fits(page, width, height)
        page.screenshot(path=str(artifacts("labeling") / f"labeling_{width}x{height}_after_no_fit.png"))
