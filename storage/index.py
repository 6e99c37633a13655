"""The capture index: indexing of existing WARCs, rebuilds (live writes: ``storage.live_index``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from storage.errors import StorageError, WarcFormatError
from storage.indexer import FileIndexResult, index_file
from storage.live_index import LiveIndex, utc_now_iso
from storage.reader import WARC_NAME_RE, CorruptRecord
from storage.warc import file_sha256

__all__ = ["IndexReport", "LiveIndex", "expand_paths", "index_paths", "store_file_rows",
           "utc_now_iso"]


# --- indexing existing files ----------------------------------------------------------------


@dataclass
class IndexReport:
    files: int = 0
    records: int = 0
    rows: int = 0
    corrupt: list[tuple[Path, CorruptRecord]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files given directly, plus every WARC/ARC (``.warc``, ``.arc``, ``.gz``, ``.zst``) under
    given directories."""
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
            insert_captures(db, result.rows)
        existing = db.execute("SELECT state FROM warc_files WHERE name = ?", [name]).fetchone()
        row = {
            "name": name, "collection": collection, "path": str(result.path.resolve()),
            "size": stat.st_size, "sha256": result.sha256 or file_sha256(result.path), "records": result.records,
            "state": existing[0] if existing and existing[0] != "open" else state,
            "crawl_id": crawl_id, "offloaded_at": None,  # indexed from a local file: it is here
        }
        if not existing:
            row["created_at"] = utc_now_iso()
            row["closed_at"] = utc_now_iso()
        db["warc_files"].upsert(row, pk="name")
    return len(result.rows)


def insert_captures(db: Database, rows: list[dict[str, Any]]) -> None:
    """``INSERT OR REPLACE`` the capture rows (all built by ``capture_row``: the same keys),
    in the caller's transaction: one prepared statement, no per-value conversion (what
    ``insert_all(replace=True)`` does, without its per-value JSON checks)."""
    columns = list(rows[0])
    get = itemgetter(*columns)
    sql = (f"INSERT OR REPLACE INTO captures ({', '.join(f'[{c}]' for c in columns)}) "
           f"VALUES ({', '.join('?' * len(columns))})")
    db.conn.executemany(sql, map(get, rows))


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
