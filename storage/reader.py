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
from storage.gzip_members import inflate_limit, iter_gzip_members
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


def parse_record_bytes(data: bytes, offset: int, length: int) -> WarcRecordData:
    """One record from the bytes of its gzip member (or of the plain record), as read back
    from an index row's offset and length."""
    if data[:2] == b"\x1f\x8b":
        limit = inflate_limit(len(data))
        data = zlib.decompressobj(31).decompress(data, limit + 1)
        if len(data) > limit:
            raise WarcFormatError(f"record at offset {offset} inflates past {limit:,} bytes "
                                  "(compression bomb?)")
    rec, _ = _parse_record(data, offset, length)
    return rec


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


def _iter_members(
    fh: BinaryIO, chunk_size: int = 1 << 20
) -> Iterator[tuple[int, int, bytes | None, str | None]]:
    """Yield (offset, length, decompressed bytes or None, error) per gzip member.

    Streams ``fh`` (a file, or an HTTP body from object storage): only the member being read is
    held in memory, never the whole file. After a damaged member, reading resumes at the next
    gzip header (``storage.gzip_members``, the walker crash repair uses too).
    """
    for m in iter_gzip_members(fh, chunk_size=chunk_size, limit=inflate_limit):
        yield m.offset, m.length, m.data, m.error






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
