"""The index schema: a public contract (researchers query it with SQL and Datasette).

Every table and column is documented in ``docs/index-schema.md``; a test checks that the two
agree. The schema only ever grows through new migrations appended below: existing migrations are
never edited, so an index written by an older socialark opens (and upgrades) in a newer one.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("socialark")


@migrations()
def m001_captures_and_files(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE captures (
            id INTEGER PRIMARY KEY,
            collection TEXT NOT NULL,
            urlkey TEXT NOT NULL,
            url TEXT NOT NULL,
            timestamp TEXT NOT NULL,
            warc_date TEXT NOT NULL,
            status INTEGER,
            mime TEXT,
            digest TEXT,
            length INTEGER NOT NULL,
            offset INTEGER NOT NULL,
            filename TEXT NOT NULL,
            record_type TEXT NOT NULL,
            record_id TEXT NOT NULL,
            method TEXT NOT NULL DEFAULT 'GET',
            request_body TEXT,
            refers_to_url TEXT,
            refers_to_date TEXT,
            crawl_id TEXT
        );
        CREATE UNIQUE INDEX captures_file_offset ON captures(filename, offset);
        CREATE INDEX captures_urlkey_ts ON captures(urlkey, timestamp);
        CREATE INDEX captures_collection_digest ON captures(collection, digest);
        CREATE INDEX captures_timestamp ON captures(timestamp);

        CREATE TABLE warc_files (
            name TEXT PRIMARY KEY,
            collection TEXT NOT NULL,
            path TEXT NOT NULL,
            size INTEGER,
            sha256 TEXT,
            records INTEGER,
            state TEXT NOT NULL DEFAULT 'open',
            created_at TEXT,
            closed_at TEXT,
            crawl_id TEXT,
            mirrored_at TEXT,
            remote_key TEXT,
            remote_checksum TEXT,
            remote_size INTEGER,
            note TEXT
        );
        CREATE INDEX warc_files_collection ON warc_files(collection);

        CREATE TABLE crawls (
            crawl_id TEXT PRIMARY KEY,
            collection TEXT NOT NULL,
            spider TEXT NOT NULL,
            config TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            state TEXT NOT NULL DEFAULT 'running',
            exit_code INTEGER,
            stats TEXT
        );
        """
    )


def apply_migrations(db: Database) -> None:
    """Bring ``db`` up to the current schema (idempotent)."""
    migrations.apply(db)
