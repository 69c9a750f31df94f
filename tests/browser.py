"""Shared pieces of the headless-Chromium tests: the browser, and a Streamlit app on a free port.

Chromium is /usr/bin/chromium (Debian package `chromium`; fonts-noto-cjk for Chinese text):
missing, a test fails in CI and is skipped on a developer machine (env CI unset).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must install the Debian package chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")


@contextmanager
def chromium(profile: Path, width: int, height: int):
    """A page of headless Chromium (locale zh-CN) with a `width` x `height` viewport."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(profile), executable_path=str(CHROMIUM), headless=True,
                                                   args=FLAGS, locale="zh-CN",
                                                   viewport={"width": width, "height": height})
        try:
            yield ctx.new_page()
        finally:
            ctx.close()


def idle(page, timeout: int = 30_000) -> None:
    """Wait until the Streamlit script run has finished (once the run has visibly started)."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)


# English a user may see here: department ids (housing), commands, options and settings sections,
# technical terms kept as such, version names, reviewer names (chen.jing)
KNOWN = (r"（[a-z][a-z-]*）|编号: [a-z][a-z-]*|\(([a-z][a-z-]*)\)|`[^`]*`|\brouter( [a-z-]+)+|--[a-z-]+|\[[a-z_.]+\]"
         r"|\b(ECE|F1|JS|Wilson|App|CSV|PNG|ROUTER_[A-Z_]+)\b"
         r"|\b[a-z]+-\d{8}-\d{6}-\d{3}\b|\b[a-z]+\.[a-z]+\b")


def english(page) -> list[str]:
    """Visible texts holding an English word (three letters or more) that is not in KNOWN: text on
    screen, not material icons' names nor text for screen readers only, plus CSS ::after content."""
    import re

    texts = page.evaluate("""() => {
        const out = [];
        const seen = el => el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})
            && parseFloat(getComputedStyle(el).fontSize) > 1 && el.getBoundingClientRect().width > 2
            && !el.closest('[data-testid="stIconMaterial"], [data-testid="stTooltipHoverTarget"] svg');
        const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        for (let n; (n = walk.nextNode());) {
            const el = n.parentElement;
            if (el && n.textContent.trim() && !['SCRIPT', 'STYLE'].includes(el.tagName) && seen(el)) out.push(n.textContent);
        }
        for (const el of document.querySelectorAll('*')) {
            const c = getComputedStyle(el, '::after').content;
            if (c && c !== 'none' && c !== 'normal' && el.checkVisibility()) out.push(c);
        }
        return out;
    }""")
    return sorted({t.strip() for t in texts if re.search(r"[A-Za-z]{3,}", re.sub(KNOWN, "", t))})


def spoken(page) -> list[str]:
    """What a screen reader says that holds an English word not in KNOWN: aria-label, title, placeholder
    and aria-roledescription values, and texts for screen readers only (on screen in a box of 2 px or less) — but not the data grids'
    hidden copy of their cells (data, not the interface) nor <noscript>."""
    import re

    texts = page.evaluate("""() => {
        const out = [];
        for (const a of ['aria-label', 'title', 'placeholder', 'aria-roledescription'])
            for (const el of document.querySelectorAll(`[${a}]`)) out.push(el.getAttribute(a));
        const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        for (let n; (n = walk.nextNode());) {
            const el = n.parentElement, r = el.getBoundingClientRect();
            if (!n.textContent.trim() || ['SCRIPT', 'STYLE', 'NOSCRIPT'].includes(el.tagName)
                || el.closest('[data-testid="stDataFrame"] table, [data-testid="stIconMaterial"]')) continue;
            if (el.checkVisibility({visibilityProperty: true}) && (r.width <= 2 || r.height <= 2))
                out.push(n.textContent);   // shown to no one but screen readers (not display: none)
        }
        return out;
    }""")
    return sorted({t.strip() for t in texts if re.search(r"[A-Za-z]{3,}", re.sub(KNOWN, "", t))})


def artifacts(name: str) -> Path:
    """tests/artifacts/<name>/ (or $ROUTER_TEST_ARTIFACTS/<name>/), for screenshots."""
    from router import ROOT

    base = os.environ.get("ROUTER_TEST_ARTIFACTS")
    out = (Path(base) if base else ROOT / "tests" / "artifacts") / name
    out.mkdir(parents=True, exist_ok=True)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(cmd: list[str], port: int, log_path: Path, process: bool = False):
    """Run `cmd` (a Streamlit server on `port`) until its health check answers; yields its URL (and
    the server's process when `process`)."""
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"{cmd[2:4]} did not start: " + log_path.read_text()[-2000:])
        yield (url, proc) if process else url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
