"""A JavaScript single-page app captured with --browser replays through pywb in real Chromium
with its fetch-loaded posts visible (not an empty shell)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from crawler.replay import pywb_replay
from storage.db import open_database
from tests.conftest import socialark
from tests.procs import free_port
from tests.sites.spa_site import SpaSite, post_token

pytest.importorskip("playwright.async_api")


def _no_browser() -> str | None:
    from crawler.browser.config import browser_problem

    return browser_problem(None)


pytestmark = pytest.mark.skipif(_no_browser() is not None, reason="no Chromium for Playwright")


async def _render_text(url: str) -> str:
    from playwright.async_api import async_playwright

    from crawler.browser.config import default_executable

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=default_executable() or None,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        try:
            page = await browser.new_page()
            await page.goto(url, wait_until="networkidle", timeout=60_000)
            await page.wait_for_timeout(1500)
            # pywb's framed replay: the banner is the top frame, the archived page an iframe
            texts = []
            for frame in page.frames:
                try:
                    texts.append(await frame.inner_text("body"))
                except Exception:  # a frame without a body (e.g. still blank)
                    continue
            return "\n".join(texts)
        finally:
            await browser.close()


def test_spa_replays_with_its_fetched_posts(tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    with SpaSite(page_count=2) as spa:
        proc = socialark("crawl", "site", spa.base_url, "--scope", "page", "--delay", "0",
                         "--browser", "--collection", "spa", "--scroll-limit", "3",
                         data_dir=data_dir)
        assert proc.returncode == 0, proc.stderr[-3000:]
        home = spa.base_url
    # the live site is gone now: everything below comes from the archive
    with sqlite3.connect(data_dir / "index.db") as conn:
        (ts,) = conn.execute(
            "SELECT timestamp FROM captures WHERE url = ? AND record_type = 'response'", [home]
        ).fetchone()
    db = open_database(data_dir / "index.db")
    with pywb_replay(db, data_dir, free_port()) as server:
        text = asyncio.run(_render_text(f"http://127.0.0.1:{server.port}/spa/{ts}mp_/{home}"))
    first_posts = [post_token("home", 0, i) for i in range(3)]
    missing = [t for t in first_posts if t not in text]
    assert not missing, f"fetch-loaded posts not replayed: {missing}\n{text[:2000]}"
