"""WARC files on disk: one writer per crawl process, rotation, ``.open`` files, crash repair.

A file is written as ``<name>.warc.gz.open``, one gzip member per record, ``warcinfo`` first.
Records that belong together (a response and its request) are written as one group, never split
across files. Each group is flushed to the OS as soon as it is written, so a ``kill -9`` loses at
most the group being written; on close the file is fsynced and renamed to its final name.
``repair_open_file`` turns a file left ``.open`` by a crash into a valid closed WARC by truncating
it after its last complete record.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storage.media import member_level
from storage.records import Record, warc_date, warc_fields_block

OPEN_SUFFIX = ".open"
WARC_SUFFIX = ".warc.gz"
DEFAULT_MAX_SIZE = 1_000_000_000


@dataclass(frozen=True)
class WrittenRecord:
    record: Record
    filename: str
    offset: int
    length: int


@dataclass(frozen=True)
class ClosedFile:
    name: str
    path: Path
    size: int
    sha256: str
    records: int
    closed_at: str


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _safe_host(hostname: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", hostname) or "host"


def gzip_member(data: bytes, level: int = 6) -> bytes:
    comp = zlib.compressobj(level, zlib.DEFLATED, 31)
    return comp.compress(data) + comp.flush()


class WarcWriter:
    """Appends records to rotating WARC files in ``directory``.

    Not thread-safe by design: one writer per crawl process, driven from one thread.
    ``on_open(name, path)`` and ``on_close(ClosedFile)`` let the caller keep the index in step.
    """

    def __init__(
        self,
        directory: Path,
        *,
        prefix: str = "socialark",
        max_size: int = DEFAULT_MAX_SIZE,
        warcinfo: Sequence[tuple[str, str]] = (),
        gzip_level: int = 6,
        media_gzip_level: int | None = None,
        on_open: Callable[[str, Path], None] | None = None,
        on_close: Callable[[ClosedFile], None] | None = None,
        clock: Callable[[], datetime] = _utcnow,
        hostname: str | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", prefix)
        self.max_size = max_size
        self.warcinfo = list(warcinfo)
        self.gzip_level = gzip_level
        self.media_gzip_level = media_gzip_level  # already-compressed payloads (storage.media)
        self.on_open = on_open
        self.on_close = on_close
        self.clock = clock
        self.hostname = _safe_host(hostname or socket.gethostname())
        self._serial = 0
        self._fh: object | None = None
        self._name: str | None = None
        self._offset = 0
        self._records = 0
        self._sha = hashlib.sha256()
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def current_name(self) -> str | None:
        return self._name

    @property
    def current_size(self) -> int:
        return self._offset

    def _next_name(self) -> str:
        while True:
            stamp = self.clock().strftime("%Y%m%d%H%M%S")
            name = f"{self.prefix}-{stamp}-{self._serial:05d}-{self.hostname}-{os.getpid()}{WARC_SUFFIX}"
            self._serial += 1
            if not (self.directory / name).exists() and not (
                self.directory / (name + OPEN_SUFFIX)
            ).exists():
                return name

    def _open(self) -> None:
        name = self._next_name()
        path = self.directory / (name + OPEN_SUFFIX)
        self._fh = open(path, "xb")
        self._name, self._offset, self._records = name, 0, 0
        self._sha = hashlib.sha256()
        if self.on_open:
            self.on_open(name, self.directory / name)
        info = Record(
            warc_type="warcinfo",
            target_uri=None,
            date=warc_date(self.clock()),
            content_type="application/warc-fields",
            block=warc_fields_block(self.warcinfo),
            fields=[("WARC-Filename", name)],
        )
        self._append([info])

    def _append(self, records: Sequence[Record]) -> list[WrittenRecord]:
        assert self._fh is not None and self._name is not None
        written, chunks = [], []
        offset = self._offset
        for rec in records:
            member = gzip_member(rec.to_bytes(), member_level(rec, self.gzip_level, self.media_gzip_level))
            written.append(WrittenRecord(rec, self._name, offset, len(member)))
            chunks.append(member)
            offset += len(member)
        data = b"".join(chunks)
        self._fh.write(data)  # type: ignore[attr-defined]
        self._fh.flush()  # type: ignore[attr-defined]
        self._sha.update(data)
        self._offset = offset
        self._records += len(records)
        return written

    def write(self, records: Sequence[Record]) -> list[WrittenRecord]:
        """Write ``records`` as one group in the same file, rotating first if the file is full."""
        if self._fh is not None and self._offset >= self.max_size:
            self.close()
        if self._fh is None:
            self._open()
        return self._append(records)

    def close(self) -> ClosedFile | None:
        """fsync, rename ``.open`` away, report the closed file. Idempotent."""
        if self._fh is None or self._name is None:
            return None
        fh, name = self._fh, self._name
        self._fh, self._name = None, None
        fh.flush()  # type: ignore[attr-defined]
        os.fsync(fh.fileno())  # type: ignore[attr-defined]
        fh.close()  # type: ignore[attr-defined]
        final = self.directory / name
        os.replace(self.directory / (name + OPEN_SUFFIX), final)
        _fsync_dir(self.directory)
        closed = ClosedFile(
            name=name,
            path=final.resolve(),
            size=self._offset,
            sha256=self._sha.hexdigest(),
            records=self._records,
            closed_at=warc_date(self.clock()),
        )
        if self.on_close:
            self.on_close(closed)
        return closed


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- crash repair -------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    offset: int
    length: int
    complete: bool


def _record_complete(head: bytes, total: int) -> bool:
    """Does a decompressed member hold exactly one whole WARC record?"""
    end = head.find(b"\r\n\r\n")
    if not head.startswith(b"WARC/") or end < 0:
        return False
    m = re.search(rb"\r\nContent-Length:\s*(\d+)", head[:end], re.IGNORECASE)
    return bool(m) and total == end + 4 + int(m.group(1)) + 4


def scan_members(path: Path) -> Iterator[Member]:
    """Walk the gzip members of ``path``; the last one may be incomplete (``complete=False``).

    Streams the file and keeps only the first 64 KiB of each record's text, so it is cheap on
    multi-gigabyte files.
    """
    with open(path, "rb") as fh:
        start, consumed = 0, 0
        d = zlib.decompressobj(31)
        head, total = bytearray(), 0
        while True:
            data = fh.read(1 << 20)
            if not data:
                break
            while data:
                try:
                    out = d.decompress(data)
                except zlib.error:
                    yield Member(start, os.path.getsize(path) - start, False)
                    return
                total += len(out)
                if len(head) < 65536:
                    head += out[: 65536 - len(head)]
                if not d.eof:
                    consumed += len(data)
                    break
                used = len(data) - len(d.unused_data)
                length = consumed + used
                yield Member(start, length, _record_complete(bytes(head), total))
                start += length
                consumed = 0
                data = d.unused_data
                d = zlib.decompressobj(31)
                head, total = bytearray(), 0
        size = os.path.getsize(path)
        if start < size:
            yield Member(start, size - start, False)


@dataclass(frozen=True)
class RepairResult:
    path: Path
    records: int
    kept_bytes: int
    removed_bytes: int


def repair_open_file(open_path: Path) -> RepairResult:
    """Truncate a crashed ``.open`` WARC after its last complete record and close it."""
    keep = 0
    records = 0
    for member in scan_members(open_path):
        if not member.complete:
            break
        keep = member.offset + member.length
        records += 1
    size = os.path.getsize(open_path)
    with open(open_path, "r+b") as fh:
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    final = open_path.with_name(open_path.name[: -len(OPEN_SUFFIX)])
    if records == 0:
        # Nothing usable (crash before the warcinfo was written): remove the empty shell.
        open_path.unlink()
        return RepairResult(final, 0, 0, size)
    os.replace(open_path, final)
    _fsync_dir(final.parent)
    return RepairResult(final, records, keep, size - keep)


def find_open_files(directory: Path) -> list[Path]:
    if not directory.exists():
        return []
    return sorted(directory.rglob("*" + WARC_SUFFIX + OPEN_SUFFIX))
