"""``crawl mastodon`` against the Mastodon-family emulator: exact rows from the ground truth.

Real crawls through the real CLI in subprocesses; every expectation comes from ``emu.dataset``.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crawler import settings as project_settings
from tests.conftest import socialark
from tests.emulators.dataset import MastodonDataset, Status, plain_text
from tests.emulators.mastodon import MastodonEmulator
from tests.emulators.mastodon_render import status_path

RATELIMIT_MW = "crawler.middlewares.ratelimit.RateLimitMiddleware"


def ratelimit_args() -> list[str]:
    """Enable the rate-limit middleware unless the project settings already do."""
    if RATELIMIT_MW in getattr(project_settings, "DOWNLOADER_MIDDLEWARES", {}):
        return []
    return ["-s", f'DOWNLOADER_MIDDLEWARES={{"{RATELIMIT_MW}": 560}}']


@dataclass
class Crawl:
    data_dir: Path
    returncode: int
    stderr: str

    def query(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with sqlite3.connect(self.data_dir / "index.db") as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute(sql, args).fetchall()

    def posts(self) -> dict[str, sqlite3.Row]:
        return {r["post_id"]: r for r in self.query("SELECT * FROM posts")}

    def captured(self, url: str) -> list[int]:
        return [r["status"] for r in self.query(
            "SELECT status FROM captures WHERE url = ? AND record_type IN ('response', 'revisit')", url)]


def crawl(emu: MastodonEmulator, data_dir: Path, *args: str) -> Crawl:
    proc = socialark("crawl", "mastodon", "--instance", emu.base_url, "--delay", "0",
                     *ratelimit_args(), *args, data_dir=data_dir, timeout=240)
    return Crawl(data_dir, proc.returncode, proc.stderr)


def expected_media(st: Status, base: str) -> list[str]:
    return [base + m.path for m in st.media]


@pytest.fixture(scope="module")
def emu() -> Iterator[MastodonEmulator]:
    with MastodonEmulator(flavor="mastodon", seed=1) as e:
        yield e


@pytest.fixture(scope="module")
def alice_crawl(emu: MastodonEmulator, tmp_path_factory: pytest.TempPathFactory) -> Crawl:
    ds = emu.dataset
    deleted = f"{emu.base_url}/@alice/{ds.deleted_ids[0]}"
    result = crawl(emu, tmp_path_factory.mktemp("alice"), "--account", "alice",
                   "--account", "spammer", "--account", "nobody", "--status", deleted)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _check_post(row: sqlite3.Row, st: Status, ds: MastodonDataset, base: str) -> None:
    alice = ds.accounts[st.account_id]
    assert (row["platform"], row["author"], row["author_id"]) == ("mastodon", alice.username, alice.id)
    assert row["created_at"] == st.created_at
    assert row["reply_to_id"] == st.in_reply_to_id
    assert row["repost_of_id"] == st.reblog_of_id
    assert row["quote_of_id"] == st.quote_of_id
    assert (row["reply_count"], row["repost_count"], row["like_count"]) == (
        st.replies_count, st.reblogs_count, st.favourites_count)
    assert json.loads(row["media"]) == expected_media(st, base)
    if st.reblog_of_id:
        assert row["text"] == "" and row["lang"] is None
    else:
        assert row["text"] == plain_text(st, ds)
        assert row["content_html"] == st.content(base, ds)
        assert row["url"] == base + status_path("mastodon", alice, st)
        assert row["lang"] == st.language
    assert json.loads(row["raw"])["id"] == st.id
    assert row["source_url"].startswith(base + "/api/v1/") and len(row["source_timestamp"]) == 14


def test_account_yields_exactly_its_250_posts(emu: MastodonEmulator, alice_crawl: Crawl) -> None:
    ds = emu.dataset
    alice = ds.by_username("alice")
    assert alice is not None and len(alice.status_ids) == 250
    rows = {r["post_id"]: r for r in alice_crawl.query("SELECT * FROM posts WHERE author_id = ?", alice.id)}
    assert set(rows) == set(alice.status_ids)
    for sid in alice.status_ids:
        _check_post(rows[sid], ds.statuses[sid], ds, emu.base_url)
    # boosted originals are posts of their own authors
    posts = alice_crawl.posts()
    for sid in alice.status_ids:
        orig = ds.statuses[sid].reblog_of_id
        if orig:
            assert posts[orig]["author_id"] == ds.statuses[orig].account_id
            assert posts[orig]["text"] == plain_text(ds.statuses[orig], ds)
    [acc] = alice_crawl.query("SELECT * FROM accounts WHERE account_id = ?", alice.id)
    assert (acc["handle"], acc["display_name"], acc["posts_count"]) == ("alice", alice.display_name, 250)
    assert (acc["followers_count"], acc["following_count"]) == (alice.followers_count, alice.following_count)
    assert acc["avatar_url"] == emu.base_url + alice.avatar_path


def test_thread_yields_every_reply_past_the_context_caps(emu: MastodonEmulator, alice_crawl: Crawl) -> None:
    ds = emu.dataset
    posts = alice_crawl.posts()
    replies = ds.thread_chain_ids + ds.thread_wide_ids
    assert len(replies) == 90
    assert set(replies) <= set(posts)
    for sid in replies:
        assert posts[sid]["reply_to_id"] == ds.statuses[sid].in_reply_to_id
        assert posts[sid]["text"] == ds.statuses[sid].text


def test_every_media_file_avatar_and_page_is_in_the_warc(emu: MastodonEmulator, alice_crawl: Crawl) -> None:
    ds = emu.dataset
    base = emu.base_url
    alice = ds.by_username("alice")
    assert alice is not None
    media_rows = {(r["url"], r["post_id"]) for r in alice_crawl.query("SELECT url, post_id FROM media")}
    n_media = 0
    for sid in alice.status_ids:
        st = ds.statuses[sid]
        owner = ds.statuses[st.reblog_of_id] if st.reblog_of_id else st
        for m in owner.media:
            n_media += 1
            assert alice_crawl.captured(base + m.path) == [200]
            assert alice_crawl.captured(base + m.preview_path) == [200]
            assert (base + m.path, owner.id) in media_rows
        if not st.reblog_of_id:
            assert alice_crawl.captured(base + status_path("mastodon", alice, st)) == [200]
    assert n_media >= 20 and any(m.mime == "image/gif" for s in ds.statuses.values() for m in s.media)
    for path in (alice.avatar_path, alice.header_path):
        assert alice_crawl.captured(base + path) == [200]
    assert alice_crawl.captured(f"{base}/api/v1/instance") == [200]


def test_deleted_and_suspended_targets_are_reported_not_fatal(emu: MastodonEmulator,
                                                              alice_crawl: Crawl) -> None:
    ds = emu.dataset
    err = alice_crawl.stderr
    assert "account spammer: suspended" in err
    assert "account nobody: not found" in err
    assert f"status {emu.base_url}/@alice/{ds.deleted_ids[0]}: not found" in err
    assert alice_crawl.captured(f"{emu.base_url}/api/v1/statuses/{ds.deleted_ids[0]}") == [404]
    assert alice_crawl.captured(f"{emu.base_url}/@spammer") == [410]
    spammer = ds.by_username("spammer")
    assert spammer is not None
    assert not alice_crawl.query("SELECT 1 FROM posts WHERE author_id = ?", spammer.id)


def test_index_rebuild_yields_the_same_rows(alice_crawl: Crawl, tmp_path: Path) -> None:
    copy = tmp_path / "archive"
    shutil.copytree(alice_crawl.data_dir, copy)
    snap = Crawl(copy, 0, "")
    tables = {"posts": "post_id", "accounts": "account_id", "media": "url, post_id"}

    def rows() -> dict[str, list[tuple]]:
        out = {}
        for table, order in tables.items():
            cols = [r[1] for r in snap.query(f"PRAGMA table_info({table})") if r[1] != "id"]
            out[table] = [tuple(r) for r in snap.query(
                f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}")]
        return out

    live = rows()
    assert len(live["posts"]) > 250
    proc = socialark("index", "--rebuild", data_dir=copy)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert rows() == live


def test_status_target_archives_the_whole_thread(emu: MastodonEmulator, tmp_path: Path) -> None:
    ds = emu.dataset
    root = ds.statuses[ds.thread_root_id]
    alice = ds.accounts[root.account_id]
    result = crawl(emu, tmp_path, "--status", emu.base_url + status_path("mastodon", alice, root))
    assert result.returncode == 0, result.stderr[-3000:]
    want = {ds.thread_root_id, *ds.thread_chain_ids, *ds.thread_wide_ids}
    assert set(result.posts()) == want


def test_hashtag_timeline(emu: MastodonEmulator, tmp_path: Path) -> None:
    tagged = emu.dataset.tagged("archive")
    assert len(tagged) > 40
    mark = len(emu.requests)
    result = crawl(emu, tmp_path, "--hashtag", "#archive", "--max-posts", "40")
    assert result.returncode == 0, result.stderr[-3000:]
    posts = result.posts()
    assert {s.id for s in tagged[:40]} <= set(posts)
    for st in tagged[:40]:
        assert posts[st.id]["text"] == plain_text(st, emu.dataset)
    listing = [p for _, _, p, _ in emu.requests[mark:] if p.startswith("/api/v1/timelines/tag/")]
    assert listing == ["/api/v1/timelines/tag/archive?limit=40"]


def test_recrawl_fetches_only_new_pages_unless_full(emu: MastodonEmulator, tmp_path: Path) -> None:
    alice = emu.dataset.by_username("alice")
    assert alice is not None
    first = crawl(emu, tmp_path, "--account", "alice", "--max-posts", "40")
    assert first.returncode == 0, first.stderr[-3000:]
    listing = f"/api/v1/accounts/{alice.id}/statuses?"
    # --max-posts 40: one page of 40, then stop
    assert len(first.query("SELECT 1 FROM captures WHERE url LIKE ? AND url NOT LIKE '%pinned%'",
                           f"%{listing}%")) == 1
    assert set(alice.status_ids[:40]) <= set(first.posts())
    mark = len(emu.requests)
    again = crawl(emu, tmp_path, "--account", "alice")
    assert again.returncode == 0, again.stderr[-3000:]
    pages = [p for _, _, p, _ in emu.requests[mark:] if p.startswith(listing) and "pinned" not in p]
    assert pages == [f"{listing}limit=40"]  # page 1 holds archived posts: stop there
    assert not [p for _, _, p, _ in emu.requests[mark:] if "/context" in p and alice.status_ids[0] in p]
    mark = len(emu.requests)
    full = crawl(emu, tmp_path, "--account", "alice", "--full", "--max-posts", "80")
    assert full.returncode == 0
    pages = [p for _, _, p, _ in emu.requests[mark:] if p.startswith(listing) and "pinned" not in p]
    assert pages == [f"{listing}limit=40", f"{listing}limit=40&max_id={alice.status_ids[39]}"]


def test_usage_errors_exit_2(emu: MastodonEmulator, tmp_path: Path) -> None:
    proc = socialark("crawl", "mastodon", "--account", "alice", data_dir=tmp_path)
    assert proc.returncode == 2 and "--instance" in proc.stderr and "Traceback" not in proc.stderr
    proc = socialark("crawl", "mastodon", "--instance", emu.base_url, data_dir=tmp_path)
    assert proc.returncode == 2 and "--account" in proc.stderr
    proc = socialark("crawl", "mastodon", "--instance", emu.base_url, "--account", "a",
                     "--since", "yesterday", data_dir=tmp_path)
    assert proc.returncode == 2 and "--since" in proc.stderr and "Traceback" not in proc.stderr


def test_targets_file_and_since(emu: MastodonEmulator, tmp_path: Path) -> None:
    ds = emu.dataset
    dave = ds.by_username("dave")
    assert dave is not None
    targets = tmp_path / "targets.txt"
    targets.write_text("// people\n@dave\n\n")
    result = crawl(emu, tmp_path / "a", "--targets-file", str(targets))
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p for p, r in result.posts().items() if r["author_id"] == dave.id} == set(dave.status_ids)
    alice = ds.by_username("alice")
    assert alice is not None
    cut = ds.statuses[alice.status_ids[30]].created_at  # 31st newest post
    mark = len(emu.requests)
    result = crawl(emu, tmp_path / "b", "--account", "alice", "--since", cut[:19])
    assert result.returncode == 0
    got = {p for p, r in result.posts().items() if r["author_id"] == alice.id}
    assert set(alice.status_ids[:31]) <= got
    # the first page (40 posts) already reaches past --since: no second page, and no
    # context fetched for the posts older than the bound
    assert not [p for _, _, p, _ in emu.requests[mark:] if "max_id=" in p]
    older = alice.status_ids[35]
    assert not [p for _, _, p, _ in emu.requests[mark:] if p == f"/api/v1/statuses/{older}/context"]


# --- forks -----------------------------------------------------------------------------------
def _fork_crawl(flavor: str, tmp_path: Path) -> tuple[MastodonEmulator, Crawl]:
    """One page of alice plus the deep thread: enough to see each fork's own routes."""
    emu = MastodonEmulator(flavor=flavor, seed=2).start()
    ds = emu.dataset
    base = emu.base_url
    try:
        result = crawl(emu, tmp_path, "--account", "alice", "--max-posts", "40",
                       "--status", ds.thread_root_id, "--status", ds.quote_ids[0])
    finally:
        emu.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    alice = ds.by_username("alice")
    assert alice is not None
    posts = result.posts()
    assert set(alice.status_ids[:40]) <= set(posts)
    for sid in alice.status_ids[:40]:
        st = ds.statuses[sid]
        row = posts[sid]
        assert (row["author_id"], row["created_at"]) == (alice.id, st.created_at)
        assert (row["quote_of_id"], row["repost_of_id"]) == (st.quote_of_id, st.reblog_of_id)
        assert json.loads(row["raw"])["_flavor"] == flavor
        if not st.reblog_of_id:
            assert row["text"] == plain_text(st, ds)
            assert result.captured(base + status_path(flavor, alice, st)) == [200]
    assert {ds.thread_root_id, *ds.thread_chain_ids, *ds.thread_wide_ids} <= set(posts)
    quote = ds.statuses[ds.quote_ids[0]]
    assert quote.quote_of_id and posts[quote.id]["quote_of_id"] == quote.quote_of_id
    assert quote.quote_of_id in posts  # the quoted post, embedded in the quote
    return emu, result


def test_truthsocial_quotes_pages_and_paged_descendants(tmp_path: Path) -> None:
    emu, _ = _fork_crawl("truthsocial", tmp_path)
    assert emu.dataset.quote_ids
    paths = [p for _, _, p, _ in emu.requests]
    assert any("/context/descendants?" in p and "sort=oldest" in p for p in paths)
    assert any("/posts/" in p and p.startswith("/@alice/") for p in paths)


def test_gab_account_by_username_and_comments(tmp_path: Path) -> None:
    emu, _ = _fork_crawl("gab", tmp_path)
    paths = [p for _, _, p, _ in emu.requests]
    assert "/api/v1/account_by_username/alice" in paths
    assert not any(p.startswith("/api/v1/accounts/lookup") for p in paths)
    assert any("only_comments=true" in p for p in paths)


def test_pleroma_flake_ids(tmp_path: Path) -> None:
    emu, _ = _fork_crawl("pleroma", tmp_path)
    alice = emu.dataset.by_username("alice")
    assert alice is not None
    assert all(not sid.isdigit() for sid in alice.status_ids)
    assert any(p.startswith("/notice/") for _, _, p, _ in emu.requests)


def test_browser_renders_post_pages(emu: MastodonEmulator, tmp_path: Path) -> None:
    from crawler.browser.config import browser_problem

    problem = browser_problem(None)
    if problem:
        pytest.skip(problem)
    dave = emu.dataset.by_username("dave")
    assert dave is not None
    result = crawl(emu, tmp_path, "--account", "dave", "--browser")
    assert result.returncode == 0, result.stderr[-3000:]
    pages = {r["url"]: r["title"] for r in result.query("SELECT url, title FROM pages")}
    for sid in dave.status_ids:
        url = emu.base_url + status_path("mastodon", dave, emu.dataset.statuses[sid])
        assert pages[url] == f"{dave.display_name} (@{dave.username})"
        assert result.captured(url) == [200]
        assert result.query("SELECT 1 FROM captures WHERE url = ?", f"urn:screenshot:{url}")
    assert set(dave.status_ids) <= set(result.posts())
