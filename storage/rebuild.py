"""Rebuilding the index from the WARCs: the steps of ``socialark index [--rebuild]``.

The CLI command only prints; what is rebuilt, from which files, and which rows are kept lives
here, so it can be used (and tested) without click. Extraction of posts/accounts/media needs
the platform parsers and stays in ``crawler.extraction``; this module gives it the captures to
read (``captures_to_extract``) and clears the rows it will write again
(``delete_extracted``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from storage.index import IndexReport
from storage.offload import AbsentWarc, RecordSource, RemoteReader, keep_sources, reindex_absent
from storage.warc import RepairResult, find_open_files, repair_open_file

ITEM_TABLES = ("posts", "accounts", "media", "post_versions")


def repair_crashed(data_dir: Path) -> list[RepairResult]:
    """Close every WARC a crash left open under the data dir (truncated after its last record)."""
    return [repair_open_file(path) for path in find_open_files(data_dir / "warcs")]


def rebuild_targets(db: Database, data_dir: Path) -> list[Path]:
    """Every WARC the index should know: the data dir's own plus foreign files indexed before."""
    paths = [data_dir / "warcs"] if (data_dir / "warcs").exists() else []
    for (path,) in db.execute("SELECT path FROM warc_files WHERE state = 'foreign'").fetchall():
        if Path(path).exists():
            paths.append(Path(path))
    return paths


def drop_captures_except(db: Database, keep: set[str]) -> None:
    """--rebuild starts from an empty capture table, except the rows of files not on this
    machine: they are replaced only once their remote copy has been read."""
    with db.conn:
        if not keep:
            db.execute("DELETE FROM captures")
            return
        for (name,) in db.execute("SELECT DISTINCT filename FROM captures").fetchall():
            if name not in keep:
                db.execute("DELETE FROM captures WHERE filename = ?", [name])


def indexed_collections(db: Database) -> set[str]:
    return {c for (c,) in db.execute("SELECT DISTINCT collection FROM warc_files").fetchall()}


@dataclass
class OffloadedRebuild:
    kept: list[tuple[AbsentWarc, str]]  # files whose rows were kept, and why
    source: RecordSource  # reads records locally, else from the bucket


def rebuild_offloaded(
    db: Database, absent: Iterable[AbsentWarc], report: IndexReport, *,
    endpoint_url: str | None, collection: str | None,
    progress: Callable[[AbsentWarc, Any], None] | None = None,
) -> OffloadedRebuild:
    """Stream the files that are only in a bucket into the index (counted in ``report``)."""
    reader = RemoteReader(endpoint_url=endpoint_url)
    remote = reindex_absent(db, absent, reader, collection=collection, progress=progress)
    for _f, result in remote.streamed:
        report.files += 1
        report.records += result.records
        report.rows += len(result.rows)
    return OffloadedRebuild(remote.kept, RecordSource(db, reader, unavailable=remote.kept_names))


# --- what extraction reads and replaces --------------------------------------------------

_CAPTURES_SQL = (
    "SELECT c.url, c.timestamp, c.offset, c.length, c.collection, f.path, c.record_type,"
    " c.digest, c.refers_to_url, c.filename, c.status, c.mime FROM captures c"
    " JOIN warc_files f ON f.name = c.filename"
    " WHERE c.record_type IN ('response', 'revisit')"
)


def captures_to_extract(db: Database, *, collection: str | None = None,
                        filenames: list[str] | None = None) -> list[tuple[Any, ...]]:
    """(url, timestamp, offset, length, collection, path, record_type, digest, refers_to_url,
    filename, status, mime) of every response/revisit in scope, oldest first."""
    sql, args = _CAPTURES_SQL, []
    if collection:
        sql += " AND c.collection = ?"
        args.append(collection)
    if filenames is not None:
        sql += f" AND c.filename IN ({', '.join('?' for _ in filenames)})"
        args += filenames
    return db.execute(sql + " ORDER BY c.timestamp, c.id", args).fetchall()


def original_capture(db: Database, collection: str, digest: str | None,
                     refers_to: str | None) -> tuple[Any, ...] | None:
    """(offset, length, path, filename) of the response a revisit refers to, or None."""
    return db.execute(
        "SELECT c.offset, c.length, f.path, c.filename FROM captures c"
        " JOIN warc_files f ON f.name = c.filename"
        " WHERE c.collection = ? AND c.digest = ? AND c.record_type = 'response'"
        " ORDER BY (c.url = ?) DESC, c.id LIMIT 1",
        [collection, digest, refers_to],
    ).fetchone()


def delete_extracted(db: Database, collection: str | None, keep_files: set[str]) -> None:
    """Delete the extracted rows about to be re-extracted: all of them in scope, except rows
    whose source capture is in one of ``keep_files`` (WARCs that cannot be read now)."""
    keep = ""
    if keep_files:
        keep_sources(db, sorted(keep_files))
        keep = (" AND NOT EXISTS (SELECT 1 FROM temp.keep_sources k WHERE"
                " k.collection = {t}.collection AND k.url = {t}.source_url"
                " AND k.timestamp = {t}.source_timestamp)")
    with db.conn:
        for table in ITEM_TABLES:
            where = "collection = ?" if collection else "1"
            db.execute(f"DELETE FROM {table} WHERE {where}{keep.format(t=table)}",
                       [collection] if collection else [])


__all__ = [
    "OffloadedRebuild", "captures_to_extract", "delete_extracted", "drop_captures_except",
    "indexed_collections", "original_capture", "rebuild_offloaded", "rebuild_targets",
    "repair_crashed",
]
