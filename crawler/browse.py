"""``socialark browse``: Datasette over ``index.db`` with replay links and canned queries.

The metadata starts from ``crawler.datasette_metadata.build_metadata`` (every table and column
documented) and adds what a researcher asks first: canned queries (most active authors, posts
per day, deleted posts, media by type), a ``replay_url`` column in the queries that list posts,
and the configuration of the bundled plugin (``crawler/datasette_plugins``) that turns each
row's ``post_id``/``source_url`` into a replay link and makes ``/`` open on ``posts``.

The index is served immutable (``datasette -i``: no locks, no writes, row counts computed once)
unless a ``-wal`` file shows a crawl may still be writing; then it is opened read-only, which
sees new rows as they are committed.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from markupsafe import escape
from sqlite_utils import Database

from crawler.datasette_metadata import build_metadata

PLUGINS_DIR = Path(__file__).resolve().parent / "datasette_plugins"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "socialark-replay"
SQL_TIME_LIMIT_MS = 5000  # canned aggregates over a million posts need more than the 1 s default


def sql_string(value: str) -> str:
    """``value`` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def replay_sql(base: str, alias: str = "", *, url: str = "source_url",
               timestamp: str = "source_timestamp") -> str:
    """SQL expression for a row's replay URL, the same shape as ``storage.search.replay_url``."""
    p = f"{alias}." if alias else ""
    return (f"CASE WHEN {p}{url} IS NOT NULL AND {p}{timestamp} IS NOT NULL THEN "
            f"{sql_string(base.rstrip('/') + '/')} || {p}collection || '/' || "
            f"{p}{timestamp} || '/' || {p}{url} END")


def _columns(db: Database, table: str) -> set[str]:
    return {c.name for c in db[table].columns} if table in db.table_names() else set()


def canned_queries(db: Database, replay_base: str) -> dict[str, dict[str, Any]]:
    """The common questions, for the tables (and columns) this index has."""
    queries: dict[str, dict[str, Any]] = {}
    posts = _columns(db, "posts")
    if posts:
        # Both aggregates are answered from an index alone (posts_author, posts_created_at):
        # a table scan would read every post's raw JSON, gigabytes on a large archive.
        queries["most_active_authors"] = {
            "title": "Most active authors",
            "description": "Authors by number of archived posts (top 200, all collections and "
                           "platforms). Filter the posts table by author for their posts.",
            "sql": ("SELECT author, count(*) AS posts\n"
                    "FROM posts WHERE author IS NOT NULL AND author != ''\n"
                    "GROUP BY author ORDER BY posts DESC, author LIMIT 200"),
        }
        queries["posts_per_day"] = {
            "title": "Posts per day",
            "description": "Archived posts by the UTC day they were published (created_at), newest first.",
            "sql": ("SELECT substr(created_at, 1, 10) AS day, count(*) AS posts\n"
                    "FROM posts WHERE created_at IS NOT NULL\n"
                    "GROUP BY day ORDER BY day DESC"),
        }
    if "deleted_at" in posts:
        gone = ""
        if {"deleted_source_url", "deleted_source_timestamp"} <= posts:
            expr = replay_sql(replay_base, url="deleted_source_url", timestamp="deleted_source_timestamp")
            gone = f",\n  {expr} AS gone_replay_url"
        queries["deleted_posts"] = {
            "title": "Deleted posts",
            "description": "Posts seen gone (404/410 or a tombstone) on a re-crawl, newest first, "
                           "with their last archived text, the replay of the capture that text "
                           "came from and, where recorded, of the answer that showed it gone.",
            "sql": ("SELECT deleted_at, collection, platform, post_id, author, created_at, text,\n"
                    f"  {replay_sql(replay_base)} AS replay_url{gone}\n"
                    "FROM posts WHERE deleted_at IS NOT NULL\n"
                    "ORDER BY deleted_at DESC"),
        }
    if _columns(db, "media"):
        queries["media_by_type"] = {
            "title": "Media by type",
            "description": "Media files referenced by archived posts, by the type the platform gave.",
            "sql": ("SELECT coalesce(media_type, '(none)') AS media_type, count(*) AS files,\n"
                    "  count(DISTINCT collection || ' ' || platform || ' ' || post_id) AS posts,\n"
                    "  sum(description IS NOT NULL AND description != '') AS with_alt_text\n"
                    "FROM media GROUP BY 1 ORDER BY files DESC"),
        }
    return queries


def _posts_description(description: str, database: str, queries: dict[str, Any]) -> str:
    links = " · ".join(f'<a href="/{escape(database)}/{escape(name)}">{escape(q["title"])}</a>'
                       for name, q in queries.items())
    return (f"<p>{escape(description)}</p>"
            "<p><strong>Replay:</strong> each post's <code>post_id</code> and "
            "<code>source_url</code> link to the replay of the capture it was extracted from "
            "(run <code>socialark replay</code>).</p>"
            + (f"<p><strong>Common questions:</strong> {links}</p>" if links else ""))


def browse_metadata(db: Database, database: str, replay_base: str) -> dict[str, Any]:
    """Datasette metadata for ``socialark browse``."""
    metadata = build_metadata(db, database_name=database)
    queries = canned_queries(db, replay_base)
    entry = metadata["databases"][database]
    entry["queries"] = queries
    tables = entry["tables"]
    if "posts" in tables:
        posts = tables["posts"]
        posts["description_html"] = _posts_description(posts.get("description", ""), database, queries)
    metadata["plugins"] = {PLUGIN: {
        "replay_base": replay_base,
        "home": f"/{database}/posts" if "posts" in tables else f"/{database}",
    }}
    return metadata


def wal_in_use(db_path: Path) -> bool:
    """True when a ``-wal`` file holds frames a writer has not checkpointed (a crawl may be running)."""
    wal = db_path.with_name(db_path.name + "-wal")
    return wal.exists() and wal.stat().st_size > 0


def datasette_argv(db_path: Path, metadata_path: Path, host: str, port: int, *,
                   immutable: bool) -> list[str]:
    """The ``datasette serve`` command line (same interpreter, so the same installed Datasette)."""
    return [sys.executable, "-m", "datasette", "serve",
            *(["-i", str(db_path)] if immutable else [str(db_path)]),
            "--metadata", str(metadata_path), "--plugins-dir", str(PLUGINS_DIR),
            "-h", host, "-p", str(port), "--setting", "sql_time_limit_ms", str(SQL_TIME_LIMIT_MS),
            # suggested facets try every column: seconds per page on a large posts table
            "--setting", "suggest_facets", "off"]


def wait_until_serving(url: str, alive: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Poll ``url`` until Datasette answers; False if the process died or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # it answers
        except OSError:
            time.sleep(0.2)
    return False


def last_error(log: Path) -> str | None:
    """The line of Datasette's log that says why it stopped (uvicorn's ``ERROR:``), if any."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    errors = [ln for ln in lines if ln.startswith("ERROR:") or "Error:" in ln]
    return errors[-1].removeprefix("ERROR:").strip() if errors else None
