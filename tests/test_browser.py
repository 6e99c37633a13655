"""Browser capture (``crawl site --browser``): real Chromium, the SPA fixture, the real CLI.

Needs Playwright and a Chromium (Debian's /usr/bin/chromium or ``playwright install chromium``);
skipped when there is none.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, socialark
from tests.sites.spa_site import POSTS_PER_PAGE, TOTAL_PAGES, SpaSite, post_token
from tests.warc_checks import Rec, closed_warcs, field_problems, read_records, warcio_check

pytest.importorskip("playwright.async_api")


def _no_browser() -> str | None:
    from crawler.browser.config import browser_problem

    return browser_problem(None)


pytestmark = pytest.mark.skipif(_no_browser() is not None, reason="no Chromium for Playwright")

BEHAVIOR_JS = "() => fetch('/api/posts?page=behavior&cursor=0').then(r => r.text())"


# --------------------------------------------------------------------------------- helpers


def _records(data_dir: Path) -> list[Rec]:
    warcs = closed_warcs(data_dir)
    assert warcs, "no closed WARC"
    return [r for path in warcs for r in read_records(path)]


def _stats(data_dir: Path) -> dict[str, Any]:
    with sqlite3.connect(data_dir / "index.db") as conn:
        (raw,) = conn.execute("SELECT stats FROM crawls ORDER BY rowid DESC LIMIT 1").fetchone()
    return json.loads(raw)


def _pages(data_dir: Path) -> dict[str, tuple[str, str]]:
    with sqlite3.connect(data_dir / "index.db") as conn:
        return {u: (t, x) for u, t, x in conn.execute("SELECT url, title, text FROM pages")}


def _header(rec: Rec, name: str) -> str | None:
    return next((v for k, v in rec.http_headers if k.lower() == name.lower()), None)


def _responses(records: list[Rec], url: str) -> list[Rec]:
    return [r for r in records if r.type == "response" and r.headers.get("WARC-Target-URI") == url]


def _check_png(data: bytes) -> tuple[int, int]:
    """Parse a PNG completely (signature, chunk CRCs, IHDR, inflated IDAT size)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    idat = b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks[kind] = body
        if kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert b"IEND" in chunks
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    channels = {2: 3, 6: 4, 0: 1, 4: 2}[color]
    assert len(zlib.decompress(idat)) == height * (1 + width * channels * depth // 8)
    return width, height


# -------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def spa() -> Iterator[SpaSite]:
    with SpaSite(page_count=3) as site:
        yield site


@pytest.fixture(scope="module")
def spa_crawl(spa: SpaSite, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One browser crawl of the SPA home and the pages linked from its rendered DOM."""
    data_dir = tmp_path_factory.mktemp("spa-crawl")
    script = data_dir.parent / "behavior.js"
    script.write_text(BEHAVIOR_JS)
    proc = socialark(
        "crawl", "site", spa.base_url, "--scope", "host", "--delay", "0", "--browser",
        "--browser-concurrency", "2", "--load-more", "#load-more", "--behavior-script", str(script),
        "--page-timeout", "60s", data_dir=data_dir,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return data_dir


# ----------------------------------------------------------------------------------- tests


def test_every_api_page_up_to_the_last_cursor_is_archived_decoded(spa: SpaSite, spa_crawl: Path) -> None:
    records = _records(spa_crawl)
    for cursor in range(TOTAL_PAGES):  # pages 7.. need the "load more" button, 1..6 the scroll
        (rec,) = _responses(records, spa.api_url("home", cursor))
        assert rec.http_status_line == "HTTP/1.1 200 OK"
        assert rec.payload == spa.api_body("home", cursor)  # decoded by the browser...
        # ...so the head says so: the coding is renamed, the length is the stored body's.
        assert _header(rec, "X-Archive-Orig-Content-Encoding") == "gzip"
        assert _header(rec, "Content-Encoding") is None
        assert _header(rec, "Content-Length") == str(len(rec.payload))
    assert not _responses(records, spa.api_url("home", TOTAL_PAGES))  # nothing past the last


def test_images_font_css_background_and_behavior_script_requests(spa: SpaSite, spa_crawl: Path) -> None:
    records = _records(spa_crawl)
    captured = {r.headers.get("WARC-Target-URI") for r in records if r.type in ("response", "revisit")}
    missing = spa.image_urls("home") - captured  # lazy data-src, data-srcset 2x, CSS background
    assert not missing, sorted(missing)[:10]
    (font,) = _responses(records, spa.url("/fonts/site.woff2"))
    assert font.payload == spa.font()
    assert spa.url("/api/posts?page=behavior&cursor=0") in captured


def test_post_fetch_is_archived_with_its_body(spa: SpaSite, spa_crawl: Path) -> None:
    records = _records(spa_crawl)
    posts = [r for r in records if r.type == "request" and r.http_status_line
             and r.http_status_line.startswith("POST /api/track ")]
    bodies = [json.loads(r.payload) for r in posts]
    assert {"event": "view", "page": "home"} in bodies
    assert len(posts) == len(spa.posts)  # every POST the server received, once
    ids = {r.headers["WARC-Record-ID"]: r for r in records}
    for req in posts:
        assert ids[req.headers["WARC-Concurrent-To"]].type in ("response", "revisit")


def test_partial_media_is_refetched_whole(spa: SpaSite, spa_crawl: Path) -> None:
    records = _records(spa_crawl)
    video = _responses(records, spa.url("/media/clip.mp4"))
    assert [r.http_status_line.split(" ")[1] for r in video if r.http_status_line] == ["200"]
    assert video[0].payload == spa.video()
    assert not [r for r in records if r.type == "response" and r.http_status_line
                and " 206 " in r.http_status_line]


def test_records_pass_warcio_check_and_field_rules(spa_crawl: Path) -> None:
    warcs = closed_warcs(spa_crawl)
    check = warcio_check(warcs)
    assert check.returncode == 0, check.stdout + check.stderr
    for path in warcs:
        assert field_problems(read_records(path)) == []


def test_screenshot_resource_is_a_valid_png(spa: SpaSite, spa_crawl: Path) -> None:
    records = _records(spa_crawl)
    shots = {r.headers["WARC-Target-URI"]: r for r in records if r.type == "resource"}
    shot = shots[f"urn:screenshot:{spa.base_url}"]
    assert shot.headers["Content-Type"] == "image/png"
    width, height = _check_png(shot.payload)
    assert (width, height) == (1280, 800)
    assert f"urn:screenshot:{spa.url('/p/1')}" in shots


def test_rendered_dom_is_never_a_response(spa: SpaSite, spa_crawl: Path) -> None:
    records = _records(spa_crawl)
    (home,) = _responses(records, spa.base_url)
    assert home.payload == spa.shell("home")  # the document as served, not as rendered
    for r in records:
        if r.type in ("response", "revisit", "resource"):
            assert b'<div class="post">' not in r.payload, r.headers.get("WARC-Target-URI")


def test_pages_table_has_the_text_of_all_posts_and_is_searchable(spa: SpaSite, spa_crawl: Path) -> None:
    pages = _pages(spa_crawl)
    title, text = pages[spa.base_url]
    assert title == "SPA Home"
    tokens = [post_token("home", c, i) for c in range(TOTAL_PAGES) for i in range(POSTS_PER_PAGE)]
    assert [t for t in tokens if t not in text] == []
    with sqlite3.connect(spa_crawl / "index.db") as conn:
        hits = conn.execute(
            "SELECT pages.url FROM pages_fts JOIN pages ON pages.id = pages_fts.rowid "
            "WHERE pages_fts MATCH ?", [post_token("home", TOTAL_PAGES - 1, 4)]).fetchall()
    assert hits == [(spa.base_url,)]


def test_links_in_the_rendered_dom_are_followed(spa: SpaSite, spa_crawl: Path) -> None:
    pages = _pages(spa_crawl)
    # /p/<n> links exist only after app.js ran; /p/3 is two hops away.
    assert {spa.url(f"/p/{n}") for n in (1, 2, 3)} <= set(pages)
    assert post_token("3", 1, 4) in pages[spa.url("/p/3")][1]


def test_long_crawl_recycles_contexts_and_closes_pages(tmp_path: Path) -> None:
    with SpaSite(page_count=24) as site:
        proc = socialark(
            "crawl", "site", site.base_url, "--scope", "host", "--delay", "0", "--browser",
            "--browser-concurrency", "3", "-s", "ARCHIVE_BROWSER_RECYCLE_PAGES=5",
            "-s", "ARCHIVE_BROWSER_IDLE_TIME=0.2", data_dir=tmp_path,
        )
    assert proc.returncode == 0, proc.stderr[-4000:]
    stats = _stats(tmp_path)
    pages = 24 + 1  # /p/1../p/24 and the home page
    assert stats["browser/pages"] == pages
    assert stats["browser/contexts"] >= pages // 5
    assert stats["browser/contexts_recycled"] == stats["browser/contexts"] - 1
    assert stats["browser/pages_open_max"] <= 3
    assert stats["browser/launches"] == 1
    assert len(_pages(tmp_path)) == pages


def test_hung_page_restarts_the_browser_and_the_crawl_goes_on(tmp_path: Path) -> None:
    with SpaSite(page_count=1) as site:
        proc = socialark(
            "crawl", "site", site.url("/hang"), site.url("/p/1"), "--scope", "page", "--delay", "0",
            "--browser", "--browser-concurrency", "1", "--page-timeout", "3s", data_dir=tmp_path,
        )
    assert proc.returncode == 1, proc.stderr[-4000:]  # finished, with the hung page as error
    assert "Browser hung on " + site.url("/hang") in proc.stderr
    assert "Traceback" not in proc.stdout
    stats = _stats(tmp_path)
    assert stats["browser/restarts"] >= 1
    assert stats["browser/launches"] >= 2
    # /hang fails; on a loaded machine /p/1 may also miss the 3 s budget once and be retried.
    assert stats["browser/pages_failed"] >= 1
    assert set(_pages(tmp_path)) == {site.url("/p/1")}


@pytest.mark.parametrize(("args", "message"), [
    (["-s", "ARCHIVE_BROWSER_EXECUTABLE=/nonexistent/chrome"], "/nonexistent/chrome not found"),
    (["--page-timeout", "0"], "at least 1s"),
    (["--behavior-script", "/nonexistent/behavior.js"], "does not exist"),
    (["--browser-concurrency", "0"], "--browser-concurrency"),
])
def test_browser_option_mistakes_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    proc = socialark("crawl", "site", "http://127.0.0.1:9/", "--browser", *args, data_dir=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def _browser_pid(root: int) -> int | None:
    """The main Chromium process under ``root`` (the one launched with a remote debugging pipe)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"--remote-debugging-pipe" in cmdline:
            return pid
        stack.extend(children.get(pid, []))
    return None


def test_killed_browser_is_restarted_and_the_page_retried(tmp_path: Path) -> None:
    with SpaSite(page_count=8) as site:
        cmd = [sys.executable, "-m", "crawler.cli", "crawl", "site", site.base_url, "--scope", "host",
               "--delay", "0", "--browser", "--browser-concurrency", "1", "--data-dir", str(tmp_path)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            pid = None
            for _ in range(300):  # until the browser runs and has rendered a page
                pid = _browser_pid(proc.pid)
                if pid and site.posts:
                    break
                time.sleep(0.1)
            assert pid, "no browser process appeared"
            os.kill(pid, signal.SIGKILL)  # the browser this test's crawl started
            _, stderr = proc.communicate(timeout=240)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, stderr[-4000:]
    stats = _stats(tmp_path)
    assert stats["browser/launches"] >= 2
    assert stats["browser/restarts"] >= 1
    assert stats.get("browser/pages_failed", 0) == 0
    assert len(_pages(tmp_path)) == 9  # "/" and /p/1../p/8, the interrupted page included
