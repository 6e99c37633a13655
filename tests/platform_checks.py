"""Checks every platform's tests share: the posts index can be rebuilt from the WARCs alone."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from crawler.extraction import Extractor, reextract
from storage.db import open_database

ITEM_TABLES = ("posts", "accounts", "media")


def item_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the item tables (without row ids), sorted: comparable across rebuilds."""
    with sqlite3.connect(path) as conn:
        out = {}
        for table in ITEM_TABLES:
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != "id"]
            out[table] = sorted(conn.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall(),
                                key=repr)
        return out


def rebuilt_item_rows(
    index: Path, workdir: Path, extractors: list[Extractor] | None = None
) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, list[tuple[Any, ...]]]]:
    """(rows of a live crawl's index, rows after wiping them and re-extracting from the WARCs)."""
    copy = workdir / "index.db"
    with sqlite3.connect(index) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    before = item_rows(copy)
    db = open_database(copy)
    assert reextract(db, extractors=extractors) > 0  # wipes the item tables first
    db.conn.close()
    return before, item_rows(copy)
