"""The capture index: live writes during a crawl, indexing of existing WARCs, rebuilds.

``LiveIndex`` belongs to one crawl process and one thread: rows are buffered and written in one
transaction per batch; a file is only marked ``closed`` after all its rows are in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from storage.db import open_database
from storage.errors import StorageError, WarcFormatError
from storage.exchange import Original
from storage.indexer import FileIndexResult, index_file
from storage.reader import WARC_NAME_RE, CorruptRecord
from storage.warc import ClosedFile, file_sha256


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LiveIndex:
    """Buffered writer of ``captures`` rows plus ``warc_files`` and ``crawls`` bookkeeping."""

    def __init__(self, db_path: Path, *, batch_size: int = 500, max_delay: float = 2.0) -> None:
        self.db = open_database(db_path)
        self.batch_size = batch_size
        self.max_delay = max_delay
        self._rows: list[dict[str, Any]] = []
        self._pending_digests: dict[tuple[str, str], Original] = {}
        self._last_flush = time.monotonic()

    # -- captures ---------------------------------------------------------------------------
    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if row["record_type"] == "response" and row["digest"]:
            key = (row["collection"], row["digest"])
            self._pending_digests.setdefault(
                key, Original(row["url"], row["warc_date"], row["record_id"])
            )
        if len(self._rows) >= self.batch_size or time.monotonic() - self._last_flush > self.max_delay:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        with self.db.conn:
            self.db["captures"].insert_all(rows, replace=True, batch_size=1000)
        self._pending_digests.clear()

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
        with self.db.conn:
            self.db["warc_files"].upsert(
                {"name": name, "collection": collection, "path": str(path.resolve()),
                 "state": "open", "created_at": utc_now_iso(), "crawl_id": crawl_id},
                pk="name",
            )

    def file_closed(self, closed: ClosedFile, *, state: str = "closed", note: str | None = None) -> None:
        """Mark a file closed, after every row of it is in the index."""
        self.flush()
        with self.db.conn:
            self.db.execute(
                "UPDATE warc_files SET path = ?, size = ?, sha256 = ?, records = ?, state = ?,"
                " closed_at = ?, note = COALESCE(?, note) WHERE name = ?",
                [str(closed.path), closed.size, closed.sha256, closed.records, state,
                 closed.closed_at, note, closed.name],
            )

    # -- crawls -----------------------------------------------------------------------------
    def crawl_started(self, crawl_id: str, collection: str, spider: str, config: dict[str, Any]) -> None:
        with self.db.conn:
            self.db["crawls"].upsert(
                {"crawl_id": crawl_id, "collection": collection, "spider": spider,
                 "config": json.dumps(config, sort_keys=True, default=str),
                 "started_at": utc_now_iso(), "state": "running", "ended_at": None},
                pk="crawl_id",
            )

    def crawl_finished(self, crawl_id: str, state: str, exit_code: int, stats: dict[str, Any]) -> None:
        self.flush()
        with self.db.conn:
            self.db["crawls"].update(
                crawl_id,
                {"ended_at": utc_now_iso(), "state": state, "exit_code": exit_code,
                 "stats": json.dumps(stats, sort_keys=True, default=str)},
            )

    def close(self) -> None:
        self.flush()
        self.db.conn.close()


# --- indexing existing files ----------------------------------------------------------------


@dataclass
class IndexReport:
    files: int = 0
    records: int = 0
    rows: int = 0
    corrupt: list[tuple[Path, CorruptRecord]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files given directly, plus every ``*.warc``/``*.warc.gz`` under given directories."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and WARC_NAME_RE.search(q.name))
        elif p.exists():
            out.append(p)
        else:
            raise StorageError(f"no such file or directory: {p}")
    return out


def store_file_rows(
    db: Database, result: FileIndexResult, *, collection: str, state: str, crawl_id: str | None
) -> int:
    """Replace the rows of one file with ``result`` (idempotent re-indexing)."""
    name = result.path.name
    stat = result.path.stat()
    with db.conn:
        db.execute("DELETE FROM captures WHERE filename = ?", [name])
        if result.rows:
            db["captures"].insert_all(result.rows, replace=True, batch_size=1000)
        existing = db.execute("SELECT state FROM warc_files WHERE name = ?", [name]).fetchone()
        row = {
            "name": name, "collection": collection, "path": str(result.path.resolve()),
            "size": stat.st_size, "sha256": file_sha256(result.path), "records": result.records,
            "state": existing[0] if existing and existing[0] != "open" else state,
            "crawl_id": crawl_id, "offloaded_at": None,  # indexed from a local file: it is here
        }
        if not existing:
            row["created_at"] = utc_now_iso()
            row["closed_at"] = utc_now_iso()
        db["warc_files"].upsert(row, pk="name")
    return len(result.rows)


def index_paths(
    db: Database,
    paths: Iterable[Path],
    *,
    collection: str | None,
    progress: Callable[[Path, FileIndexResult], None] | None = None,
) -> IndexReport:
    """Index existing WARC files (ours or any tool's) into ``db``."""
    report = IndexReport()
    for path in expand_paths(paths):
        if path.name.endswith(".open"):
            report.skipped.append((path, "still being written (.open); run a crawl or --rebuild to repair it"))
            continue
        try:
            result = index_file(path, collection=collection)
        except WarcFormatError as exc:
            report.skipped.append((path, str(exc)))
            continue
        except OSError as exc:
            report.skipped.append((path, f"cannot read: {exc}"))
            continue
        ours = "socialark-crawl-id" in result.warcinfo
        coll = collection or result.warcinfo.get("isPartOf") or path.parent.name
        crawl_id = result.warcinfo.get("socialark-crawl-id")
        report.rows += store_file_rows(
            db, result, collection=coll, state="closed" if ours else "foreign", crawl_id=crawl_id
        )
        report.files += 1
        report.records += result.records
        report.corrupt += [(path, c) for c in result.corrupt]
        if progress:
            progress(path, result)
    return report
