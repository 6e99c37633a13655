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

from storage._faults import crash_point
from storage.errors import ArchiveWriteError
from storage.gzip_members import iter_gzip_members
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
        self._fd: int | None = None
        self._name: str | None = None
        self._offset = 0
        self._synced = 0
        self._broken: OSError | None = None
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
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise ArchiveWriteError(path, exc) from exc
        self._name, self._offset, self._records = name, 0, 0
        self._synced = 0
        self._sha = hashlib.sha256()
        info = Record(
            warc_type="warcinfo",
            target_uri=None,
            date=warc_date(self.clock()),
            content_type="application/warc-fields",
            block=warc_fields_block(self.warcinfo),
            fields=[("WARC-Filename", name)],
        )
        try:
            self._append([info])
        except ArchiveWriteError:
            # Not even the warcinfo fits: leave no empty shell behind.
            os.close(self._fd)
            self._fd, self._name = None, None
            path.unlink(missing_ok=True)
            raise
        if self.on_open:
            self.on_open(name, self.directory / name)

    @property
    def _open_path(self) -> Path:
        assert self._name is not None
        return self.directory / (self._name + OPEN_SUFFIX)

    def _append(self, records: Sequence[Record]) -> list[WrittenRecord]:
        """Write one group at the current offset; on failure cut the file back and raise.

        Writes go straight to the file descriptor (no user-space buffer), so after a failed
        ``write`` (ENOSPC, EFBIG, EIO) nothing is pending and truncating to the last good offset
        leaves a file that ends on a record boundary. If even the truncation fails the writer is
        marked broken: the file stays ``.open`` and the next run's repair cuts the partial record.
        """
        assert self._fd is not None and self._name is not None
        if self._broken is not None:
            raise ArchiveWriteError(self._open_path, self._broken)
        written, chunks = [], []
        offset = self._offset
        for rec in records:
            member = gzip_member(rec.to_bytes(), member_level(rec, self.gzip_level, self.media_gzip_level))
            written.append(WrittenRecord(rec, self._name, offset, len(member)))
            chunks.append(member)
            offset += len(member)
        data = b"".join(chunks)
        try:
            _write_all(self._fd, data)
        except OSError as exc:
            self._rewind(exc)
            raise ArchiveWriteError(self._open_path, exc) from exc
        self._sha.update(data)
        self._offset = offset
        self._records += len(records)
        return written

    def _rewind(self, cause: OSError) -> None:
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, self._offset)
            os.lseek(self._fd, self._offset, os.SEEK_SET)
        except OSError:
            self._broken = cause

    def write(self, records: Sequence[Record]) -> list[WrittenRecord]:
        """Write ``records`` as one group in the same file, rotating first if the file is full.

        Raises ``ArchiveWriteError`` when the disk refuses the bytes; the file then ends after
        the last complete group, and nothing of ``records`` is reported as written.
        """
        if self._fd is not None and self._offset >= self.max_size:
            self.close()
        if self._fd is None:
            self._open()
        return self._append(records)

    def sync(self) -> None:
        """Make every record written so far durable (fdatasync), if anything is new.

        Called before a frontier commit: a URL is marked done only once its record would
        survive a power loss. Cheap when grouped (one call per frontier batch).
        """
        if self._fd is None or self._synced == self._offset or self._broken is not None:
            return
        try:
            _fdatasync(self._fd)
        except OSError as exc:
            raise ArchiveWriteError(self._open_path, exc) from exc
        self._synced = self._offset

    def close(self) -> ClosedFile | None:
        """fsync, rename ``.open`` away, report the closed file. Idempotent.

        A file whose last write could not be cut back (``broken``) or that cannot be fsynced
        keeps its ``.open`` name, for the next run to repair, and ``ArchiveWriteError`` is raised.
        """
        if self._fd is None or self._name is None:
            return None
        fd, name, broken = self._fd, self._name, self._broken
        open_path = self._open_path
        self._fd, self._name, self._broken = None, None, None
        try:
            if broken is None:
                os.fsync(fd)
        except OSError as exc:
            broken = exc
        finally:
            os.close(fd)
        if broken is not None:
            raise ArchiveWriteError(open_path, broken)
        final = self.directory / name
        try:
            os.replace(open_path, final)
        except OSError as exc:
            raise ArchiveWriteError(open_path, exc) from exc
        _fsync_dir(self.directory)
        crash_point("warc_renamed")
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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fdatasync(fd: int) -> None:
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


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

    Streams the file (``storage.gzip_members``, the walker the reader uses too) and keeps only
    the first 64 KiB of each record's text, so it is cheap on multi-gigabyte files. A damaged
    member is incomplete; repair keeps nothing from it on.
    """
    with open(path, "rb") as fh:
        for m in iter_gzip_members(fh, keep=65536):
            complete = m.data is not None and _record_complete(m.data, m.size)
            yield Member(m.offset, m.length, complete)


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
