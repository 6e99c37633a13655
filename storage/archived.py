"""What spiders may ask the index: a small read-only interface, so no spider writes SQL.

A spider learns from earlier crawls through ``ArchivedItems`` only (today: which posts of a
listing are already archived, for incremental crawls; which posts to revisit, for
``--recheck``). It opens the index read-only and
lazily: a crawl into a fresh data dir has no index yet, and then nothing is known.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path


class ArchivedItems:
    """Read-only view of the items already in the index of one collection."""

    def __init__(self, index_path: Path, collection: str) -> None:
        self.index_path = Path(index_path)
        self.collection = collection
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is None and self.index_path.exists():
            self._conn = sqlite3.connect(f"file:{self.index_path}?mode=ro", uri=True,
                                         check_same_thread=False)
        return self._conn

    def known_post_ids(self, platform: str, post_ids: Sequence[str], *, before: str) -> set[str]:
        """Those of ``post_ids`` already in the posts table from captures older than ``before``
        (a 14-digit timestamp: the start of this crawl, so its own captures do not count)."""
        if not post_ids:
            return set()
        conn = self._connection()
        if conn is None:
            return set()
        marks = ",".join("?" for _ in post_ids)
        rows = conn.execute(
            "SELECT post_id FROM posts WHERE collection = ? AND platform = ? AND "
            f"source_timestamp < ? AND post_id IN ({marks})",
            [self.collection, platform, before, *post_ids],
        ).fetchall()
        return {r[0] for r in rows}

    def posts_to_recheck(self, platform: str) -> list[tuple[str, str, str]]:
        """(post_id, url, source_url) of every post of ``platform`` archived in this collection
        and not known to be deleted, oldest capture first (``--recheck``)."""
        conn = self._connection()
        if conn is None:
            return []
        cols = {r[1] for r in conn.execute("PRAGMA table_info(posts)")}
        alive = " AND deleted_at IS NULL" if "deleted_at" in cols else ""
        rows = conn.execute(
            "SELECT post_id, COALESCE(url, ''), source_url FROM posts WHERE collection = ?"
            f" AND platform = ?{alive} ORDER BY source_timestamp, id",
            [self.collection, platform],
        ).fetchall()
        return [(str(a), b, c) for a, b, c in rows]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


__all__ = ["ArchivedItems"]
