"""The index schema: a public contract (researchers query it with SQL and Datasette).

Every table and column is documented in ``docs/index-schema.md``; a test checks that the two
agree. The schema only ever grows through new migrations appended below: existing migrations are
never edited, so an index written by an older socialark opens (and upgrades) in a newer one.
"""

from __future__ import annotations

import re

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


@migrations()
def m002_posts_accounts_media_pages(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE posts (
            id INTEGER PRIMARY KEY,
            collection TEXT NOT NULL,
            platform TEXT NOT NULL,
            post_id TEXT NOT NULL,
            url TEXT,
            author TEXT,
            author_id TEXT,
            created_at TEXT,
            text TEXT NOT NULL DEFAULT '',
            content_html TEXT,
            reply_to_id TEXT,
            repost_of_id TEXT,
            quote_of_id TEXT,
            reply_count INTEGER,
            repost_count INTEGER,
            like_count INTEGER,
            lang TEXT,
            media TEXT NOT NULL DEFAULT '[]',
            raw TEXT NOT NULL DEFAULT '{}',
            source_url TEXT NOT NULL DEFAULT '',
            source_timestamp TEXT NOT NULL DEFAULT ''
        );
        CREATE UNIQUE INDEX posts_key ON posts(collection, platform, post_id);
        CREATE INDEX posts_author ON posts(author);
        CREATE INDEX posts_created_at ON posts(created_at);
        CREATE VIRTUAL TABLE posts_fts USING fts5(
            text, author, content='posts', content_rowid='id', tokenize='unicode61'
        );
        CREATE TRIGGER posts_ai AFTER INSERT ON posts BEGIN
            INSERT INTO posts_fts(rowid, text, author) VALUES (new.id, new.text, new.author);
        END;
        CREATE TRIGGER posts_ad AFTER DELETE ON posts BEGIN
            INSERT INTO posts_fts(posts_fts, rowid, text, author)
            VALUES ('delete', old.id, old.text, old.author);
        END;
        CREATE TRIGGER posts_au AFTER UPDATE ON posts BEGIN
            INSERT INTO posts_fts(posts_fts, rowid, text, author)
            VALUES ('delete', old.id, old.text, old.author);
            INSERT INTO posts_fts(rowid, text, author) VALUES (new.id, new.text, new.author);
        END;

        CREATE TABLE accounts (
            id INTEGER PRIMARY KEY,
            collection TEXT NOT NULL,
            platform TEXT NOT NULL,
            account_id TEXT NOT NULL,
            handle TEXT,
            display_name TEXT,
            url TEXT,
            created_at TEXT,
            description TEXT,
            followers_count INTEGER,
            following_count INTEGER,
            posts_count INTEGER,
            avatar_url TEXT,
            header_url TEXT,
            raw TEXT NOT NULL DEFAULT '{}',
            source_url TEXT NOT NULL DEFAULT '',
            source_timestamp TEXT NOT NULL DEFAULT ''
        );
        CREATE UNIQUE INDEX accounts_key ON accounts(collection, platform, account_id);

        CREATE TABLE media (
            id INTEGER PRIMARY KEY,
            collection TEXT NOT NULL,
            platform TEXT NOT NULL,
            url TEXT NOT NULL,
            post_id TEXT,
            media_type TEXT,
            description TEXT,
            preview_url TEXT,
            source_url TEXT NOT NULL DEFAULT '',
            source_timestamp TEXT NOT NULL DEFAULT ''
        );
        CREATE UNIQUE INDEX media_key ON media(collection, platform, url, post_id);

        CREATE TABLE pages (
            id INTEGER PRIMARY KEY,
            collection TEXT NOT NULL,
            url TEXT NOT NULL,
            timestamp TEXT NOT NULL,
            title TEXT,
            text TEXT NOT NULL DEFAULT '',
            crawl_id TEXT
        );
        CREATE UNIQUE INDEX pages_key ON pages(collection, url, timestamp);
        CREATE VIRTUAL TABLE pages_fts USING fts5(
            title, text, content='pages', content_rowid='id', tokenize='unicode61'
        );
        CREATE TRIGGER pages_ai AFTER INSERT ON pages BEGIN
            INSERT INTO pages_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
        END;
        CREATE TRIGGER pages_ad AFTER DELETE ON pages BEGIN
            INSERT INTO pages_fts(pages_fts, rowid, title, text)
            VALUES ('delete', old.id, old.title, old.text);
        END;
        CREATE TRIGGER pages_au AFTER UPDATE ON pages BEGIN
            INSERT INTO pages_fts(pages_fts, rowid, title, text)
            VALUES ('delete', old.id, old.title, old.text);
            INSERT INTO pages_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
        END;
        """
    )


@migrations()
def m003_mirror_uploads(db: Database) -> None:
    # IF NOT EXISTS: indexes written before this migration may have the table already
    # (storage/mirror.py used to create it on first use).
    db.execute(
        "CREATE TABLE IF NOT EXISTS mirror_uploads("
        " name TEXT, target TEXT, key TEXT, size INTEGER, sha256 TEXT, remote_checksum TEXT,"
        " upload_id TEXT, uploaded_at TEXT, verified_at TEXT, PRIMARY KEY(name, target))"
    )


@migrations()
def m004_warc_files_offloaded_at(db: Database) -> None:
    """``warc_files.offloaded_at``: the local copy was deleted after a verified mirror.

    Indexes written before it recorded the deletion only as a ``note`` (``local copy deleted
    <time> after verified mirror to <target>``): those rows are backfilled from the note.
    """
    if "offloaded_at" not in {c.name for c in db["warc_files"].columns}:
        db.execute("ALTER TABLE warc_files ADD COLUMN offloaded_at TEXT")
    rows = db.execute(
        "SELECT name, note FROM warc_files WHERE offloaded_at IS NULL AND note LIKE ?",
        ["%local copy deleted % after verified mirror to %"],
    ).fetchall()
    for name, note in rows:
        found = _DELETED_NOTE_RE.findall(note or "")
        if found:
            db.execute("UPDATE warc_files SET offloaded_at = ? WHERE name = ?", [found[-1], name])


_DELETED_NOTE_RE = re.compile(r"local copy deleted (\S+) after verified mirror to ")


@migrations()
def m005_quality_flags(db: Database) -> None:
    """``quality_flags``: answers the capture-quality gate (crawler/quality.py) did not count as
    captures (login walls, challenges, rate-limit/error pages served with 200, soft 404s)."""
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS quality_flags (
            id INTEGER PRIMARY KEY,
            collection TEXT NOT NULL,
            crawl_id TEXT NOT NULL DEFAULT '',
            url TEXT NOT NULL,
            final_url TEXT,
            status INTEGER,
            kind TEXT NOT NULL,
            rule TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 0,
            outcome TEXT NOT NULL,
            detected_at TEXT NOT NULL,
            source_url TEXT NOT NULL DEFAULT '',
            source_timestamp TEXT NOT NULL DEFAULT ''
        );
        CREATE UNIQUE INDEX IF NOT EXISTS quality_flags_key
            ON quality_flags(collection, crawl_id, url, attempt);
        CREATE INDEX IF NOT EXISTS quality_flags_outcome ON quality_flags(outcome, crawl_id);
        """
    )


@migrations()
def m006_post_versions(db: Database) -> None:
    """``post_versions``: every distinct version of a post across re-crawls, with the capture it
    came from; ``posts.deleted_at`` (+ the capture that showed it gone). Existing posts become
    version 1 of themselves (storage/versions.py keeps both up to date)."""
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS post_versions (
            id INTEGER PRIMARY KEY,
            collection TEXT NOT NULL,
            platform TEXT NOT NULL,
            post_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            text TEXT NOT NULL DEFAULT '',
            content_html TEXT,
            media TEXT NOT NULL DEFAULT '[]',
            edited_at TEXT,
            edited INTEGER NOT NULL DEFAULT 0,
            tombstone INTEGER NOT NULL DEFAULT 0,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            crawl_id TEXT,
            warc_filename TEXT,
            warc_offset INTEGER,
            source_url TEXT NOT NULL DEFAULT '',
            source_timestamp TEXT NOT NULL DEFAULT ''
        );
        CREATE UNIQUE INDEX IF NOT EXISTS post_versions_key
            ON post_versions(collection, platform, post_id, version);
        CREATE INDEX IF NOT EXISTS post_versions_first_seen ON post_versions(first_seen);
        """
    )
    cols = {c.name for c in db["posts"].columns}
    for col in ("deleted_at", "deleted_source_url", "deleted_source_timestamp"):
        if col not in cols:
            db.execute(f"ALTER TABLE posts ADD COLUMN {col} TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS posts_deleted_at ON posts(deleted_at)")
    from storage.versions import backfill_versions

    backfill_versions(db)


@migrations()
def m007_search_index(db: Database) -> None:
    """Search speed (issue 17, benchmarks/RESULTS.md): ``posts_fts`` gains prefix indexes for
    3 to 6 characters and is rebuilt from ``posts``; ``posts_author_id`` lets ``--author``
    find every name an account id was archived under.

    * ``prefix='3 4 5 6'``: ``arch*`` reads one doclist instead of merging every term that
      starts with ``arch`` on each lookup (a time-ordered search probes posts one by one: without
      it a common prefix took over a second on 1,000,000 posts).
    * the rebuild makes an index written by any earlier version (or edited behind the
      triggers' back) agree with ``posts``; ``optimize`` leaves one segment, which makes the
      per-post probes of time-ordered searches ~40x cheaper than on a crawl's many segments;
      ``automerge=2`` (FTS5's default is 4) keeps about half as many segments as crawls add rows
      (16 -> 8 for 100,000 posts inserted in 5 transactions, same insert time).
    * unchanged: the columns (``text``, ``author``), ``content='posts'``, rowid = ``posts.id``,
      the tokenizer and the triggers, so Datasette's search box and researchers' SQL keep working.
    """
    db.execute("CREATE INDEX IF NOT EXISTS posts_author_id ON posts(author_id)")
    db.execute("DROP TABLE IF EXISTS posts_fts")  # the triggers name it and stay
    db.execute(POSTS_FTS_SQL)
    db.execute("INSERT INTO posts_fts(posts_fts) VALUES ('rebuild')")
    db.execute("INSERT INTO posts_fts(posts_fts) VALUES ('optimize')")
    db.execute("INSERT INTO posts_fts(posts_fts, rank) VALUES ('automerge', 2)")


POSTS_FTS_PREFIXES = (3, 4, 5, 6)
POSTS_FTS_SQL = (
    "CREATE VIRTUAL TABLE posts_fts USING fts5(text, author, content='posts', content_rowid='id',"
    f" tokenize='unicode61', prefix='{' '.join(map(str, POSTS_FTS_PREFIXES))}')"
)


def apply_migrations(db: Database) -> None:
    """Bring ``db`` up to the current schema (idempotent)."""
    migrations.apply(db)
