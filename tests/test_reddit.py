"""``socialark crawl reddit`` end to end: real CLI subprocesses against the Reddit emulator,
every expectation taken from the emulator's ground-truth dataset."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from crawler.extraction import Capture, capture_from_record, read_record
from spiders.reddit.extract import EXTRACTOR
from tests.conftest import socialark
from tests.emulators.reddit import RedditEmulator
from tests.emulators.reddit_data import Comment, Post, RedditDataset
from tests.platform_checks import rebuilt_item_rows

ITEM_TABLES = ("posts", "accounts", "media")


@dataclass
class Crawl:
    emu: RedditEmulator
    data_dir: Path
    returncode: int
    stderr: str

    @property
    def ds(self) -> RedditDataset:
        return self.emu.dataset

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.data_dir / "index.db")
        conn.row_factory = sqlite3.Row
        return conn

    def rows(self, table: str = "posts") -> list[sqlite3.Row]:
        with self.db() as conn:
            return conn.execute(f"SELECT * FROM {table}").fetchall()

    def posts(self) -> dict[str, sqlite3.Row]:
        return {r["post_id"]: r for r in self.rows()}

    def captures(self, fragment: str) -> list[sqlite3.Row]:
        with self.db() as conn:
            return conn.execute("SELECT * FROM captures WHERE instr(url, ?) > 0 ORDER BY id",
                                [fragment]).fetchall()

    def ok(self) -> dict[str, str]:
        """URL -> payload digest of every 200 capture."""
        with self.db() as conn:
            return {r[0]: r[1] for r in conn.execute(
                "SELECT url, digest FROM captures WHERE status = 200")}

    def stats(self) -> dict[str, Any]:
        with self.db() as conn:
            return json.loads(conn.execute("SELECT stats FROM crawls").fetchone()[0])

    def bodies(self, fragment: str) -> list[Any]:
        """The JSON bodies of the captures whose URL contains ``fragment``, in capture order."""
        with self.db() as conn:
            rows = conn.execute(
                "SELECT c.offset, c.length, c.timestamp, f.path FROM captures c JOIN warc_files f"
                " ON f.name = c.filename WHERE instr(c.url, ?) > 0 AND c.record_type = 'response'"
                " ORDER BY c.id", [fragment]).fetchall()
        out = []
        for offset, length, ts, path in rows:
            capture = capture_from_record(read_record(Path(path), offset, length), ts)
            assert capture is not None
            out.append(capture.json())
        return out


def run_crawl(emu: RedditEmulator, data_dir: Path, *args: str) -> Crawl:
    proc = socialark("crawl", "reddit", *args, "--base-url", emu.base_url, "--delay", "0",
                     data_dir=data_dir, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr[-4000:]
    return Crawl(emu, data_dir, proc.returncode, proc.stderr)


@pytest.fixture(scope="module")
def emu() -> Iterator[RedditEmulator]:
    with RedditEmulator(seed=1) as e:
        yield e


@pytest.fixture(scope="module")
def full(emu: RedditEmulator, tmp_path_factory: pytest.TempPathFactory) -> Crawl:
    """harbourtown (260 posts), a user, and private/banned/quarantined subs, a suspended user."""
    return run_crawl(emu, tmp_path_factory.mktemp("reddit-full"),
                     "--subreddit", "harbourtown", "--subreddit", "r/secretclub",
                     "--subreddit", "gonesub", "--subreddit", "edgysub",
                     "--user", "alice_archives", "--user", "u/spam_king")


# --- expectations from the dataset ---------------------------------------------------------------
def iso(epoch: float) -> str:
    ms = round(epoch * 1000)
    text = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else f"{text}Z"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + base64.b32encode(hashlib.sha256(data).digest()).decode()


def author_id(ds: RedditDataset, name: str) -> str | None:
    user = ds.user(name)
    return f"t2_{user.id}" if user and name != "[deleted]" else None


def assert_post_row(row: sqlite3.Row, p: Post, crawl: Crawl) -> None:
    ds, base = crawl.ds, crawl.emu.base_url
    assert (row["platform"], row["post_id"], row["author"]) == ("reddit", p.fullname, p.author)
    assert row["author_id"] == author_id(ds, p.author)
    assert row["created_at"] == iso(p.created_utc)
    assert row["text"] == (f"{p.title}\n\n{p.selftext}" if p.selftext else p.title)
    assert row["reply_to_id"] is None
    assert (row["like_count"], row["reply_count"]) == (p.score, len(ds.comments_of(p.id)))
    assert row["url"] == base + p.permalink
    assert row["url"] in crawl.ok(), "the post page was captured"


def assert_comment_row(row: sqlite3.Row, c: Comment, crawl: Crawl) -> None:
    post = crawl.ds.posts[c.link_id]
    assert (row["platform"], row["post_id"], row["reply_to_id"]) == ("reddit", c.fullname, c.parent_id)
    assert (row["author"], row["author_id"]) == (c.author, author_id(crawl.ds, c.author))
    assert (row["text"], row["created_at"], row["like_count"]) == (c.body, iso(c.created_utc), c.score)
    assert row["url"] == f"{crawl.emu.base_url}{post.permalink}{c.id}/"


# --- the full crawl ----------------------------------------------------------------------------------
def test_subreddit_submissions_are_archived_exactly(full: Crawl) -> None:
    ds, posts = full.ds, full.posts()
    sub = ds.sub("harbourtown")
    assert sub is not None and len(sub.post_ids) == 260
    submissions = {pid for pid in posts if pid.startswith("t3_")}
    alices = {p.fullname for p in ds.posts.values() if p.author == "alice_archives"}
    assert submissions == {ds.posts[i].fullname for i in sub.post_ids} | alices
    assert alices - {ds.posts[i].fullname for i in sub.post_ids}, "--user added quietsub posts"
    for pid in sub.post_ids:
        assert_post_row(posts[ds.posts[pid].fullname], ds.posts[pid], full)
    # after-paging: 100 + 100 + 60, each page asking for the previous page's last fullname
    pages = full.bodies("/r/harbourtown/new.json")
    assert [len(b["data"]["children"]) for b in pages] == [100, 100, 60]
    afters = [parse_qs(urlsplit(r["url"]).query).get("after") for r in
              full.captures("/r/harbourtown/new.json")]
    assert afters == [None, [pages[0]["data"]["after"]], [pages[1]["data"]["after"]]]
    assert pages[2]["data"]["after"] is None


def test_every_comment_is_a_post_row_with_its_parent(full: Crawl) -> None:
    ds, posts = full.ds, full.posts()
    want = {c.fullname: c for c in ds.comments.values()  # alice's posts are in quietsub
            if ds.posts[c.link_id].subreddit in ("harbourtown", "quietsub")}
    assert {pid for pid in posts if pid.startswith("t1_")} == set(want)
    for name, c in want.items():
        assert_comment_row(posts[name], c, full)


def _things(forest: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for thing in forest:
        yield thing
        replies = thing["data"].get("replies") if thing["kind"] == "t1" else None
        if replies:
            yield from _things(replies["data"]["children"])


def test_deep_post_all_300_comments_behind_every_stub(full: Crawl) -> None:
    ds, posts = full.ds, full.posts()
    deep = ds.deep_post_id
    comments = ds.comments_of(deep)
    assert len(comments) == 300
    for c in comments:
        assert_comment_row(posts[c.fullname], c, full)
    # What the first answer showed, and the stubs standing for the rest.
    [first] = full.bodies(f"/comments/{deep}.json")
    things = list(_things(first[1]["data"]["children"]))
    shown = {t["data"]["id"] for t in things if t["kind"] == "t1"}
    stubs = [t["data"] for t in things if t["kind"] == "more"]
    load_more = [s for s in stubs if s["children"]]
    continues = [s for s in stubs if not s["children"]]
    assert (len(shown), len(load_more), len(continues)) == (200, 3, 1)
    behind_load_more = {cid for s in load_more for cid in s["children"]}
    assert behind_load_more and not behind_load_more & shown
    parent = continues[0]["parent_id"].removeprefix("t1_")
    behind_continue = _subtree(ds, parent) - {parent}
    assert behind_continue and not behind_continue & shown
    assert {f"t1_{i}" for i in behind_load_more | behind_continue} <= set(posts)
    # Stubs were expanded the platform's way: morechildren (<= 100 ids), then the subtree URL.
    more = full.captures("/api/morechildren")
    assert more and all(r["status"] == 200 for r in more)
    for r in more:
        query = parse_qs(urlsplit(r["url"]).query)
        assert query["link_id"] == [f"t3_{deep}"]
        assert 0 < len(query["children"][0].split(",")) <= 100
    assert [r["status"] for r in full.captures(f"/comments/{deep}/_/{parent}.json")] == [200]


def _subtree(ds: RedditDataset, cid: str) -> set[str]:
    return {cid}.union(*(_subtree(ds, r) for r in ds.comments[cid].reply_ids))


def test_gallery_video_and_image_media_are_captured(full: Crawl) -> None:
    ds, ok, base, posts = full.ds, full.ok(), full.emu.base_url, full.posts()
    media: dict[str, list[sqlite3.Row]] = {}
    for m in full.rows("media"):
        media.setdefault(m["post_id"], []).append(m)
    gallery = ds.posts[ds.gallery_post_id]
    rows = media[gallery.fullname]
    assert [(urlsplit(m["url"]).path, m["media_type"], m["description"]) for m in rows] == [
        (f"/preview/{mid}.png", "image", caption) for mid, caption in gallery.gallery]
    for m in rows:
        assert ok[m["url"]] == sha256_digest(ds.files[urlsplit(m["url"]).path][0])
    video = ds.posts[ds.video_post_id]
    [row] = media[video.fullname]
    assert (row["media_type"], urlsplit(row["url"]).path) == ("video", f"/v/{video.media_key}/DASH_480.mp4")
    assert ok[row["url"]] == sha256_digest(ds.files[f"/v/{video.media_key}/DASH_480.mp4"][0])
    audio = f"{base}/v/{video.media_key}/DASH_AUDIO_128.mp4"  # only reachable through the MPD
    assert ok[audio] == sha256_digest(ds.files[f"/v/{video.media_key}/DASH_AUDIO_128.mp4"][0])
    assert len(ds.image_post_ids) > 40
    for pid in ds.image_post_ids:
        p = ds.posts[pid]
        [row] = media[p.fullname]
        assert (row["url"], row["media_type"]) == (f"{base}/i/{p.media_key}.png", "image")
        assert ok[row["url"]] == sha256_digest(ds.files[f"/i/{p.media_key}.png"][0])
        assert row["preview_url"] in ok
        assert json.loads(posts[p.fullname]["media"]) == [row["url"]]
    assert set(media) == {ds.posts[i].fullname for i in
                          [ds.gallery_post_id, ds.video_post_id, *ds.image_post_ids]}


def test_user_account_and_comments(full: Crawl) -> None:
    ds, posts = full.ds, full.posts()
    alice = ds.user("alice_archives")
    assert alice is not None
    [account] = full.rows("accounts")
    assert (account["platform"], account["account_id"], account["handle"], account["created_at"]) == (
        "reddit", f"t2_{alice.id}", alice.name, iso(alice.created_utc))
    mine = [c for c in ds.comments.values() if c.author == alice.name]
    assert mine
    for c in mine:
        assert_comment_row(posts[c.fullname], c, full)
    listed = [t["data"]["name"] for b in full.bodies("/user/alice_archives/comments.json")
              for t in b["data"]["children"]]
    assert sorted(listed) == sorted(c.fullname for c in mine)


def test_private_banned_quarantined_suspended_are_reported_not_fatal(full: Crawl) -> None:
    assert full.returncode == 0, full.stderr[-3000:]
    stats = full.stats()
    for reason in ("private", "banned", "quarantined", "suspended"):
        assert stats.get(f"archive/blocked/{reason}") == 1, reason  # withheld, not gone
        assert f": {reason}" in full.stderr
    assert not [k for k in stats if k.startswith("archive/failed/")]
    for sub, status in (("secretclub", 403), ("gonesub", 404), ("edgysub", 403)):
        assert {r["status"] for r in full.captures(f"/r/{sub}/")} == {status}
    subs = {json.loads(r["raw"]).get("subreddit") for r in full.rows()}
    assert subs == {"harbourtown", "quietsub"}


def test_reextract_from_warcs_reproduces_the_rows(full: Crawl, tmp_path: Path) -> None:
    before, after = rebuilt_item_rows(full.data_dir / "index.db", tmp_path)
    assert len(before["posts"]) > 500 and before["media"] and before["accounts"]
    assert after == before


def test_escaped_json_gives_the_same_rows(emu: RedditEmulator) -> None:
    """Another tool's capture without ``raw_json=1`` (``&amp;``/``&lt;`` in every string)."""
    deep = emu.dataset.posts[emu.dataset.deep_post_id]
    rows = {}
    for query in ("?raw_json=1", ""):
        url = f"{emu.base_url}/comments/{deep.id}.json{query}"
        with urllib.request.urlopen(url) as resp:
            body = resp.read()
        assert (b"& <stuff>" in body) == bool(query)
        items = EXTRACTOR.extract(Capture(url, 200, {}, body, "20260101000000"))
        rows[query] = [{k: v for k, v in asdict(i).items() if k != "source_url"} for i in items]
    assert len(rows[""]) == 201 and rows[""] == rows["?raw_json=1"]
    comments = [r for r in rows[""] if r["post_id"].startswith("t1_")]
    assert all(r["text"] == emu.dataset.comments[r["post_id"][3:]].body for r in comments)
    assert any("& <stuff>" in r["text"] for r in comments)


# --- single posts, bounds, rate limits, usage ------------------------------------------------------
def test_rate_limit_window_is_honoured(tmp_path: Path) -> None:
    """A 3-requests-per-second budget: the crawler waits out each window (the emulator never
    has to refuse a request) and still gets the whole deep thread."""
    with RedditEmulator(seed=1) as emu:
        ds = emu.dataset
        deep = ds.posts[ds.deep_post_id]
        emu.faults.rate_limit(after=3, window=1.0)
        crawl = run_crawl(emu, tmp_path, "--post", f"https://old.reddit.com{deep.permalink}")
        assert crawl.returncode == 0, crawl.stderr[-3000:]
        assert emu.faults.throttled == 0, "a request was sent inside an exhausted window"
        stats = crawl.stats()
        assert stats.get("ratelimit/waits", 0) > 0
        assert len(emu.requests) > 6  # more than two windows' worth
        posts = crawl.posts()
        assert set(posts) == {deep.fullname} | {c.fullname for c in ds.comments_of(deep.id)}
        assert_post_row(posts[deep.fullname], deep, crawl)


def test_max_posts_and_since_bound_the_listing(emu: RedditEmulator, tmp_path: Path) -> None:
    ds = emu.dataset
    sub = ds.sub("harbourtown")
    assert sub is not None
    newest = sorted((ds.posts[i] for i in sub.post_ids), key=lambda p: -p.created_utc)
    bounded = run_crawl(emu, tmp_path / "max", "--subreddit", "harbourtown", "--max-posts", "120")
    limits = [parse_qs(urlsplit(r["url"]).query)["limit"] for r in
              bounded.captures("/r/harbourtown/new.json")]
    assert limits == [["100"], ["20"]]
    assert {p for p in bounded.posts() if p.startswith("t3_")} == {p.fullname for p in newest[:120]}
    since = iso(newest[59].created_utc)
    recent = run_crawl(emu, tmp_path / "since", "--subreddit", "harbourtown", "--since", since)
    assert len(recent.captures("/r/harbourtown/new.json")) == 1  # stopped before paging on
    # The whole first page is archived (its rows too); only the 60 recent posts are followed.
    assert {p for p in recent.posts() if p.startswith("t3_")} == {p.fullname for p in newest[:100]}
    pages = {r["url"] for r in recent.captures("/r/harbourtown/comments/") if ".json" not in r["url"]}
    assert pages == {emu.base_url + p.permalink for p in newest[:60]}


def test_post_short_link_archives_post_page_and_comments(emu: RedditEmulator, tmp_path: Path) -> None:
    ds = emu.dataset
    post = next(p for p in ds.posts.values() if p.subreddit == "harbourtown"
                and len(ds.comments_of(p.id)) == 3)
    crawl = run_crawl(emu, tmp_path, "--post", f"https://redd.it/{post.id}", "--post", "zzzzzz1")
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    posts = crawl.posts()
    assert set(posts) == {post.fullname} | {c.fullname for c in ds.comments_of(post.id)}
    assert_post_row(posts[post.fullname], post, crawl)
    assert crawl.stats()["archive/missing/not_found"] == 1
    assert not crawl.captures("new.json") and not crawl.captures("about.json")  # no listings


@pytest.mark.parametrize(("args", "message"), [
    (("--subreddit", "no spaces!"), "not a subreddit name"),
    (("--user", "x"), "not a Reddit user name"),
    (("--post", "https://example.org/nothing"), "not a Reddit post"),
    (("--subreddit", "harbourtown", "--since", "yesterday"), "expected a date"),
    (("--subreddit", "harbourtown", "--base-url", "ftp://x"), "expected an http(s) URL"),
    ((), "give at least one --subreddit, --user or --post"),
])
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    proc = socialark("crawl", "reddit", *args, data_dir=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
