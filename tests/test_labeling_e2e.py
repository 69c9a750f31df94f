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

from router import ROOT, webui
from router.store import Label, QueueItem, Ticket
from tests.browser import artifacts, chromium, english, free_port, idle, require_chromium, serve, spoken
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
           "--server.fileWatcherType", "none", *webui.SERVER_FLAGS]  # as `router label`
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


LONG = ("您好，我要反映一个问题。" + "我家住在东湖区幸福路小区三号楼，楼下的井盖已经丢了一个多星期，晚上路灯也不亮，"
        "老人孩子经过很危险，前天还有人差点掉下去。") * 4


def sign_in(page, url, name="王五") -> None:
    page.goto(url)
    page.get_by_label("姓名").fill(name)
    page.get_by_role("button", name="开始标注").click()


def on_screen(page, selector: str, height: int) -> None:
    box = page.locator(selector).first.bounding_box()
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= height, (selector, box)


def test_at_1024x768_the_list_is_above_the_fold_and_each_ticket_starts_at_the_top(served, engine, tmp_path):
    """The correction list (改派其他部门) shows without scrolling, a long ticket text included; after a
    decision made scrolled down, the next ticket is shown from the top: its text and the list in view."""
    from playwright.sync_api import expect

    with Session(engine) as s:
        s.get(Ticket, "T1").text = LONG
        s.commit()
    url, _ = served
    with chromium(tmp_path / "profile", 1024, 768) as page:
        sign_in(page, url)
        expect(page.get_by_text(LONG[:30])).to_be_visible(timeout=30000)
        idle(page)
        for selector in (".st-key-ticket_text", ".st-key-other", ".st-key-correct button", ".st-key-no_fit button"):
            on_screen(page, selector, 768)
        page.screenshot(path=str(artifacts("labeling") / "labeling_1024x768.png"))
        main = page.locator("[data-testid='stMain']")
        main.evaluate("m => m.scrollTo(0, m.scrollHeight)")        # read the duties at the bottom
        assert main.evaluate("m => m.scrollTop") > 100
        page.keyboard.press("s")                                     # and skip from there
        expect(page.get_by_text("楼上每天半夜唱歌")).to_be_visible(timeout=30000)
        idle(page)
        page.wait_for_function("document.querySelector('[data-testid=\"stMain\"]').scrollTop === 0", timeout=10000)
        for selector in (".st-key-ticket_text", ".st-key-other"):
            on_screen(page, selector, 768)
        page.screenshot(path=str(artifacts("labeling") / "labeling_1024x768_after_skip.png"))


def test_the_first_key_after_signing_in_is_not_lost(served, engine, tmp_path):
    """On a slow machine (the browser's CPU throttled 6x) the key 1 pressed as soon as the first ticket shows
    accepts its first suggestion (the ticket is drawn after its buttons, whose code is fetched before sign-in)."""
    from playwright.sync_api import expect

    url, _ = served
    with chromium(tmp_path / "profile", 1024, 768) as page:
        page.goto(url)
        idle(page)
        page.get_by_label("姓名").fill("王五")
        page.context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": 6})
        page.get_by_role("button", name="开始标注").click()
        page.get_by_text("小区门口的井盖丢了，晚上很危险").wait_for(timeout=60000)
        page.keyboard.press("1")
        expect(page.get_by_text("已分派到 市城市管理综合执法局")).to_be_visible(timeout=60000)
    with Session(engine) as s:
        rows = [(r.ticket_id, r.department, r.reviewer) for r in s.exec(select(Label))]
    assert rows == [("T1", "urban-mgmt", "王五")]


def test_no_english_on_the_app_pages(served, tmp_path):
    """Sign-in (a name typed: Streamlit's "Press Enter to submit form"), the ticket, a search with no match
    ("No results"): no English text a dispatcher can see, nor for a screen reader (buttons' "Shortcut 1",
    the list's "2 options available.", the progress bar); no English menu."""
    url, _ = served
    with chromium(tmp_path / "profile", 1024, 768) as page:
        page.goto(url)
        idle(page)
        page.get_by_label("姓名").fill("王五")
        page.wait_for_timeout(500)
        assert english(page) == [], "sign-in"
        assert spoken(page) == [], "sign-in"
        page.get_by_role("button", name="开始标注").click()
        page.get_by_text("小区门口的井盖丢了，晚上很危险").wait_for(timeout=30000)
        idle(page)
        assert page.locator("[data-testid='stMainMenu']").count() == 0
        assert english(page) == [], "ticket"
        assert spoken(page) == [], "ticket"
        page.get_by_role("combobox").first.click()
        page.keyboard.type("住房", delay=50)
        page.get_by_role("option", name="市住房和城乡建设局（housing）").wait_for()
        assert english(page) == [], "list"
        assert spoken(page) == [], "list"
        page.keyboard.type("zz", delay=50)
        empty = page.locator("[role='listbox'][data-empty='true'] [role='option']")
        empty.wait_for(timeout=10000)
        assert empty.inner_text() == "没有匹配项"
        assert english(page) == [], "no match"
        assert spoken(page) == [], "no match"


def crashed(page, shot: str) -> None:
    """The page says CRASH in Chinese: no traceback, no English."""
    page.get_by_text(webui.CRASH).wait_for(timeout=30000)
    idle(page)
    page.screenshot(path=str(artifacts("labeling") / f"{shot}.png"))
    shown = page.locator("[data-testid='stMain']").inner_text()
    assert "Traceback" not in shown and "Error" not in shown and "sqlite" not in shown, shown
    assert english(page) == [] and spoken(page) == []


def test_a_crash_and_a_lost_connection_are_said_in_chinese(engine, tmp_path):
    """A broken store (a table gone): the error in a button's callback (Streamlit's own, redacted message) and
    the one in the page that follows (`webui.guard`) say CRASH in Chinese, the tracebacks go to the server's
    log only. Then the server stops under the open page: Streamlit's dialog ("Connection error") is in Chinese."""
    require_chromium()
    seed(engine)
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "labeling" / "app.py"),
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", *webui.SERVER_FLAGS]
    with serve(cmd, port, tmp_path / "streamlit.log", process=True) as (url, proc), \
            chromium(tmp_path / "profile", 1024, 768) as page:
        sign_in(page, url)
        page.get_by_text("小区门口的井盖丢了，晚上很危险").wait_for(timeout=30000)
        idle(page)
        with engine.begin() as c:
            c.exec_driver_sql("ALTER TABLE label RENAME TO label_gone")
        page.get_by_role("button", name="跳过").click()       # the decision's callback fails
        crashed(page, "crash_in_a_callback")
        page.reload()                                          # the page itself fails (today's counts)
        sign_in(page, url)
        crashed(page, "crash_in_the_page")
        log = (tmp_path / "streamlit.log").read_text()
        assert log.count("no such table: label") >= 2 and "Traceback" in log
        proc.terminate()
        proc.wait(timeout=20)
        page.get_by_role("dialog").wait_for(timeout=30000)
        page.wait_for_timeout(500)
        assert "连接中断" in page.get_by_role("dialog").inner_text()
        assert english(page) == [] and spoken(page) == []
