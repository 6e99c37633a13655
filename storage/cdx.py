"""CDX queries over the ``captures`` table, with the semantics of pywb's CDX server API.

``query()`` turns ``url`` + ``matchType`` into a half-open SURT key range exactly as pywb's
``calc_search_range`` does, and answers it with one range scan of the ``captures_urlkey_ts``
index (forced with ``INDEXED BY``, so a collection or time filter never makes SQLite pick a
worse index). Everything else (time range, filters, sort, limit) is SQL with bound parameters.

Rows come back as dicts of ``captures`` columns; ``format_line()`` renders them as CDXJ (the
cdxj-indexer shape, shared with ``storage.cdxj``), NDJSON or classic space-separated text.
"""

from __future__ import annotations

import calendar
import json
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import regex
from sqlite_utils import Database

from storage.cdxj import cdxj_fields
from storage.errors import StorageError
from storage.surt import surt

__all__ = [
    "DEFAULT_TEXT_FIELDS",
    "FIELDS",
    "MATCH_TYPES",
    "OUTPUTS",
    "CdxQueryError",
    "build_sql",
    "field_values",
    "format_line",
    "pad_timestamp",
    "parse_fields",
    "parse_filter",
    "query",
    "search_range",
]

MATCH_TYPES = ("exact", "prefix", "host", "domain")
SORTS = ("reverse", "closest")
OUTPUTS = ("cdxj", "json", "text")

# CDX field name -> SQL expression over ``captures`` (as text, '' when absent).
FIELDS: dict[str, str] = {
    "urlkey": "urlkey",
    "timestamp": "timestamp",
    "url": "url",
    "mime": "mime",
    "status": "CAST(status AS TEXT)",
    "digest": "digest",
    "length": "CAST(length AS TEXT)",
    "offset": "CAST(offset AS TEXT)",
    "filename": "filename",
    "method": "method",
    "requestBody": "request_body",
    "collection": "collection",
    "recordType": "record_type",
}
# Names used by the IA/OpenWayback CDX server and classic CDX files.
_ALIASES = {
    "original": "url",
    "mimetype": "mime",
    "statuscode": "status",
    "request_body": "requestBody",
    "record_type": "recordType",
}
_ROW_KEYS = {"requestBody": "request_body", "recordType": "record_type"}
DEFAULT_TEXT_FIELDS = (
    "urlkey", "timestamp", "url", "mime", "status", "digest", "length", "offset", "filename",
)  # fmt: skip

_PAD_LOW = "10000101000000"  # pywb/warcio PAD_14_DOWN
_PAD_HIGH = "29991231235959"  # pywb/warcio PAD_14_UP
_DIGITS = re.compile(r"^\d{1,14}$")
_TS_SECONDS = (
    "CAST(strftime('%s', substr(timestamp,1,4)||'-'||substr(timestamp,5,2)||'-'||"
    "substr(timestamp,7,2)||' '||substr(timestamp,9,2)||':'||substr(timestamp,11,2)||':'||"
    "substr(timestamp,13,2)) AS INTEGER)"
)


QUERY_TIMEOUT = 10.0  # seconds: default deadline of one query (server and CLI)
MAX_LIMIT = 1_000_000_000
MAX_REGEX_LENGTH = 1000
_PROGRESS_STEPS = 10_000  # SQLite VM steps between deadline checks (well under 1 ms)


class CdxQueryError(StorageError):
    """A CDX query parameter is invalid; the message says which and why."""


class QueryTimeout(StorageError):
    """A query ran past its deadline and was interrupted."""

    def __init__(self, seconds: float,
                 hint: str = "exact url or prefix, from/to, fewer regex filters") -> None:
        super().__init__(f"query took longer than {seconds:g} s and was stopped: narrow it "
                         f"({hint})")


@dataclass(frozen=True)
class Filter:
    """One ``filter=[!][=|~]field:expr`` clause."""

    field: str
    expr: str
    mode: str  # "contains", "exact" or "regex"
    invert: bool

    def sql(self) -> tuple[str, str]:
        column = f"COALESCE({FIELDS[self.field]}, '')"
        if self.mode == "exact":
            clause = f"{column} = ?"
        elif self.mode == "regex":
            clause = f"regexp(?, {column})"
        else:
            clause = f"instr({column}, ?) > 0"
        return (f"NOT ({clause})" if self.invert else clause), self.expr


def parse_filter(spec: str) -> Filter:
    """Parse ``[!][=|~]field:expr``: plain = contains, ``=`` exact, ``~`` regex (``re.match``)."""
    text = spec
    invert = text.startswith("!")
    if invert:
        text = text[1:]
    mode = "contains"
    if text[:1] == "=":
        mode, text = "exact", text[1:]
    elif text[:1] == "~":
        mode, text = "regex", text[1:]
    name, sep, expr = text.partition(":")
    if not sep or not name:
        raise CdxQueryError(f"invalid filter {spec!r}: use [!][=|~]field:expression")
    field = _field_name(name, f"filter {spec!r}")
    if mode == "regex":
        if len(expr) > MAX_REGEX_LENGTH:
            raise CdxQueryError(f"regular expression in filter is longer than {MAX_REGEX_LENGTH} "
                                "characters")
        try:
            _compile(expr)
        except (regex.error, re.error, OverflowError, RecursionError) as exc:
            raise CdxQueryError(f"invalid regular expression in filter {spec!r}: {exc}") from None
    return Filter(field, expr, mode, invert)


def _field_name(name: str, where: str) -> str:
    field = _ALIASES.get(name, name)
    if field not in FIELDS:
        raise CdxQueryError(f"unknown field {name!r} in {where}; known: {', '.join(FIELDS)}")
    return field


def parse_fields(spec: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"urlkey,timestamp"`` (or a list) → validated field names; ``None``/empty → all."""
    if not spec:
        return None
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    fields = tuple(_field_name(n.strip(), "fields") for n in names if n.strip())
    return fields or None


def pad_timestamp(value: str, *, upper: bool, name: str = "timestamp") -> str:
    """Pad ``2014`` to ``20140101000000`` (lower) or ``20141231235959`` (upper), as pywb does."""
    if not _DIGITS.match(value):
        raise CdxQueryError(
            f"invalid {name} {value!r}: use 1 to 14 digits, YYYY[MM[DD[hh[mm[ss]]]]]"
        )
    pad = _PAD_HIGH if upper else _PAD_LOW
    return value + pad[len(value) :]


def _epoch_seconds(value: str) -> int:
    """Seconds since the epoch of a (padded) timestamp, clamping out-of-range parts like warcio."""
    ts = pad_timestamp(value, upper=False, name="closest")
    if int(ts[0:4]) < 1:
        raise CdxQueryError(f"invalid closest {value!r}: the year must be 0001 or later")
    year, month = int(ts[0:4]), min(max(int(ts[4:6]), 1), 12)
    day = min(max(int(ts[6:8]), 1), calendar.monthrange(year, month)[1])
    hour, minute, second = min(int(ts[8:10]), 23), min(int(ts[10:12]), 59), min(int(ts[12:14]), 59)
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def search_range(url: str, match_type: str | None = None) -> tuple[str, str, str]:
    """``(start_key, end_key, match_type)``: the half-open urlkey range pywb searches.

    ``*.example.com`` means ``domain`` and ``http://example.com/path*`` means ``prefix`` when no
    match type is given (a wildcard with ``exact`` is an error).
    """
    url = url.strip()
    if match_type is not None and match_type not in MATCH_TYPES:
        raise CdxQueryError(f"invalid match type {match_type!r}: use {', '.join(MATCH_TYPES)}")
    if url.startswith("*."):
        if match_type not in (None, "domain"):
            raise CdxQueryError(f"url {url!r} has a '*.' wildcard: it needs match type domain")
        url, match_type = url[2:], "domain"
    elif url.endswith("*"):
        if match_type == "exact":
            raise CdxQueryError(f"url {url!r} has a '*' wildcard: it cannot be an exact match")
        url, match_type = url[:-1], match_type or "prefix"
    match_type = match_type or "exact"
    if not url:
        raise CdxQueryError("missing url: give a URL, *.host or a prefix ending in *")
    try:
        key = surt(url)
    except ValueError as exc:
        raise CdxQueryError(f"invalid url {url!r}: {exc}") from None
    if match_type == "exact":
        return key, key + "!", match_type
    if match_type == "prefix":
        if url.endswith("/") and not key.endswith("/"):
            key += "/"
        return key, key[:-1] + chr(ord(key[-1]) + 1), match_type
    host = key.split(")/")[0]
    if match_type == "host":
        return host + ")/", host + "*", match_type
    start = host + "," if "," not in host else host + ")/"  # a bare TLD: every host under it
    return start, host + "-", match_type


_compiled: dict[str, Any] = {}


def _compile(pattern: str) -> Any:
    """A compiled filter regex (the ``regex`` module: its matches take a timeout)."""
    found = _compiled.get(pattern)
    if found is None:
        if len(_compiled) > 256:
            _compiled.clear()
        found = _compiled[pattern] = regex.compile(pattern)
    return found


class Deadline:
    """One query's deadline: SQLite's progress handler and every regex match obey it."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds if seconds else None

    def expired(self) -> bool:
        return self.at is not None and time.monotonic() > self.at

    def regexp(self, pattern: str, value: str | None) -> bool:
        if value is None:
            return False
        if self.at is None:
            return _compile(pattern).match(value) is not None
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline")
        return _compile(pattern).match(value, timeout=left) is not None


def _connection(db: Database | sqlite3.Connection, deadline: Deadline) -> sqlite3.Connection:
    conn = db.conn if isinstance(db, Database) else db
    conn.create_function("regexp", 2, deadline.regexp)
    # Always (re)set: a pooled connection must not keep an earlier query's handler.
    conn.set_progress_handler(deadline.expired if deadline.at is not None else None,
                              _PROGRESS_STEPS)
    return conn


def _rows(conn: sqlite3.Connection, sql: str, params: list[Any],
          deadline: Deadline) -> Iterator[dict[str, Any]]:
    """Stream the rows; past the deadline, SQLite is interrupted and ``QueryTimeout`` raised."""
    try:
        cursor = conn.cursor()
        cursor.row_factory = None  # plain tuples, whatever the connection's factory
        try:
            cursor.execute(sql, params)
            names = [d[0] for d in cursor.description]
            for row in cursor:
                yield dict(zip(names, row, strict=True))
        except sqlite3.OperationalError:
            if deadline.expired():
                raise QueryTimeout(deadline.seconds or 0) from None
            raise
    finally:
        conn.set_progress_handler(None, 0)


def query(
    db: Database | sqlite3.Connection,
    url: str,
    match_type: str | None = None,
    from_ts: str | None = None,
    to_ts: str | None = None,
    limit: int | None = None,
    sort: str | None = None,
    closest: str | None = None,
    filters: Sequence[str] = (),
    collection: str | None = None,
    timeout: float | None = QUERY_TIMEOUT,
) -> Iterator[dict[str, Any]]:
    """Captures matching a CDX query, as dicts of ``captures`` columns.

    ``match_type`` None infers it from wildcards (default ``exact``). ``from_ts``/``to_ts`` are
    inclusive and padded. ``sort`` is ``None`` (``urlkey, timestamp, id``), ``"reverse"`` or
    ``"closest"``; a ``closest`` timestamp alone also sorts by distance to it (as pywb).
    Parameters are validated before this returns (``CdxQueryError``), rows are streamed.
    The query (until its last row is read) stops with ``QueryTimeout`` after ``timeout``
    seconds: a regex filter or a huge range cannot hold a connection, or the GIL, for long.
    """
    sql, params = build_sql(
        url, match_type, from_ts, to_ts, limit, sort, closest, filters, collection
    )
    deadline = Deadline(timeout)
    rows = _rows(_connection(db, deadline), sql, params, deadline)
    first = next(rows, None)  # run the query now: its errors belong to the caller
    if first is None:
        return iter(())
    return _chain(first, rows)


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def build_sql(
    url: str,
    match_type: str | None = None,
    from_ts: str | None = None,
    to_ts: str | None = None,
    limit: int | None = None,
    sort: str | None = None,
    closest: str | None = None,
    filters: Sequence[str] = (),
    collection: str | None = None,
) -> tuple[str, list[Any]]:
    """The SQL and parameters ``query()`` runs (exposed for EXPLAIN QUERY PLAN checks)."""
    start, end, _ = search_range(url, match_type)
    where = ["urlkey >= ?", "urlkey < ?"]
    params: list[Any] = [start, end]
    if from_ts:
        where.append("timestamp >= ?")
        params.append(pad_timestamp(from_ts, upper=False, name="from"))
    if to_ts:
        where.append("timestamp <= ?")
        params.append(pad_timestamp(to_ts, upper=True, name="to"))
    if collection:
        where.append("collection = ?")
        params.append(collection)
    # Records of a file still being written are not replayable yet (their file is *.open, and
    # pywb resolves the final name): the CDX API agrees with export cdxj and replay.
    where.append("filename NOT IN (SELECT name FROM warc_files WHERE state = 'open')")
    for spec in filters:
        clause, value = parse_filter(spec).sql()
        where.append(clause)
        params.append(value)
    order, order_params = _order(sort, closest)
    sql = f"SELECT * FROM captures INDEXED BY captures_urlkey_ts WHERE {' AND '.join(where)} ORDER BY {order}"
    params.extend(order_params)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_LIMIT:
            raise CdxQueryError(f"invalid limit {str(limit)[:30]!r}: use an integer from 1 to "
                                f"{MAX_LIMIT}")
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def _order(sort: str | None, closest: str | None) -> tuple[str, list[Any]]:
    if sort not in (None, *SORTS):
        raise CdxQueryError(f"invalid sort {sort!r}: use reverse or closest")
    if sort == "closest" and not closest:
        raise CdxQueryError("sort closest needs a closest timestamp (closest=YYYYMMDDhhmmss)")
    if closest:
        if sort == "reverse":
            raise CdxQueryError("sort reverse cannot be combined with a closest timestamp")
        return f"abs({_TS_SECONDS} - ?), timestamp, id", [_epoch_seconds(closest)]
    if sort == "reverse":
        return "urlkey DESC, timestamp DESC, id DESC", []
    return "urlkey, timestamp, id", []


def _value(row: dict[str, Any], field: str) -> str | None:
    value = row.get(_ROW_KEYS.get(field, field))
    return None if value is None or value == "" else str(value)


def field_values(row: dict[str, Any], fields: Sequence[str] | None = None) -> list[str]:
    """The row's values for ``fields`` (default: the classic nine) as strings, ``-`` if absent."""
    return [_value(row, f) or "-" for f in fields or DEFAULT_TEXT_FIELDS]


def format_line(
    row: dict[str, Any], output: str = "cdxj", fields: Sequence[str] | None = None
) -> str:
    """One capture as a line (no newline): ``cdxj``, ``json`` (NDJSON) or classic ``text``.

    Values are strings, as in cdxj-indexer and pywb; absent values are left out of JSON and
    written ``-`` in text. ``fields`` limits (and orders) the fields shown.
    """
    if output == "text":
        return " ".join(field_values(row, fields))
    if output == "json":
        names = fields or (*DEFAULT_TEXT_FIELDS, "method", "requestBody")
        data = {f: v for f in names if (v := _value(row, f)) is not None}
        if not fields and data.get("method") in ("GET", "HEAD"):
            del data["method"]
        return json.dumps(data)
    if output == "cdxj":
        if fields:
            block = {
                f: v
                for f in fields
                if f not in ("urlkey", "timestamp") and (v := _value(row, f)) is not None
            }
        else:
            block = cdxj_fields(row)
        return f"{row['urlkey']} {row['timestamp']} {json.dumps(block)}"
    raise CdxQueryError(f"invalid output {output!r}: use {', '.join(OUTPUTS)}")
