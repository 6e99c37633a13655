"""Post versions across re-crawls: edits, tombstones and deletions (``post_versions``, ``posts.deleted_at``).

Called from ``storage.items_store`` for every ``posts`` row written, live or by
``index --rebuild``, so both produce the same versions as long as captures arrive oldest first
(a rebuild reads them ordered by time). A post gets a new version when what it says changes:
its text, the platform's edit time (Mastodon ``edited_at``, Reddit ``edited``), the platform's
edit marker (Telegram "edited") or a tombstone body (Reddit ``[deleted]``/``[removed]``).
Counts (likes, replies) and media URLs (Telegram signs them per request) are not content.

A post is *deleted* once a capture shows it gone: its URL answered 404/410 or a "not found"
widget (extractors yield a ``post_gone`` item, see ``mark_gone``), or its body became a tombstone.
``posts.deleted_at`` is the time of the first such capture; the row keeps its last text.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

TOMBSTONE_TEXTS = frozenset({"[deleted]", "[removed]"})
_KEY = "collection = ? AND platform = ? AND post_id = ?"


def iso_of(ts14: str) -> str:
    """``20240102030405`` -> ``2024-01-02T03:04:05Z`` (empty stays empty)."""
    t = (ts14 or "").ljust(14, "0")
    if not ts14:
        return ""
    return f"{t[0:4]}-{t[4:6]}-{t[6:8]}T{t[8:10]}:{t[10:12]}:{t[12:14]}Z"


def _raw(row: dict[str, Any]) -> dict[str, Any]:
    raw = row.get("raw")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return raw if isinstance(raw, dict) else {}


def edit_marks(platform: str, raw: dict[str, Any]) -> tuple[str | None, int]:
    """(edited_at ISO time if the platform reports one, 1 if the platform marks the post edited)."""
    if platform == "reddit":
        ed = raw.get("edited")
        if isinstance(ed, int | float) and not isinstance(ed, bool) and ed:
            return datetime.fromtimestamp(float(ed), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), 1
        return None, 0
    edited_at = raw.get("edited_at")
    if isinstance(edited_at, str) and edited_at:
        return edited_at, 1
    return None, 1 if raw.get("edited") is True else 0


def is_tombstone(platform: str, row: dict[str, Any], raw: dict[str, Any]) -> bool:
    """A body the platform put in place of a deleted/removed post (Reddit)."""
    if platform != "reddit":
        return False
    body = raw.get("body") if "body" in raw else raw.get("selftext")
    return (body in TOMBSTONE_TEXTS) or (row.get("text") or "").strip() in TOMBSTONE_TEXTS


def _capture(db: Database, collection: str, url: str, ts: str) -> tuple[Any, Any, Any]:
    """(warc filename, offset, crawl_id) of the capture a row came from, when indexed."""
    if not url or not ts:
        return None, None, None
    hit = db.execute(
        "SELECT filename, offset, crawl_id FROM captures WHERE timestamp = ? AND url = ?"
        " AND collection = ? AND record_type IN ('response', 'revisit') ORDER BY id LIMIT 1",
        [ts, url, collection],
    ).fetchone()
    return tuple(hit) if hit else (None, None, None)  # type: ignore[return-value]


def prepare_post(db: Database, row: dict[str, Any]) -> dict[str, Any] | None:
    """The row to upsert, or None: a tombstone of a post once seen alive leaves the posts row
    as the last live capture showed it (text, author, raw, source); the
    tombstone is recorded as a version and as the deletion (``record_post``). A post only ever
    seen as a tombstone is upserted as usual (newest capture wins, in any order)."""
    raw = _raw(row)
    if not is_tombstone(row["platform"], row, raw):
        return row
    alive = db.execute(f"SELECT 1 FROM post_versions WHERE {_KEY} AND tombstone = 0 LIMIT 1",
                       [row["collection"], row["platform"], row["post_id"]]).fetchone()
    return None if alive else row


def replaces_tombstone(db: Database, row: dict[str, Any]) -> bool:
    """True when ``row`` shows the post alive and the stored row is a tombstone: a live capture
    older than the tombstone arrived late, and the row keeps the last live text (as a rebuild,
    oldest first, would have left it)."""
    if row.get("platform") != "reddit" or is_tombstone(row["platform"], row, _raw(row)):
        return False
    stored = db.execute(f"SELECT text, raw FROM posts WHERE {_KEY}",
                        [row["collection"], row["platform"], row["post_id"]]).fetchone()
    return stored is not None and is_tombstone(
        row["platform"], {"text": stored[0]}, _raw({"raw": stored[1]}))


def record_post(db: Database, row: dict[str, Any]) -> None:
    """Record the version ``row`` (a posts row as stored) shows; mark or clear the deletion."""
    coll, platform, post_id = row["collection"], row["platform"], row["post_id"]
    url, ts = row.get("source_url") or "", row.get("source_timestamp") or ""
    raw = _raw(row)
    edited_at, edited = edit_marks(platform, raw)
    tomb = 1 if is_tombstone(platform, row, raw) else 0
    text = row.get("text") or ""
    media = row.get("media") if isinstance(row.get("media"), str) else json.dumps(
        row.get("media") or [], ensure_ascii=False, sort_keys=True)
    key = [coll, platform, post_id]
    gone_ts = db.execute(f"SELECT deleted_source_timestamp FROM posts WHERE {_KEY}",
                         key).fetchone()
    latest = db.execute(
        "SELECT version, text, edited_at, edited, tombstone, last_seen FROM post_versions"
        f" WHERE {_KEY} ORDER BY version DESC LIMIT 1", key,
    ).fetchone()
    seen = iso_of(ts)
    if latest is not None and ts and latest[5] and seen < latest[5]:
        # An older capture arriving late (live items are extracted concurrently): fit it into
        # the history where a rebuild, which reads oldest first, would have put it.
        _record_late(db, row, (text, edited_at, edited, tomb), media, seen)
        alive_later = db.execute(f"SELECT 1 FROM post_versions WHERE {_KEY} AND tombstone = 0"
                                 " AND last_seen > ? LIMIT 1", [*key, seen]).fetchone()
        if tomb and not alive_later:
            _set_deleted(db, coll, platform, post_id, url, ts)
        return
    if latest is not None and (latest[1], latest[2], latest[3], latest[4]) == (
            text, edited_at, edited, tomb):
        db.execute(f"UPDATE post_versions SET last_seen = MAX(last_seen, ?) WHERE {_KEY}"
                   " AND version = ?", [seen, coll, platform, post_id, latest[0]])
    else:
        _insert_version(db, row, (latest[0] + 1) if latest else 1,
                        (text, edited_at, edited, tomb), media, seen)
    if tomb:
        _set_deleted(db, coll, platform, post_id, url, ts)
    elif ts and gone_ts and gone_ts[0] and gone_ts[0] < ts:
        # seen alive after it was marked gone (a 404 that was not a deletion)
        db.execute(
            "UPDATE posts SET deleted_at = NULL, deleted_source_url = NULL,"
            f" deleted_source_timestamp = NULL WHERE {_KEY} AND deleted_source_timestamp < ?",
            [coll, platform, post_id, ts])


def _record_late(db: Database, row: dict[str, Any], content: tuple[Any, ...], media: str,
                 seen: str) -> None:
    """Fit a capture older than the newest version into the history: it extends the version
    before it or the one after it when it says the same, or becomes a version between them
    (later versions are renumbered), as if captures had arrived oldest first."""
    key = [row["collection"], row["platform"], row["post_id"]]
    url, ts = row.get("source_url") or "", row.get("source_timestamp") or ""
    cols = "version, text, edited_at, edited, tombstone"
    before = db.execute(f"SELECT {cols} FROM post_versions WHERE {_KEY} AND source_timestamp <= ?"
                        " ORDER BY version DESC LIMIT 1", [*key, ts]).fetchone()
    after = db.execute(f"SELECT {cols} FROM post_versions WHERE {_KEY} AND source_timestamp > ?"
                       " ORDER BY version LIMIT 1", [*key, ts]).fetchone()
    if before is not None and tuple(before[1:]) == content:
        db.execute(f"UPDATE post_versions SET last_seen = MAX(last_seen, ?) WHERE {_KEY}"
                   " AND version = ?", [seen, *key, before[0]])
        return
    if after is not None and tuple(after[1:]) == content:
        # the first capture that showed this version is this one
        filename, offset, crawl_id = _capture(db, key[0], url, ts)
        db.execute(
            "UPDATE post_versions SET first_seen = ?, source_url = ?, source_timestamp = ?,"
            " crawl_id = ?, warc_filename = ?, warc_offset = ?, content_html = ?, media = ?"
            f" WHERE {_KEY} AND version = ?",
            [seen, url, ts, crawl_id, filename, offset, row.get("content_html"), media, *key,
             after[0]])
        return
    version = after[0] if after is not None else (before[0] + 1 if before else 1)
    # two steps: the unique (.., version) index would see a clash mid-update
    db.execute(f"UPDATE post_versions SET version = -version - 1 WHERE {_KEY} AND version >= ?",
               [*key, version])
    db.execute(f"UPDATE post_versions SET version = -version WHERE {_KEY} AND version < 0", key)
    _insert_version(db, row, version, content, media, seen)


def _insert_version(db: Database, row: dict[str, Any], version: int, content: tuple[Any, ...],
                    media: str, seen: str) -> None:
    """Version ``version`` of the post, first and last seen at ``seen``, from ``row``'s capture."""
    url, ts = row.get("source_url") or "", row.get("source_timestamp") or ""
    filename, offset, crawl_id = _capture(db, row["collection"], url, ts)
    text, edited_at, edited, tomb = content
    db.execute(
        "INSERT INTO post_versions (collection, platform, post_id, version, text,"
        " content_html, media, edited_at, edited, tombstone, first_seen, last_seen,"
        " crawl_id, warc_filename, warc_offset, source_url, source_timestamp)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [row["collection"], row["platform"], row["post_id"], version, text,
         row.get("content_html"), media, edited_at, edited, tomb, seen, seen, crawl_id,
         filename, offset, url, ts],
    )


def _set_deleted(db: Database, coll: str, platform: str, post_id: str, url: str, ts: str) -> None:
    db.execute(
        "UPDATE posts SET deleted_at = ?, deleted_source_url = ?, deleted_source_timestamp = ?"
        f" WHERE {_KEY} AND (deleted_at IS NULL OR deleted_source_timestamp > ?)",
        [iso_of(ts), url, ts, coll, platform, post_id, ts])


def mark_gone(db: Database, collection: str, item: dict[str, Any]) -> int:
    """A capture showed the post gone (404/410, a "not found" widget): mark it deleted, once,
    with the time of the first such capture after the last one that showed it. Posts never
    archived in this collection are not recorded (nothing to say was deleted)."""
    ts, url = item.get("source_timestamp") or "", item.get("source_url") or ""
    cur = db.execute(
        "UPDATE posts SET deleted_at = ?, deleted_source_url = ?, deleted_source_timestamp = ?"
        f" WHERE {_KEY} AND source_timestamp < ?"
        " AND (deleted_at IS NULL OR deleted_source_timestamp > ?)",
        [iso_of(ts), url, ts, collection, item["platform"], str(item["post_id"]), ts, ts])
    return cur.rowcount


def backfill_versions(db: Database) -> None:
    """Version 1 for every post written before ``post_versions`` existed (migration m006).

    One INSERT ... SELECT (an index of a million posts migrates in seconds); the SQL computes
    what ``edit_marks``/``is_tombstone`` compute, so the next capture of an unchanged post
    matches its version 1."""
    # Only raws that mention an edit or a tombstone are parsed (the others give '{}').
    raw = ("CASE WHEN (instr(p.raw, 'edited') OR instr(p.raw, '[deleted]')"
           " OR instr(p.raw, '[removed]')) AND json_valid(p.raw) THEN p.raw ELSE '{}' END")
    ed = f"json_extract({raw}, '$.edited')"
    ed_type = f"json_type({raw}, '$.edited')"
    edited_at = (
        f"CASE WHEN p.platform = 'reddit' THEN CASE WHEN {ed_type} IN ('integer', 'real')"
        f" AND {ed} != 0 THEN strftime('%Y-%m-%dT%H:%M:%SZ', {ed}, 'unixepoch') END"
        f" WHEN json_type({raw}, '$.edited_at') = 'text'"
        f" AND json_extract({raw}, '$.edited_at') != '' THEN json_extract({raw}, '$.edited_at')"
        " END")
    edited = (f"CASE WHEN ({edited_at}) IS NOT NULL THEN 1 WHEN p.platform != 'reddit'"
              f" AND {ed_type} = 'true' THEN 1 ELSE 0 END")
    body = (f"CASE WHEN json_type({raw}, '$.body') IS NOT NULL THEN json_extract({raw}, '$.body')"
            f" ELSE json_extract({raw}, '$.selftext') END")
    tombs = ", ".join(f"'{t}'" for t in sorted(TOMBSTONE_TEXTS))
    tomb = (f"CASE WHEN p.platform = 'reddit' AND (({body}) IN ({tombs})"
            f" OR trim(p.text) IN ({tombs})) THEN 1 ELSE 0 END")
    seen = ("CASE WHEN p.source_timestamp = '' THEN '' ELSE substr(p.source_timestamp, 1, 4)"
            " || '-' || substr(p.source_timestamp, 5, 2) || '-' || substr(p.source_timestamp, 7, 2)"
            " || 'T' || substr(p.source_timestamp, 9, 2) || ':' || substr(p.source_timestamp, 11, 2)"
            " || ':' || substr(p.source_timestamp, 13, 2) || 'Z' END")
    cap = ("(SELECT c.{col} FROM captures c WHERE c.timestamp = p.source_timestamp"
           " AND c.url = p.source_url AND c.collection = p.collection"
           " AND c.record_type IN ('response', 'revisit') ORDER BY c.id LIMIT 1)")
    db.execute(
        "INSERT INTO post_versions (collection, platform, post_id, version, text, content_html,"
        " media, edited_at, edited, tombstone, first_seen, last_seen, crawl_id, warc_filename,"
        " warc_offset, source_url, source_timestamp)"
        f" SELECT p.collection, p.platform, p.post_id, 1, p.text, p.content_html, p.media,"
        f" {edited_at}, {edited}, {tomb}, {seen}, {seen}, {cap.format(col='crawl_id')},"
        f" {cap.format(col='filename')}, {cap.format(col='offset')}, p.source_url,"
        " p.source_timestamp FROM posts p WHERE NOT EXISTS (SELECT 1 FROM post_versions v"
        " WHERE v.collection = p.collection AND v.platform = p.platform"
        " AND v.post_id = p.post_id)")
    # Tombstones archived before: deleted from their capture's time (like record_post).
    db.execute(
        "UPDATE posts SET deleted_at = v.first_seen, deleted_source_url = v.source_url,"
        " deleted_source_timestamp = v.source_timestamp FROM post_versions v"
        " WHERE v.collection = posts.collection AND v.platform = posts.platform"
        " AND v.post_id = posts.post_id AND v.version = 1 AND v.tombstone = 1"
        " AND posts.deleted_at IS NULL")


__all__ = [
    "backfill_versions",
    "edit_marks",
    "is_tombstone",
    "iso_of",
    "mark_gone",
    "prepare_post",
    "record_post",
    "replaces_tombstone",
]
