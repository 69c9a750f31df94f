"""End to end: the labeling app served by `streamlit run`, worked in headless Chromium.

Accepts one suggestion with the key 1, corrects another through the searchable list, undoes
the correction, and checks the rows in the database. Saves a screenshot (to
$ROUTER_TEST_ARTIFACTS when set, else the test's temporary folder).
Chromium is /usr/bin/chromium (Debian package `chromium`): missing, the test fails in CI and
is skipped on a developer machine (env CI unset).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, select

from router import ROOT
from router.store import Label, QueueItem
from tests.browser import CHROMIUM, FLAGS, free_port, require_chromium, serve
from tests.test_labeling_actions import seed



@pytest.fixture
def served(engine, tmp_path):
    """The app on a free localhost port, over the test's store (env from the `home` fixture)."""
    require_chromium()
    ids = seed(engine)
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "labeling" / "app.py"),
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer"]
    with serve(cmd, port, tmp_path / "streamlit.log") as url:
        yield url, ids


def idle(page) -> None:
    """Wait until the app's script run has finished (call it once the run has visibly started)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=30000)


def test_dispatcher_works_the_queue_in_chromium(served, engine, catalog, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20000)

    url, ids = served
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=str(CHROMIUM),
                                                   headless=True, args=FLAGS, viewport={"width": 1400, "height": 1000},
                                                   locale="zh-CN")
        page = ctx.new_page()
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

        page.get_by_role("combobox").click()
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
        shot = tmp_path / "labeling_e2e.png"
        page.screenshot(path=str(shot), full_page=True)
        ctx.close()
    if os.environ.get("ROUTER_TEST_ARTIFACTS"):
        out = Path(os.environ["ROUTER_TEST_ARTIFACTS"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, out / shot.name)

    with Session(engine) as s:
        rows = [(r.ticket_id, r.department, r.source, r.reviewer, r.undone) for r in s.exec(select(Label).order_by(Label.id))]
        status = {q.ticket_id: (q.status, q.claimed_by) for q in s.exec(select(QueueItem))}
    assert rows == [("T1", "urban-mgmt", "confirmation", "王五", False),
                    ("T2", "housing", "correction", "王五", True)]
    assert status["T1"] == ("done", "王五")
    assert status["T2"] == ("pending", "王五")      # back in the queue, held by the dispatcher who undid it
    assert status["T3"][0] == "pending"
