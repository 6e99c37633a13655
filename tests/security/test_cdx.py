"""Attacks on the CDX server and CLI (issue 14, points 2 and 7), on a real crawled index.

A catastrophic regex filter must not freeze ``socialark serve``; absurd parameters get a 400
with a message (the CLI: exit 2, one line); half-open connections must not pile up threads.
What held before is pinned too: loopback by default, no SQL injection, no path traversal.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from storage.cdx_server import make_server
from tests.conftest import ROOT, socialark
from tests.security._http import Site, html

SLOW_REGEXES = ("(.|.)*#", "(?:.|..)*(?<=#)")  # the first hangs Python's re, the second regex


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("cdx-index")
    long = "/a-long-path-for-a-regex-to-backtrack-over/and-over-again.html"
    pages = {"/": html(f'<a href="/a">a</a> <a href="{long}">b</a>'), "/a": html("<p>a</p>"),
             long: html("<p>b</p>")}
    with Site(pages) as site:
        proc = socialark("crawl", "site", site.base, "--delay", "0", "--ignore-robots",
                         "-s", "ARCHIVE_PROGRESS=off", data_dir=data, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (data / "base.txt").write_text(site.base)
    return data


def _prefix(index_dir: Path) -> str:
    """The crawled site's URLs as a prefix query (``http://127.0.0.1:PORT/*``)."""
    return (index_dir / "base.txt").read_text() + "*"


@pytest.fixture(scope="module")
def serve(index_dir: Path) -> Iterator[str]:
    """``socialark serve`` in a subprocess (default host) with a 2 s query deadline."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "serve", "--port", "0", "--quiet",
         "--query-timeout", "2", "--data-dir", str(index_dir)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "Serving CDX API on http://127.0.0.1:" in line, (line, proc.stderr.read()
                                                                if proc.poll() is not None else "")
        yield line.split(" on ", 1)[1].strip() + "?url=" + quote(_prefix(index_dir))
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # reads the pipes: a full pipe cannot block the exit


def _get(url: str, timeout: float = 60) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_catastrophic_regex_does_not_freeze_serve(serve: str) -> None:
    for pattern in SLOW_REGEXES:
        started = time.monotonic()
        status, body = _get(f"{serve}&filter="
                            + quote("~url:" + pattern))
        assert status in (200, 503), body
        assert time.monotonic() - started < 30, "the regex ran far past the query deadline"
        if status == 503:
            assert "took longer than 2 s" in body
    status, body = _get(f"{serve}&output=json", timeout=30)
    assert status == 200 and body.count("\n") >= 3, "the server no longer answers"


@pytest.mark.parametrize(("query", "needle"), [
    ("limit=99999999999999999999999", "invalid limit"),
    ("limit=-5", "invalid limit"),
    ("limit=%C2%B2", "invalid limit"),
    ("closest=0&sort=closest", "invalid closest"),
    ("closest=0", "invalid closest"),
    ("filter=" + quote("~url:" + "a" * 5000), "longer than"),
    ("filter=" + quote("~url:(unclosed"), "invalid regular expression"),
    ("from=2024-01", "invalid from"),
    ("fields=" + quote("url,evil'--"), "unknown field"),
])
def test_bad_parameters_get_400_with_a_message(serve: str, query: str, needle: str) -> None:
    status, body = _get(f"{serve}&{query}", timeout=30)
    assert status == 400 and needle in body and len(body.strip().splitlines()) == 1, body


def test_what_held_no_injection_no_traversal(serve: str) -> None:
    base, query = serve.split("/cdx?", 1)
    status, body = _get(f"{serve}&collection="
                        + quote("x' OR '1'='1"))
    assert (status, body) == (200, "")
    status, body = _get(f"{base}/..%2F..%2Fetc/cdx?{query}")
    assert (status, body) == (200, "")
    status, body = _get(f"{serve}&filter="
                        + quote("=url:') OR 1=1 --"))
    assert (status, body) == (200, "")


@pytest.mark.parametrize(("args", "needle"), [
    (["--limit", "99999999999999999999999"], "--limit"),
    (["--closest", "0"], "invalid closest"),
    (["--filter", "~url:" + "a" * 5000], "longer than"),
    (["--filter", "~url:" + SLOW_REGEXES[1], "--timeout", "1"], "took longer than 1 s"),
])
def test_cli_bad_values_exit_2_with_one_line(index_dir: Path, args: list[str], needle: str) -> None:
    proc = socialark("cdx", _prefix(index_dir), *args, data_dir=index_dir,
                     timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error")]
    assert len(errors) == 1, proc.stderr


def test_search_limit_out_of_range_exits_2(index_dir: Path) -> None:
    proc = socialark("search", "hello", "--limit", "99999999999999999999999", data_dir=index_dir)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr


def test_half_open_connections_do_not_hold_threads(index_dir: Path) -> None:
    server = make_server(index_dir / "index.db", quiet=True, request_timeout=1.0, max_threads=8)
    assert server.server_address[0] == "127.0.0.1" and server.request_queue_size >= 128
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    baseline = threading.active_count()
    sockets = []
    try:
        for _ in range(300):
            s = socket.create_connection(server.server_address[:2], timeout=5)
            s.sendall(b"GET /cdx?url=127.0.0.1 HTTP/1.1\r\nHost: x")  # never finished
            sockets.append(s)
        time.sleep(0.5)
        assert threading.active_count() <= baseline + 8, "one thread per half-open request"
        deadline = time.monotonic() + 30
        status = 0
        while time.monotonic() < deadline:  # the slow clients time out and free the threads
            status, body = _get(f"{server.url}?url={quote(_prefix(index_dir))}", timeout=10)
            if status == 200:
                break
            assert status == 503 and "busy" in body
            time.sleep(0.2)
        assert status == 200, "half-open connections kept the server busy"
    finally:
        for s in sockets:
            s.close()
        server.shutdown()
        server.server_close()
