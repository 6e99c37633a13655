"""One streaming reader for every input (issue 13, part 1): formats, damage, hostile fields.

Archives are generated here byte by byte: the same records as an uncompressed WARC, a
per-record .warc.gz, a .warc.zst without and with a dictionary (laid out as Wget-AT writes it),
an ARC; then damaged in the middle, given hostile fields or bombs, and indexed through the
library and through the real ``socialark index`` command.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import zstandard

from storage.indexer import index_file
from storage.reader import (
    CorruptRecord,
    WarcRecordData,
    WholeFileCompressed,
    iter_records,
    iter_stream_records,
    parse_record_bytes,
    read_zstd_dictionary,
    recompress,
)
from tests.conftest import socialark

N = 12


def _response(n: int, body: bytes | None = None, *, version: bytes = b"1.1",
              extra: bytes = b"",
              ctype: bytes | None = b"Content-Type: text/html; charset=utf-8\r\n") -> bytes:
    body = (b"<html>page %d " % n) * (40 + n) if body is None else body
    http = (b"HTTP/1.1 200 OK\r\n" + (ctype or b"") +
            b"Content-Length: %d\r\n\r\n" % len(body)) + body
    head = (b"WARC/" + version + b"\r\nWARC-Type: response\r\n"
            b"WARC-Target-URI: http://example.test/p%d\r\n"
            b"WARC-Date: 2024-01-02T03:04:%02dZ\r\nWARC-Record-ID: <urn:uuid:rec-%d>\r\n" % (n, n, n)
            + extra +
            b"Content-Type: application/http;msgtype=response\r\nContent-Length: %d\r\n\r\n"
            % len(http))
    return head + http + b"\r\n\r\n"


def _records() -> list[bytes]:
    versions = [b"1.1", b"1.0", b"0.17", b"0.18"]
    return [_response(n, version=versions[n % 4]) for n in range(N)]


def _plain(records: list[bytes]) -> bytes:
    return b"".join(records)


def _gz(records: list[bytes]) -> bytes:
    return b"".join(gzip.compress(r) for r in records)


def _zstd_dict(records: list[bytes]) -> zstandard.ZstdCompressionDict:
    return zstandard.train_dictionary(2048, records * 8)


def _zst(records: list[bytes], dictionary: zstandard.ZstdCompressionDict | None = None) -> bytes:
    """One frame per record, streamed in two pieces (no content size), checksummed: what
    Wget-AT's ``ZSTD_compressStream2`` writes; the dictionary zstd-compressed in a skippable
    frame first (``--warc-zstd-dict``)."""
    out = b""
    if dictionary is not None:
        frame = zstandard.ZstdCompressor(level=9).compress(dictionary.as_bytes())
        out += struct.pack("<II", 0x184D2A5D, len(frame)) + frame
        cctx = zstandard.ZstdCompressor(level=3, dict_data=dictionary, write_checksum=True)
    else:
        cctx = zstandard.ZstdCompressor(level=3, write_checksum=True)
    for rec in records:
        obj = cctx.compressobj()
        out += obj.compress(rec[:40]) + obj.compress(rec[40:]) + obj.flush()
    return out


def _arc(n: int = 4) -> bytes:
    version = b"1 0 Test\nURL IP-address Archive-date Content-type Archive-length\n\n"
    out = b"filedesc://gen.arc 0.0.0.0 20240102030405 text/plain %d\n" % len(version) + version
    for i in range(n):
        body = b"<p>arc %d</p>" % i
        http = (b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n"
                % len(body) + body)
        out += (b"\nhttp://example.test/arc %d 10.0.0.1 2024010203040%d text/html %d\n"
                % (i, i, len(http)) + http)
    return out + b"\n"


def _formats(tmp_path: Path) -> dict[str, Path]:
    records = _records()
    d = _zstd_dict(records)
    tmp_path.mkdir(parents=True, exist_ok=True)
    files = {"plain.warc": _plain(records), "rec.warc.gz": _gz(records),
             "rec.warc.zst": _zst(records), "dict.warc.zst": _zst(records, d)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in files}


def _key(row: dict[str, object]) -> tuple[object, ...]:
    return (row["urlkey"], row["timestamp"], row["status"], row["mime"], row["digest"])


def test_every_format_gives_the_same_captures_at_offsets_that_read_back(tmp_path: Path) -> None:
    files = _formats(tmp_path)
    expected = None
    for name, path in files.items():
        result = index_file(path, collection="c")
        assert result.corrupt == [] and result.records == N, name
        rows = [_key(r) for r in result.rows]
        expected = expected or rows
        assert rows == expected, name
        assert rows[0][2:4] == (200, "text/html")
        # every range reads back as the record alone (the dictionary comes from the file start)
        data = path.read_bytes()
        with open(path, "rb") as fh:
            dictionary = read_zstd_dictionary(fh)
        for row in result.rows:
            piece = data[row["offset"]:row["offset"] + row["length"]]
            rec = parse_record_bytes(piece, row["offset"], row["length"], dictionary)
            assert rec.get("WARC-Target-URI") == row["url"]
    # the ranges of the uncompressed file tile it, separators included
    rows = index_file(files["plain.warc"], collection="c").rows
    assert rows[-1]["offset"] + rows[-1]["length"] == files["plain.warc"].stat().st_size
    assert [r["length"] for r in rows] == [len(r) for r in _records()]


def _damage(data: bytes, at: int, width: int = 8) -> bytes:
    return data[:at] + b"\xff" * width + data[at + width:]


@pytest.mark.parametrize("name", ["plain.warc", "rec.warc.gz", "rec.warc.zst", "dict.warc.zst"])
def test_a_corrupt_middle_record_is_reported_and_the_rest_indexed(tmp_path: Path,
                                                                 name: str) -> None:
    path = _formats(tmp_path)[name]
    good = index_file(path, collection="c").rows
    victim = good[5]
    data = path.read_bytes()
    # plain: break the WARC header; compressed: break the middle of the member / frame
    at = victim["offset"] + (2 if name == "plain.warc" else victim["length"] // 2)
    path.write_bytes(_damage(data, at))
    result = index_file(path, collection="c")
    assert [c.offset for c in result.corrupt] == [victim["offset"]], result.corrupt
    assert [r["offset"] for r in result.rows] == [r["offset"] for r in good if r is not victim]
    assert [_key(r) for r in result.rows] == [_key(r) for r in good if r is not victim]
    # the same from a stream read once (an HTTP or S3 body): no seeking back
    streamed = list(iter_stream_records(_OnceOnly(path.read_bytes()), name=name))
    assert [type(r).__name__ for r in streamed].count("CorruptRecord") == 1
    assert len([r for r in streamed if isinstance(r, WarcRecordData)]) == N - 1


def _set_content_length(record: bytes, value: bytes) -> bytes:
    """``record`` with its WARC Content-Length replaced by ``value``."""
    cl = record.rindex(b"Content-Length: ", 0, record.index(b"\r\n\r\n"))
    return record[:cl] + b"Content-Length: " + value + record[record.index(b"\r\n", cl):]


def test_a_content_length_too_long_swallows_nothing(tmp_path: Path) -> None:
    """Uncompressed: a record whose Content-Length runs into the next records is reported; the
    records it would have swallowed are found again by scanning for 'WARC/'."""
    records = _records()
    bad = _set_content_length(records[3], b"9000")
    path = tmp_path / "long.warc"
    path.write_bytes(b"".join(records[:3]) + bad + b"".join(records[4:]))
    result = index_file(path, collection="c")
    assert len(result.corrupt) == 1 and "Content-Length" in result.corrupt[0].error
    assert len(result.rows) == N - 1


@pytest.mark.parametrize("value", ["9" * 5000, "\u0661\u0662", "\uff11\uff12", "12abc", "-5", ""])
def test_hostile_content_length_is_one_corrupt_record(tmp_path: Path, value: str) -> None:
    records = _records()
    bad = _set_content_length(records[4], value.encode())
    for name, data in (("h.warc", _plain([*records[:4], bad, *records[5:]])),
                       ("h.warc.gz", _gz([*records[:4], bad, *records[5:]])),
                       ("h.warc.zst", _zst([*records[:4], bad, *records[5:]]))):
        (tmp_path / name).write_bytes(data)
        result = index_file(tmp_path / name, collection="c")
        assert len(result.corrupt) == 1, (name, result.corrupt)
        assert "Content-Length" in result.corrupt[0].error and len(result.corrupt[0].error) < 200
        assert len(result.rows) == N - 1, name


def test_folded_headers_no_content_type_and_spaces_in_content_type(tmp_path: Path) -> None:
    folded = _response(1, extra=b"WARC-Warcinfo-ID: <urn:uuid:x>\r\nX-Note: one\r\n  two\r\n")
    no_ctype = _response(2, ctype=None)
    spaced = _response(3, ctype=b"Content-Type: Text/HTML  charset=utf-8\r\n")
    path = tmp_path / "odd.warc"
    path.write_bytes(folded + no_ctype + spaced)
    result = index_file(path, collection="c")
    assert result.corrupt == []
    mimes = [r["mime"] for r in result.rows]
    assert mimes == ["text/html", None, "text/html"]
    recs = list(iter_records(path))
    assert recs[0].get("X-Note") == "one two"


def _post_pair(body: bytes, *, chunked: bool, status_line: bool = False) -> bytes:
    url = b"http://example.test/api"
    if chunked:
        wire = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:5], body[5:])) + b"0\r\n\r\n"
        te = b"Transfer-Encoding: chunked\r\n"
    else:
        wire, te = body, b"Content-Length: %d\r\n" % len(body)
    first = b"HTTP/1.1 200 OK" if status_line else b"POST /api HTTP/1.1"
    req_http = first + b"\r\nHost: example.test\r\nContent-Type: application/x-www-form-urlencoded\r\n" + te + b"\r\n" + wire
    resp_http = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}"
    resp = (b"WARC/1.1\r\nWARC-Type: response\r\nWARC-Target-URI: " + url +
            b"\r\nWARC-Date: 2024-01-02T03:04:05Z\r\nWARC-Record-ID: <urn:uuid:resp>\r\n"
            b"Content-Type: application/http;msgtype=response\r\nContent-Length: %d\r\n\r\n"
            % len(resp_http) + resp_http + b"\r\n\r\n")
    req = (b"WARC/1.1\r\nWARC-Type: request\r\nWARC-Target-URI: " + url +
           b"\r\nWARC-Date: 2024-01-02T03:04:05Z\r\nWARC-Record-ID: <urn:uuid:req>\r\n"
           b"WARC-Concurrent-To: <urn:uuid:resp>\r\n"
           b"Content-Type: application/http;msgtype=request\r\nContent-Length: %d\r\n\r\n"
           % len(req_http) + req_http + b"\r\n\r\n")
    return resp + req


def test_chunked_post_bodies_are_dechunked_for_the_urlkey(tmp_path: Path) -> None:
    plain, chunked = tmp_path / "plain.warc", tmp_path / "chunked.warc"
    plain.write_bytes(_post_pair(b"a=1&b=two", chunked=False))
    chunked.write_bytes(_post_pair(b"a=1&b=two", chunked=True))
    (a,), (b,) = index_file(plain, collection="c").rows, index_file(chunked, collection="c").rows
    assert a["urlkey"] == b["urlkey"] == "test,example)/api?__wb_method=post&a=1&b=two"
    assert a["method"] == b["method"] == "POST"


def test_a_request_record_holding_a_status_line_has_no_http_method(tmp_path: Path) -> None:
    path = tmp_path / "odd.warc"
    path.write_bytes(_post_pair(b"a=1", chunked=False, status_line=True))
    (row,) = index_file(path, collection="c").rows
    assert row["method"] == "GET" and row["urlkey"] == "test,example)/api"


def test_arc_plain_and_gzipped(tmp_path: Path) -> None:
    data = _arc()
    (tmp_path / "a.arc").write_bytes(data)
    # per record: split at each header line and gzip each record with its trailing newline
    parts, pos = [], 0
    for rec in iter_records(tmp_path / "a.arc"):
        assert isinstance(rec, WarcRecordData)
        parts.append(gzip.compress(data[pos:pos + rec.length]))
        pos += rec.length
    (tmp_path / "a.arc.gz").write_bytes(b"".join(parts))
    for name in ("a.arc", "a.arc.gz"):
        result = index_file(tmp_path / name, collection="c")
        assert result.corrupt == [] and result.records == 5, name
        assert [r["url"] for r in result.rows] == [f"http://example.test/arc%20{i}" for i in range(4)]
        assert {r["status"] for r in result.rows} == {200}
        assert all(r["digest"].startswith("sha1:") for r in result.rows)
    # a damaged ARC record in the middle: reported, the next ones found again
    broken = data.replace(b"10.0.0.1 20240102030401 text/html", b"10.0.0.1 2024 text/html")
    (tmp_path / "b.arc").write_bytes(broken)
    result = index_file(tmp_path / "b.arc", collection="c")
    assert len(result.corrupt) == 1 and len(result.rows) == 3


def test_whole_file_gzip_and_zstd_are_refused_and_recompressed(tmp_path: Path) -> None:
    records = _records()
    whole_gz = tmp_path / "whole.warc.gz"
    whole_gz.write_bytes(gzip.compress(_plain(records)))
    whole_zst = tmp_path / "whole.warc.zst"
    whole_zst.write_bytes(zstandard.ZstdCompressor().compress(_plain(records)))
    for path in (whole_gz, whole_zst):
        with pytest.raises(WholeFileCompressed):
            index_file(path, collection="c")
        copy = recompress(path)
        assert copy.records == N and copy.path.name == "whole-recompressed.warc.gz"
        rows = index_file(copy.path, collection="c").rows
        assert [_key(r) for r in rows] == [_key(r) for r in
                                          index_file(_formats(tmp_path)["rec.warc.gz"],
                                                     collection="c").rows]


def test_cli_refuses_whole_file_gzip_then_recompress_indexes_the_copy(tmp_path: Path) -> None:
    path = tmp_path / "whole.warc.gz"
    path.write_bytes(gzip.compress(_plain(_records())))
    refused = socialark("index", str(path), data_dir=tmp_path / "d")
    assert refused.returncode == 2
    lines = [ln for ln in refused.stderr.splitlines() if "compressed as a whole" in ln]
    assert len(lines) == 1 and f"socialark index --recompress {path}" in lines[0]
    assert "Traceback" not in refused.stderr
    done = socialark("index", "--recompress", str(path), data_dir=tmp_path / "d")
    assert done.returncode == 0, done.stderr
    copy = tmp_path / "whole-recompressed.warc.gz"
    assert copy.exists()
    with sqlite3.connect(tmp_path / "d" / "index.db") as conn:
        files = {f for (f,) in conn.execute("SELECT DISTINCT filename FROM captures")}
        count = conn.execute("SELECT count(*) FROM captures").fetchone()[0]
    assert files == {copy.name} and count == N


def test_cli_indexes_every_format_and_exits_1_on_damage(tmp_path: Path) -> None:
    files = _formats(tmp_path / "in")  # type: ignore[arg-type]
    (tmp_path / "in" / "a.arc").write_bytes(_arc())
    zst = files["dict.warc.zst"]
    rows = index_file(zst, collection="c").rows
    zst.write_bytes(_damage(zst.read_bytes(), rows[7]["offset"] + rows[7]["length"] // 2))
    proc = socialark("index", str(tmp_path / "in"), "--collection", "all", data_dir=tmp_path / "d")
    assert proc.returncode == 1, proc.stderr
    assert f"corrupt record skipped in {zst} at offset {rows[7]['offset']}" in proc.stderr
    assert "Traceback" not in proc.stderr
    with sqlite3.connect(tmp_path / "d" / "index.db") as conn:
        per_file = dict(conn.execute("SELECT filename, count(*) FROM captures GROUP BY 1"))
    assert per_file == {"plain.warc": N, "rec.warc.gz": N, "rec.warc.zst": N,
                        "dict.warc.zst": N - 1, "a.arc": 4}


_RSS_PROBE = """
import json, resource, sys
from pathlib import Path
from storage.indexer import index_file
result = index_file(Path(sys.argv[1]), collection="c")
print(json.dumps({"rows": len(result.rows), "corrupt": [c.error for c in result.corrupt],
                  "digests": [r["digest"] for r in result.rows],
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _probe(path: Path) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(path)], capture_output=True,
                          text=True, timeout=600, check=True)
    return json.loads(proc.stdout)


def _baseline_kb(tmp_path: Path) -> int:
    small = tmp_path / "small.warc"
    small.write_bytes(_plain(_records()))
    return int(_probe(small)["rss_kb"])  # type: ignore[arg-type]


def test_compression_bombs_are_reported_per_record_in_bounded_memory(tmp_path: Path) -> None:
    """A gzip member / zstd frame of a few hundred KB inflating to 1 GiB is skipped, the
    records around it are indexed, and memory never holds the inflated bytes."""
    records = _records()
    huge = 1 << 30
    head = (b"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Target-URI: http://example.test/bomb\r\n"
            b"WARC-Date: 2024-01-02T03:04:05Z\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\n\r\n" % huge)
    zeros = bytes(1 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    gz_bomb = comp.compress(head) + b"".join(comp.compress(zeros) for _ in range(huge >> 20))
    gz_bomb += comp.flush()
    cobj = zstandard.ZstdCompressor(level=3, write_checksum=True).compressobj()
    zst_bomb = cobj.compress(head) + b"".join(cobj.compress(zeros) for _ in range(huge >> 20))
    zst_bomb += cobj.flush()
    assert len(gz_bomb) < 2_000_000 and len(zst_bomb) < 200_000
    baseline = _baseline_kb(tmp_path)
    for name, data in (("bomb.warc.gz", _gz(records[:3]) + gz_bomb + _gz(records[3:])),
                       ("bomb.warc.zst", _zst(records[:3]) + zst_bomb + _zst(records[3:]))):
        path = tmp_path / name
        path.write_bytes(data)
        out = _probe(path)
        assert out["rows"] == N, name
        assert len(out["corrupt"]) == 1 and "compression bomb" in out["corrupt"][0], out  # type: ignore[index,arg-type]
        assert int(out["rss_kb"]) - baseline < 150_000, (name, out["rss_kb"], baseline)  # type: ignore[arg-type]


def test_a_huge_record_indexes_in_constant_memory(tmp_path: Path) -> None:
    """A 256 MiB response (uncompressed and gzipped) is streamed: its payload digest is
    computed (it carries none) and peak memory stays far below the record's size."""
    import base64
    import hashlib

    size = 256 << 20
    chunk = os.urandom(1 << 20)  # 1 MiB that does not compress: ratio ~1, no bomb
    http_head = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\n\r\n"
    head = (b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://example.test/video\r\n"
            b"WARC-Date: 2024-01-02T03:04:05Z\r\nWARC-Record-ID: <urn:uuid:big>\r\n"
            b"Content-Type: application/http; msgtype=response\r\n"
            b"Content-Length: %d\r\n\r\n" % (len(http_head) + size))
    sha = hashlib.sha1()
    plain, gz = tmp_path / "big.warc", tmp_path / "big.warc.gz"
    with open(plain, "wb") as fh, open(gz, "wb") as gfh:
        comp = zlib.compressobj(1, zlib.DEFLATED, 31)
        for piece in [head, http_head] + [chunk] * (size >> 20) + [b"\r\n\r\n"]:
            fh.write(piece)
            gfh.write(comp.compress(piece))
            if piece is chunk:
                sha.update(chunk)
        gfh.write(comp.flush())
        tail = _records()[0]
        fh.write(tail)
        gfh.write(gzip.compress(tail))
    digest = "sha1:" + base64.b32encode(sha.digest()).decode()
    baseline = _baseline_kb(tmp_path)
    for path in (plain, gz):
        out = _probe(path)
        assert out["rows"] == 2 and out["corrupt"] == [], out
        assert out["digests"][0] == digest  # type: ignore[index]
        assert int(out["rss_kb"]) - baseline < 100_000, (path.name, out["rss_kb"], baseline)  # type: ignore[arg-type]


def test_inputs_are_read_once_front_to_back(tmp_path: Path) -> None:
    """Linear time: every byte of the file is read once (no read-whole-and-slice, no re-reads
    of records that are fine)."""
    for name, path in _formats(tmp_path).items():
        data = path.read_bytes()
        reader = _OnceOnly(data)
        records = list(iter_stream_records(reader, name=name))
        assert len(records) == N and reader.read_bytes == len(data), name
        assert reader.max_read <= 1 << 21, name


class _OnceOnly(io.RawIOBase):
    """A body read once (as from HTTP or object storage): no seek; counts what is read."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0
        self.read_bytes = 0
        self.max_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buf: bytearray) -> int:  # type: ignore[override]
        n = min(len(buf), len(self._data) - self._pos)
        buf[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        self.read_bytes += n
        self.max_read = max(self.max_read, n)
        return n


def test_damaged_records_are_typed_in_the_stream(tmp_path: Path) -> None:
    path = _formats(tmp_path)["rec.warc.gz"]
    data = path.read_bytes()
    items = list(iter_records(path))
    second = items[1]
    assert isinstance(second, WarcRecordData)
    path.write_bytes(_damage(data, second.offset + second.length // 2))
    items = list(iter_records(path))
    assert isinstance(items[1], CorruptRecord) and items[1].offset == second.offset


def test_records_of_a_zstd_file_with_a_dictionary_read_back_for_extraction(tmp_path: Path) -> None:
    """Post extraction reads records by offset: a dictionary frame is loaded from the file."""
    from crawler.extraction import read_record

    path = _formats(tmp_path)["dict.warc.zst"]
    rows = index_file(path, collection="c").rows
    assert len(rows) == N
    for row in rows:
        rec = read_record(path, row["offset"], row["length"])
        http = rec.http()
        assert rec.complete and http is not None and http[0].status == 200
        assert http[1].startswith(b"<html>page ")
