"""One gzip-member walker (storage/gzip_members.py) for the reader and for crash repair."""

from __future__ import annotations

import io
from pathlib import Path

from storage.gzip_members import iter_gzip_members
from storage.reader import CorruptRecord, iter_records
from storage.warc import gzip_member, scan_members


def _record(n: int, size: int) -> bytes:
    block = (b"%d " % n) * (size // 3 + 1)
    block = block[:size]
    head = (b"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Target-URI: http://example.test/%d\r\n"
            b"Content-Length: %d\r\n\r\n" % (n, len(block)))
    return head + block + b"\r\n\r\n"


def _damaged_file(tmp_path: Path) -> tuple[Path, list[int]]:
    """Five records, the third member's deflate data overwritten: (file, member offsets)."""
    members = [gzip_member(_record(n, 5000 + 997 * n)) for n in range(5)]
    offsets = [sum(len(m) for m in members[:i]) for i in range(5)]
    data = bytearray(b"".join(members))
    middle = offsets[2] + len(members[2]) // 2
    data[middle:middle + 64] = b"\xff" * 64
    path = tmp_path / "damaged.warc.gz"
    path.write_bytes(bytes(data))
    return path, offsets


def test_a_damaged_member_is_reported_and_the_walk_goes_on_from_files_and_streams(
    tmp_path: Path,
) -> None:
    path, offsets = _damaged_file(tmp_path)
    data = path.read_bytes()
    for chunk in (7, 100, 1 << 20):  # headers and damage across read boundaries
        with open(path, "rb") as fh:
            on_disk = list(iter_gzip_members(fh, chunk_size=chunk))
        streamed = list(iter_gzip_members(io.BufferedReader(_Unseekable(data)), chunk_size=chunk))
        for walked in (on_disk, streamed):
            assert [m.offset for m in walked] == offsets
            assert [m.error is None for m in walked] == [True, True, False, True, True]
            assert walked[2].length == offsets[3] - offsets[2]
            assert walked[4].data == _record(4, 5000 + 997 * 4)


def test_reader_skips_the_damaged_member_and_repair_marks_it_incomplete(tmp_path: Path) -> None:
    path, offsets = _damaged_file(tmp_path)
    records = list(iter_records(path))
    assert [isinstance(r, CorruptRecord) for r in records] == [False, False, True, False, False]
    assert records[3].get("WARC-Target-URI") == "http://example.test/3"
    members = list(scan_members(path))
    assert [m.complete for m in members] == [True, True, False, True, True]
    assert [m.offset for m in members] == offsets


def test_kept_bytes_are_bounded_but_the_size_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.warc.gz"
    path.write_bytes(gzip_member(_record(1, 300_000)))
    with open(path, "rb") as fh:
        (member,) = iter_gzip_members(fh, keep=1000)
    assert member.data is not None and len(member.data) == 1000
    assert member.size == len(_record(1, 300_000))
    path.write_bytes(path.read_bytes()[:-10])  # cut short: incomplete, reported last
    assert [m.complete for m in scan_members(path)] == [False]


class _Unseekable(io.RawIOBase):
    """A body read once (as from object storage): no seek."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray) -> int:  # type: ignore[override]
        n = min(len(buf), len(self._data) - self._pos)
        buf[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n
