"""``socialark crawl facebook`` against the Facebook-like emulator (real Chromium, real scroll
through ``POST /api/graphql/``, the login dialog without the session cookies)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from spiders.facebook.parsers import articles, count
from tests.conftest import socialark
from tests.emulators.facebook import C_USER, PAGE, PAGE_NAME, POSTS, XS, FacebookEmulator
from tests.warc_checks import closed_warcs, read_records


def _cookies(path: Path) -> Path:
    path.write_text(f"127.0.0.1\tFALSE\t/\tFALSE\t0\tc_user\t{C_USER}\n"
                    f"#HttpOnly_127.0.0.1\tFALSE\t/\tTRUE\t0\txs\t{XS}\n")
    return path


@pytest.fixture(scope="module")
def fb() -> Iterator[FacebookEmulator]:
    with FacebookEmulator() as emu:
        yield emu


def test_parser_reads_articles_but_not_nested_comments() -> None:
    html = ('<div role="article"><h3><a href="/p">P</a></h3><a href="/p/posts/1"><abbr '
            'data-utime="1700000000">1h</abbr></a><div data-ad-preview="message">'
            '<div dir="auto">Hello <b>world</b></div></div>'
            '<span aria-label="All reactions: 1.2K">1.2K</span><span>12 comments</span>'
            '<div role="article"><a href="/p/posts/1?comment_id=5">c</a>a comment</div></div>')
    (post,) = articles(html, "https://www.facebook.com/p")
    assert post == {"post_id": "1", "url": "https://www.facebook.com/p/posts/1",
                    "author": "P", "author_id": "p", "created_at": "2023-11-14T22:13:20Z",
                    "text": "Hello world", "images": [], "like_count": 1200,
                    "reply_count": 12}
    assert count("3") == 3 and count(None) is None


def test_page_scrolled_to_its_end_and_every_post_parsed(fb: FacebookEmulator,
                                                        tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    proc = socialark("crawl", "facebook", "--base-url", fb.base_url, "--page", PAGE,
                     "--cookies", str(_cookies(tmp_path / "c.txt")), "--delay", "0",
                     data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with sqlite3.connect(data_dir / "index.db") as conn:
        rows = {r[0]: r for r in conn.execute(
            "SELECT post_id, author, author_id, created_at, text, media, like_count,"
            " reply_count, url FROM posts WHERE platform = 'facebook'")}
        captured = {u for (u,) in conn.execute(
            "SELECT url FROM captures WHERE status = 200")}
    assert set(rows) == {p.id for p in POSTS}
    for p in POSTS:
        _, author, author_id, created, text, media, likes, comments, url = rows[p.id]
        assert (author, author_id, created, text) == (PAGE_NAME, PAGE, p.created_iso, p.text)
        assert (likes, comments) == (p.reactions, p.comments)
        assert url == f"{fb.base_url}/{PAGE}/posts/{p.id}"
        assert json.loads(media) == [fb.image_url(k) for k in p.images]
        assert all(u in captured for u in json.loads(media))
    # the scroll's GraphQL calls are archived with their POST bodies
    posts = [r for w in closed_warcs(data_dir) for r in read_records(w)
             if r.type == "request" and r.headers["WARC-Target-URI"].endswith("/api/graphql/")]
    assert len(posts) == len(fb.graphql_calls) >= 3
    assert all(b"fb_dtsg=" in r.payload for r in posts)


def test_login_dialog_without_cookies(fb: FacebookEmulator, tmp_path: Path) -> None:
    proc = socialark("crawl", "facebook", "--base-url", fb.base_url, "--page", PAGE,
                     "--delay", "0", "-s", "ARCHIVE_QUALITY_PAUSE=0.2",
                     "-s", "ARCHIVE_QUALITY_RETRIES=1", data_dir=tmp_path / "archive")
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "login required: pass --cookies or --profile" in proc.stderr
    assert f"blocked {fb.base_url}/{PAGE}: login wall (facebook_login_dialog)" in proc.stderr
