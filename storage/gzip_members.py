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


def iter_gzip_members(fh: BinaryIO, *, keep: int | None = None,
                      chunk_size: int = CHUNK_SIZE,
                      limit: Callable[[int], int] | None = None) -> Iterator[GzipMember]:
    """Every gzip member of ``fh`` from its current position (offsets relative to it).

    Holds at most one member's decompressed bytes (``keep`` of them if given). A stream that
    cannot seek also holds the member's compressed bytes, to find the next header after
    damage."""
    seekable = _seekable(fh)
    base = fh.tell() if seekable else 0
    pending = b""  # bytes read but not yet fed: the start of the next member
    offset = 0
    while True:
        if not pending:
            pending = fh.read(chunk_size)
            if not pending:
                return
        start, data, pending = offset, pending, b""
        d = zlib.decompressobj(31)
        raw: list[bytes] | None = None if seekable else []
        out = bytearray()
        size = fed = 0
        while True:
            try:
                for chunk in _inflate(d, data):
                    size += len(chunk)
                    if limit is not None and size > limit(fed + len(data)):
                        raise CompressionBomb(size)
                    if keep is None:
                        out += chunk
                    elif len(out) < keep:
                        out += chunk[: keep - len(out)]
            except (zlib.error, CompressionBomb) as exc:
                out = bytearray()
                if raw is None:
                    end = _next_header_on_disk(fh, base + start, chunk_size) - base - start
                else:
                    end, pending = _next_header_in_stream(fh, b"".join(raw) + data, chunk_size)
                error = str(exc) if isinstance(exc, CompressionBomb) else f"bad gzip data: {exc}"
                yield GzipMember(start, end, None, size, error)
                offset = start + end
                break
            if raw is not None:
                raw.append(data)
            fed += len(data)
            if d.eof:
                used = fed - len(d.unused_data)
                yield GzipMember(start, used, bytes(out), size)
                pending, offset = d.unused_data, start + used
                break
            data = fh.read(chunk_size)
            if not data:
                yield GzipMember(start, fed, None, size, "truncated gzip member at end of file")
                return


def _next_header_in_stream(fh: BinaryIO, blob: bytes, chunk_size: int) -> tuple[int, bytes]:
    """(length of the damaged member, the bytes read past it) for a stream read once."""
    nxt = blob.find(GZIP_MAGIC, 1)
    while nxt < 0 and (more := fh.read(chunk_size)):
        blob += more
        nxt = blob.find(GZIP_MAGIC, 1)
    end = nxt if nxt > 0 else len(blob)
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


__all__ = ["GZIP_MAGIC", "CompressionBomb", "GzipMember", "inflate_limit", "iter_gzip_members"]
