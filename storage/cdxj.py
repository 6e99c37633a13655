"""Sorted CDXJ from the index, in exactly the shape cdxj-indexer writes.

A line is ``<urlkey> <timestamp> <json>``; the JSON holds ``url, mime, status, digest, length,
offset, filename`` (all values strings, absent values left out) plus ``method``/``requestBody``
for non-GET captures. Lines are sorted by raw bytes, as pywb's binary search and WACZ readers
require. SQLite's default BINARY collation compares UTF-8 bytes and a urlkey never contains a
space, so ``ORDER BY urlkey, timestamp`` already yields byte order of whole lines; rows that tie
on both are ordered by their rendered line.

Only records in files that are no longer being written are exported (``warc_files.state`` other
than ``open``, and never a ``*.open`` file name): an open file may still be truncated by a repair.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from sqlite_utils import Database

from storage.errors import StorageError

_BOUND_RE = re.compile(r"^\d{4}(-?\d{2}(-?\d{2}([T ]?\d{2}(:?\d{2}(:?\d{2})?)?)?)?)?Z?$")


@dataclass(frozen=True)
class CaptureFilter:
    """Which captures to export: one collection (or all) and an inclusive 14-digit time range."""

    collection: str | None = None
    since: str | None = None
    until: str | None = None


def parse_bound(value: str, *, upper: bool) -> str:
    """Turn ``2024``, ``2024-01-02``, ``2024-01-02T03:04`` or ``20240102030405`` into 14 digits.

    A lower bound pads with the earliest instant, an upper bound with the latest
    (``2024`` → ``20241231235959``), like pywb's ``from``/``to``.
    """
    text = value.strip()
    if not _BOUND_RE.match(text):
        raise StorageError(
            f"invalid date {value!r}: use YYYY[-MM[-DD[THH[:MM[:SS]]]]] or up to 14 digits"
        )
    digits = "".join(ch for ch in text if ch.isdigit())
    if upper:
        padded = digits + "1231235959"[len(digits) - 4:] if len(digits) < 14 else digits
        # Day 31 may not exist; the comparison is textual, so "20240231..." still sorts correctly.
    else:
        padded = digits + "0101000000"[len(digits) - 4:] if len(digits) < 14 else digits
    return padded[:14]


def _where(flt: CaptureFilter) -> tuple[str, list[str]]:
    clauses = [
        "c.filename NOT LIKE '%.open'",
        "(f.state IS NULL OR f.state != 'open')",
    ]
    params: list[str] = []
    if flt.collection:
        clauses.append("c.collection = ?")
        params.append(flt.collection)
    if flt.since:
        clauses.append("c.timestamp >= ?")
        params.append(flt.since)
    if flt.until:
        clauses.append("c.timestamp <= ?")
        params.append(flt.until)
    return " AND ".join(clauses), params


def cdxj_fields(row: dict[str, object]) -> dict[str, str]:
    """The JSON block of one CDXJ line, keys in cdxj-indexer's order, values as strings."""
    fields: dict[str, str] = {}
    for key in ("url", "mime", "status", "digest", "length", "offset", "filename"):
        value = row.get(key)
        if value is not None and value != "":
            fields[key] = str(value)
    method = str(row.get("method") or "GET").upper()
    if method not in ("GET", "HEAD"):
        fields["method"] = method
        if row.get("request_body"):
            fields["requestBody"] = str(row["request_body"])
    return fields


def cdxj_line(row: dict[str, object]) -> str:
    return f"{row['urlkey']} {row['timestamp']} {json.dumps(cdxj_fields(row))}\n"


def iter_capture_rows(db: Database, flt: CaptureFilter | None = None) -> Iterator[dict[str, object]]:
    """Exportable capture rows (with ``path`` of their WARC file) in CDXJ order."""
    where, params = _where(flt or CaptureFilter())
    sql = (
        "SELECT c.*, f.path AS path FROM captures c "
        "LEFT JOIN warc_files f ON f.name = c.filename "
        f"WHERE {where} ORDER BY c.urlkey, c.timestamp"
    )
    yield from db.query(sql, params)


def iter_cdxj(db: Database, flt: CaptureFilter | None = None) -> Iterator[str]:
    """Sorted CDXJ lines (streamed; memory holds one urlkey+timestamp group at a time)."""
    rows = iter_capture_rows(db, flt)
    for _key, group in itertools.groupby(rows, key=lambda r: (r["urlkey"], r["timestamp"])):
        yield from sorted(cdxj_line(row) for row in group)


def write_cdxj(db: Database, out: TextIO, flt: CaptureFilter | None = None) -> int:
    """Write sorted CDXJ to ``out``; return the number of lines."""
    count = 0
    for line in iter_cdxj(db, flt):
        out.write(line)
        count += 1
    return count


def collections(db: Database) -> list[str]:
    """Collections that have at least one capture, sorted."""
    if "captures" not in db.table_names():
        return []
    return [row[0] for row in db.execute("SELECT DISTINCT collection FROM captures ORDER BY 1")]


def warc_paths(db: Database, flt: CaptureFilter | None = None) -> dict[str, str]:
    """``{filename: absolute path}`` of the WARC files holding the exported captures.

    Files with no ``warc_files`` row are looked for nowhere: the caller reports them.
    """
    where, params = _where(flt or CaptureFilter())
    sql = (
        "SELECT DISTINCT c.filename, f.path FROM captures c "
        "LEFT JOIN warc_files f ON f.name = c.filename "
        f"WHERE {where} ORDER BY c.filename"
    )
    return {name: path for name, path in db.execute(sql, params)}
