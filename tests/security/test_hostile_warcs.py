"""Hostile WARC files given to ``socialark index`` (issue 14, point 5).

Each file is generated here, byte by byte: a 5,000-digit ``Content-Length``, a non-ASCII digit
``Content-Length: ²``, a gzip member inflating to 512 MiB, and a 3 KB record whose gzip
``Content-Encoding`` body inflates to 512 MiB on a URL post extraction reads. Every bad record
is reported, the good records around it are indexed, no traceback, memory stays bounded.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
import zlib
from pathlib import Path

from tests.conftest import ROOT

BOMB = 512 * 1024 * 1024
MAX_RSS_KB = 400 * 1024  # generous: the old code held the inflated bytes (> 1 GB)


def _record(url: str, body: bytes, *, length: str | None = None,
            headers: bytes = b"Content-Type: text/html\r\n") -> bytes:
    http = b"HTTP/1.1 200 OK\r\n" + headers + b"\r\n" + body
    head = (
        "WARC/1.1\r\nWARC-Type: response\r\n"
        f"WARC-Record-ID: <urn:uuid:{uuid.uuid4()}>\r\n"
        "WARC-Date: 2024-05-01T10:00:00Z\r\n"
        f"WARC-Target-URI: {url}\r\n"
        "Content-Type: application/http; msgtype=response\r\n"
        f"Content-Length: {length if length is not None else len(http)}\r\n\r\n"
    ).encode()
    return head + http + b"\r\n\r\n"


def _gzip(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def _gzip_zeros_after(prefix: bytes, size: int) -> bytes:
    """One gzip member: ``prefix`` then ``size`` zero bytes (streamed, never in memory)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [c.compress(prefix)]
    chunk = bytes(16 * 1024 * 1024)
    for _ in range(size // len(chunk)):
        parts.append(c.compress(chunk))
    parts.append(c.flush())
    return b"".join(parts)


def _index(data_dir: Path, *paths: Path) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run ``socialark index`` in a fresh parent so its peak RSS (KB) is its own."""
    probe = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(p.stdout); sys.stderr.write(p.stderr)\n"
        "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(p.returncode)\n"
    )
    cmd = [sys.executable, "-c", probe, sys.executable, "-m", "crawler.cli", "index",
           *map(str, paths), "--collection", "hostile", "--data-dir", str(data_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    rss = int(proc.stdout.rsplit("MAXRSS", 1)[1].split()[0])
    return proc, rss


def _urls(data_dir: Path) -> set[str]:
    conn = sqlite3.connect(data_dir / "index.db")
    try:
        return {u for (u,) in conn.execute("SELECT url FROM captures")}
    finally:
        conn.close()


def test_absurd_content_lengths_are_reported_per_record(tmp_path: Path) -> None:
    path = tmp_path / "lengths.warc.gz"
    path.write_bytes(
        _gzip(_record("http://example.org/before", b"<p>ok</p>"))
        + _gzip(_record("http://example.org/huge", b"x", length="9" * 5000))
        + _gzip(_record("http://example.org/super", b"x", length="\u00b2"))
        + _gzip(_record("http://example.org/after", b"<p>ok</p>"))
    )
    proc, _ = _index(tmp_path / "data", path)
    # Damaged records: the rest is indexed and the command says so with exit 1 (docs/import.md).
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    skipped = [ln for ln in proc.stderr.splitlines() if ln.startswith("corrupt record skipped")]
    assert len(skipped) == 2 and all("Content-Length" in ln for ln in skipped), proc.stderr
    assert _urls(tmp_path / "data") == {"http://example.org/before", "http://example.org/after"}


def test_gzip_member_bomb_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    bomb_head = _record("http://example.org/bomb", b"", length=str(BOMB + 100))[:-4]
    path = tmp_path / "bomb.warc.gz"
    path.write_bytes(
        _gzip(_record("http://example.org/before", b"<p>ok</p>"))
        + _gzip_zeros_after(bomb_head, BOMB)
        + _gzip(_record("http://example.org/after", b"<p>ok</p>"))
    )
    assert path.stat().st_size < 1024 * 1024
    proc, rss = _index(tmp_path / "data", path)
    assert proc.returncode == 1, proc.stderr[-3000:]  # a skipped record: finished with errors
    assert "compression bomb" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert _urls(tmp_path / "data") == {"http://example.org/before", "http://example.org/after"}
    assert rss < MAX_RSS_KB, f"index peaked at {rss // 1024} MB on a {path.stat().st_size} B file"


def test_content_encoding_bomb_is_not_inflated_for_extraction(tmp_path: Path) -> None:
    body = _gzip_zeros_after(b"", BOMB)  # ~0.5 MB on the wire, 512 MiB decoded
    url = "https://mastodon.example/api/v1/statuses/1"
    record = _record(url, body, headers=b"Content-Type: application/json\r\n"
                                        b"Content-Encoding: gzip\r\n")
    path = tmp_path / "ce-bomb.warc.gz"
    path.write_bytes(_gzip(record) + _gzip(_record("http://example.org/after", b"<p>ok</p>")))
    assert path.stat().st_size < 64 * 1024
    proc, rss = _index(tmp_path / "data", path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert _urls(tmp_path / "data") == {url, "http://example.org/after"}  # indexed, not decoded
    assert rss < MAX_RSS_KB, f"index peaked at {rss // 1024} MB decoding a {len(body)} B body"
