"""Huge bodies in bounded memory (issue 11 point 5): spooled to disk, written off the reactor,
already-compressed media not deflated again, over-long bodies truncated and kept.

Real crawls of a local media site (``tests/sites/media_site.py``) with the spool threshold
lowered so a 40 MB file goes the spooled way.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from tests.conftest import socialark
from tests.sites.media_site import MediaSite
from tests.warc_checks import closed_warcs, warcio_check

BIG = 40_000_000
SMALL_VIDEO = 300_000
SPOOL = ("-s", "ARCHIVE_SPOOL_THRESHOLD=1000000")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaSite]:
    files = {"big.mp4": BIG, "small.mp4": SMALL_VIDEO}
    with MediaSite(tmp_path_factory.mktemp("media-files"), files) as s:
        yield s


def _b32(raw: bytes) -> str:
    return "sha256:" + base64.b32encode(raw).decode()


def _responses(data_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """url -> records (type, headers, payload sha256 + length, block digest, offset, file)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in closed_warcs(data_dir):
        with open(path, "rb") as fh:
            it = ArchiveIterator(fh)
            for rec in it:
                if rec.rec_type not in ("response", "revisit"):
                    continue
                h, n = hashlib.sha256(), 0
                stream = rec.content_stream() if rec.rec_type == "response" else None
                while stream is not None and (chunk := stream.read(1 << 20)):
                    h.update(chunk)
                    n += len(chunk)
                it.read_to_end()
                out.setdefault(rec.rec_headers.get_header("WARC-Target-URI"), []).append({
                    "type": rec.rec_type, "headers": dict(rec.rec_headers.headers),
                    "http": rec.http_headers, "sha256": h.hexdigest(), "payload": h.digest(),
                    "length": n, "offset": it.get_record_offset(), "member": it.get_record_length(),
                    "file": path,
                })
    return out


def _rows(data_dir: Path, url: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(data_dir / "index.db")
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM captures WHERE url = ? ORDER BY id", [url]).fetchall()
    finally:
        db.close()


def _crawl(site: MediaSite, data_dir: Path, *extra: str, url: str | None = None) -> None:
    proc = socialark("crawl", "site", url or site.base_url + "/", "--scope", "host", "--delay", "0",
                     "--ignore-robots", *SPOOL, *extra, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]


def _first_deflate_block_type(member: bytes) -> int:
    """BTYPE of the first deflate block of a gzip member (0 stored, 1 fixed, 2 dynamic)."""
    assert member[:3] == b"\x1f\x8b\x08"
    flags, pos = member[3], 10
    if flags & 4:  # FEXTRA
        pos += 2 + int.from_bytes(member[pos:pos + 2], "little")
    for bit in (8, 16):  # FNAME, FCOMMENT
        if flags & bit:
            pos = member.index(b"\0", pos) + 1
    if flags & 2:  # FHCRC
        pos += 2
    return (member[pos] >> 1) & 3


@pytest.fixture(scope="module")
def crawled(site: MediaSite, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("large-crawl")
    _crawl(site, data_dir)
    return data_dir


def _full_and_revisit(site: MediaSite, recs: dict[str, list[dict[str, Any]]]) -> tuple[str, str]:
    """The site links big.mp4 under two URLs, fetched at once: either may be the full record."""
    urls = [site.url("big.mp4"), site.url("big.mp4", "copy")]
    types = {u: [r["type"] for r in recs[u]] for u in urls}
    assert sorted(types.values()) == [["response"], ["revisit"]], types
    full = next(u for u in urls if types[u] == ["response"])
    return full, next(u for u in urls if u != full)


def test_spooled_record_holds_the_served_bytes(site: MediaSite, crawled: Path) -> None:
    url, _ = _full_and_revisit(site, _responses(crawled))
    (rec,) = _responses(crawled)[url]
    assert rec["length"] == BIG
    assert rec["sha256"] == site.sha256["big.mp4"]
    assert rec["headers"]["WARC-Payload-Digest"] == _b32(rec["payload"])
    assert "WARC-Truncated" not in rec["headers"]
    assert rec["http"].get_header("Content-Type") == "video/mp4"
    # Written by a side writer (its own file), not the main one.
    assert int(rec["file"].name.split("-")[2]) >= 50000

    proc = warcio_check(closed_warcs(crawled))
    assert proc.returncode == 0, proc.stdout + proc.stderr

    (row,) = _rows(crawled, url)
    assert (row["record_type"], row["status"], row["mime"]) == ("response", 200, "video/mp4")
    assert row["digest"] == rec["headers"]["WARC-Payload-Digest"]
    assert (row["filename"], row["offset"], row["length"]) == (rec["file"].name, rec["offset"], rec["member"])

    db = sqlite3.connect(crawled / "index.db")
    states = dict(db.execute("SELECT name, state FROM warc_files").fetchall())
    db.close()
    assert states[rec["file"].name] == "closed"
    assert (crawled / "spool").is_dir()
    assert not list((crawled / "spool").rglob("*.spool")), "spool files must be deleted"


def test_same_payload_under_another_url_is_a_revisit(site: MediaSite, crawled: Path) -> None:
    recs = _responses(crawled)
    full, other = _full_and_revisit(site, recs)
    (copy,), (orig,) = recs[other], recs[full]
    assert copy["headers"]["WARC-Payload-Digest"] == orig["headers"]["WARC-Payload-Digest"]
    assert copy["headers"]["WARC-Refers-To-Target-URI"] == full
    assert copy["member"] < 10_000
    (row,) = _rows(crawled, other)
    assert row["record_type"] == "revisit"


def test_revisit_in_a_later_crawl(site: MediaSite, crawled: Path, tmp_path: Path) -> None:
    """A second crawl of the same large file into the collection deduplicates against the first."""
    data_dir = tmp_path / "data"
    for _ in range(2):
        _crawl(site, data_dir, "--scope", "page", url=site.url("big.mp4"))
    rows = _rows(data_dir, site.url("big.mp4"))
    assert [r["record_type"] for r in rows] == ["response", "revisit"]
    assert rows[0]["digest"] == rows[1]["digest"]
    assert warcio_check(closed_warcs(data_dir)).returncode == 0


def test_already_compressed_media_is_stored_not_deflated(site: MediaSite, crawled: Path) -> None:
    recs = _responses(crawled)
    for name in ("big.mp4", "small.mp4"):  # spooled (side writer) and in memory (main writer)
        (rec,) = [r for kind in ("media", "copy") for r in recs[site.url(name, kind)]
                  if r["type"] == "response"]
        with open(rec["file"], "rb") as fh:
            fh.seek(rec["offset"])
            member = fh.read(rec["member"])
        assert _first_deflate_block_type(member) == 0, name
        assert rec["member"] < site.sizes[name] * 1.001 + 4096
        text = zlib.decompressobj(31).decompress(member)
        assert text.startswith(b"WARC/1.1\r\n") and text.endswith(b"\r\n\r\n")
    (page,) = recs[site.base_url + "/"]
    with open(page["file"], "rb") as fh:
        fh.seek(page["offset"])
        assert _first_deflate_block_type(fh.read(page["member"])) != 0


def test_body_over_max_record_size_is_kept_truncated(site: MediaSite, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    limit = 5_000_000
    _crawl(site, data_dir, "--scope", "page", "--max-record-size", "5MB", url=site.url("big.mp4"))
    (rec,) = _responses(data_dir)[site.url("big.mp4")]
    assert rec["headers"]["WARC-Truncated"] == "length"
    assert rec["length"] == limit
    with open(site.directory / "big.mp4", "rb") as fh:
        kept = fh.read(limit)
    assert rec["sha256"] == hashlib.sha256(kept).hexdigest()
    assert rec["headers"]["WARC-Payload-Digest"] == _b32(hashlib.sha256(kept).digest())
    (row,) = _rows(data_dir, site.url("big.mp4"))
    assert row["record_type"] == "response" and row["digest"] == rec["headers"]["WARC-Payload-Digest"]
    proc = warcio_check(closed_warcs(data_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_chunked_body_is_spooled_de_chunked(site: MediaSite, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _crawl(site, data_dir, "--scope", "page", url=site.url("big.mp4", "chunked"))
    (rec,) = _responses(data_dir)[site.url("big.mp4", "chunked")]
    assert rec["sha256"] == site.sha256["big.mp4"]
    assert rec["http"].get_header("X-Archive-Orig-Transfer-Encoding") == "chunked"
    proc = warcio_check(closed_warcs(data_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_large_page_is_still_parsed_for_links(site: MediaSite, tmp_path: Path) -> None:
    """Spooled text (under ARCHIVE_SPOOL_TEXT_MAX) reaches the callback: the link at the end of a
    2 MB page is followed, and the page's record holds all of it."""
    data_dir = tmp_path / "data"
    _crawl(site, data_dir, url=site.base_url + "/big-page")
    recs = _responses(data_dir)
    (page,) = recs[site.base_url + "/big-page"]
    assert page["sha256"] == hashlib.sha256(site.big_page()).hexdigest()
    first = next(iter(site.sizes))
    assert [r["type"] for r in recs[site.url(first)]] == ["response"]


def test_a_spool_write_failure_stops_the_crawl_and_resume_archives_the_file(
    site: MediaSite, tmp_path: Path,
) -> None:
    """EFBIG while spooling a 40 MB body (RLIMIT_FSIZE 20 MB): one error line, exit 1, the
    URL stays queued; --resume without the limit archives the whole file."""
    import os
    import resource
    import subprocess
    import sys

    from tests.conftest import FAST_RETRY, ROOT

    data_dir = tmp_path / "archive"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000_000, 20_000_000))

    cmd = [sys.executable, "-m", "crawler.cli", "crawl", "site", site.base_url + "/", "--scope",
           "host", "--delay", "0", "--ignore-robots", *SPOOL, *FAST_RETRY,
           "--data-dir", str(data_dir)]
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    errors = [line for line in proc.stderr.splitlines() if " ERROR: " in line]
    assert len(errors) == 1 and "File too large" in errors[0] and "spool" in errors[0], errors
    urls = (site.url("big.mp4"), site.url("big.mp4", "copy"))  # one payload, two URLs
    assert not set(urls) & set(_responses(data_dir))
    assert not list((data_dir / "spool").rglob("*.spool*")), "the broken spool file is gone"

    _crawl(site, data_dir, "--resume")
    records = _responses(data_dir)
    (rec,) = [r for u in urls for r in records.get(u, []) if r["type"] == "response"]
    assert rec["sha256"] == site.sha256["big.mp4"]
    assert all(u in records for u in urls)  # the other URL is a revisit of it
    check = warcio_check(closed_warcs(data_dir))
    assert check.returncode == 0, check.stdout + check.stderr
