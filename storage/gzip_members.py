"""Walking the gzip members of a WARC: one walker for reading records and for crash repair.

A ``.warc.gz`` is a series of gzip members, normally one record each. ``iter_gzip_members``
streams a file or any binary stream (an S3 object body) and yields one ``GzipMember`` per
member, with its offset and compressed length. One rule for damage, whoever reads:

* a member that does not decompress is yielded with ``error`` and no data, and the walk goes on
  at the next gzip header after the member's start (``reader`` skips it, ``repair`` stops at
  it: nothing after a damaged member is kept in a crashed file);
* a member cut short by the end of the input is yielded last, with ``error`` and no data.

``keep`` bounds the decompressed bytes kept per member (crash repair only needs the head of a
record, and media records may be gigabytes); ``size`` is always the full decompressed size.
``limit`` (given the compressed bytes fed so far, the most a member may inflate to) catches
compression bombs while they inflate: such a member is yielded as damaged and skipped, never
held in memory (``inflate_limit`` is the readers' rule).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b\x08"
CHUNK_SIZE = 1 << 20
OUT_CHUNK = 4 * 1024 * 1024  # decompressed bytes per step: a bomb is caught as it inflates

# A gzip member that inflates past both MAX_INFLATE_FLOOR and MAX_INFLATE_RATIO times its
# compressed size is a compression bomb. (WARC records are compressed one by one: real ratios
# stay far below 100, media near 1.)
MAX_INFLATE_FLOOR = 64 * 1024 * 1024
MAX_INFLATE_RATIO = 100


def inflate_limit(compressed: int) -> int:
    return max(MAX_INFLATE_FLOOR, MAX_INFLATE_RATIO * compressed)


class CompressionBomb(Exception):
    def __init__(self, produced: int) -> None:
        super().__init__(f"gzip member inflates past {produced:,} bytes, over "
                         f"{MAX_INFLATE_RATIO}x its size (compression bomb?): skipped")


def _inflate(d: zlib._Decompress, data: bytes) -> Iterator[bytes]:
    """Decompress ``data`` in steps of at most OUT_CHUNK bytes."""
    yield d.decompress(data, OUT_CHUNK)
    while d.unconsumed_tail and not d.eof:
        yield d.decompress(d.unconsumed_tail, OUT_CHUNK)


@dataclass(frozen=True)
class GzipMember:
    offset: int  # of the member's first byte in the input
    length: int  # compressed bytes (for a damaged member: up to the next gzip header)
    data: bytes | None  # decompressed bytes (the first ``keep`` of them); None when damaged
    size: int  # decompressed bytes in all (of what could be decompressed)
    error: str | None = None


def _seekable(fh: BinaryIO) -> bool:
    probe = getattr(fh, "seekable", None)
    return bool(probe and probe())


class MemberDamaged(Exception):
    """A gzip member that does not decompress (or is a bomb, or is cut short). When raised, the
    reader has already moved to the next gzip header."""

    def __init__(self, offset: int, length: int, size: int, error: str) -> None:
        super().__init__(error)
        self.offset, self.length, self.size, self.error = offset, length, size, error


RAW_KEEP = 64 * 1024 * 1024  # compressed bytes of a member kept to rescan a stream after damage


class GzipMemberReader:
    """Streams the gzip members of ``fh`` one at a time, decompressed bytes in bounded steps.

    ``next_member()`` starts a member (its offset, relative to where ``fh`` was), ``read()``
    gives its decompressed bytes a step of at most OUT_CHUNK at a time and ``b""`` at its end
    (``length`` then holds its compressed size). Damage, a bomb (``limit``) or a member cut
    short raise ``MemberDamaged`` after moving on to the next gzip header: after a file seek,
    or for a stream read once by rescanning the member's compressed bytes (kept up to
    RAW_KEEP; past that the rescan starts where the damage was found).
    """

    def __init__(self, fh: BinaryIO, *, chunk_size: int = CHUNK_SIZE,
                 limit: Callable[[int], int] | None = inflate_limit) -> None:
        self.fh, self.chunk_size, self.limit = fh, chunk_size, limit
        self.seekable = _seekable(fh)
        self.base = fh.tell() if self.seekable else 0
        self.pending = b""
        self.next_offset = 0
        self.start = 0
        self.length = 0
        self.size = 0
        self._d: zlib._Decompress | None = None
        self._fed = 0
        self._raw: list[bytes] = []
        self._raw_from = 0  # offset in the member of the first kept raw byte
        self._raw_len = 0
        self._done = True

    def next_member(self) -> int | None:
        """Start the next member; its offset, or None at the end of the input."""
        if not self._done:
            raise RuntimeError("the current member was not read to its end")
        if not self.pending:
            self.pending = self.fh.read(self.chunk_size)
            if not self.pending:
                return None
        self.start = self.next_offset
        self._d = zlib.decompressobj(31)
        self._fed = self.size = self.length = 0
        self._raw, self._raw_from, self._raw_len = [], 0, 0
        self._done = False
        return self.start

    def read(self) -> bytes:
        """The next decompressed bytes of the current member; ``b""`` once it has ended."""
        d = self._d
        while not self._done and d is not None:
            if d.unconsumed_tail:
                data = d.unconsumed_tail
            else:
                data, self.pending = self.pending or self.fh.read(self.chunk_size), b""
                if not data:
                    self._damaged(self._fed, "truncated gzip member at end of file", rescan=False)
                self._fed += len(data)
                self._keep_raw(data)
            try:
                out = d.decompress(data, OUT_CHUNK)
            except zlib.error as exc:
                self._damaged(0, f"bad gzip data: {exc}")
            self.size += len(out)
            if self.limit is not None and self.size > self.limit(self._fed):
                self._damaged(0, str(CompressionBomb(self.size)))
            if d.eof:
                self.length = self._fed - len(d.unused_data)
                self.pending = d.unused_data
                self.next_offset = self.start + self.length
                self._done = True
            if out:
                return out
        return b""

    def drain(self) -> tuple[int, bool]:
        """Read the member to its end: (bytes left, whether any of them was not whitespace)."""
        return drain(self.read)

    def _keep_raw(self, data: bytes) -> None:
        if self.seekable:
            return
        self._raw.append(data)
        self._raw_len += len(data)
        while self._raw_len > RAW_KEEP and len(self._raw) > 1:
            dropped = self._raw.pop(0)
            self._raw_len -= len(dropped)
            self._raw_from += len(dropped)

    def _damaged(self, length: int, error: str, *, rescan: bool = True) -> None:
        self._done = True
        if rescan:
            if self.seekable:
                end = _next_header_on_disk(self.fh, self.base + self.start, self.chunk_size)
                length, self.pending = end - self.base - self.start, b""
            else:
                blob = b"".join(self._raw)
                skip = 1 if self._raw_from == 0 else 0
                found, self.pending = _next_header_in_stream(self.fh, blob[skip:],
                                                             self.chunk_size, start=0)
                length = self._raw_from + skip + found
        self._raw = []
        self.length = length
        self.next_offset = self.start + length
        raise MemberDamaged(self.start, length, self.size, error)


def iter_gzip_members(fh: BinaryIO, *, keep: int | None = None,
                      chunk_size: int = CHUNK_SIZE,
                      limit: Callable[[int], int] | None = None) -> Iterator[GzipMember]:
    """Every gzip member of ``fh`` from its current position (offsets relative to it).

    Holds at most one member's decompressed bytes (``keep`` of them if given). A stream that
    cannot seek also holds the member's compressed bytes, to find the next header after
    damage."""
    reader = GzipMemberReader(fh, chunk_size=chunk_size, limit=limit)
    while (start := reader.next_member()) is not None:
        out = bytearray()
        try:
            while chunk := reader.read():
                if keep is None:
                    out += chunk
                elif len(out) < keep:
                    out += chunk[: keep - len(out)]
        except MemberDamaged as exc:
            yield GzipMember(exc.offset, exc.length, None, exc.size, exc.error)
            continue
        yield GzipMember(start, reader.length, bytes(out), reader.size)


def _next_header_in_stream(fh: BinaryIO, blob: bytes, chunk_size: int,
                           start: int = 1) -> tuple[int, bytes]:
    """(length of the damaged member, the bytes read past it) for a stream read once."""
    nxt = blob.find(GZIP_MAGIC, start)
    while nxt < 0 and (more := fh.read(chunk_size)):
        blob += more
        nxt = blob.find(GZIP_MAGIC, start)
    end = nxt if nxt >= start else len(blob)
    return end, blob[end:]


def _next_header_on_disk(fh: BinaryIO, start: int, chunk_size: int) -> int:
    """The absolute position of the next gzip header after ``start`` (or the end); ``fh`` is
    left there, so the walk reads on from the next member."""
    pos = start + 1
    fh.seek(pos)
    tail = b""
    while True:
        chunk = fh.read(chunk_size)
        if not chunk:
            end = pos + len(tail)
            break
        window = tail + chunk
        found = window.find(GZIP_MAGIC)
        if found >= 0:
            end = pos + found
            break
        cut = max(len(window) - (len(GZIP_MAGIC) - 1), 0)  # a header may span two reads
        pos += cut
        tail = window[cut:]
    fh.seek(end)
    return end


__all__ = ["GZIP_MAGIC", "CompressionBomb", "GzipMember", "GzipMemberReader", "MemberDamaged",
           "inflate_limit", "iter_gzip_members"]


def drain(read: Callable[[], bytes]) -> tuple[int, bool]:
    """Call ``read`` until it returns nothing: (bytes read, whether any was not whitespace).
    Shared by the gzip and zstd record readers to skip what follows a record's block."""
    left, text = 0, False
    while chunk := read():
        left += len(chunk)
        text = text or bool(chunk.strip())
    return left, text
