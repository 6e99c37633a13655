"""What changed between crawls of a collection: ``new``, ``edited`` and ``deleted`` posts.

Read from ``post_versions`` and ``posts.deleted_at`` (storage/versions.py writes them):

* ``new``: the post's first version came from a crawl other than the collection's first one
  (a first crawl reports no changes);
* ``edited``: it has more than one version that is not a tombstone;
* ``deleted``: ``posts.deleted_at`` is set (404/410, "not found" widget, tombstone body) and
  some version showed the post alive (one archived already as a tombstone is not a change).

A post can appear under several kinds. Every row lists all versions of the post, each with the
replay link of the capture it was first seen in, and for a deletion the capture that showed it gone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from storage.cdxj import parse_bound
from storage.search import DEFAULT_REPLAY_BASE, replay_url
from storage.versions import iso_of

KINDS = ("new", "edited", "deleted")


def first_crawls(conn: sqlite3.Connection, collection: str | None) -> dict[str, tuple[str, str]]:
    """collection -> (crawl_id of its first capture, last capture timestamp of that crawl)."""
    out: dict[str, tuple[str, str]] = {}
    sql = "SELECT DISTINCT collection FROM post_versions"
    colls = [c for (c,) in conn.execute(sql + (" WHERE collection = ?" if collection else ""),
                                        [collection] if collection else [])]
    for coll in colls:
        row = conn.execute(
            "SELECT crawl_id FROM captures WHERE collection = ? AND crawl_id IS NOT NULL"
            " ORDER BY timestamp, id LIMIT 1", [coll]).fetchone()
        if row is None:
            continue
        (end,) = conn.execute("SELECT MAX(timestamp) FROM captures WHERE collection = ?"
                              " AND crawl_id = ?", [coll, row[0]]).fetchone()
        out[coll] = (row[0], end or "")
    return out


def _versions(conn: sqlite3.Connection, key: tuple[str, str, str],
              base: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT version, text, edited_at, edited, tombstone, first_seen, last_seen, crawl_id,"
        " warc_filename, warc_offset, source_url, source_timestamp FROM post_versions"
        " WHERE collection = ? AND platform = ? AND post_id = ? ORDER BY version", list(key),
    ).fetchall()
    out = []
    for (version, text, edited_at, edited, tomb, first, last, crawl, fname, offset, url,
         ts) in rows:
        out.append({
            "version": version, "text": text, "edited_at": edited_at, "edited": bool(edited),
            "tombstone": bool(tomb), "first_seen": first, "last_seen": last, "crawl_id": crawl,
            "warc_filename": fname, "warc_offset": offset, "source_url": url,
            "source_timestamp": ts,
            "replay_url": replay_url(base, key[0], ts, url) if url and ts else None,
        })
    return out


def _is_new(v1: dict[str, Any], first: tuple[str, str] | None) -> bool:
    if first is None:
        return False
    if v1["crawl_id"]:
        return bool(v1["crawl_id"] != first[0])
    return bool(v1["source_timestamp"] and v1["source_timestamp"] > first[1])


def _candidates(conn: sqlite3.Connection, collection: str | None,
                firsts: dict[str, tuple[str, str]]) -> set[tuple[str, str, str]]:
    """Keys of posts that may have changed: a second version, a deletion, or a first version
    from a crawl other than the collection's first (indexed look-ups, no per-post subqueries)."""
    where, args = (" AND collection = ?", [collection]) if collection else ("", [])
    keys = set(conn.execute("SELECT collection, platform, post_id FROM post_versions"
                            f" WHERE version = 2{where}", args).fetchall())
    keys |= set(conn.execute("SELECT collection, platform, post_id FROM posts"
                             f" WHERE deleted_at IS NOT NULL{where}", args).fetchall())
    for coll, (crawl_id, _end) in firsts.items():
        keys |= set(conn.execute(
            "SELECT collection, platform, post_id FROM post_versions WHERE collection = ?"
            " AND version = 1 AND (crawl_id IS NULL OR crawl_id != ?)", [coll, crawl_id]))
    return keys


def list_changes(conn: sqlite3.Connection, *, collection: str | None = None,
                 since: str | None = None,
                 replay_base: str = DEFAULT_REPLAY_BASE) -> Iterator[dict[str, Any]]:
    """One dict per (post, kind of change), oldest change first; ``since`` (any date form
    ``parse_bound`` takes) keeps changes at or after it."""
    since_iso = iso_of(parse_bound(since, upper=False)) if since else ""
    firsts = first_crawls(conn, collection)
    found: list[dict[str, Any]] = []
    for key in sorted(_candidates(conn, collection, firsts)):
        post = conn.execute(
            "SELECT url, author, created_at, text, deleted_at, deleted_source_url,"
            " deleted_source_timestamp FROM posts WHERE collection = ? AND platform = ?"
            " AND post_id = ?", list(key)).fetchone()
        versions = _versions(conn, key, replay_base)
        if post is None or not versions:
            continue
        coll, platform, post_id = key
        url, author, created, text, deleted_at, del_url, del_ts = post
        base = {"collection": coll, "platform": platform, "post_id": post_id, "url": url,
                "author": author, "created_at": created, "text": text,
                "deleted_at": deleted_at,
                "deleted_replay_url": (replay_url(replay_base, coll, del_ts, del_url)
                                       if del_url and del_ts else None),
                "versions": versions}
        kinds: list[tuple[str, str]] = []
        if _is_new(versions[0], firsts.get(coll)):
            kinds.append(("new", versions[0]["first_seen"]))
        edits = [v for v in versions[1:] if not v["tombstone"]]
        if edits:
            kinds.append(("edited", edits[-1]["first_seen"]))
        # A post archived only as a tombstone was already gone: not a change we saw happen.
        if deleted_at and any(not v["tombstone"] for v in versions):
            kinds.append(("deleted", deleted_at))
        for kind, at in kinds:
            if since_iso and at < since_iso:
                continue
            found.append({"change": kind, "changed_at": at, **base})
    found.sort(key=lambda r: (r["changed_at"], KINDS.index(r["change"]), r["platform"],
                              r["post_id"]))
    yield from found


__all__ = ["KINDS", "first_crawls", "list_changes"]
