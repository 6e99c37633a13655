"""A hostile site against the crawler's memory (issue 14, point 6): real crawls, real sockets.

An endless chunked body and a 0.5 MB gzip bomb (512 MiB decoded) must not take the crawler's
memory: the endless body is spooled and truncated at ``--max-record-size``, the bomb is decoded
no further than ``DOWNLOAD_MAXSIZE``. Many large bodies in flight at once stay within
``ARCHIVE_MEMORY_BUDGET`` (the rest is spooled to disk).
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
import sys
import time
import zlib
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.conftest import ROOT
from tests.security._http import Site, html

BOMB = 512 * 1024 * 1024
MAX_RSS_KB = 450 * 1024  # generous; the old code decoded the bomb in memory (> 1 GB)


def _gzip_zeros(size: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(16 * 1024 * 1024)
    return b"".join([*(c.compress(chunk) for _ in range(size // len(chunk))), c.flush()])


def _endless(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"%x\r\n%s\r\n" % (65536, b"z" * 65536)
    try:
        while True:
            handler.wfile.write(chunk)
    except OSError:
        handler.close_connection = True


def _crawl(base: str, data_dir: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """``socialark crawl site`` under a parent that reports the crawl's own peak RSS (KB)."""
    probe = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(p.stdout); sys.stderr.write(p.stderr)\n"
        "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(p.returncode)\n"
    )
    cmd = [sys.executable, "-c", probe, sys.executable, "-m", "crawler.cli", "crawl", "site",
           base, "--delay", "0", "--ignore-robots", "--data-dir", str(data_dir),
           "-s", "ARCHIVE_PROGRESS=off", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return proc, int(proc.stdout.rsplit("MAXRSS", 1)[1].split()[0])


def _responses(data_dir: Path) -> dict[str, str]:
    """Response URL -> its WARC-Truncated value ('' when whole), from every WARC."""
    out: dict[str, str] = {}
    for path in sorted((data_dir / "warcs").rglob("*.warc.gz")):
        with gzip.open(path, "rb") as fh:
            data = fh.read()
        for block in data.split(b"WARC/1.1\r\n")[1:]:
            head = block.split(b"\r\n\r\n", 1)[0].decode("latin-1")
            fields = dict(ln.split(": ", 1) for ln in head.splitlines() if ": " in ln)
            if fields.get("WARC-Type") == "response":
                out[fields["WARC-Target-URI"]] = fields.get("WARC-Truncated", "")
    return out


def _stats(data_dir: Path) -> dict[str, object]:
    conn = sqlite3.connect(data_dir / "index.db")
    try:
        (stats,) = conn.execute("SELECT stats FROM crawls").fetchone()
    finally:
        conn.close()
    return json.loads(stats)


def test_endless_body_and_gzip_bomb_keep_memory_bounded(tmp_path: Path) -> None:
    bomb = _gzip_zeros(BOMB)
    routes = {
        "/": html('<a href="/endless">e</a> <a href="/bomb.html">b</a>'),
        "/bomb.html": (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, bomb),
    }
    with Site(routes, handlers={"/endless": _endless}) as site:
        proc, rss = _crawl(site.base, tmp_path / "data", "--max-record-size", "24MB")
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    responses = _responses(tmp_path / "data")
    assert responses.get(site.base + "endless") == "length", responses
    assert site.base + "bomb.html" in responses  # the wire bytes are archived, not decoded
    assert rss < MAX_RSS_KB, f"the crawler peaked at {rss // 1024} MB"


def test_bodies_in_flight_stay_within_the_memory_budget(tmp_path: Path) -> None:
    size, count = 6 * 1024 * 1024, 10

    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        fill = handler.path[-1:].encode()  # distinct bodies: no revisit records
        for _ in range(size // (256 * 1024)):  # slowly: every download is in flight at once
            handler.wfile.write(fill * (256 * 1024))
            time.sleep(0.02)

    links = " ".join(f'<a href="/big{i}">{i}</a>' for i in range(count))
    handlers = {f"/big{i}": trickle for i in range(count)}
    with Site({"/": html(links)}, handlers=handlers) as site:
        proc, _ = _crawl(site.base, tmp_path / "data", "--concurrency", str(count),
                         "-s", f"ARCHIVE_MEMORY_BUDGET={8 * 1024 * 1024}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = _stats(tmp_path / "data")
    peak = int(stats["archive/memory/peak_buffered_bytes"])  # type: ignore[call-overload]
    assert 0 < peak <= 8 * 1024 * 1024, stats
    assert int(stats["archive/memory/spooled_over_budget"]) > 0, stats  # type: ignore[call-overload]
    responses = _responses(tmp_path / "data")
    assert all(responses.get(f"{site.base}big{i}") == "" for i in range(count)), responses
