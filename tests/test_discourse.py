"""``socialark crawl discourse`` end to end: real CLI subprocesses against the Discourse emulator,
every expectation taken from the emulator's ground-truth dataset."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from scrapy import Request
from scrapy.http import TextResponse

from spiders.discourse.extract import EXTRACTOR
from spiders.discourse.parsers import wait_seconds
from spiders.discourse.wait import DiscourseWaitMiddleware
from tests.conftest import socialark
from tests.emulators.discourse import CHUNK_SIZE, DiscourseEmulator
from tests.emulators.discourse_data import DiscourseDataset, DPost
from tests.platform_checks import rebuilt_item_rows

ITEM_TABLES = ("posts", "accounts", "media")


@dataclass
class Crawl:
    emu: DiscourseEmulator
    data_dir: Path
    returncode: int
    stderr: str

    @property
    def ds(self) -> DiscourseDataset:
        return self.emu.dataset

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.data_dir / "index.db")
        conn.row_factory = sqlite3.Row
        return conn

    def posts(self) -> dict[str, sqlite3.Row]:
        with self.db() as conn:
            return {r["post_id"]: r for r in conn.execute("SELECT * FROM posts")}

    def statuses(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        with self.db() as conn:
            for url, status in conn.execute("SELECT url, status FROM captures WHERE record_type"
                                            " IN ('response', 'revisit') ORDER BY id"):
                out.setdefault(url, []).append(status)
        return out

    def stats(self) -> dict[str, Any]:
        with self.db() as conn:
            return json.loads(conn.execute("SELECT stats FROM crawls").fetchone()[0])


def run_crawl(emu: DiscourseEmulator, data_dir: Path, *args: str) -> Crawl:
    proc = socialark("crawl", "discourse", "--forum", emu.base_url, *args, "--delay", "0",
                     data_dir=data_dir, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr[-4000:]
    return Crawl(emu, data_dir, proc.returncode, proc.stderr)


def pid(emu: DiscourseEmulator, p: DPost) -> str:
    return f"{emu.base_url.split('://', 1)[1]}/t/{p.topic_id}/{p.post_number}"


def shown_files(p: DPost) -> list[str]:
    """Upload paths a post's cooked HTML shows (none once its author deleted it)."""
    if p.user_deleted:
        return []
    return [*p.upload_paths, *([p.attachment_path] if p.attachment_path else [])]


def visible_posts(ds: DiscourseDataset, topic_ids: list[int] | None = None) -> list[DPost]:
    tids = topic_ids if topic_ids is not None else [t for t in ds.topics if ds.public(t)]
    return [ds.posts[i] for t in tids for i in ds.stream(t)]


@pytest.fixture(scope="module")
def emu() -> Iterator[DiscourseEmulator]:
    with DiscourseEmulator(seed=1) as e:
        yield e


@pytest.fixture(scope="module")
def full(emu: DiscourseEmulator, tmp_path_factory: pytest.TempPathFactory) -> Crawl:
    """The whole forum from /latest.json; the server honours only 12 post_ids per batch."""
    emu.max_post_ids = 12
    try:
        return run_crawl(emu, tmp_path_factory.mktemp("discourse-full"))
    finally:
        emu.max_post_ids = CHUNK_SIZE


def assert_post_row(row: sqlite3.Row, emu: DiscourseEmulator, p: DPost) -> None:
    ds, base = emu.dataset, emu.base_url
    user, topic = ds.users[p.user_id], ds.topics[p.topic_id]
    assert (row["platform"], row["author"], row["author_id"]) == ("discourse", user.username,
                                                                  str(user.id))
    assert row["created_at"] == p.created_at
    assert row["url"] == f"{base}/t/{topic.slug}/{topic.id}/{p.post_number}"
    assert row["content_html"] == p.cooked(base)
    first_block = row["text"].split("\n\n", 1)[0]
    assert first_block == ("(post deleted by author)" if p.user_deleted else p.raw)
    parent = p.reply_to_post_number
    assert row["reply_to_id"] == (None if parent is None else
                                  f"{base.split('://', 1)[1]}/t/{topic.id}/{parent}")
    assert row["like_count"] == p.likes
    assert json.loads(row["media"]) == [base + u for u in shown_files(p)]
    raw = json.loads(row["raw"])
    assert (raw["id"], raw["user_deleted"], raw["version"]) == (p.id, p.user_deleted, p.version)


def test_every_visible_post_of_every_public_topic(full: Crawl) -> None:
    ds, emu, posts = full.ds, full.emu, full.posts()
    want = visible_posts(ds)
    assert len([t for t in ds.topics if ds.public(t)]) == 70
    assert set(posts) == {pid(emu, p) for p in want}
    for p in want:
        assert_post_row(posts[pid(emu, p)], emu, p)
    big = [p for p in want if p.topic_id == ds.big_topic_id]
    assert len(big) == 137
    assert not {pid(emu, ds.posts[i]) for i in ds.hidden_post_ids} & set(posts)
    assert full.returncode == 0, full.stderr[-3000:]


def test_post_stream_batches_pages_uploads_and_avatars_are_captured(full: Crawl) -> None:
    ds, base, ok = full.ds, full.emu.base_url, full.statuses()
    for p in visible_posts(ds):
        for path in shown_files(p):
            assert 200 in ok[base + path], path
    for tid, topic in ds.topics.items():
        if not ds.public(tid):
            continue
        pages = -(-len(ds.stream(tid)) // CHUNK_SIZE)
        first = f"{base}/t/{topic.slug}/{tid}"
        assert 200 in ok[first]
        assert all(200 in ok[f"{first}?page={n}"] for n in range(2, pages + 1))
        assert f"{first}?page={pages + 1}" not in ok
    batches = [u for u in ok if f"/t/{ds.big_topic_id}/posts.json" in u]
    assert len(batches) >= (137 - CHUNK_SIZE) // 12  # capped at 12 ids: the rest re-asked
    avatars = {u.split("/")[5] for u in ok if "/user_avatar/" in u}
    assert avatars == {u.username for u in ds.users.values()}
    with full.db() as conn:
        media = {(r["post_id"], r["url"]) for r in conn.execute("SELECT * FROM media")}
    assert media == {(pid(full.emu, p), base + u) for p in visible_posts(ds)
                     for u in shown_files(p)}


def test_reextract_from_warcs_reproduces_the_rows(full: Crawl, tmp_path: Path) -> None:
    before, after = rebuilt_item_rows(full.data_dir / "index.db", tmp_path, extractors=[EXTRACTOR])
    assert len(before["posts"]) == len(visible_posts(full.ds))
    assert after == before


def test_private_category_and_topics_are_reported(emu: DiscourseEmulator, tmp_path: Path) -> None:
    ds = emu.dataset
    private = next(t for t in ds.topics if not ds.public(t))
    missing = max(ds.topics) + 1
    crawl = run_crawl(emu, tmp_path, "--category", "staff-lounge/3", "--topic", str(private),
                      "--topic", f"{emu.base_url}/t/whatever/{missing}")
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    stats = crawl.stats()
    assert (stats["archive/blocked/invalid_access"], stats["archive/missing/not_found"]) == (2, 1)
    ok = crawl.statuses()
    assert ok[f"{emu.base_url}/c/staff-lounge/3.json"] == [403]
    assert ok[f"{emu.base_url}/t/{missing}.json"] == [404]
    assert crawl.posts() == {}
    assert "invalid_access" in crawl.stderr and "You are not permitted" in crawl.stderr


def windows(times: list[float], window: float) -> list[list[float]]:
    """Replay the emulator's fixed-window counter over request arrival times."""
    out: list[list[float]] = []
    for t in sorted(times):
        if not out or t >= out[-1][0] + window:
            out.append([t])
        else:
            out[-1].append(t)
    return out


@pytest.mark.parametrize("style", ["text", "json"])
def test_both_429_forms_pause_the_host(style: str, tmp_path: Path) -> None:
    """One request at a time, so the only refused request of a window is the one that found
    the limit: after it, nothing reaches the server until the announced wait is over."""
    limit, window = 15, 1.0
    with DiscourseEmulator(seed=1) as emu:
        emu.rate_limit_style = style
        emu.faults.rate_limit(after=limit, window=window)
        big = emu.dataset.big_topic_id
        crawl = run_crawl(emu, tmp_path, "--topic", str(big), "--concurrency", "1")
        assert crawl.returncode == 0, crawl.stderr[-3000:]
        spans = windows([r.time for r in emu.requests], window)
        assert len(spans) >= 3 and emu.faults.throttled >= 2  # the limit really bound the crawl
        assert all(len(s) <= limit + 1 for s in spans)  # nothing sent inside a limited window
        assert set(crawl.posts()) == {pid(emu, p) for p in visible_posts(emu.dataset, [big])}
        refused = [u for u, s in crawl.statuses().items() if 429 in s]
        assert refused and all(200 in crawl.statuses()[u] for u in refused)  # nothing lost


def test_429_bodies_give_the_wait_when_retry_after_is_missing() -> None:
    with DiscourseEmulator(seed=1) as emu:
        for style in ("text", "json"):
            emu.rate_limit_style = style
            emu.faults.rate_limit(after=1, window=30.0)
            urllib.request.urlopen(f"{emu.base_url}/latest.json").read()
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"{emu.base_url}/latest.json")
            body, headers = err.value.read(), err.value.headers
            emu.faults.clear()
            announced = int(headers["Retry-After"])
            assert wait_seconds(body, headers["Content-Type"]) == announced
            # The same answer without its header: the middleware restores it from the body.
            url = f"{emu.base_url}/latest.json"
            stripped = TextResponse(url, status=429, body=body,
                                    headers={"Content-Type": headers["Content-Type"]})
            fixed = DiscourseWaitMiddleware().process_response(Request(url), stripped)
            assert fixed.headers[b"Retry-After"] == str(announced).encode()


def test_usage_errors(tmp_path: Path) -> None:
    proc = socialark("crawl", "discourse", data_dir=tmp_path)
    assert proc.returncode == 2 and "--forum" in proc.stderr
    proc = socialark("crawl", "discourse", "--forum", "ftp://x", data_dir=tmp_path)
    assert proc.returncode == 2 and "not a forum URL" in proc.stderr
    proc = socialark("crawl", "discourse", "--forum", "https://f.example", "--topic", "abc",
                     data_dir=tmp_path)
    assert proc.returncode == 2 and "not a topic id" in proc.stderr
    assert "Traceback" not in proc.stderr
    helptext = socialark("crawl", "discourse", "--help").stdout
    assert "Example:" in helptext and "--category" in helptext
