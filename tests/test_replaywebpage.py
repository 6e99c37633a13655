"""The exported WACZ opens in ReplayWeb.page (npm ``replaywebpage``) in real Chromium.

As Browsertrix's QA replay does: a loopback server hands out ``ui.js``, ``sw.js`` (at ``/sw.js``
and ``/replay/sw.js``), an embed page with ``<replay-web-page source=... embed="replayonly">``
and the WACZ with HTTP range support; Playwright drives Debian's Chromium (no downloaded
browser) and we look for the captured page's text inside the replay frames.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.cli import main as cli
from storage.cdxj import CaptureFilter
from storage.db import open_database
from storage.wacz import verify_wacz, write_wacz
from tests.replay_helpers import (
    HOST,
    build_archive,
    crawled_core_archive,
    replayable_captures,
    replaywebpage_dir,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
EMBED = """<!doctype html><html><head><meta charset="utf-8"><script src="/ui.js"></script></head>
<body><replay-web-page source="/archive.wacz" url="{url}" ts="{ts}" embed="replayonly"
 replayBase="/replay/" style="width:100%;height:600px;display:block"></replay-web-page></body></html>"""

APP_PAGE = (b'<!doctype html><html><head><meta charset="utf-8"><script src="/ui.js"></script>'
            b"</head><body><replay-app-main></replay-app-main></body></html>")

pytestmark = pytest.mark.browser


def make_handler(files: dict[str, tuple[Path | bytes, str]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path not in files:
                self.send_error(404)
                return
            source, ctype = files[path]
            data = source if isinstance(source, bytes) else source.read_bytes()
            status, start, end = 200, 0, len(data) - 1
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
            if match and data:
                if match.group(1):
                    start = int(match.group(1))
                    end = min(int(match.group(2)), end) if match.group(2) else end
                else:  # suffix range: the last N bytes
                    start = max(0, len(data) - int(match.group(2)))
                status = 206
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            if path.endswith("sw.js"):
                self.send_header("Service-Worker-Allowed", "/")
            self.end_headers()
            self.wfile.write(data[start:end + 1])

        def do_HEAD(self) -> None:
            path = self.path.split("?", 1)[0]
            if path not in files:
                self.send_error(404)
                return
            source, ctype = files[path]
            size = len(source) if isinstance(source, bytes) else source.stat().st_size
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(size))
            self.end_headers()

    return Handler


@contextmanager
def serve(wacz: Path, url: str, ts: str) -> Iterator[str]:
    """Serve ReplayWeb.page + an embed page opening ``url`` at ``ts`` from ``wacz``."""
    rwp = replaywebpage_dir()
    page = EMBED.format(url=html.escape(url), ts=ts).encode()
    files: dict[str, tuple[Path | bytes, str]] = {
        "/": (page, "text/html; charset=utf-8"),
        "/ui.js": (rwp / "ui.js", "application/javascript"),
        "/sw.js": (rwp / "sw.js", "application/javascript"),
        "/replay/sw.js": (rwp / "sw.js", "application/javascript"),
        "/archive.wacz": (wacz, "application/wacz+zip"),
        # The replay frame: normally answered by the service worker; served here too for the
        # first load, before the freshly registered worker controls the page.
        "/replay/": (APP_PAGE, "text/html; charset=utf-8"),
        "/replay/index.html": (APP_PAGE, "text/html; charset=utf-8"),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(files))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def frame_texts(page: object) -> list[str]:
    texts = []
    for frame in page.frames:  # type: ignore[attr-defined]
        try:
            texts.append(frame.evaluate("document.body ? document.body.innerText : ''"))
        except Exception:  # frames navigate and detach while replay loads
            continue
    return texts


def shows_in_replay(embed_url: str, expected: str, captured_url: str) -> list[str]:
    """Open the embed page in Chromium; return the frame URLs once ``expected`` is visible."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian Chromium (/usr/bin/chromium) is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(embed_url)
            for _ in range(120):  # bounded wait for the service worker to load the WACZ
                if any(expected in text for text in frame_texts(page)):
                    break
                page.wait_for_timeout(500)
            urls = [f.url for f in page.frames]
            assert any(expected in text for text in frame_texts(page)), f"not shown; frames: {urls}"
            assert any("mp_/" in u and u.endswith(captured_url) for u in urls), urls
            return urls
        finally:
            browser.close()


def test_wacz_loads_in_replaywebpage(tmp_path: Path) -> None:
    db = build_archive(tmp_path / "data", "test")
    wacz = tmp_path / "archive.wacz"
    write_wacz(db, wacz, CaptureFilter(collection="test"))
    assert verify_wacz(wacz) == []
    with serve(wacz, f"{HOST}/", "20240102030405") as embed:
        shows_in_replay(embed, "Welcome to the archived test site", f"{HOST}/")


def test_crawled_gzip_page_loads_in_replaywebpage(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if "crawl" not in cli.commands:
        pytest.skip("`socialark crawl site` is not part of this build yet")
    data_dir = crawled_core_archive(tmp_path_factory)
    db = open_database(data_dir / "index.db", readonly=True)
    capture = next(c for c in replayable_captures(db) if c["url"].endswith("/enc/gzip.html"))
    with open(capture["path"], "rb") as fh:  # what we captured, decoded as a browser would
        fh.seek(int(capture["offset"]))
        record = next(iter(ArchiveIterator(fh)))
        assert record.http_headers.get_header("Content-Encoding") == "gzip"
        body = record.content_stream().read().decode("utf-8")
    heading = re.search(r"<h1>(.*?)</h1>", body, re.S)
    assert heading
    wacz = tmp_path / "core.wacz"
    write_wacz(db, wacz)
    with serve(wacz, str(capture["url"]), str(capture["timestamp"])) as embed:
        shows_in_replay(embed, html.unescape(heading.group(1)).strip(), str(capture["url"]))
