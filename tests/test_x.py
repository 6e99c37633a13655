"""``socialark crawl x`` against the x.com-like emulator: a real Chromium, real GraphQL calls
with the session from ``--cookies``, posts parsed from the captured answers, rebuild identical."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import socialark
from tests.emulators.x import AUTH_TOKEN, CT0, XEmulator
from tests.emulators.x_data import DELETED_ID, POSTS, USERS, WITHHELD_ID, timeline_ids

POST_COLUMNS = ("platform, post_id, url, author, author_id, created_at, text, reply_to_id,"
                " repost_of_id, quote_of_id, reply_count, repost_count, like_count, lang, media,"
                " raw, source_url, source_timestamp")


def _cookies(path: Path) -> Path:
    path.write_text("# Netscape HTTP Cookie File\n"
                    f"127.0.0.1\tFALSE\t/\tFALSE\t0\tct0\t{CT0}\n"
                    f"#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\tauth_token\t{AUTH_TOKEN}\n")
    return path


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture(scope="module")
def x() -> Iterator[XEmulator]:
    with XEmulator(detail_limit=3, detail_window=2.0) as emu:
        yield emu


@pytest.fixture(scope="module")
def x_crawl(x: XEmulator, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("x-crawl")
    data_dir = tmp / "archive"
    proc = socialark(
        "crawl", "x", "--base-url", x.base_url, "--user", "alice", "--search", "bob",
        "--post", f"{x.base_url}/alice/status/{DELETED_ID}",
        "--cookies", str(_cookies(tmp / "cookies.txt")), "--delay", "0",
        "--page-timeout", "40s", "-s", "ARCHIVE_QUALITY_PAUSE=0.5", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr[-5000:]
    return data_dir, proc.stderr


def test_every_post_is_parsed_with_relations_and_media(x: XEmulator,
                                                       x_crawl: tuple[Path, str]) -> None:
    data_dir, _ = x_crawl
    rows = {r[0]: r for r in _rows(
        data_dir / "index.db",
        "SELECT post_id, author, author_id, created_at, text, reply_to_id, repost_of_id,"
        " quote_of_id, lang, media, url FROM posts WHERE platform = 'x'")}
    assert set(rows) == set(POSTS) | {DELETED_ID, WITHHELD_ID}
    media_host, video_host = x.media.base_url, x.video.base_url
    for post in POSTS.values():
        (_, author, author_id, created, text, reply_to, repost_of, quote_of, lang, media,
         url) = rows[post.id]
        assert (author, author_id) == (post.author, USERS[post.author]["rest_id"]), post.id
        assert created == post.created_iso
        assert text == post.text  # the long post: its whole note_tweet text
        assert (reply_to, repost_of, quote_of) == (post.reply_to, post.repost_of,
                                                   post.quote_of), post.id
        assert lang == post.lang
        assert url == f"{x.base_url}/{post.author}/status/{post.id}"
        expected = [f"{media_host}/media/{k}.jpg?name=orig" for k in post.photos]
        if post.video and post.hls_only:
            expected.append(f"{video_host}/ext_tw_video/{post.video}/pu/pl/{post.video}.m3u8")
        elif post.video:
            expected.append(f"{video_host}/ext_tw_video/{post.video}/pu/vid/2176k/"
                            f"{post.video}.mp4")
        assert media == json.dumps(expected), post.id
    assert len(POSTS["2002"].text) > 280 and rows["2002"][4] == POSTS["2002"].text
    accounts = _rows(data_dir / "index.db", "SELECT account_id, handle FROM accounts")
    assert sorted(accounts) == [("1001", "alice"), ("1002", "bob")]


def test_media_archived_at_original_size_and_best_bitrate(x: XEmulator,
                                                          x_crawl: tuple[Path, str]) -> None:
    data_dir, _ = x_crawl
    captured = {u for (u,) in _rows(data_dir / "index.db",
                                    "SELECT url FROM captures WHERE status = 200 AND"
                                    " record_type IN ('response', 'revisit')")}
    for key in ("P1", "P2"):
        assert f"{x.media.base_url}/media/{key}.jpg?name=orig" in captured
    assert f"{x.video.base_url}/ext_tw_video/V1/pu/vid/2176k/V1.mp4" in captured
    assert not any("/256k/" in u or "/832k/" in u for u in captured)
    # a video offered only as HLS: the playlist, its variant playlist and every segment
    hls = f"{x.video.base_url}/ext_tw_video/V2/pu"
    assert {f"{hls}/pl/V2.m3u8", f"{hls}/v/V2.m3u8", f"{hls}/v/seg0.ts",
            f"{hls}/v/seg1.ts"} <= captured
    assert f"{x.media.base_url}/profile_images/alice_normal.jpg" in captured


def test_timelines_threads_and_search_were_walked(x: XEmulator,
                                                  x_crawl: tuple[Path, str]) -> None:
    data_dir, _ = x_crawl
    calls = [op for op, _ in x.gql_calls]
    pages = [v.get("cursor") for op, v in x.gql_calls if op == "UserTweets"]
    # every page of the timeline up to the empty one that ends it
    needed = -(-len(timeline_ids("alice")) // 5) + 1
    assert len([c for c in pages if c]) >= needed - 1, pages
    focal = {v["focalTweetId"] for op, v in x.gql_calls if op == "TweetDetail"}
    assert {p for p in POSTS if POSTS[p].author == "alice" and p != "2006"} <= focal
    assert "SearchTimeline" in calls
    # every GraphQL answer is archived, with its request's csrf header and no failed auth
    graphql = _rows(data_dir / "index.db",
                    "SELECT status FROM captures WHERE url LIKE '%/i/api/graphql/%'"
                    " AND record_type IN ('response', 'revisit')")
    assert graphql and {s for (s,) in graphql} <= {200, 429}


def test_rate_limit_headers_are_honoured(x: XEmulator, x_crawl: tuple[Path, str]) -> None:
    assert x.violations == 0


def test_deleted_and_withheld_are_reported_not_fatal(x_crawl: tuple[Path, str]) -> None:
    data_dir, stderr = x_crawl
    assert f"status/{DELETED_ID}: deleted (missing)" in stderr
    assert f"status/{WITHHELD_ID}: withheld (blocked)" in stderr
    raw = dict(_rows(data_dir / "index.db",
                     f"SELECT post_id, raw FROM posts WHERE post_id IN ('{DELETED_ID}',"
                     f" '{WITHHELD_ID}')"))
    assert '"_unavailable": "deleted"' in raw[DELETED_ID]
    assert '"_unavailable": "withheld"' in raw[WITHHELD_ID]


def test_rebuild_gives_identical_rows(x_crawl: tuple[Path, str], tmp_path: Path) -> None:
    data_dir, _ = x_crawl
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    queries = (f"SELECT {POST_COLUMNS} FROM posts ORDER BY post_id",
               "SELECT platform, url, post_id, media_type, description, preview_url, source_url,"
               " source_timestamp FROM media ORDER BY url",
               "SELECT platform, account_id, handle, display_name, avatar_url, source_url,"
               " source_timestamp FROM accounts ORDER BY account_id")
    before = [_rows(copy / "index.db", q) for q in queries]
    with sqlite3.connect(copy / "index.db") as conn:
        conn.executescript("DELETE FROM posts; DELETE FROM media; DELETE FROM accounts;")
    socialark("index", "--rebuild", data_dir=copy, check=True)
    after = [_rows(copy / "index.db", q) for q in queries]
    assert before[0] and after == before


def test_without_cookies_the_login_wall_is_reported(x: XEmulator, tmp_path: Path) -> None:
    proc = socialark("crawl", "x", "--base-url", x.base_url, "--user", "alice", "--delay", "0",
                     "-s", "ARCHIVE_QUALITY_PAUSE=0.2", "-s", "ARCHIVE_QUALITY_RETRIES=1",
                     data_dir=tmp_path / "archive")
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "login required: pass --cookies or --profile" in proc.stderr
    assert f"blocked {x.base_url}/alice: login wall" in proc.stderr
    assert _rows(tmp_path / "archive" / "index.db", "SELECT COUNT(*) FROM posts") == [(0,)]


def test_usage_errors(tmp_path: Path) -> None:
    proc = socialark("crawl", "x", data_dir=tmp_path / "a")
    assert proc.returncode == 2 and "--user, --post or --search" in proc.stderr
    proc = socialark("crawl", "x", "--post", "https://x.com/jack", data_dir=tmp_path / "a")
    assert proc.returncode == 2 and "expected a post URL" in proc.stderr
