"""Searching and exporting extracted posts (FTS5, bm25) and captures, streaming from cursors.

Every post result names two replay URLs, ``{replay_base}/{collection}/{timestamp}/{url}``: its API
capture (``source_url`` at ``source_timestamp``) and its page capture (the newest ``captures``
row for the post's ``url``, if any). Nothing here loads a whole table: rows are yielded as the
cursor produces them, so exports of millions of posts run in constant memory.
"""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
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
    try:
        d = parse_bound(value, upper=upper)
    except StorageError as exc:
        raise SearchError(str(exc)) from None
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


SORTS = ("relevance", "newest", "oldest")
CANDIDATES = 5_000  # relevance on a common query ranks this many newest-indexed matches
WALK_PROBES = 4000  # newest/oldest walk posts_created_at when ~this many probes find `limit`
RANGE_CAP = 20_000  # a date filter bounds the FTS rowids when it keeps at most this many posts
SEARCH_HINT = "a rarer word, a phrase, --author, --since/--until"
_LOWEST = -(2**63)
_HIGHEST = 2**63 - 1


class SearchError(StorageError):
    """A search parameter is invalid (bad sort, limit, date bound or query syntax)."""


@dataclass
class Plan:
    """How one search runs (``plan_search``); ``kind`` is exact, window or walk."""

    kind: str
    match: str  # the FTS5 expression actually run (the query, maybe narrowed by author)
    lo: int = _LOWEST  # FTS rowid bounds (inclusive), from a date filter or the window
    hi: int = _HIGHEST
    floor: int = _LOWEST  # the lowest rowid the filters allow (``lo`` before the window)
    size: int = 0  # window: how many newest-indexed matches it holds


def search_posts(db: Any, query: str, flt: PostFilter, *, limit: int = 20,
                 sort: str = "relevance",
                 replay_base: str = DEFAULT_REPLAY_BASE,
                 marks: tuple[str, str] = SNIPPET_MARKS,
                 timeout: float | None = QUERY_TIMEOUT,
                 candidates: int = CANDIDATES) -> Iterator[dict[str, Any]]:
    """Posts matching an FTS5 ``query`` in ``sort`` order, with a highlighted snippet.

    ``relevance`` is bm25 (FTS5's ``rank``, best first), ``newest``/``oldest`` order by
    ``created_at`` then ``id`` (posts without a date last). Every filter and ``limit`` hold in
    every plan. Stops with ``QueryTimeout`` after ``timeout`` seconds.

    Speed on large indexes (``plan_search``; measured in benchmarks/RESULTS.md, issue 17):
    ranking *all* matches costs ~1-3 µs each, so a word in 15% of a million posts cannot be
    ranked by bm25 under 50 ms. For a query matching more than ``candidates`` posts,
    relevance ranks the ``candidates`` most recently indexed matches (twice, four times... as
    many when the filters leave fewer than ``limit`` of those, up to all of them);
    newest/oldest stay exact.
    """
    if sort not in SORTS:
        raise SearchError(f"invalid sort {str(sort)[:30]!r}: use relevance, newest or oldest")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_LIMIT:
        raise SearchError(f"invalid limit {str(limit)[:30]!r}: use an integer from 1 to {MAX_LIMIT}")
    if not query or not query.strip():
        raise SearchError("empty search query: give at least one word")
    conn = _conn(db)
    _tune(conn)
    clauses, args = _where(flt)
    links = ReplayLinks(conn, replay_base)
    deadline = Deadline(timeout)
    conn.set_progress_handler(deadline.expired if deadline.at else None, 10_000)
    try:
        plan = plan_search(conn, query, flt, sort=sort, limit=limit, candidates=candidates,
                           deadline=deadline)
        for row in _planned_rows(conn, plan, query, clauses, args, limit, sort, marks, deadline):
            row["media"] = json.loads(row["media"]) if row.get("media") else []
            yield links.add(row)
    finally:
        conn.set_progress_handler(None, 0)


MMAP_BYTES = 1 << 30  # reads of a large index.db through mmap: no read() call per page
CACHE_KIB = 65_536  # SQLite's own page cache per connection (its default is 2 MiB)


def _tune(conn: sqlite3.Connection) -> None:
    """Once per connection: ~15-20% off search latency on a 1,000,000-post index (issue 17)."""
    if conn.execute("PRAGMA mmap_size").fetchone()[0] == 0:
        conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")


def plan_search(conn: sqlite3.Connection, query: str, flt: PostFilter, *, sort: str, limit: int,
                candidates: int = CANDIDATES, deadline: Deadline | None = None) -> Plan:
    """Choose how to run a search; every step is bounded work, never a pass over all matches.

    * ``--author``: the FTS expression is narrowed with ``author:"NAME"`` (every spelling of
      the author's name, found through ``posts_author_id`` too), so FTS5 intersects the two
      doclists instead of SQLite filtering every match. The exact SQL filter still applies.
    * ``--since/--until`` keeping at most ``RANGE_CAP`` posts: their lowest and highest
      ``id`` bound the FTS rowids (a superset: the SQL filter still applies).
    * Counting matches is rowid iteration (~0.1-0.3 µs each) and stops at the count asked for.
    * relevance: more than ``candidates`` matches -> ``window`` (rank the newest-indexed ones).
    * newest/oldest: when matches are so frequent that walking ``posts_created_at`` finds
      ``limit`` of them in about ``walk_probes()`` probes -> ``walk``; else ``exact`` (sort all).
    """
    match = _narrow_by_author(conn, query, flt.author, deadline)
    lo, hi = _LOWEST, _HIGHEST
    if flt.since or flt.until:
        bounds = _date_rowid_bounds(conn, flt, deadline)
        if bounds is not None:
            lo, hi = bounds
    if limit >= candidates:
        return Plan("exact", match, lo, hi)
    if sort == "relevance":
        nth = _nth_rowid(conn, match, candidates, lo, hi, query, deadline)
        if nth is None:
            return Plan("exact", match, lo, hi, lo)
        return Plan("window", match, max(lo, nth), hi, lo, candidates)
    if flt.author:
        return Plan("exact", match, lo, hi)  # narrowed by author: few matches left to sort
    if not _prefixes_indexed(conn, query):
        return Plan("exact", match, lo, hi)  # each probe would merge every term of the prefix
    total = (_fetchone(conn, "SELECT max(id) FROM posts", [], None, deadline) or (0,))[0] or 0
    walk_at = max(candidates, limit * total // walk_probes(conn, deadline))
    if walk_at < total and _nth_rowid(conn, match, walk_at, lo, hi, query, deadline) is not None:
        return Plan("walk", match, lo, hi)
    return Plan("exact", match, lo, hi)


def walk_probes(conn: sqlite3.Connection, deadline: Deadline | None = None) -> int:
    """How many per-post probes a walk may take: ``WALK_PROBES`` on a one-segment index.

    A probe seeks every term in every FTS5 segment: ~2 µs on an optimized index, ~100-200 µs on
    the 10-16 segments crawls leave (benchmarks/RESULTS.md), while sorting every match costs
    ~2-5 µs per match. Fewer probes per segment keeps the walk the cheaper plan.
    """
    segments = (_fetchone(conn, "SELECT count(DISTINCT segid) FROM posts_fts_idx", [], None,
                          deadline) or (1,))[0] or 1
    return max(200, WALK_PROBES // segments)


def optimize_search_index(db: Any) -> None:
    """Merge ``posts_fts`` into one segment (FTS5 ``optimize``): time-ordered searches then
    probe ~40x faster. Worth running after a large crawl or import; m007 runs it once."""
    conn = _conn(db)
    with conn:
        conn.execute("INSERT INTO posts_fts(posts_fts) VALUES ('optimize')")


def _prefixes_indexed(conn: sqlite3.Connection, query: str) -> bool:
    """Whether every ``word*`` of ``query`` has a prefix index (m007) of its length."""
    words = re.findall(r"(\w+)\s*\*", _without_strings(query))
    for phrase in re.findall(r'"([^"]*)"\s*\*', query):  # "a phrase"* : its last word
        words += re.findall(r"\w+", phrase)[-1:]
    wanted = {len(w) for w in words}
    if not wanted:
        return True
    row = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'posts_fts'").fetchone()
    found = re.search(r"prefix\s*=\s*'([\d\s]*)'", row[0] if row else "")
    return wanted <= {int(n) for n in found.group(1).split()} if found else False


def _without_strings(query: str) -> str:
    return re.sub(r'"[^"]*"', " ", query)


def _narrow_by_author(conn: sqlite3.Connection, query: str, author: str | None,
                      deadline: Deadline | None) -> str:
    if not author:
        return query
    name = author.lstrip("@")
    names = {name}
    rows = _execute(conn, "SELECT DISTINCT author FROM posts WHERE author_id = ? LIMIT 21",
                    [name], None, deadline).fetchall()
    if len(rows) > 20 or any(r[0] is None for r in rows):
        return query  # posts without an author name cannot be found through the author column
    names.update(r[0] for r in rows)
    name_tokens = {t for n in names for t in _tokens(n)}
    query_tokens = _tokens(query) - {"and", "or", "not", "near"}
    # Narrowing must leave bm25 unchanged (ranked with the author column's weight 0): not when
    # the query itself can match in the author column, nor for a name without tokens.
    if (any(not _tokens(n) for n in names) or "author" in query_tokens
            or any(n.startswith(t) for t in query_tokens for n in name_tokens)):
        return query
    quoted = " OR ".join('author:"' + n.replace('"', '""') + '"' for n in sorted(names))
    return f"({query}) AND ({quoted})"


def _tokens(text: str) -> set[str]:
    """Roughly FTS5's unicode61 tokens: case-folded, diacritics removed, split on non-word."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    return set(re.findall(r"\w+", "".join(ch for ch in folded if not unicodedata.combining(ch))))


def _date_rowid_bounds(conn: sqlite3.Connection, flt: PostFilter,
                       deadline: Deadline | None) -> tuple[int, int] | None:
    clauses, args = _where(PostFilter(since=flt.since, until=flt.until))
    where = " AND ".join(clauses)
    row = _fetchone(conn, f"SELECT count(*), min(id), max(id) FROM (SELECT p.id FROM posts p"
                          f" WHERE {where} LIMIT ?)", [*args, RANGE_CAP + 1], None, deadline)
    if not row or row[0] > RANGE_CAP:
        return None
    if row[0] == 0:
        return 1, 0  # nothing in range: an empty rowid interval
    return row[1], row[2]


def _nth_rowid(conn: sqlite3.Connection, match: str, n: int, lo: int, hi: int, query: str,
               deadline: Deadline | None) -> int | None:
    """The rowid of the ``n``-th newest-indexed match within [lo, hi], if there are ``n``."""
    row = _fetchone(conn, "SELECT rowid FROM posts_fts WHERE posts_fts MATCH ? AND rowid >= ?"
                          " AND rowid <= ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
                    [match, lo, hi, n - 1], query, deadline)
    return row[0] if row else None


def _planned_rows(conn: sqlite3.Connection, plan: Plan, query: str, clauses: list[str],
                  args: list[Any], limit: int, sort: str, marks: tuple[str, str],
                  deadline: Deadline) -> Iterator[dict[str, Any]]:
    cols = ", ".join(f"p.{c}" for c in POST_COLUMNS if c not in ("raw", "content_html"))
    where = "".join(" AND " + c for c in clauses)
    head = f"SELECT {cols}, snippet(posts_fts, 0, ?, ?, '…', 16) AS snippet"
    fts = "posts_fts MATCH ? AND posts_fts.rowid >= ? AND posts_fts.rowid <= ?"
    params = [marks[0], marks[1], plan.match, plan.lo, plan.hi, *args]
    direction = "DESC" if sort == "newest" else "ASC"
    if plan.kind == "walk":
        # Posts by created_at, each probed in the FTS index; CROSS JOIN keeps posts outside.
        sql = (f"{head}, NULL AS rank FROM posts p CROSS JOIN posts_fts ON posts_fts.rowid = p.id"
               f" WHERE {fts} AND p.created_at IS NOT NULL{where}"
               f" ORDER BY p.created_at {direction}, p.id {direction} LIMIT ?")
        n = 0
        for row in _rows(conn, sql, [*params, limit], query, deadline):
            n += 1
            yield row
        if n < limit:  # posts without a date come last, as in the exact plan
            sql = (f"{head}, NULL AS rank FROM posts_fts JOIN posts p ON p.id = posts_fts.rowid"
                   f" WHERE {fts} AND p.created_at IS NULL{where} ORDER BY p.id {direction} LIMIT ?")
            yield from _rows(conn, sql, [*params, limit - n], query, deadline)
        return
    # Narrowed by author, the author phrase must not score (weight 0 on the author column).
    rank = ("NULL" if sort != "relevance" else
            "posts_fts.rank" if plan.match == query else "bm25(posts_fts, 1.0, 0.0)")
    lo, size = plan.lo, plan.size
    while True:
        if rank == "posts_fts.rank":
            # FTS5 hands rows over in rank order: the snippet is made for returned rows only
            sql = (f"{head}, {rank} AS rank FROM posts_fts JOIN posts p ON p.id = posts_fts.rowid"
                   f" WHERE {fts}{where} ORDER BY {rank} LIMIT ?")
            rows = list(_rows(conn, sql, [marks[0], marks[1], plan.match, lo, plan.hi, *args,
                                          limit], query, deadline))
        else:
            # SQLite's sorter would compute a snippet for every match: sort ids, then fetch
            order = (rank if sort == "relevance" else
                     f"p.created_at IS NULL, p.created_at {direction}, p.id {direction}")
            sql = (f"SELECT p.id AS id, {rank} AS rank FROM posts_fts JOIN posts p"
                   f" ON p.id = posts_fts.rowid WHERE {fts}{where} ORDER BY {order} LIMIT ?")
            keys = list(_rows(conn, sql, [plan.match, lo, plan.hi, *args, limit], query, deadline))
            rows = [_fetch(conn, head, plan.match, k, marks, query, deadline) for k in keys]
        if plan.kind != "window" or len(rows) >= limit or lo == plan.floor:
            yield from rows
            return
        # Filters left fewer than `limit` in the window (a narrow date range, say): double it
        # until they do, or every match is in it. The work stays under twice the last window.
        size *= 2
        nth = _nth_rowid(conn, plan.match, size, plan.floor, plan.hi, query, deadline)
        lo = plan.floor if nth is None else max(plan.floor, nth)


def _fetch(conn: sqlite3.Connection, head: str, match: str, key: dict[str, Any],
           marks: tuple[str, str], query: str, deadline: Deadline) -> dict[str, Any]:
    sql = (f"{head} FROM posts_fts JOIN posts p ON p.id = posts_fts.rowid"
           " WHERE posts_fts MATCH ? AND posts_fts.rowid = ?")
    row = next(_rows(conn, sql, [marks[0], marks[1], match, key["id"]], query, deadline))
    row["rank"] = key["rank"]
    return row


def _rows(conn: sqlite3.Connection, sql: str, args: list[Any], query: str,
          deadline: Deadline) -> Iterator[dict[str, Any]]:
    cur = _execute(conn, sql, args, query, deadline)
    names = [d[0] for d in cur.description]
    while True:
        try:
            values = next(cur, None)
        except sqlite3.OperationalError:
            if deadline.expired():
                raise QueryTimeout(deadline.seconds or 0, SEARCH_HINT) from None
            raise
        if values is None:
            return
        yield dict(zip(names, values, strict=True))


def _fetchone(conn: sqlite3.Connection, sql: str, args: list[Any], query: str,
              deadline: Deadline | None) -> tuple[Any, ...] | None:
    cur = _execute(conn, sql, args, query, deadline)
    try:
        return cur.fetchone()
    except sqlite3.OperationalError:
        if deadline is not None and deadline.expired():
            raise QueryTimeout(deadline.seconds or 0, SEARCH_HINT) from None
        raise


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


# SQLite's messages for an FTS5 expression it cannot read (anything else is the index's fault)
_QUERY_ERRORS = ("fts5", "syntax error", "no such column", "unterminated string",
                 "unknown special query", "malformed match", "parser stack overflow",
                 "expected integer")


def _execute(conn: sqlite3.Connection, sql: str, args: list[Any], query: str | None,
             deadline: Deadline | None = None) -> sqlite3.Cursor:
    try:
        return conn.execute(sql, args)
    except sqlite3.OperationalError as exc:
        if deadline is not None and deadline.expired():
            raise QueryTimeout(deadline.seconds or 0, SEARCH_HINT) from None
        msg = str(exc)
        if query is not None and any(m in msg for m in _QUERY_ERRORS):
            raise SearchError(
                f"invalid search query {query!r}: {msg}. Use FTS5 syntax: words, \"a phrase\", "
                "AND/OR/NOT, prefix*, author:NAME; quote words containing punctuation."
            ) from exc
        raise StorageError(f"cannot query the index: {msg}") from exc
