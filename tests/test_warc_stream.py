"""Streamed records (storage only, no Scrapy): a block from a spool file, digests taken while
the body arrived, a failed write cut back (real EFBIG from RLIMIT_FSIZE), media gzip levels."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from storage.exchange import HttpExchange
from storage.media import is_precompressed
from storage.recorder import ArchiveRecorder, RecorderConfig
from storage.records import HttpHead, digest_of, warc_date
from storage.spool import BodySpool
from storage.spooled import index_spooled, plan_spooled, write_spooled
from storage.warc import scan_members
from storage.warc_stream import StreamingWarcWriter
from tests.conftest import ROOT
from tests.warc_checks import read_records, warcio_check

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nTransfer-Encoding: chunked"


def _exchange(url: str) -> HttpExchange:
    return HttpExchange(
        url=url, date=warc_date(datetime(2024, 5, 6, tzinfo=UTC)),
        request_head=HttpHead.parse(b"GET /v.mp4 HTTP/1.1\r\nHost: example.test"), request_body=b"",
        response_head=HttpHead.parse(HEAD), response_body=b"", ip_address="127.0.0.1",
    )


def _spool(directory: Path, data: bytes, prefix: bytes, limit: int = 0) -> BodySpool:
    spool = BodySpool(directory, block_prefix=prefix, limit=limit)
    for i in range(0, len(data), 7000):
        spool.write(data[i:i + 7000])
    return spool


def test_streamed_record_round_trips_with_right_digests(tmp_path: Path) -> None:
    rec = ArchiveRecorder(RecorderConfig(data_dir=tmp_path, collection="c", crawl_id="t",
                                         media_gzip_level=0))
    writer = StreamingWarcWriter(rec.config.warc_dir, first_serial=50000, media_gzip_level=0)
    bodies = [os.urandom(300_000), os.urandom(300_000)]
    stored_head = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nX-Archive-Orig-Transfer-Encoding: chunked\r\n\r\n"
    # The second spool was started with a head that is not the stored one: its block digest is
    # taken again from disk before writing.
    for n, prefix in enumerate((stored_head, b"HTTP/1.1 200 OK\r\n\r\n")):
        spooled = _spool(tmp_path / "spool", bodies[n], prefix).finish()
        plan = plan_spooled(rec, _exchange(f"http://example.test/{n}.mp4"), spooled)
        assert plan.digest_stale == (n == 1)
        written = write_spooled(writer, plan)
        index_spooled(rec, plan, written)
        spooled.discard()
    writer.close()
    rec.close()
    (path,) = rec.config.warc_dir.glob("*-50000-*.warc.gz")
    assert warcio_check([path]).returncode == 0
    records = [r for r in read_records(path) if r.type == "response"]
    assert [r.payload for r in records] == bodies
    assert [r.headers["WARC-Payload-Digest"] for r in records] == [digest_of(b) for b in bodies]
    assert [r.raw_http_block for r in records] == [stored_head + b for b in bodies]
    assert not list((tmp_path / "spool").iterdir())


def test_spool_keeps_up_to_the_limit_and_says_truncated(tmp_path: Path) -> None:
    data = os.urandom(50_000)
    spooled = _spool(tmp_path, data, b"H\r\n\r\n", limit=20_000).finish()
    assert (spooled.length, spooled.received, spooled.truncated) == (20_000, 50_000, True)
    assert spooled.path.read_bytes() == data[:20_000]
    assert spooled.payload_digest == digest_of(data[:20_000])
    assert spooled.block_digest == digest_of(b"H\r\n\r\n" + data[:20_000])


SCRIPT = textwrap.dedent("""
    import os, resource, sys
    from pathlib import Path
    from storage.errors import ArchiveWriteError
    from storage.records import Record
    from storage.warc_stream import StreamedRecord, StreamingWarcWriter

    out = Path(sys.argv[1])
    body = out / "body.bin"
    body.write_bytes(os.urandom(1_000_000))
    w = StreamingWarcWriter(out / "warcs", gzip_level=0)

    def streamed(n):
        rec = Record("resource", f"http://example.test/{n}", "2024-01-01T00:00:00Z",
                     "application/octet-stream", b"", fields=[])
        return StreamedRecord(rec, body, 1_000_000)

    w.write_streamed(streamed(1))
    before = w.current_size
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (before + 100_000, hard))
    try:
        w.write_streamed(streamed(2))
        print("no error")
    except ArchiveWriteError as exc:
        path = out / "warcs" / (w.current_name + ".open")
        print("error", exc.cause.errno, os.path.getsize(path) == before, w.current_size == before)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    w.write_streamed(streamed(3))
    w.close()
""")


def test_failed_streamed_write_is_cut_back_and_raised(tmp_path: Path) -> None:
    import errno

    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["error", str(errno.EFBIG), "True", "True"]
    (path,) = (tmp_path / "warcs").glob("*.warc.gz")
    members = list(scan_members(path))
    assert len(members) == 3 and all(m.complete for m in members)  # warcinfo, record 1, record 3
    assert warcio_check([path]).returncode == 0


def test_which_payloads_count_as_already_compressed() -> None:
    for ctype in ("video/mp4", "audio/mpeg", "image/jpeg", "image/webp", "application/zip",
                  "application/x-7z-compressed", "font/woff2", "application/zstd"):
        assert is_precompressed(ctype), ctype
    for ctype in ("text/html; charset=utf-8", "application/json", "image/svg+xml", "image/bmp",
                  "application/octet-stream", None):
        assert not is_precompressed(ctype), ctype
    assert is_precompressed("text/html", "gzip") and is_precompressed(b"application/json", b"br")
