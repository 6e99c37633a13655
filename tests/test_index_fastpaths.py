"""The fast paths of indexing (issue 13, part 4) give the same results as the slow ones.

Small gzip reads (members straddling reads), the file digest taken while reading, block bytes
skipped without being built, the HTTP head end found without scanning a binary block: each
checked against the plain computation on generated archives, through ``socialark index``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import sqlite3
from pathlib import Path

from storage.indexer import index_file
from storage.reader import _head_end, iter_records, parse_record_bytes
from tests.conftest import socialark
from tests.test_reader_formats import _formats, _response


def _file_digests(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT name, sha256 FROM warc_files"))


def test_the_file_digest_taken_while_reading_is_the_files_digest(tmp_path: Path) -> None:
    files = _formats(tmp_path / "in")
    damaged = tmp_path / "in" / "damaged.warc"  # a rescan seeks: the digest is taken again
    records = [_response(n) for n in range(6)]
    records[2] = records[2].replace(b"Content-Length: ", b"Content-Length: 9", 1)
    damaged.write_bytes(b"".join(records))
    proc = socialark("index", str(tmp_path / "in"), "--collection", "c", data_dir=tmp_path / "d")
    assert proc.returncode == 1, proc.stderr  # the damaged record
    digests = _file_digests(tmp_path / "d" / "index.db")
    assert set(digests) == {p.name for p in files.values()} | {"damaged.warc"}
    for name, digest in digests.items():
        assert digest == hashlib.sha256((tmp_path / "in" / name).read_bytes()).hexdigest(), name


def test_many_small_gzip_members_across_reads_index_like_the_plain_file(tmp_path: Path) -> None:
    rng = random.Random(3)
    records = [_response(n, body=os.urandom(rng.randint(0, 3000)) if n % 3 else None)
               for n in range(1500)]
    plain, gz = tmp_path / "p.warc", tmp_path / "p.warc.gz"
    plain.write_bytes(b"".join(records))
    gz.write_bytes(b"".join(gzip.compress(r, compresslevel=rng.choice([1, 6, 9]))
                            for r in records))
    a, b = index_file(plain, collection="c"), index_file(gz, collection="c")
    assert not a.corrupt and not b.corrupt
    assert len(b.rows) == len(records)

    def key(r: dict[str, object]) -> tuple[object, ...]:
        return (r["urlkey"], r["timestamp"], r["status"], r["mime"], r["digest"], r["record_id"])

    assert [key(r) for r in a.rows] == [key(r) for r in b.rows]
    data = gz.read_bytes()
    assert sum(r["length"] for r in b.rows) == len(data)  # members tile the file
    for row in b.rows[::97]:
        rec = parse_record_bytes(data[row["offset"]:row["offset"] + row["length"]],
                                 row["offset"], row["length"])
        assert rec.get("WARC-Record-ID") == row["record_id"]


def test_a_large_block_cut_short_is_still_reported(tmp_path: Path) -> None:
    big = _response(1, body=os.urandom(3 << 20))
    path = tmp_path / "cut.warc"
    path.write_bytes(_response(0) + big[: len(big) - (1 << 20)])
    items = list(iter_records(path))
    assert [type(i).__name__ for i in items] == ["WarcRecordData", "CorruptRecord"]
    assert "truncated" in items[1].error  # type: ignore[union-attr]


def test_the_head_end_is_the_first_blank_line_of_either_kind() -> None:
    def slow(block: bytes) -> tuple[int, int]:
        crlf, lf = block.find(b"\r\n\r\n"), block.find(b"\n\n")
        if crlf >= 0 and (lf < 0 or crlf <= lf + 1):
            return crlf, 4
        if lf >= 0:
            return lf, 2
        return -1, 0

    cases = [b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody\n\nmore", b"HTTP/1.1 200 OK\nA: b\n\nbody\r\n\r\n",
             b"HTTP/1.1 200 OK\r\n\r\n", b"X\n\n", b"\r\n\r\n", b"\n\r\n\r\n", b"a\r\n\n\r\n",
             b"no blank line", b"", os.urandom(5000)]
    rng = random.Random(7)
    cases += [bytes(rng.choice(b"\r\nab") for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    for block in cases:
        assert _head_end(block) == slow(block), block
