"""Searching and exporting extracted posts (FTS5, bm25) and captures, streaming from cursors.

Every post result names two replay URLs, ``{replay_base}/{collection}/{timestamp}/{url}``: its API
capture (``source_url`` at ``source_timestamp``) and its page capture (the newest ``captures``
row for the post's ``url``, if any). Nothing here loads a whole table: rows are yielded as the
cursor produces them, so exports of millions of posts run in constant memory.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from storage.cdx import MAX_LIMIT, QUERY_TIMEOUT, Deadline, QueryTimeout
from storage.cdxj import parse_bound
from storage.errors import StorageError
from storage.surt import surt

DEFAULT_REPLAY_BASE = "http://127.0.0.1:8080"
POST_COLUMNS = (
    "collection", "platform", "post_id", "url", "author", "author_id", "created_at", "text",
    "content_html", "reply_to_id", "repost_of_id", "quote_of_id", "reply_count", "repost_count",
    "like_count", "lang", "media", "raw", "source_url", "source_timestamp",
)
CAPTURE_COLUMNS = (
    "collection", "urlkey", "url", "timestamp", "status", "mime", "digest", "length", "offset",
    "filename", "record_type", "record_id", "crawl_id",
)
SNIPPET_MARKS = ("[", "]")


@dataclass(frozen=True)
class PostFilter:
    platform: str | None = None
    author: str | None = None
    since: str | None = None  # any form parse_bound accepts
    until: str | None = None
    collection: str | None = None


def _iso_bound(value: str, *, upper: bool) -> str:
    """A date bound as an ISO prefix comparable with ``created_at`` strings."""
    d = parse_bound(value, upper=upper)
    iso = f"{d[0:4]}-{d[4:6]}-{d[6:8]}T{d[8:10]}:{d[10:12]}:{d[12:14]}"
    return iso + "~" if upper else iso  # "~" sorts after ".123Z", keeping the bound inclusive


def _where(flt: PostFilter) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if flt.platform:
        clauses.append("p.platform = ?")
        args.append(flt.platform)
    if flt.author:
        name = flt.author.lstrip("@")
        clauses.append("(p.author = ? COLLATE NOCASE OR p.author_id = ?)")
        args += [name, name]
    if flt.since:
        clauses.append("p.created_at >= ?")
        args.append(_iso_bound(flt.since, upper=False))
    if flt.until:
        clauses.append("p.created_at <= ?")
        args.append(_iso_bound(flt.until, upper=True))
    if flt.collection:
        clauses.append("p.collection = ?")
        args.append(flt.collection)
    return clauses, args


def replay_url(base: str, collection: str, timestamp: str, url: str) -> str:
    return f"{base.rstrip('/')}/{collection}/{timestamp}/{url}"


class ReplayLinks:
    """Adds ``api_replay_url`` and ``page_replay_url`` to post rows."""

    def __init__(self, conn: sqlite3.Connection, base: str) -> None:
        self.conn = conn
        self.base = base

    def page_timestamp(self, collection: str, url: str) -> str | None:
        try:
            key = surt(url)
        except ValueError:
            return None
        row = self.conn.execute(
            "SELECT timestamp FROM captures WHERE urlkey = ? AND url = ? AND collection = ?"
            " AND record_type IN ('response', 'revisit') ORDER BY timestamp DESC LIMIT 1",
            [key, url, collection],
        ).fetchone()
        return row[0] if row else None

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        coll = row.get("collection") or ""
        api = None
        if row.get("source_url") and row.get("source_timestamp"):
            api = replay_url(self.base, coll, row["source_timestamp"], row["source_url"])
        page = None
        if row.get("url"):
            ts = self.page_timestamp(coll, row["url"])
            page = replay_url(self.base, coll, ts, row["url"]) if ts else None
        row["api_replay_url"] = api
        row["page_replay_url"] = page
        return row


def _conn(db: Any) -> sqlite3.Connection:
    return db.conn if hasattr(db, "conn") else db


def search_posts(db: Any, query: str, flt: PostFilter, *, limit: int = 20,
                 replay_base: str = DEFAULT_REPLAY_BASE,
                 marks: tuple[str, str] = SNIPPET_MARKS,
                 timeout: float | None = QUERY_TIMEOUT) -> Iterator[dict[str, Any]]:
    """Posts matching an FTS5 ``query``, best first, with a highlighted snippet.

    Stops with ``QueryTimeout`` after ``timeout`` seconds (SQLite's progress handler).

    Orders by FTS5's built-in ``rank`` (bm25 unless configured otherwise): FTS5 sorts it
    internally, about twice as fast as ``ORDER BY bm25(posts_fts)`` on common words.
    """
    conn = _conn(db)
    clauses, args = _where(flt)
    cols = ", ".join(f"p.{c}" for c in POST_COLUMNS if c not in ("raw", "content_html"))
    sql = (f"SELECT {cols}, snippet(posts_fts, 0, ?, ?, '…', 16) AS snippet,"
           " posts_fts.rank AS rank FROM posts_fts JOIN posts p ON p.id = posts_fts.rowid"
           f" WHERE posts_fts MATCH ? {''.join(' AND ' + c for c in clauses)}"
           " ORDER BY posts_fts.rank LIMIT ?")
    if not 0 < limit <= MAX_LIMIT:
        raise StorageError(f"invalid limit {limit}: use an integer from 1 to {MAX_LIMIT}")
    links = ReplayLinks(conn, replay_base)
    deadline = Deadline(timeout)
    conn.set_progress_handler(deadline.expired if deadline.at else None, 10_000)
    try:
        cur = _execute(conn, sql, [marks[0], marks[1], query, *args, limit], query, deadline)
        names = [d[0] for d in cur.description]
        while True:
            try:
                values = next(cur, None)
            except sqlite3.OperationalError:
                if deadline.expired():
                    raise QueryTimeout(timeout or 0) from None
                raise
            if values is None:
                break
            row = dict(zip(names, values, strict=True))
            row["media"] = json.loads(row["media"]) if row.get("media") else []
            yield links.add(row)
    finally:
        conn.set_progress_handler(None, 0)


def iter_posts(db: Any, flt: PostFilter, *, query: str | None = None,
               replay_base: str = DEFAULT_REPLAY_BASE) -> Iterator[dict[str, Any]]:
    """Every post matching the filters (and the FTS query, if given), oldest first."""
    conn = _conn(db)
    clauses, args = _where(flt)
    cols = ", ".join(f"p.{c}" for c in POST_COLUMNS)
    if query:
        sql = (f"SELECT {cols} FROM posts_fts JOIN posts p ON p.id = posts_fts.rowid"
               " WHERE posts_fts MATCH ?")
        args = [query, *args]
    else:
        sql = f"SELECT {cols} FROM posts p WHERE 1"
    sql += "".join(" AND " + c for c in clauses) + " ORDER BY p.created_at, p.id"
    links = ReplayLinks(conn, replay_base)
    cur = _execute(conn, sql, args, query)
    for values in cur:
        yield links.add(dict(zip(POST_COLUMNS, values, strict=True)))


def iter_captures(db: Any, *, collection: str | None = None, since: str | None = None,
                  until: str | None = None) -> Iterator[dict[str, Any]]:
    """Rows of ``captures`` (inclusive 14-digit time bounds), in timestamp order."""
    clauses, args = [], []
    if collection:
        clauses.append("collection = ?")
        args.append(collection)
    if since:
        clauses.append("timestamp >= ?")
        args.append(parse_bound(since, upper=False))
    if until:
        clauses.append("timestamp <= ?")
        args.append(parse_bound(until, upper=True))
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    sql = f"SELECT {', '.join(CAPTURE_COLUMNS)} FROM captures{where} ORDER BY timestamp, id"
    for values in _execute(_conn(db), sql, args, None):
        yield dict(zip(CAPTURE_COLUMNS, values, strict=True))


def _execute(conn: sqlite3.Connection, sql: str, args: list[Any], query: str | None,
             deadline: Deadline | None = None) -> sqlite3.Cursor:
    try:
        return conn.execute(sql, args)
    except sqlite3.OperationalError as exc:
        if deadline is not None and deadline.expired():
            raise QueryTimeout(deadline.seconds or 0) from None
        msg = str(exc)
        if query is not None and ("fts5" in msg or "syntax error" in msg or "no such column" in msg):
            raise StorageError(
                f"invalid search query {query!r}: {msg}. Use FTS5 syntax: words, \"a phrase\", "
                "AND/OR/NOT, prefix*, author:NAME; quote words containing punctuation."
            ) from exc
        raise StorageError(f"cannot query the index: {msg}") from exc
