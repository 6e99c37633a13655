"""One streaming reader for every archive another tool may have written.

Formats: WARC 0.17/0.18/1.0/1.1 and ARC v1; uncompressed, gzip per record (``.warc.gz``) and
zstd per record (``.warc.zst``, with or without a dictionary as Wget-AT writes it). The input is
read once, front to back (a file or any binary stream, e.g. an HTTP or S3 body:
``iter_stream_records``), in linear time, and memory stays bounded whatever a record's size:
only the first ``keep`` bytes of a block are kept, the rest is streamed through the payload
digest (computed when the record carries none, as cdxj-indexer does) and dropped.

Damage never stops a file: a record that cannot be read (bad header, hostile
``Content-Length``, a block that does not end where it says, a gzip member or zstd frame that
does not decompress or inflates like a bomb) is yielded as a ``CorruptRecord`` and reading
resumes at the next record: the next gzip member / zstd frame, or in an uncompressed file the
next ``WARC/`` (or ARC header) line after the damaged record's start.

A file gzipped as a whole (one gzip stream holding many records) is refused with
``WholeFileCompressed``: offsets into one stream cannot be read back by any replay tool.
``recompress`` writes a per-record gzip copy of such a file.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import zstandard

from storage.arc import ARC_START, ArcHeaderError, arc_headers, looks_like_arc
from storage.errors import WarcFormatError
from storage.gzip_members import GzipMemberReader, MemberDamaged
from storage.records import HttpHead
from storage.zst_frames import FrameDamaged, ZstdFrameReader, is_zstd_start

CHUNK = 1 << 20
GZIP_READ = 16 * 1024
"""Compressed bytes read at a time from a ``.warc.gz``: zlib copies the input left over
after a member (the next records) at each member's end, so a small read keeps that copy
small when records are small (as warcio reads)."""
BLOCK_KEEP = 1 << 20
"""Bytes of a record's block kept by default (HTTP head, a request body, warcinfo fields)."""
HEAD_WINDOW = 256 * 1024  # the HTTP head must end within this many bytes to find the payload
MAX_LINE = 64 * 1024
MAX_HEAD = 1 << 20
_CONTENT_LENGTH = re.compile(r"^[0-9]{1,18}$")
_WARC_LINE = re.compile(rb"^WARC/[0-9]{1,3}\.[0-9]{1,3}\s*$")
WARC_START = re.compile(rb"\nWARC/[0-9]{1,3}\.[0-9]{1,3}\r?\n")

WARC_NAME_RE = re.compile(r"\.(warc|arc)(\.gz|\.zst)?$", re.IGNORECASE)


@dataclass
class WarcRecordData:
    """One record: its WARC headers (synthetic ones for ARC), the first bytes of its block
    (all of them when read with ``keep=None``), and where it lies in the file."""

    offset: int
    length: int
    headers: list[tuple[str, str]]
    block: bytes
    block_length: int = -1
    computed_digest: str | None = None
    arc: bool = False

    _lookup: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.block_length < 0:
            self.block_length = len(self.block)
        # the first occurrence of a name wins: built from the last header to the first
        self._lookup = {k.lower(): v for k, v in reversed(self.headers)}

    def get(self, name: str) -> str | None:
        return self._lookup.get(name.lower())

    @property
    def type(self) -> str:
        return (self.get("WARC-Type") or "").lower()

    @property
    def complete(self) -> bool:
        """Whether ``block`` holds the whole block (not just its first bytes)."""
        return len(self.block) == self.block_length

    @property
    def payload_digest(self) -> str | None:
        """``WARC-Payload-Digest``, else the sha1 computed while reading (ARC, old WARCs)."""
        return self.get("WARC-Payload-Digest") or self.computed_digest

    def http(self) -> tuple[HttpHead, bytes] | None:
        """(head, payload) when the block is an HTTP message, else None (payload: as kept)."""
        ctype = (self.get("Content-Type") or "").lower()
        if "application/http" not in ctype:
            return None
        end, sep = _head_end(self.block)
        if end < 0:
            return HttpHead.parse(self.block), b""
        return HttpHead.parse(self.block[:end]), self.block[end + sep:]


@dataclass
class CorruptRecord:
    offset: int
    length: int
    error: str


class WholeFileCompressed(WarcFormatError):
    """A WARC/ARC compressed as one stream: refused, with the command that fixes it."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} is compressed as a whole (several records in one compressed stream), so "
            f"its records cannot be read back by offset; run `socialark index --recompress "
            f"{name}` to write a per-record gzip copy beside it and index that")


class _Damaged(Exception):
    pass


def _head_end(block: bytes) -> tuple[int, int]:
    """(index, separator length) of the blank line ending an HTTP head; (-1, 0) if none."""
    crlf = block.find(b"\r\n\r\n")
    # a bare-LF blank line wins only when it ends before the CRLF one: look no further (in a
    # large binary block without one, searching the whole block is most of the cost)
    lf = block.find(b"\n\n", 0, crlf) if crlf >= 0 else block.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf <= lf + 1):
        return crlf, 4
    if lf >= 0:
        return lf, 2
    return -1, 0


# --- buffered reading of decompressed bytes --------------------------------------------------


class _Buf:
    """Line and block reads over a source of byte chunks, tracking the position."""

    def __init__(self, source: Callable[[], bytes], fh: BinaryIO | None = None) -> None:
        self.source = source
        self.fh = fh  # a seekable file under an uncompressed input: allows rewinding
        self.base = fh.tell() if fh is not None and _seekable(fh) else None
        self.data = b""
        self.i = 0
        self.pos = 0

    def _more(self) -> bool:
        chunk = self.source()
        if not chunk:
            return False
        self.data = self.data[self.i:] + chunk if self.i < len(self.data) else chunk
        self.i = 0
        return True

    def peek(self, n: int) -> bytes:
        while len(self.data) - self.i < n and self._more():
            pass
        return self.data[self.i:self.i + n]

    def readline(self, limit: int = MAX_LINE) -> bytes:
        searched = self.i
        while True:
            j = self.data.find(b"\n", searched, self.i + limit)
            if j >= 0:
                return self._consume(j + 1 - self.i)
            if len(self.data) - self.i >= limit:
                raise _Damaged(f"header line longer than {limit:,} bytes")
            seen = len(self.data) - self.i
            if not self._more():
                return self._consume(len(self.data) - self.i)
            searched = self.i + seen

    def read_until(self, sep: bytes, limit: int) -> bytes | None:
        """Consume and return the bytes up to and including ``sep`` when every newline before
        it is a CRLF; else None, consuming nothing (the caller reads line by line)."""
        searched = self.i
        while True:
            j = self.data.find(sep, searched, self.i + limit)
            if j >= 0:
                end = j + len(sep)
                if self.data.count(b"\n", self.i, end) != self.data.count(b"\r\n", self.i, end):
                    return None
                return self._consume(end - self.i)
            if len(self.data) - self.i >= limit:
                return None
            seen = max(len(self.data) - self.i - len(sep) + 1, 0)
            if not self._more():
                return None
            searched = self.i + seen

    def _consume(self, n: int) -> bytes:
        out = self.data[self.i:self.i + n]
        self.i += len(out)
        self.pos += len(out)
        return out

    def read(self, n: int) -> bytes:
        if len(self.data) - self.i >= n:
            return self._consume(n)
        parts = [self.data[self.i:]]
        got = len(parts[0])
        self.data, self.i = b"", 0
        while got < n:
            chunk = self.source()
            if not chunk:
                break
            if got + len(chunk) > n:
                cut = n - got
                parts.append(chunk[:cut])
                self.data = chunk[cut:]
                got = n
                break
            parts.append(chunk)
            got += len(chunk)
        self.pos += got
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def skip(self, n: int) -> int:
        """Consume ``n`` bytes without building them (a block nobody reads); the number
        consumed (fewer at the end of the input)."""
        have = len(self.data) - self.i
        if have >= n:
            self.i += n
            self.pos += n
            return n
        got = have
        self.data, self.i = b"", 0
        while got < n:
            chunk = self.source()
            if not chunk:
                break
            if got + len(chunk) > n:
                self.data, self.i = chunk, n - got
                got = n
                break
            got += len(chunk)
        self.pos += got
        return got

    def skip_blank(self) -> None:
        while True:
            while self.i < len(self.data) and self.data[self.i] in (10, 13):
                self.i += 1
                self.pos += 1
            if self.i < len(self.data) or not self._more():
                return

    def rest_has_text(self) -> bool:
        """Consume everything left; whether any of it was not whitespace."""
        text = bool(self.data[self.i:].strip())
        self.pos += len(self.data) - self.i
        self.data, self.i = b"", 0
        while chunk := self.source():
            text = text or bool(chunk.strip())
            self.pos += len(chunk)
        return text

    @property
    def seekable(self) -> bool:
        return self.base is not None and self.fh is not None

    def seek(self, pos: int) -> None:
        """Go to ``pos`` when the input is a seekable file (else stay where we are)."""
        if self.base is None or self.fh is None or pos == self.pos:
            return
        self.fh.seek(self.base + pos)
        self.data, self.i, self.pos = b"", 0, pos

    def scan(self, pattern: re.Pattern[bytes]) -> bool:
        """Move to the first record start (``pattern`` matches the newline before it); False,
        at the end of the input, when there is none."""
        while True:
            m = pattern.search(self.data, self.i)
            if m:
                self._consume(m.start() + 1 - self.i)
                return True
            keep = min(len(self.data) - self.i, 8192)
            self._consume(len(self.data) - self.i - keep)
            if not self._more():
                self._consume(len(self.data) - self.i)
                return False


def _seekable(fh: BinaryIO) -> bool:
    probe = getattr(fh, "seekable", None)
    try:
        return bool(probe and probe())
    except (OSError, ValueError):
        return False


# --- one record ------------------------------------------------------------------------------


def _read_headers(buf: _Buf, offset: int, arc: bool | None,
                  sink: Callable[[bytes], None] | None) -> tuple[list[tuple[str, str]], bool]:
    first = buf.readline()
    if _WARC_LINE.match(first):
        fast = buf.read_until(b"\r\n\r\n", MAX_HEAD)
        if fast is not None:  # the common case: CRLF lines, one split
            if sink is not None:
                sink(first + fast)
            return _header_fields(fast[:-4]) if len(fast) > 4 else [], False
        raw = [first]
        headers: list[tuple[str, str]] = []
        size = len(first)
        while True:
            line = buf.readline()
            size += len(line)
            raw.append(line)
            if size > MAX_HEAD:
                raise _Damaged(f"WARC header longer than {MAX_HEAD:,} bytes")
            if not line:
                raise _Damaged("record truncated (in its WARC header)")
            if not line.strip(b"\r\n"):
                break
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if text[:1] in (" ", "\t") and headers:  # a folded (continuation) line
                headers[-1] = (headers[-1][0], (headers[-1][1] + " " + text.strip()).strip())
                continue
            name, sep, value = text.partition(":")
            if not sep or not name.strip():
                raise _Damaged(f"malformed WARC header line {text[:60]!r}")
            headers.append((name.strip(), value.strip()))
        if sink is not None:
            sink(b"".join(raw))
        return headers, False
    if arc is not False and first.strip():
        try:
            headers = arc_headers(first, offset)
        except ArcHeaderError as exc:
            if arc is None:
                raise _Damaged("no WARC header (not a WARC record)") from None
            raise _Damaged(str(exc)) from None
        if sink is not None:
            sink(first)
        return headers, True
    raise _Damaged("no WARC header (not a WARC record)")


def _header_fields(block: bytes) -> list[tuple[str, str]]:
    """The fields of a WARC header block whose lines all end in CRLF (decoded once: the
    separators are ASCII, so this equals decoding line by line)."""
    headers: list[tuple[str, str]] = []
    for text in block.decode("utf-8", "replace").split("\r\n"):
        if text[:1] in (" ", "\t") and headers:  # a folded (continuation) line
            headers[-1] = (headers[-1][0], (headers[-1][1] + " " + text.strip()).strip())
            continue
        name, sep, value = text.partition(":")
        if not sep:
            raise _Damaged(f"malformed WARC header line {text.strip()[:60]!r}")
        name = name.strip()
        if not name:
            raise _Damaged(f"malformed WARC header line {text.strip()[:60]!r}")
        headers.append((name, value.strip()))
    return headers


def _content_length(rec: WarcRecordData) -> int:
    cl = rec._lookup.get("content-length")  # the first one, as in the header order
    if cl is None or not _CONTENT_LENGTH.match(cl):  # ASCII digits, bounded: never int("²")
        shown = cl if cl is None else cl[:20] + ("..." if len(cl) > 20 else "")
        raise _Damaged(f"record without a valid Content-Length ({shown!r})")
    return int(cl)


def _parse_one(buf: _Buf, offset: int, *, arc: bool | None, keep: int | None,
               sink: Callable[[bytes], None] | None = None) -> WarcRecordData:
    """Read one record at the buffer's position: headers, then the block streamed."""
    headers, is_arc = _read_headers(buf, offset, arc, sink)
    rec = WarcRecordData(offset, 0, headers, b"", 0, arc=is_arc)
    rec.block_length = length = _content_length(rec)
    want_digest = not rec.get("WARC-Payload-Digest") and rec.type in (
        "response", "revisit", "resource", "metadata")
    is_http = "application/http" in (rec.get("Content-Type") or "").lower()
    window = length if keep is None else min(length, max(keep, HEAD_WINDOW))
    first = buf.read(window)
    if sink is not None:
        sink(first)
    if len(first) < window:
        raise _Damaged("record truncated (block shorter than Content-Length)")
    hasher = None
    if want_digest:
        hasher = hashlib.sha1()
        start = 0
        if is_http:
            end, sep = _head_end(first)
            start = end + sep if end >= 0 else len(first)
        hasher.update(memoryview(first)[start:])
    remaining = length - len(first)
    if remaining and hasher is None and sink is None:  # the rest is not looked at
        if buf.skip(remaining) < remaining:
            raise _Damaged("record truncated (block shorter than Content-Length)")
        remaining = 0
    while remaining:
        chunk = buf.read(min(remaining, CHUNK))
        if not chunk:
            raise _Damaged("record truncated (block shorter than Content-Length)")
        if hasher is not None:
            hasher.update(chunk)
        if sink is not None:
            sink(chunk)
        remaining -= len(chunk)
    rec.block = first if keep is None or len(first) <= keep else first[:keep]
    if hasher is not None:
        rec.computed_digest = "sha1:" + base64.b32encode(hasher.digest()).decode("ascii")
    return rec


# --- whole inputs ----------------------------------------------------------------------------


def iter_records(path: Path, *, keep: int | None = BLOCK_KEEP
                 ) -> Iterator[WarcRecordData | CorruptRecord]:
    """Every record of a WARC/ARC file (see the module docstring for formats and damage)."""
    with open(path, "rb") as fh:
        yield from iter_stream_records(fh, name=str(path), keep=keep)


def iter_stream_records(
    fh: BinaryIO, *, name: str = "input", keep: int | None = BLOCK_KEEP
) -> Iterator[WarcRecordData | CorruptRecord]:
    """Every record of a binary stream read once, front to back (a file, an HTTP or S3 body).

    Offsets are relative to the stream's position on entry. ``keep`` bounds the block bytes
    kept per record (``None``: all). Raises ``WarcFormatError`` when the input is no archive
    at all and ``WholeFileCompressed`` for a file compressed as one stream."""
    src = _Prefixed(fh)
    head = src.peek(16)
    if head[:2] == b"\x1f\x8b":
        yield from _iter_gzip(src, name, keep)
    elif is_zstd_start(head):
        yield from _iter_zstd(src, name, keep)
    elif head.startswith(b"WARC/") or looks_like_arc(head):
        yield from _iter_plain(src, looks_like_arc(head), keep)
    else:
        raise WarcFormatError(f"{name} is not a WARC file (nor ARC: no gzip, zstd, 'WARC/' or "
                              "'filedesc://' at its start)")


def _iter_plain(src: _Prefixed, arc: bool, keep: int | None,
                sink: Callable[[bytes], None] | None = None,
                end_record: Callable[[WarcRecordData | None], None] | None = None,
                ) -> Iterator[WarcRecordData | CorruptRecord]:
    """Records of an uncompressed input, delimited by their lengths and checked: each must be
    followed by the next record (or the end)."""
    buf = _Buf(lambda: src.read(CHUNK), src)  # type: ignore[arg-type]
    start_re = ARC_START if arc else WARC_START
    while True:
        buf.skip_blank()
        offset = buf.pos
        if not buf.peek(1):
            return
        try:
            rec = _parse_one(buf, offset, arc=arc, keep=keep, sink=sink)
        except _Damaged as exc:
            if end_record is not None:
                end_record(None)
            buf.seek(offset + 1)
            buf.scan(start_re)
            yield CorruptRecord(offset, buf.pos - offset, str(exc))
            continue
        buf.skip_blank()
        end = buf.pos
        if not _at_record(buf, arc):
            # A Content-Length a few bytes short leaves the rest of a line: skipped, as
            # warcio skips it.
            try:
                buf.readline()
            except _Damaged:
                pass
            buf.skip_blank()
            if _at_record(buf, arc):
                end = buf.pos
            elif buf.seekable:
                # Is there a record start inside this record's block? Then its Content-Length
                # is wrong: the record is damaged, the ones it swallowed are read again.
                buf.seek(offset + 1)
                if buf.scan(start_re) and buf.pos < end:
                    if end_record is not None:
                        end_record(None)
                    yield CorruptRecord(offset, buf.pos - offset, "the block does not end "
                                        "where Content-Length says (a record starts inside it)")
                    continue
                buf.seek(end)
        rec.length = end - offset
        if end_record is not None:
            end_record(rec)
        yield rec
        if not _at_record(buf, arc):  # bytes that are no record: skip to the next one
            start = buf.pos
            buf.scan(start_re)
            yield CorruptRecord(start, buf.pos - start, "bytes that are not a record (a damaged "
                                "header?) skipped up to the next record")


def _at_record(buf: _Buf, arc: bool) -> bool:
    """Whether the input is at its end or at the start of a record."""
    nxt = buf.peek(MAX_LINE if arc else 5)
    if not nxt:
        return True
    return bool(ARC_START.match(b"\n" + nxt)) if arc else nxt.startswith(b"WARC/")


def _iter_units(reader: GzipMemberReader | ZstdFrameReader, next_unit: Callable[[], int | None],
                name: str, keep: int | None) -> Iterator[WarcRecordData | CorruptRecord]:
    """Records of a per-record compressed file: one gzip member / zstd frame each."""
    damaged = (MemberDamaged, FrameDamaged)
    first, arc = True, None
    while True:
        try:
            start = next_unit()
        except damaged as exc:
            yield CorruptRecord(exc.offset, exc.length, exc.error)
            continue
        if start is None:
            return
        buf = _Buf(reader.read)
        try:
            buf.skip_blank()
            if not buf.peek(1):
                continue  # an empty member (some tools end a file with one)
            if arc is None:
                arc = looks_like_arc(buf.peek(16))
            rec = _parse_one(buf, start, arc=arc, keep=keep)
            more = buf.rest_has_text()
        except damaged as exc:
            first = False
            yield CorruptRecord(exc.offset, exc.length, exc.error)
            continue
        except _Damaged as exc:
            first = False
            try:
                reader.drain()
            except damaged as dexc:
                yield CorruptRecord(start, dexc.length, f"{exc}; {dexc.error}")
                continue
            yield CorruptRecord(start, reader.length, str(exc))
            continue
        if more and first:
            raise WholeFileCompressed(name)
        first = False
        rec.length = reader.length
        yield rec
        if more:
            yield CorruptRecord(start, reader.length, "more than one record in this compressed "
                                "member: only the first can be read back by offset (run "
                                f"`socialark index --recompress {name}`)")


def _iter_gzip(src: _Prefixed, name: str, keep: int | None
               ) -> Iterator[WarcRecordData | CorruptRecord]:
    reader = GzipMemberReader(src, chunk_size=GZIP_READ)  # type: ignore[arg-type]
    yield from _iter_units(reader, reader.next_member, name, keep)


def _iter_zstd(src: _Prefixed, name: str, keep: int | None
               ) -> Iterator[WarcRecordData | CorruptRecord]:
    reader = ZstdFrameReader(src)  # type: ignore[arg-type]
    yield from _iter_units(reader, reader.next_frame, name, keep)


class _Prefixed:
    """A stream with a peeked prefix put back in front; seeks pass through (for rescans)."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.prefix = b""
        self.start = fh.tell() if _seekable(fh) else None

    def peek(self, n: int) -> bytes:
        while len(self.prefix) < n:
            more = self.fh.read(n - len(self.prefix))
            if not more:
                break
            self.prefix += more
        return self.prefix[:n]

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

    def seekable(self) -> bool:
        return self.start is not None

    def tell(self) -> int:
        return self.fh.tell() - len(self.prefix)

    def seek(self, pos: int) -> int:
        self.prefix = b""
        return self.fh.seek(pos)


# --- single records (read back by offset) ----------------------------------------------------


def parse_record_bytes(data: bytes, offset: int, length: int,
                       dictionary: bytes | None = None) -> WarcRecordData:
    """One record from the bytes of its gzip member / zstd frame (or of the plain record), as
    read back from an index row's offset and length. Bombs and damage raise WarcFormatError.
    (A zstd frame made with a dictionary needs the file's ``dictionary``:
    ``read_zstd_dictionary``.)"""
    src = _Prefixed(io.BytesIO(data))
    head = src.peek(16)
    if head[:2] == b"\x1f\x8b":
        reader: GzipMemberReader | ZstdFrameReader = GzipMemberReader(src)  # type: ignore[arg-type]
        next_unit = reader.next_member
    elif is_zstd_start(head):
        reader = ZstdFrameReader(src,  # type: ignore[arg-type]
                                 dictionary=_zstd_dict(dictionary) if dictionary else None)
        next_unit = reader.next_frame
    else:
        buf = _Buf(lambda: src.read(CHUNK))
        try:
            buf.skip_blank()
            rec = _parse_one(buf, offset, arc=None, keep=None)
        except _Damaged as exc:
            raise WarcFormatError(str(exc)) from None
        rec.length = length
        return rec
    try:
        if next_unit() is None:
            raise WarcFormatError(f"no record at offset {offset}")
        buf = _Buf(reader.read)
        buf.skip_blank()
        rec = _parse_one(buf, offset, arc=None, keep=None)
    except (MemberDamaged, FrameDamaged) as exc:
        raise WarcFormatError(f"record at offset {offset}: {exc.error}") from None
    except _Damaged as exc:
        raise WarcFormatError(f"record at offset {offset}: {exc}") from None
    rec.length = length
    return rec


def read_zstd_dictionary(fh: BinaryIO) -> bytes | None:
    """The dictionary frame at the start of a ``.warc.zst`` (raw bytes, to hand to
    ``parse_record_bytes``), or None."""
    head = fh.read(8)
    if len(head) < 8 or head[:4] != b"\x5d\x2a\x4d\x18":
        return None
    size = int.from_bytes(head[4:], "little")
    return head + fh.read(size)


def zstd_dictionary_for(path: str | Path | None) -> bytes | None:
    """The dictionary frame of a local ``.warc.zst`` (cached per file version), else None:
    what ``parse_record_bytes`` needs to read one of its frames back by offset."""
    if path is None or not str(path).lower().endswith(".zst"):
        return None
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return _dictionary_cached(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)
def _dictionary_cached(path: str, mtime_ns: int, size: int) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return read_zstd_dictionary(fh)
    except OSError:
        return None


# --- recompressing a whole-file gzip/zstd archive --------------------------------------------


@dataclass
class RecompressResult:
    path: Path
    records: int
    corrupt: list[CorruptRecord]


def recompressed_name(path: Path) -> Path:
    name = path.name
    for ext in (".gz", ".zst"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
    stem, dot, kind = name.rpartition(".")
    if not dot or kind.lower() not in ("warc", "arc"):
        stem, kind = name, "warc"
    return path.with_name(f"{stem}-recompressed.{kind}.gz")


def recompress(path: Path, out: Path | None = None) -> RecompressResult:
    """Write a per-record gzip copy of ``path`` (any format this reader takes; usually a file
    compressed as a whole) beside it, streaming; like ``warcio recompress``."""
    import gzip

    out = out or recompressed_name(path)
    corrupt: list[CorruptRecord] = []
    records = 0
    tmp = out.with_name(out.name + ".part")
    with open(path, "rb") as raw, open(tmp, "wb") as dst:
        head = raw.read(16)
        raw.seek(0)
        stream: BinaryIO
        if head[:2] == b"\x1f\x8b":
            stream = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]
        elif is_zstd_start(head):
            dictionary = read_zstd_dictionary(raw)
            raw.seek(0)
            dctx = zstandard.ZstdDecompressor()
            if dictionary:
                dctx = zstandard.ZstdDecompressor(dict_data=_zstd_dict(dictionary))
            stream = dctx.stream_reader(raw, read_across_frames=True)  # type: ignore[assignment]
        else:
            stream = raw
        src = _Prefixed(_NoSeek(stream))
        first = src.peek(16)
        if not (first.startswith(b"WARC/") or looks_like_arc(first)):
            raise WarcFormatError(f"{path.name} is not a WARC or ARC file")
        arc = looks_like_arc(first)
        comp = zlib.compressobj(6, zlib.DEFLATED, 31)

        record_start = 0

        def sink(data: bytes) -> None:
            dst.write(comp.compress(data))

        def end_record(rec: WarcRecordData | None) -> None:
            nonlocal comp, record_start
            if rec is not None:
                dst.write(comp.compress(b"\n" if arc else b"\r\n\r\n") + comp.flush())
            else:  # a damaged record: drop what was written of it
                dst.seek(record_start)
                dst.truncate()
            record_start = dst.tell()
            comp = zlib.compressobj(6, zlib.DEFLATED, 31)

        try:
            for item in _iter_plain(src, arc, 0, sink=sink, end_record=end_record):
                if isinstance(item, CorruptRecord):
                    corrupt.append(item)
                else:
                    records += 1
        except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
            raise WarcFormatError(f"cannot decompress {path.name}: {exc}") from None
    tmp.replace(out)
    return RecompressResult(out, records, corrupt)


def _zstd_dict(frame: bytes) -> zstandard.ZstdCompressionDict:
    data = frame[8:]
    if data[:4] == b"\x28\xb5\x2f\xfd":
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return zstandard.ZstdCompressionDict(data)


class _NoSeek:
    """A decompressed stream seen as unseekable (a damaged record is not rewound into)."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh

    def read(self, n: int = -1) -> bytes:
        return self.fh.read(n)

    def seekable(self) -> bool:
        return False


def warcinfo_fields(block: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out.setdefault(k.strip(), v.strip())
    return out
