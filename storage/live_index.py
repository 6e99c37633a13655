"""``LiveIndex``: the index writer of one crawl process (captures, items, ``warc_files``, ``crawls``).

Rows are buffered and written in one transaction per batch, items (posts, accounts...) in the
same transaction as the captures they come from. A row leaves the buffer only once its
transaction has committed: a busy database (another process holding the write lock, SQLITE_BUSY)
is retried with backoff and the rows wait; a full disk or an I/O error becomes
``ArchiveWriteError`` with the rows still buffered. A file is only marked ``closed`` in the same
transaction as its last rows.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage._faults import crash_point
from storage.db import open_database
from storage.errors import ArchiveWriteError
from storage.exchange import Original
from storage.items_store import upsert_items
from storage.warc import ClosedFile

logger = logging.getLogger(__name__)

BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in BUSY_CODES
    return "locked" in str(exc) or "busy" in str(exc)


class LiveIndex:
    """Buffered writer of ``captures`` rows and items plus ``warc_files``/``crawls`` bookkeeping.

    ``flush()`` commits now (retrying a busy database for up to ``retry_for`` seconds);
    ``try_flush()`` is the cheap variant for the hot path and timers: one attempt that waits at
    most ``busy_timeout`` for the lock, keeping the rows for the next try when the database is
    busy (and giving up with ``ArchiveWriteError`` only once it has been busy ``busy_give_up``
    seconds in a row).
    """

    def __init__(
        self,
        db_path: Path,
        *,
        batch_size: int = 500,
        max_delay: float = 2.0,
        busy_timeout: float = 0.5,
        retry_for: float = 120.0,
        busy_give_up: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = Path(db_path)
        self.db = open_database(db_path)
        self.db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.retry_for = retry_for
        self.busy_give_up = busy_give_up
        self.sleep = sleep
        self._rows: list[dict[str, Any]] = []
        self._items: list[tuple[str, dict[str, Any], str]] = []
        self._pending_digests: dict[tuple[str, str], Original] = {}
        self._last_flush = time.monotonic()
        self._busy_since: float | None = None
        self._next_try = 0.0  # while busy, non-forced flushes wait until then (backoff)
        self._backoff = 0.0

    @property
    def pending(self) -> int:
        return len(self._rows) + len(self._items)

    # -- captures and items -----------------------------------------------------------------
    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if row["record_type"] == "response" and row["digest"]:
            key = (row["collection"], row["digest"])
            self._pending_digests.setdefault(
                key, Original(row["url"], row["warc_date"], row["record_id"])
            )
        self._maybe_flush()

    def add_items(self, items: list[tuple[str, dict[str, Any]]], collection: str) -> None:
        """Items extracted from captures: committed with (never before) the buffered captures."""
        self._items += [(table, item, collection) for table, item in items]
        self._maybe_flush()

    def due(self) -> bool:
        return bool(self.pending) and time.monotonic() - self._last_flush > self.max_delay

    def _maybe_flush(self) -> None:
        if self.pending >= self.batch_size or self.due():
            self.try_flush()

    def try_flush(self) -> bool:
        """Commit the buffer if the database is free; False (rows kept) if it is busy."""
        if self._busy_since is not None and time.monotonic() < self._next_try:
            return False
        return self._commit(None, force=False)

    def flush(self) -> None:
        """Commit the buffer, waiting out a busy database (``ArchiveWriteError`` if it never frees)."""
        self._commit(None, force=True)

    def _commit(self, extra: Callable[[], None] | None, *, force: bool) -> bool:
        """One transaction: the buffered captures, the buffered items, then ``extra``."""
        self._last_flush = time.monotonic()
        if not self._rows and not self._items and extra is None:
            return True
        rows, items = list(self._rows), list(self._items)

        def work() -> None:
            if rows:
                self.db["captures"].insert_all(rows, replace=True, batch_size=1000)
            crash_point("index_flush")
            by_coll: dict[str, list[tuple[str, dict[str, Any]]]] = {}
            for table, item, coll in items:
                by_coll.setdefault(coll, []).append((table, item))
            for coll, pairs in by_coll.items():
                upsert_items(self.db, pairs, coll)
            if extra is not None:
                extra()

        if not self._transaction(work, force=force):
            return False
        del self._rows[: len(rows)]
        del self._items[: len(items)]
        if not self._rows:
            self._pending_digests.clear()
        return True

    def _transaction(self, work: Callable[[], None], *, force: bool) -> bool:
        deadline = time.monotonic() + self.retry_for
        delay = 0.05
        while True:
            try:
                with self.db.conn:
                    work()
            except sqlite3.Error as exc:
                if not is_busy(exc):
                    raise ArchiveWriteError(self.path, exc) from exc
                now = time.monotonic()
                if self._busy_since is None:
                    self._busy_since = now
                    logger.warning("Index %s is locked by another process; keeping %d rows "
                                   "buffered and retrying", self.path, self.pending)
                if not force:
                    if now - self._busy_since > self.busy_give_up:
                        raise ArchiveWriteError(self.path, exc) from exc
                    self._backoff = min(max(self._backoff * 2, 0.25), 5.0)
                    self._next_try = time.monotonic() + self._backoff
                    return False
                if now >= deadline:
                    raise ArchiveWriteError(self.path, exc) from exc
                self.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if self._busy_since is not None:
                logger.info("Index %s is writable again", self.path)
            self._busy_since, self._backoff = None, 0.0
            return True

    def run_write(self, work: Callable[[], Any]) -> None:
        """Run ``work`` in a transaction, waiting out a busy database (re-indexing, repairs)."""
        self._transaction(work, force=True)

    def find_original(self, collection: str, digest: str) -> Original | None:
        """An earlier full capture of the same payload in ``collection`` (for revisits)."""
        hit = self._pending_digests.get((collection, digest))
        if hit:
            return hit
        row = self.db.execute(
            "SELECT url, warc_date, record_id FROM captures "
            "WHERE collection = ? AND digest = ? AND record_type = 'response' "
            "ORDER BY id LIMIT 1",
            [collection, digest],
        ).fetchone()
        return Original(*row) if row else None

    # -- files ------------------------------------------------------------------------------
    def file_opened(self, name: str, path: Path, collection: str, crawl_id: str | None) -> None:
        self._transaction(lambda: self.db["warc_files"].upsert(
            {"name": name, "collection": collection, "path": str(path.resolve()),
             "state": "open", "created_at": utc_now_iso(), "crawl_id": crawl_id},
            pk="name",
        ), force=True)

    def file_closed(self, closed: ClosedFile, *, state: str = "closed", note: str | None = None) -> None:
        """Mark a file closed in the same transaction as its last buffered rows."""
        self._commit(lambda: self.db.execute(
            "UPDATE warc_files SET path = ?, size = ?, sha256 = ?, records = ?, state = ?,"
            " closed_at = ?, note = COALESCE(?, note) WHERE name = ?",
            [str(closed.path), closed.size, closed.sha256, closed.records, state,
             closed.closed_at, note, closed.name],
        ), force=True)

    # -- crawls -----------------------------------------------------------------------------
    def crawl_started(self, crawl_id: str, collection: str, spider: str, config: dict[str, Any]) -> None:
        self._transaction(lambda: self.db["crawls"].upsert(
            {"crawl_id": crawl_id, "collection": collection, "spider": spider,
             "config": json.dumps(config, sort_keys=True, default=str),
             "started_at": utc_now_iso(), "state": "running", "ended_at": None},
            pk="crawl_id",
        ), force=True)

    def crawl_finished(self, crawl_id: str, state: str, exit_code: int, stats: dict[str, Any]) -> None:
        self._commit(lambda: self.db["crawls"].update(
            crawl_id,
            {"ended_at": utc_now_iso(), "state": state, "exit_code": exit_code,
             "stats": json.dumps(stats, sort_keys=True, default=str)},
        ), force=True)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.db.conn.close()
