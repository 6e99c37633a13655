"""Reading WARC files from any tool, record by record, surviving corrupt records.

A ``.warc.gz`` is walked gzip member by gzip member, so one corrupt member is reported and
skipped and the records after it are still read. An uncompressed ``.warc`` is walked by
``Content-Length``; there a corrupt header ends the walk (nothing reliable follows it).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from storage.errors import WarcFormatError
from storage.records import HttpHead


@dataclass
class WarcRecordData:
    offset: int
    length: int
    headers: list[tuple[str, str]]
    block: bytes

    def get(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None

    @property
    def type(self) -> str:
        return (self.get("WARC-Type") or "").lower()

    def http(self) -> tuple[HttpHead, bytes] | None:
        """(head, payload) when the block is an HTTP message, else None."""
        ctype = (self.get("Content-Type") or "").lower()
        if "application/http" not in ctype:
            return None
        end = self.block.find(b"\r\n\r\n")
        sep = 4
        if end < 0:
            end, sep = self.block.find(b"\n\n"), 2
        if end < 0:
            return HttpHead.parse(self.block), b""
        return HttpHead.parse(self.block[:end]), self.block[end + sep :]


@dataclass
class CorruptRecord:
    offset: int
    length: int
    error: str


def _parse_record(data: bytes, offset: int, length: int) -> tuple[WarcRecordData, int]:
    """Parse one record at the start of ``data``; return it and the bytes it used."""
    end = data.find(b"\r\n\r\n")
    if not data.startswith(b"WARC/") or end < 0:
        raise WarcFormatError("no WARC header (not a WARC record)")
    lines = data[:end].decode("utf-8", "replace").split("\r\n")[1:]
    headers: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t") and headers:
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise WarcFormatError(f"malformed WARC header line {line[:60]!r}")
        headers.append((name.strip(), value.strip()))
    cl = next((v for k, v in headers if k.lower() == "content-length"), None)
    if cl is None or not _CONTENT_LENGTH.match(cl):  # ASCII digits, bounded: never int("²")
        shown = cl if cl is None else cl[:20] + ("..." if len(cl) > 20 else "")
        raise WarcFormatError(f"WARC record without a valid Content-Length ({shown!r})")
    start = end + 4
    block = data[start : start + int(cl)]
    if len(block) < int(cl):
        raise WarcFormatError("record truncated (block shorter than Content-Length)")
    used = start + int(cl)
    while data[used : used + 2] == b"\r\n":
        used += 2
    return WarcRecordData(offset, length, headers, block), used


_CONTENT_LENGTH = re.compile(r"^[0-9]{1,18}$")
# A gzip member that inflates past both MAX_INFLATE_FLOOR and MAX_INFLATE_RATIO times its
# compressed size is a compression bomb: it is reported and skipped, never held in memory.
# (WARC records are compressed one by one: real ratios stay far below 100, media near 1.)
MAX_INFLATE_FLOOR = 64 * 1024 * 1024
MAX_INFLATE_RATIO = 100
_OUT_CHUNK = 4 * 1024 * 1024


def inflate_limit(compressed: int) -> int:
    return max(MAX_INFLATE_FLOOR, MAX_INFLATE_RATIO * compressed)


def _iter_members(
    fh: BinaryIO, chunk_size: int = 1 << 20
) -> Iterator[tuple[int, int, bytes | None, str | None]]:
    """Yield (offset, length, decompressed bytes or None, error) per gzip member.

    Streams ``fh`` (a file, or an HTTP body from object storage): only the member being read is
    held in memory, never the whole file. After a damaged member, reading resumes at the next
    gzip header.
    """
    pending = b""  # bytes read but not yet fed: the start of the next member
    offset = 0
    while True:
        if not pending:
            pending = fh.read(chunk_size)
            if not pending:
                return
        start, data, pending = offset, pending, b""
        d = zlib.decompressobj(31)
        raw: list[bytes] = []
        out: list[bytes] = []
        fed = 0
        produced = 0
        while True:
            try:
                piece = d.decompress(data, _OUT_CHUNK)
                while True:  # bounded output per call: a bomb is caught while it inflates
                    out.append(piece)
                    produced += len(piece)
                    if produced > inflate_limit(fed + len(data)):
                        raise _Bomb(produced)
                    if not d.unconsumed_tail or d.eof:
                        break
                    piece = d.decompress(d.unconsumed_tail, _OUT_CHUNK)
            except (zlib.error, _Bomb) as exc:
                out.clear()
                blob = b"".join(raw) + data
                nxt = blob.find(_GZIP_MAGIC, 1)
                while nxt < 0 and (more := fh.read(chunk_size)):
                    blob += more
                    nxt = blob.find(_GZIP_MAGIC, 1)
                end = nxt if nxt > 0 else len(blob)
                yield start, end, None, (str(exc) if isinstance(exc, _Bomb)
                                         else f"bad gzip data: {exc}")
                pending, offset = blob[end:], start + end
                break
            raw.append(data)
            fed += len(data)
            if d.eof:
                used = fed - len(d.unused_data)
                yield start, used, b"".join(out), None
                pending, offset = d.unused_data, start + used
                break
            data = fh.read(chunk_size)
            if not data:
                yield start, fed, None, "truncated gzip member at end of file"
                return


_GZIP_MAGIC = b"\x1f\x8b\x08"


class _Bomb(Exception):
    def __init__(self, produced: int) -> None:
        super().__init__(f"gzip member inflates past {produced:,} bytes, over "
                         f"{MAX_INFLATE_RATIO}x its size (compression bomb?): skipped")


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def iter_records(path: Path) -> Iterator[WarcRecordData | CorruptRecord]:
    """Every record of a WARC file (gzip per record, gzip whole-file, or uncompressed)."""
    with open(path, "rb") as fh:
        yield from iter_stream_records(fh, name=str(path))


def iter_stream_records(
    fh: BinaryIO, *, name: str = "input"
) -> Iterator[WarcRecordData | CorruptRecord]:
    """Like ``iter_records`` for any binary stream (e.g. an S3 object body), read once."""
    head = fh.read(8)
    rest = _Prefixed(head, fh)
    if head[:2] == b"\x1f\x8b":
        for offset, length, out, error in _iter_members(rest):  # type: ignore[arg-type]
            if out is None:
                yield CorruptRecord(offset, length, error or "unreadable")
                continue
            yield from _records_in(out, offset, length)
    elif head.startswith(b"WARC/"):
        yield from _records_in(rest.read(), 0, None)
    else:
        raise WarcFormatError(f"{name} is not a WARC file (neither gzip nor 'WARC/' header)")


class _Prefixed:
    """A stream with some already-read bytes put back in front."""

    def __init__(self, prefix: bytes, fh: BinaryIO) -> None:
        self.prefix, self.fh = prefix, fh

    def read(self, n: int = -1) -> bytes:
        if not self.prefix:
            return self.fh.read(n)
        if n < 0:
            data, self.prefix = self.prefix + self.fh.read(), b""
            return data
        data, self.prefix = self.prefix[:n], self.prefix[n:]
        if len(data) < n:
            data += self.fh.read(n - len(data))
        return data


def _records_in(
    data: bytes, offset: int, length: int | None
) -> Iterator[WarcRecordData | CorruptRecord]:
    """Records inside one gzip member (normally one) or an uncompressed file (``length=None``)."""
    pos = 0
    while pos < len(data):
        rec_offset = offset if length is not None else pos
        try:
            rec, used = _parse_record(data[pos:], rec_offset, length or 0)
        except WarcFormatError as exc:
            yield CorruptRecord(rec_offset, (length or len(data) - pos), str(exc))
            return
        if length is None:
            rec.length = used
        yield rec
        pos += used
        if not data[pos:].strip():
            return


def warcinfo_fields(block: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out.setdefault(k.strip(), v.strip())
    return out


WARC_NAME_RE = re.compile(r"\.warc(\.gz)?$", re.IGNORECASE)
