"""The crawl frontier on disk: what was discovered and what is done, so a crawl can resume.

Scrapy's ``JOBDIR`` does not survive ``kill -9`` (its queue metadata is written at close, and
requests taken from the queue but not finished are gone). This log does: a request is marked done
in the same transaction that records the requests its response led to, so after any crash the
unfinished ones are exactly the rows still ``queued``. Committed in small batches; losing the last
batch only means a few URLs are fetched again on resume, never that one is skipped.

``before_commit`` (set by the WARC capture) runs before each batch commits: it fsyncs the WARC
and commits the index, so a done mark never becomes durable before the records it stands for.
If it returns False (index busy) the batch waits for the next commit. A failing commit (disk
full, I/O error) raises ``ArchiveWriteError`` and keeps the batch.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage._faults import crash_point
from storage.errors import ArchiveWriteError


@dataclass(frozen=True)
class FrontierEntry:
    fingerprint: str
    url: str
    method: str
    callback: str | None
    errback: str | None
    cb_kwargs: dict[str, Any]
    meta: dict[str, Any]
    priority: int
    body: bytes
    headers: dict[str, list[str]]


class Frontier:
    def __init__(self, path: Path, *, batch_size: int = 200, max_delay: float = 0.5) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.conn = sqlite3.connect(str(path), check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS frontier ("
            " fingerprint TEXT PRIMARY KEY, url TEXT NOT NULL, method TEXT NOT NULL,"
            " callback TEXT, errback TEXT, cb_kwargs TEXT, meta TEXT, priority INTEGER,"
            " body BLOB, headers TEXT, state TEXT NOT NULL DEFAULT 'queued', outcome TEXT,"
            " seq INTEGER)"
        )
        self.conn.execute("CREATE INDEX IF NOT EXISTS frontier_state ON frontier(state, seq)")
        self.conn.commit()
        self.batch_size = batch_size
        self.max_delay = max_delay
        self._ops: list[tuple[str, tuple[Any, ...]]] = []
        self.before_commit: Callable[[], bool] | None = None
        # Where a failing batch commit from add()/done() is reported (the crawl stops); without
        # it the ArchiveWriteError propagates to the caller.
        self.on_commit_error: Callable[[ArchiveWriteError], None] | None = None
        self._last = time.monotonic()
        self._known: set[str] = {
            fp for (fp,) in self.conn.execute("SELECT fingerprint FROM frontier")
        }
        row = self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM frontier").fetchone()
        self._seq = int(row[0])

    def known(self, fingerprint: str) -> bool:
        return fingerprint in self._known

    def add(self, entry: FrontierEntry) -> bool:
        """Record a newly discovered request; False if it was already known."""
        if entry.fingerprint in self._known:
            return False
        self._known.add(entry.fingerprint)
        self._seq += 1
        self._ops.append((
            "INSERT OR IGNORE INTO frontier (fingerprint, url, method, callback, errback,"
            " cb_kwargs, meta, priority, body, headers, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (entry.fingerprint, entry.url, entry.method, entry.callback, entry.errback,
             json.dumps(entry.cb_kwargs), json.dumps(entry.meta), entry.priority,
             entry.body, json.dumps(entry.headers), self._seq),
        ))
        self._maybe_commit()
        return True

    def done(self, fingerprint: str, outcome: str = "ok") -> None:
        self._ops.append((
            "UPDATE frontier SET state = 'done', outcome = ? WHERE fingerprint = ?",
            (outcome, fingerprint),
        ))
        self._maybe_commit()

    def _maybe_commit(self) -> None:
        if len(self._ops) >= self.batch_size or time.monotonic() - self._last > self.max_delay:
            try:
                self.commit()
            except ArchiveWriteError as exc:
                if self.on_commit_error is None:
                    raise
                self.on_commit_error(exc)

    def commit(self) -> bool:
        """Commit the batch; False if ``before_commit`` asked to wait (the batch is kept)."""
        self._last = time.monotonic()
        if not self._ops:
            return True
        if self.before_commit is not None and not self.before_commit():
            return False
        crash_point("frontier_commit")
        ops = list(self._ops)
        try:
            with self.conn:
                for sql, args in ops:
                    self.conn.execute(sql, args)
        except sqlite3.Error as exc:
            raise ArchiveWriteError(self.path, exc) from exc
        del self._ops[: len(ops)]
        return True

    def pending(self) -> Iterator[FrontierEntry]:
        """Requests discovered but not finished, oldest first."""
        self.commit()
        rows = self.conn.execute(
            "SELECT fingerprint, url, method, callback, errback, cb_kwargs, meta, priority,"
            " body, headers FROM frontier WHERE state = 'queued' ORDER BY seq"
        ).fetchall()
        for r in rows:
            yield FrontierEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}"),
                                json.loads(r[6] or "{}"), r[7] or 0, r[8] or b"",
                                json.loads(r[9] or "{}"))

    def counts(self) -> dict[str, int]:
        self.commit()
        return dict(self.conn.execute("SELECT state, COUNT(*) FROM frontier GROUP BY state"))

    def close(self) -> None:
        """Commit what can be committed (a batch that cannot is fetched again on resume)."""
        try:
            self.commit()
        finally:
            self.conn.close()
