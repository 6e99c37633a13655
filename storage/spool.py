"""Spooling a large response body to disk while it arrives, digesting it on the way.

A body past the spool threshold is written to a temporary file under the data dir (not /tmp:
that is often a small RAM-backed filesystem) instead of being held in memory. The payload digest
and the WARC block digest (HTTP head + payload) are computed chunk by chunk as the bytes arrive,
so the record can be written later from the file without reading it twice. A body longer than
the record size limit is kept up to the limit and marked truncated (``WARC-Truncated: length``).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from storage._process import pid_alive
from storage.records import Digester

SPOOL_SUFFIX = ".spool"


@dataclass(frozen=True)
class SpooledBody:
    """A finished spool: the body bytes kept in ``path`` and their digests."""

    path: Path
    length: int
    payload_digest: str
    block_digest: str
    block_prefix: bytes
    received: int
    truncated: bool

    def discard(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


class BodySpool:
    """An open spool file: ``write`` chunks in order, then ``finish`` (or ``discard``).

    ``block_prefix`` is the HTTP head exactly as the record will store it; the block digest is
    over ``block_prefix + body``. ``limit`` caps the bytes kept (0 = no cap).
    """

    def __init__(
        self, directory: Path, *, block_prefix: bytes, algorithm: str = "sha256", limit: int = 0,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"{os.getpid()}-", suffix=SPOOL_SUFFIX, dir=directory)
        self.path = Path(name)
        self._fh = os.fdopen(fd, "wb")
        self.block_prefix = block_prefix
        self.limit = limit
        self.length = 0
        self.received = 0
        self._payload = Digester(algorithm)
        self._block = Digester(algorithm)
        self._block.update(block_prefix)

    @property
    def full(self) -> bool:
        """Has the body reached the record size limit (further bytes would be dropped)?"""
        return bool(self.limit) and self.length >= self.limit

    def write(self, data: bytes) -> None:
        self.received += len(data)
        if self.limit:
            data = data[: max(0, self.limit - self.length)]
        if not data:
            return
        self._fh.write(data)
        self._payload.update(data)
        self._block.update(data)
        self.length += len(data)

    def finish(self) -> SpooledBody:
        self._fh.close()
        return SpooledBody(
            path=self.path, length=self.length, payload_digest=str(self._payload),
            block_digest=str(self._block), block_prefix=self.block_prefix,
            received=self.received, truncated=self.received > self.length,
        )

    def discard(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def remove_stale_spools(directory: Path) -> int:
    """Delete spool files left by processes that no longer run (a crash, kill -9)."""
    def stale(path: Path) -> bool:
        m = re.match(r"(\d+)-", path.name)
        return not (m and pid_alive(int(m.group(1))))

    return _remove(directory, "*" + SPOOL_SUFFIX, stale)


def remove_own_spools(directory: Path) -> int:
    """Delete this process's spool files once its crawl has closed: bodies of transfers that
    were cut by a stop or a write failure, or finished but never archived because the crawl
    was already stopping (their URLs stay queued for ``--resume``)."""
    return _remove(directory, f"{os.getpid()}-*" + SPOOL_SUFFIX, lambda _path: True)


def _remove(directory: Path, pattern: str, wanted: Callable[[Path], bool]) -> int:
    if not directory.is_dir():
        return 0
    removed = 0
    for path in directory.glob(pattern):
        if not wanted(path):
            continue
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    return removed
