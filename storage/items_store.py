"""Writing extracted items (posts, accounts, media, pages) into the index.

Items arrive as ``(table, dict)`` pairs so this module needs neither Scrapy nor the item classes.
Upserts are keyed on each table's natural key per collection, so re-extracting the same capture
(live, then ``index --rebuild``) yields the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from storage.versions import mark_gone, prepare_post, record_post, replaces_tombstone

KEYS = {
    "posts": ("collection", "platform", "post_id"),
    "accounts": ("collection", "platform", "account_id"),
    "media": ("collection", "platform", "url", "post_id"),
    "pages": ("collection", "url", "timestamp"),
    "quality_flags": ("collection", "crawl_id", "url", "attempt"),
}
# Not a table: "this capture shows the post gone" (storage/versions.py marks posts.deleted_at).
GONE = "post_gone"
JSON_COLUMNS = {"media", "raw"}


def _row(table: str, item: dict[str, Any], collection: str) -> dict[str, Any]:
    row = {k: v for k, v in item.items() if k != "table"}
    row["collection"] = collection
    for col in JSON_COLUMNS & row.keys():
        if not isinstance(row[col], str):
            row[col] = json.dumps(row[col], ensure_ascii=False, sort_keys=True)
    return row


def store_items(db: Database, items: Iterable[tuple[str, dict[str, Any]]], collection: str) -> int:
    """Upsert items in one transaction; later captures of the same post replace earlier values.

    Returns a count."""
    with db.conn:
        return upsert_items(db, items, collection)


def upsert_items(db: Database, items: Iterable[tuple[str, dict[str, Any]]], collection: str) -> int:
    """``store_items`` inside the caller's transaction (``LiveIndex`` commits items with the
    captures they come from)."""
    by_table: dict[str, list[dict[str, Any]]] = {}
    for table, item in items:
        if table == GONE:
            by_table.setdefault(GONE, []).append(item)
            continue
        if table not in KEYS:
            raise ValueError(f"unknown item table {table!r}")
        by_table.setdefault(table, []).append(_row(table, item, collection))
    n = 0
    gone = by_table.pop(GONE, [])
    for table, rows in by_table.items():
        keys = KEYS[table]
        cols = list(rows[0].keys())
        for full_row in rows:
            row = prepare_post(db, full_row) if table == "posts" else full_row
            if row is None:  # a tombstone of a live post: only its version and deletion
                record_post(db, full_row)
                n += 1
                continue
            cols_row = [c for c in row if c in cols] + [c for c in row if c not in cols]
            placeholders = ", ".join("?" for _ in cols_row)
            updates = ", ".join(f"{c} = excluded.{c}" for c in cols_row if c not in keys)
            # The newest capture wins, whatever order captures are processed in (live crawl
            # vs. index --rebuild), so both produce the same rows.
            newer = (f"excluded.source_timestamp > {table}.source_timestamp OR"
                     f" (excluded.source_timestamp = {table}.source_timestamp AND"
                     f" excluded.source_url >= {table}.source_url)")
            if table in ("pages", "quality_flags") or (
                    table == "posts" and replaces_tombstone(db, row)):
                newer = "1"
            sql = (f"INSERT INTO {table} ({', '.join(cols_row)}) VALUES ({placeholders})"
                   f" ON CONFLICT({', '.join(keys)}) DO UPDATE SET {updates} WHERE {newer}")
            db.execute(sql, [row[c] for c in cols_row])
            if table == "posts":
                record_post(db, full_row)
            n += 1
    for item in gone:  # after the posts of the same batch (a capture is never both)
        mark_gone(db, collection, item)
    return n
