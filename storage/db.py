"""Opening the SQLite index: WAL mode, migrations applied, one connection per caller/thread."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database

from storage.errors import StorageError
from storage.schema import apply_migrations


def open_database(path: Path | str, *, readonly: bool = False) -> Database:
    """Open (creating if needed) the index at ``path`` and bring its schema up to date.

    WAL mode lets the CLI read while a crawl writes. ``busy_timeout`` makes concurrent writers
    (a crawl and ``socialark mirror``) wait for each other instead of failing.
    """
    path = Path(path)
    try:
        if readonly:
            if not path.exists():
                raise StorageError(f"no index at {path} (run a crawl or `socialark index` first)")
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            return Database(conn)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        db = Database(conn)
        db.execute("PRAGMA busy_timeout = 30000")
        db.enable_wal()
        db.execute("PRAGMA synchronous = NORMAL")
        apply_migrations(db)
        return db
    except (sqlite3.DatabaseError, OSError) as exc:
        raise StorageError(f"cannot open index {path}: {exc}") from exc
