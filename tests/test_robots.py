"""Every request that reaches a new host while its robots.txt is on the way obeys it.

Scrapy 2.19's robots.txt middleware hands the parser to the first waiting request only (the
others got ``None``: "everything allowed"; crawler/middlewares/robots.py). A real crawl of a
loopback server whose robots.txt is slow to answer, with several seeds on the host at once:
the server must never be asked for a disallowed path.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import socialark

ROBOTS = b"User-agent: *\nDisallow: /private/\n"
ROBOTS_DELAY = 0.8  # seconds: every seed is waiting for robots.txt when it arrives


class SlowRobotsSite:
    def __init__(self) -> None:
        self.paths: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.paths.append(self.path)
                if self.path == "/robots.txt":
                    time.sleep(ROBOTS_DELAY)
                    body, ctype = ROBOTS, "text/plain"
                else:
                    body = f"<html><body><p>{self.path}</p></body></html>".encode()
                    ctype = "text/html"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[SlowRobotsSite]:
    s = SlowRobotsSite()
    try:
        yield s
    finally:
        s.close()


def test_requests_waiting_for_robots_txt_all_obey_it(site: SlowRobotsSite, tmp_path: Path) -> None:
    seeds = [f"{site.base}/public/{n}.html" for n in range(4)]
    seeds += [f"{site.base}/private/{n}.html" for n in range(4)]
    proc = socialark("crawl", "site", *seeds, "--scope", "page", "--delay", "0",
                     data_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    asked = [p for p in site.paths if p != "/robots.txt"]
    assert sorted(asked) == [f"/public/{n}.html" for n in range(4)], site.paths
    with sqlite3.connect(tmp_path / "index.db") as db:
        urls = {u for (u,) in db.execute("SELECT url FROM captures WHERE record_type = 'response'")}
    assert urls == {f"{site.base}/robots.txt", *seeds[:4]}


def test_ignore_robots_still_fetches_everything(site: SlowRobotsSite, tmp_path: Path) -> None:
    seeds = [f"{site.base}/private/{n}.html" for n in range(3)]
    proc = socialark("crawl", "site", *seeds, "--scope", "page", "--delay", "0",
                     "--ignore-robots", data_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p for p in site.paths if p != "/robots.txt") == [
        f"/private/{n}.html" for n in range(3)]
