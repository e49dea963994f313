"""The dashboard in a real headless Chromium (Debian `chromium`, driven by Playwright): the
overview loads, every page is reached by clicking the navigation, charts are drawn (SVG
shapes with a size on screen), nothing is fetched from another host, the console stays free
of errors, and the redrive button asks before it acts. Takes a screenshot of the overview;
PLATFORMDB_UPDATE_SCREENSHOT=1 saves it as docs/dashboard.png (a test run leaves the tree as it
found it).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from platformdb.dashboard.app import PAGES, Settings, create_app

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
# pages whose demo data always makes a chart (the query page needs statistics first)
CHARTED = {"/", "/services", "/queues", "/payments", "/whatsapp", "/cache", "/flags", "/partitions", "/series"}
SHAPES = "svg.chart path.series, svg.chart rect.bar, svg.chart circle.dot"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(url: str) -> Iterator[str]:
    """The dashboard app under uvicorn in a thread, on a free loopback port."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(Settings(database_url=url)), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the dashboard did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Watch:
    """Console errors, page errors, failed or foreign requests, HTTP errors of one page."""

    def __init__(self, page: Page, base: str) -> None:
        self.problems: list[str] = []
        host = urlsplit(base).netloc
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url}"))
        page.on(
            "request",
            lambda r: (
                self.problems.append(f"foreign request: {r.url}")
                if urlsplit(r.url).netloc not in (host, "") and not r.url.startswith("data:")
                else None
            ),
        )
        page.on("response", lambda r: self.problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)


def drawn_shapes(page: Page) -> int:
    """SVG chart shapes that have a size on screen."""
    sizes: list[Any] = page.eval_on_selector_all(
        SHAPES, "els => els.map(e => { const b = e.getBoundingClientRect(); return b.width + b.height; })"
    )
    return sum(1 for s in sizes if s > 0)


def test_click_through_every_page(browser: Browser, medium_demo_url: str, tmp_path: Path) -> None:
    screenshot = DOCS_SCREENSHOT if os.environ.get("PLATFORMDB_UPDATE_SCREENSHOT") else tmp_path / "dashboard.png"
    with serving(medium_demo_url) as base:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        watch = Watch(page, base)
        page.goto(base + "/")
        assert page.title().startswith("Overview")
        assert page.locator(".tile").count() == 9
        assert drawn_shapes(page) > 0
        page.screenshot(path=str(screenshot), full_page=True)
        for href, label in PAGES[1:]:
            page.click(f"nav a[href='{href}']")
            page.wait_for_load_state("load")
            assert urlsplit(page.url).path == href, (label, page.url)
            assert page.locator("nav a.active").inner_text() == label
            if href in CHARTED:
                assert drawn_shapes(page) > 0, f"{label}: no chart drawn"
        # a chart responds to the window selector (the script submits the form)
        page.click("nav a[href='/series']")
        page.select_option("select[name=window]", "1h")
        page.wait_for_url("**/series?*window=1h*")
        assert drawn_shapes(page) > 0
        # every number links to the SQL it comes from
        page.click("nav a[href='/queues']")
        page.click("a.num >> nth=0")
        page.wait_for_url("**/sql/**")
        assert page.locator("pre.sql").count() >= 1
        assert watch.problems == [], watch.problems
        page.close()
    assert screenshot.stat().st_size > 20_000


def test_redrive_button_asks_first(browser: Browser, small_demo_url: str) -> None:
    with psycopg.connect(small_demo_url, autocommit=True) as admin:
        admin.execute("select public.enqueue_message('refunds', 'refund.momo', '{}'::jsonb)")
        admin.execute(
            "update public.message_queue set state = 'dead_letter', finalized_at = now(), attempt = 5"
            " where queue_name = 'refunds'"
        )

    def dead() -> int:
        with psycopg.connect(small_demo_url) as c:
            row = c.execute(
                "select count(*) from public.message_queue where queue_name = 'refunds' and state = 'dead_letter'"
            ).fetchone()
            return int(row[0]) if row else -1

    with serving(small_demo_url) as base:
        page = browser.new_page()
        watch = Watch(page, base)
        page.goto(base + "/queues")
        button = page.get_by_role("button", name="Re-drive message refunds")
        messages: list[str] = []
        page.once("dialog", lambda d: (messages.append(d.message), d.dismiss()))
        button.click()
        page.wait_for_timeout(300)
        assert messages and "refunds" in messages[0]
        assert dead() == 1  # dismissed: nothing happened
        page.once("dialog", lambda d: d.accept())
        with page.expect_navigation():
            page.get_by_role("button", name="Re-drive message refunds").click()
        assert "Re-driven: 1 message dead letters of refunds" in page.content(), page.content()[:2000]
        assert dead() == 0
        assert watch.problems == [], watch.problems
        page.close()
