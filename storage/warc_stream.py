"""Records whose block comes from a file: gzip-compressed in chunks, never whole in memory.

``StreamingWarcWriter`` is a ``WarcWriter`` that can also append a ``StreamedRecord`` (its block
is an in-memory prefix, the HTTP head, followed by a spooled body file). It is meant to be used
from a worker thread, so a multi-gigabyte record never blocks the thread that writes the small
records; each instance owns its own files (unique names, see ``first_serial``). Memory use is a
few MiB whatever the record size. A failed write is cut back to where the record started and
raised as ``ArchiveWriteError``, so the file still ends after its last complete record.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.errors import ArchiveWriteError
from storage.media import member_level
from storage.records import CRLF, Digester, Record
from storage.warc import WarcWriter, WrittenRecord, _write_all

CHUNK = 1 << 20


@dataclass
class StreamedRecord:
    """``record`` holds the WARC fields and the block's prefix; the rest of the block is the
    first ``body_length`` bytes of ``body_path``. ``record.field('WARC-Block-Digest')`` must be
    over prefix + body (``storage.spool.BodySpool`` computes it while the body arrives)."""

    record: Record
    body_path: Path
    body_length: int

    @property
    def content_length(self) -> int:
        return len(self.record.block) + self.body_length

    def body_chunks(self) -> Any:
        remaining = self.body_length
        with open(self.body_path, "rb") as fh:
            while remaining:
                chunk = fh.read(min(CHUNK, remaining))
                if not chunk:
                    raise ValueError(f"{self.body_path} is shorter than {self.body_length} bytes")
                remaining -= len(chunk)
                yield chunk


def block_digest_of(streamed: StreamedRecord, algorithm: str) -> str:
    """Digest of prefix + body read back from the file (when it could not be taken earlier)."""
    d = Digester(algorithm)
    d.update(streamed.record.block)
    for chunk in streamed.body_chunks():
        d.update(chunk)
    return str(d)


class StreamingWarcWriter(WarcWriter):
    """A ``WarcWriter`` that also writes ``StreamedRecord``s (see the module docstring)."""

    def __init__(self, directory: Path, *, first_serial: int = 0, **kwargs: Any) -> None:
        super().__init__(directory, **kwargs)
        # Names are <prefix>-<time>-<serial>-<host>-<pid>: a distinct serial range per writer
        # keeps the names of writers in one process (and one second) apart.
        self._serial = first_serial

    def write_streamed(
        self, streamed: StreamedRecord, following: Sequence[Record] = ()
    ) -> list[WrittenRecord]:
        """Append ``streamed`` then ``following`` (its request record) as one group."""
        if self._fd is not None and self._offset >= self.max_size:
            self.close()
        if self._fd is None:
            self._open()
        assert self._fd is not None and self._name is not None
        if self._broken is not None:
            raise ArchiveWriteError(self._open_path, self._broken)
        start, before, records = self._offset, self._sha, self._records
        sha = before.copy()
        try:
            length = self._write_member(streamed, sha)
        except OSError as exc:
            self._rewind(exc)  # back to ``start``: self._offset is not advanced yet
            raise ArchiveWriteError(self._open_path, exc) from exc
        first = WrittenRecord(streamed.record, self._name, start, length)
        self._offset, self._sha, self._records = start + length, sha, records + 1
        try:
            rest = self._append(list(following)) if following else []
        except BaseException as exc:
            self._offset, self._sha, self._records = start, before, records
            self._rewind(exc if isinstance(exc, OSError) else OSError(str(exc)))
            raise
        return [first, *rest]

    def _write_member(self, streamed: StreamedRecord, sha: Any) -> int:
        fd = self._fd
        assert fd is not None
        level = member_level(streamed.record, self.gzip_level, self.media_gzip_level)
        comp = zlib.compressobj(level, zlib.DEFLATED, 31)
        written = 0

        def out(data: bytes) -> None:
            nonlocal written
            if data:
                _write_all(fd, data)
                sha.update(data)
                written += len(data)

        out(comp.compress(streamed.record.header_bytes(streamed.content_length)))
        out(comp.compress(streamed.record.block))
        for chunk in streamed.body_chunks():
            out(comp.compress(chunk))
        out(comp.compress(CRLF + CRLF))
        out(comp.flush())
        return written
