"""Edits and deletions across re-crawls (``post_versions``, ``posts.deleted_at``, ``socialark changes``).

Real crawls of the Mastodon, Reddit and Telegram emulators through the CLI in subprocesses. Between
two crawls the test edits one post, deletes one and adds one on the emulator; the second crawl runs
with ``--recheck``. ``changes`` must list exactly those three, with every version and its replay
link, and ``index --rebuild`` must reproduce the same versions from the WARCs alone.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

from storage.db import open_database
from tests.conftest import socialark
from tests.emulators.mastodon import MastodonEmulator
from tests.emulators.reddit import RedditEmulator
from tests.emulators.telegram import TelegramEmulator

VERSION_COLUMNS = ("collection", "platform", "post_id", "version", "text", "edited_at", "edited",
                   "tombstone", "first_seen", "crawl_id", "warc_filename", "warc_offset",
                   "source_url", "source_timestamp")


def crawl(data_dir: Path, *args: str) -> None:
    proc = socialark("crawl", *args, "--delay", "0", data_dir=data_dir, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]


def changes(data_dir: Path, *args: str) -> list[dict[str, Any]]:
    proc = socialark("changes", "--json", *args, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines()]


def kinds(rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(r["change"], r["post_id"]) for r in rows}


def query(data_dir: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "index.db") as conn:
        return conn.execute(sql, args).fetchall()


def versions(data_dir: Path) -> list[tuple[Any, ...]]:
    return query(data_dir, f"SELECT {', '.join(VERSION_COLUMNS)} FROM post_versions"
                           " ORDER BY platform, post_id, version")


def deletions(data_dir: Path) -> list[tuple[Any, ...]]:
    return query(data_dir, "SELECT post_id, text, deleted_at, deleted_source_url FROM posts"
                           " WHERE deleted_at IS NOT NULL ORDER BY post_id")


def check_rebuild(data_dir: Path) -> None:
    """``index --rebuild`` gives the same versions, deletions and changes."""
    before = (versions(data_dir), deletions(data_dir), changes(data_dir))
    proc = socialark("index", "--rebuild", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = (versions(data_dir), deletions(data_dir), changes(data_dir))
    assert after == before


def check_replay_links(rows: list[dict[str, Any]], data_dir: Path) -> None:
    """Every version links to a capture in the index (by url and timestamp)."""
    for row in rows:
        for v in row["versions"]:
            assert v["replay_url"].endswith(f"/{row['collection']}/{v['source_timestamp']}/"
                                            f"{v['source_url']}")
            assert query(data_dir, "SELECT 1 FROM captures WHERE url = ? AND timestamp = ?"
                         " AND filename = ? AND offset = ?", v["source_url"],
                         v["source_timestamp"], v["warc_filename"], v["warc_offset"])
        if row["change"] == "deleted":
            assert row["deleted_replay_url"]


def test_mastodon_edit_delete_new(tmp_path: Path) -> None:
    with MastodonEmulator(flavor="mastodon", seed=3) as emu:
        ds = emu.dataset
        dave = ds.by_username("dave")
        assert dave is not None
        base = emu.base_url
        args = ("mastodon", "--instance", base, "--account", "dave")
        crawl(tmp_path, *args)
        assert changes(tmp_path) == []  # a first crawl reports no changes
        assert query(tmp_path, "SELECT COUNT(*), MAX(version) FROM post_versions") == [(3, 1)]

        edited, deleted, kept = dave.status_ids
        old_text = ds.statuses[edited].text
        gone_text = ds.statuses[deleted].text
        ds.edit(edited, "Dave's post, edited after the first crawl")
        ds.delete(deleted)
        new = ds.post("dave", "A post written between the crawls")
        crawl(tmp_path, *args, "--recheck")

    rows = changes(tmp_path)
    assert kinds(rows) == {("new", new.id), ("edited", edited), ("deleted", deleted)}
    by_kind = {r["change"]: r for r in rows}
    ed = by_kind["edited"]
    assert [v["text"] for v in ed["versions"]] == [
        old_text, "Dave's post, edited after the first crawl"]
    assert ed["versions"][0]["edited_at"] is None
    assert ed["versions"][1]["edited_at"] == ds.statuses[edited].edited_at
    assert ed["versions"][0]["crawl_id"] != ed["versions"][1]["crawl_id"]
    gone = by_kind["deleted"]
    assert gone["text"] == gone_text  # a deleted post keeps its last text
    assert [v["text"] for v in gone["versions"]] == [gone_text]
    assert gone["deleted_replay_url"].endswith(f"/api/v1/statuses/{deleted}")
    assert query(tmp_path, "SELECT status FROM captures WHERE url = ?",
                 f"{base}/api/v1/statuses/{deleted}") == [(404,)]
    assert by_kind["new"]["versions"][0]["text"] == "A post written between the crawls"
    assert kept not in {r["post_id"] for r in rows}
    check_replay_links(rows, tmp_path)
    # --since: changes seen at or after a date; every change here is from today.
    assert changes(tmp_path, "--since", "2999-01-01") == []
    assert kinds(changes(tmp_path, "--since", rows[0]["changed_at"][:10])) == kinds(rows)
    check_rebuild(tmp_path)


def test_reddit_edit_tombstone_purge_new(tmp_path: Path) -> None:
    with RedditEmulator(seed=1) as emu:
        ds = emu.dataset
        sub = ds.sub("quietsub")
        assert sub is not None
        edited, deleted, purged = sub.post_ids[:3]
        kept = ds.add_comment(edited, "carol_c", "A comment that stays")
        removed = ds.add_comment(edited, "dave_d", "A comment a moderator removes")
        args = ("reddit", "--subreddit", "quietsub", "--base-url", emu.base_url)
        crawl(tmp_path, *args)
        assert changes(tmp_path) == []
        before = {pid: text for pid, text in query(tmp_path, "SELECT post_id, text FROM posts")}
        ds.edit_post(edited, "An edited body")
        ds.delete_post(deleted)  # [deleted] body and author: Reddit's tombstone
        ds.purge_post(purged)  # its thread answers 404
        new = ds.add_post("quietsub", "dave_d", "Fresh post", "Written between the crawls")
        ds.delete_comment(removed.id, "removed")
        crawl(tmp_path, *args, "--recheck")

    rows = changes(tmp_path)
    assert kinds(rows) == {("new", f"t3_{new.id}"), ("edited", f"t3_{edited}"),
                           ("deleted", f"t3_{deleted}"), ("deleted", f"t3_{purged}"),
                           ("deleted", f"t1_{removed.id}")}
    assert f"t1_{kept.id}" not in {r["post_id"] for r in rows}
    rm = next(r for r in rows if r["post_id"] == f"t1_{removed.id}")
    assert [(v["text"], v["tombstone"]) for v in rm["versions"]] == [
        ("A comment a moderator removes", False), ("[removed]", True)]
    assert rm["text"] == "A comment a moderator removes"
    by_id = {(r["change"], r["post_id"]): r for r in rows}
    ed = by_id[("edited", f"t3_{edited}")]
    assert [v["text"] for v in ed["versions"]] == [before[f"t3_{edited}"],
                                                  "Quiet post 0\n\nAn edited body"]
    assert ed["versions"][1]["edited_at"] is not None
    tomb = by_id[("deleted", f"t3_{deleted}")]
    assert [(v["text"], v["tombstone"]) for v in tomb["versions"]] == [
        (before[f"t3_{deleted}"], False), ("Quiet post 1\n\n[deleted]", True)]
    assert tomb["text"] == before[f"t3_{deleted}"] and tomb["author"] == "bob_boats"
    purge = by_id[("deleted", f"t3_{purged}")]
    assert purge["text"] == before[f"t3_{purged}"]
    assert "/comments/" in purge["deleted_replay_url"]
    check_replay_links(rows, tmp_path)
    out = socialark("changes", "--format", "csv", data_dir=tmp_path)
    assert out.returncode == 0, out.stderr
    table = list(csv.DictReader(io.StringIO(out.stdout)))
    assert {(r["change"], r["post_id"]) for r in table} == kinds(rows)
    assert {r["version_count"] for r in table if r["post_id"] == f"t3_{edited}"} == {"2"}
    check_rebuild(tmp_path)


def test_telegram_edit_delete_new(tmp_path: Path) -> None:
    with TelegramEmulator(seed=1) as emu:
        ch = emu.dataset.channel("tinychan")
        assert ch is not None
        args = ("telegram", "--channel", "tinychan", "--base-url", emu.base_url)
        crawl(tmp_path, *args)
        assert changes(tmp_path) == []
        ch.edit(2, "tiny message 2, corrected")
        ch.delete(3)
        new = ch.add("tiny message 6")
        crawl(tmp_path, *args, "--recheck")

    rows = changes(tmp_path)
    assert kinds(rows) == {("new", f"tinychan/{new.id}"), ("edited", "tinychan/2"),
                           ("deleted", "tinychan/3")}
    by_kind = {r["change"]: r for r in rows}
    assert [(v["text"], v["edited"]) for v in by_kind["edited"]["versions"]] == [
        ("tiny message 2", False), ("tiny message 2, corrected", True)]
    assert by_kind["deleted"]["text"] == "tiny message 3"
    assert by_kind["deleted"]["deleted_replay_url"].endswith("/tinychan/3?embed=1&mode=tme")
    check_replay_links(rows, tmp_path)
    check_rebuild(tmp_path)


def test_text_output_and_bad_since(tmp_path: Path) -> None:
    open_database(tmp_path / "index.db").conn.close()
    proc = socialark("changes", data_dir=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "" and "0 changes" in proc.stderr
    proc = socialark("changes", "--since", "last week", data_dir=tmp_path)
    assert proc.returncode == 2 and "invalid date" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_recheck_on_a_platform_without_it_is_a_usage_error(tmp_path: Path) -> None:
    proc = socialark("crawl", "site", "http://127.0.0.1:9/", "--recheck", data_dir=tmp_path)
    assert proc.returncode == 2
    assert "--recheck is supported by" in proc.stderr and "Traceback" not in proc.stderr


def test_existing_index_migrates_to_version_1(tmp_path: Path) -> None:
    """An index written before m006 opens with version 1 of every post, linked to its capture."""
    db = open_database(tmp_path / "index.db")
    db.executescript("""
        DROP TABLE post_versions;
        DROP INDEX posts_deleted_at;
        ALTER TABLE posts DROP COLUMN deleted_at;
        ALTER TABLE posts DROP COLUMN deleted_source_url;
        ALTER TABLE posts DROP COLUMN deleted_source_timestamp;
        DELETE FROM _sqlite_migrations WHERE name = 'm006_post_versions';
    """)
    url = "http://example.social/api/v1/statuses/1"
    db["captures"].insert({
        "collection": "c", "urlkey": "x", "url": url, "timestamp": "20240102030405",
        "warc_date": "2024-01-02T03:04:05Z", "status": 200, "length": 10, "offset": 1234,
        "filename": "old.warc.gz", "record_type": "response", "record_id": "<urn:x>",
        "crawl_id": "crawl-1"})
    db["posts"].insert({
        "collection": "c", "platform": "mastodon", "post_id": "1", "text": "hello",
        "raw": json.dumps({"edited_at": "2024-01-01T00:00:00.000Z"}), "source_url": url,
        "source_timestamp": "20240102030405"})
    db.conn.commit()
    db.conn.close()
    assert changes(tmp_path) == []  # `changes` migrates an old index; one crawl: no changes
    db = open_database(tmp_path / "index.db")
    assert db.execute(f"SELECT {', '.join(VERSION_COLUMNS)} FROM post_versions").fetchall() == [
        ("c", "mastodon", "1", 1, "hello", "2024-01-01T00:00:00.000Z", 1, 0,
         "2024-01-02T03:04:05Z", "crawl-1", "old.warc.gz", 1234, url, "20240102030405")]
    assert db.execute("SELECT deleted_at FROM posts").fetchall() == [(None,)]
    db.conn.close()
