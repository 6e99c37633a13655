"""``socialark crawl bluesky`` end to end: real CLI subprocesses against the Bluesky emulator,
every expectation taken from the emulator's ground-truth dataset."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from crawler.extraction import capture_from_record, read_record
from tests.conftest import socialark
from tests.emulators.bluesky import BlueskyEmulator
from tests.emulators.bluesky_data import POST, REPOST, BlueskyDataset
from tests.platform_checks import rebuilt_item_rows

ITEM_TABLES = ("posts", "accounts", "media")
UNKNOWN_DID = "did:plc:" + "a" * 24


@dataclass
class Crawl:
    emu: BlueskyEmulator
    data_dir: Path
    returncode: int
    stderr: str

    @property
    def ds(self) -> BlueskyDataset:
        return self.emu.dataset

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.data_dir / "index.db")
        conn.row_factory = sqlite3.Row
        return conn

    def posts(self) -> dict[str, sqlite3.Row]:
        with self.db() as conn:
            return {r["post_id"]: r for r in conn.execute("SELECT * FROM posts")}

    def captures(self, fragment: str) -> list[sqlite3.Row]:
        with self.db() as conn:
            return conn.execute("SELECT * FROM captures WHERE instr(url, ?) > 0 ORDER BY id",
                                [fragment]).fetchall()

    def stats(self) -> dict[str, Any]:
        with self.db() as conn:
            return json.loads(conn.execute("SELECT stats FROM crawls").fetchone()[0])


def run_crawl(emu: BlueskyEmulator, data_dir: Path, *args: str, plc: str | None = None) -> Crawl:
    proc = socialark("crawl", "bluesky", *args, "--appview", emu.appview_url,
                     "--plc", plc or emu.plc_url, "--delay", "0", data_dir=data_dir, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr[-4000:]
    return Crawl(emu, data_dir, proc.returncode, proc.stderr)


@pytest.fixture(scope="module")
def emu() -> Iterator[BlueskyEmulator]:
    with BlueskyEmulator(seed=1) as e:
        yield e


@pytest.fixture(scope="module")
def full(emu: BlueskyEmulator, tmp_path_factory: pytest.TempPathFactory) -> Crawl:
    """alice (250 feed items) plus taken-down, deactivated and unknown actors and a deleted post."""
    return run_crawl(emu, tmp_path_factory.mktemp("bsky-full"),
                     "--actor", "alice.test", "--actor", "mallory.test", "--actor", "eve.test",
                     "--actor", "nobody.test", "--actor", UNKNOWN_DID,
                     "--post", emu.dataset.deleted_uri)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + base64.b32encode(hashlib.sha256(data).digest()).decode()


def alice_feed(ds: BlueskyDataset) -> list[Any]:
    alice = ds.actor("alice.test")
    assert alice is not None
    return [rec for _, rec in ds.feed(alice.did)]


def assert_post_row(row: sqlite3.Row, ds: BlueskyDataset, base: str, source_ok: set[str]) -> None:
    truth = ds.posts[row["post_id"]]
    acc = ds.accounts[truth.record.did]
    assert (row["platform"], row["author"], row["author_id"]) == ("bluesky", acc.handle, acc.did)
    assert row["created_at"] == truth.record.value["createdAt"]
    assert row["text"] == truth.text
    assert (row["reply_to_id"], row["quote_of_id"], row["repost_of_id"]) == (
        truth.reply_parent, truth.quote_of, None)
    assert (row["reply_count"], row["repost_count"], row["like_count"]) == (
        truth.reply_count, truth.repost_count, truth.like_count)
    assert row["lang"] == "en"
    assert row["url"] == f"{base}/profile/{acc.handle}/post/{truth.record.rkey}"
    assert row["url"] in source_ok, "the post page was captured"
    media = json.loads(row["media"])
    assert [u.rsplit("/", 2)[1:] for u in media] == [[acc.did, f"{b.cid}@png"] for b in truth.images]
    assert all(u in source_ok for u in media), "every image was captured"
    raw = json.loads(row["raw"])
    assert (raw["uri"], raw["cid"], raw["record"]) == (truth.uri, truth.record.cid, truth.record.value)


def ok_urls(crawl: Crawl) -> set[str]:
    with crawl.db() as conn:
        return {r[0] for r in conn.execute("SELECT url FROM captures WHERE status = 200")}


def test_alice_feed_is_archived_exactly(full: Crawl) -> None:
    ds, base, posts, ok = full.ds, full.emu.base_url, full.posts(), ok_urls(full)
    feed = alice_feed(ds)
    assert len(feed) == 250
    for rec in feed:
        if rec.collection == REPOST:
            subject = rec.value["subject"]["uri"]
            row = posts[rec.uri]
            assert (row["author"], row["author_id"], row["repost_of_id"]) == (
                "alice.test", rec.did, subject)
            assert row["created_at"] == rec.indexed_at
            assert_post_row(posts[subject], ds, base, ok)
        else:
            assert rec.collection == POST
            assert_post_row(posts[rec.uri], ds, base, ok)
    alice_rows = {pid for pid, r in posts.items() if r["author_id"] == feed[0].did}
    assert alice_rows == {rec.uri for rec in feed}
    # Nothing invented: every row is a live post or repost of the dataset.
    assert set(posts) <= {u for u in ds.posts if ds.post(u)} | set(ds.reposts)


def test_account_and_media_rows(full: Crawl) -> None:
    alice = full.ds.actor("alice.test")
    assert alice is not None
    with full.db() as conn:
        accounts = conn.execute("SELECT * FROM accounts").fetchall()
        media = conn.execute("SELECT * FROM media").fetchall()
    assert [(a["account_id"], a["handle"], a["display_name"], a["followers_count"],
             a["following_count"]) for a in accounts] == [
        (alice.did, alice.handle, alice.display_name, alice.followers_count, alice.follows_count)]
    rows = full.posts()
    want = {(p.uri, b.cid) for p in full.ds.posts.values() for b in p.images if p.uri in rows}
    assert {(m["post_id"], m["url"].rsplit("/", 1)[1].removesuffix("@png")) for m in media} == want


def test_threads_yield_every_reply(full: Crawl) -> None:
    ds, posts = full.ds, full.posts()
    assert len(ds.thread_chain) == 12
    parent = ds.thread_root
    for uri in ds.thread_chain:  # 12 deep, deeper than getPostThread's default depth 6
        assert posts[uri]["reply_to_id"] == parent
        parent = uri
    for uri, row in posts.items():
        if row["repost_of_id"] is None and (row["reply_count"] or 0) > 0:
            kids = {p.uri for p in ds.replies(uri) if ds.post(p.uri)}
            assert kids <= set(posts), uri


def test_repository_car_and_every_blob_are_in_the_warc(full: Crawl) -> None:
    alice = full.ds.actor("alice.test")
    assert alice is not None
    car_url = f"{full.emu.pds_url}/xrpc/com.atproto.sync.getRepo?did={alice.did}"
    with urllib.request.urlopen(car_url) as resp:  # the emulator's repository, byte for byte
        car = resp.read()
    [row] = full.captures(f"getRepo?did={alice.did.replace(':', '%3A')}")
    assert (row["status"], row["mime"], row["digest"]) == (200, "application/vnd.ipld.car",
                                                           sha256_digest(car))
    cids = {ref["ref"]["$link"] for rec in alice.records for ref in _blob_refs(rec.value)}
    assert len(cids) > 2  # avatar, banner and post images
    for cid in cids:
        [blob] = full.captures(f"getBlob?did={alice.did.replace(':', '%3A')}&cid={cid}")
        assert (blob["status"], blob["digest"]) == (200, sha256_digest(full.ds.blobs[cid].data))


def _blob_refs(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if value.get("$type") == "blob":
            yield value
        for v in value.values():
            yield from _blob_refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _blob_refs(v)


def test_gone_targets_are_archived_reported_and_not_fatal(full: Crawl) -> None:
    assert full.returncode == 0, full.stderr[-3000:]
    stats = full.stats()
    for name in ("AccountDeactivated", "HandleNotFound", "NotFound", "RepoDeactivated",
                 "ProfileNotFound", "DidNotFound"):
        assert stats.get(f"archive/missing/{name}", 0) >= 1, name
        assert name in full.stderr
    for name in ("AccountTakedown", "RepoTakendown"):  # withheld by the platform, not gone
        assert stats.get(f"archive/blocked/{name}", 0) >= 1, name
        assert name in full.stderr
    mallory = full.ds.actor("mallory.test")
    assert mallory is not None
    [row] = full.captures(f"getProfile?actor={mallory.did.replace(':', '%3A')}")
    assert row["status"] == 400
    [gone] = full.captures("getPostThread?uri=" + full.ds.deleted_uri.replace(":", "%3A")
                           .replace("/", "%2F"))
    assert gone["status"] == 400
    assert full.ds.deleted_uri not in full.posts()


def test_reextract_from_warcs_reproduces_the_rows(full: Crawl, tmp_path: Path) -> None:
    before, after = rebuilt_item_rows(full.data_dir / "index.db", tmp_path)
    assert len(before["posts"]) > 250
    assert after == before


def test_post_url_archives_its_whole_thread(emu: BlueskyEmulator, tmp_path: Path) -> None:
    ds = emu.dataset
    rkey = ds.thread_root.rsplit("/", 1)[1]
    crawl = run_crawl(emu, tmp_path, "--post", f"https://bsky.app/profile/alice.test/post/{rkey}")
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    posts = crawl.posts()
    assert set(posts) == {ds.thread_root, *ds.thread_chain}
    ok = ok_urls(crawl)
    for row in posts.values():
        assert_post_row(row, ds, emu.base_url, ok)
    assert not crawl.captures("getAuthorFeed")


def feed_items_captured(crawl: Crawl) -> list[str]:
    """Feed item ids (post URI, or repost URI) in the captured getAuthorFeed pages, in order."""
    out = []
    with crawl.db() as conn:
        rows = conn.execute(
            "SELECT c.offset, c.length, c.timestamp, f.path FROM captures c JOIN warc_files f"
            " ON f.name = c.filename WHERE instr(c.url, 'getAuthorFeed') > 0 ORDER BY c.id").fetchall()
    for offset, length, ts, path in rows:
        capture = capture_from_record(read_record(Path(path), offset, length), ts)
        assert capture is not None
        for item in capture.json()["feed"]:
            out.append((item.get("reason") or {}).get("uri") or item["post"]["uri"])
    return out


def test_max_posts_bounds_the_feed(emu: BlueskyEmulator, tmp_path: Path) -> None:
    crawl = run_crawl(emu, tmp_path, "--actor", "alice.test", "--max-posts", "120")
    feed = [rec.uri for rec in alice_feed(emu.dataset)]
    assert feed_items_captured(crawl) == feed[:120]
    limits = [parse_qs(urlsplit(r["url"]).query)["limit"] for r in crawl.captures("getAuthorFeed")]
    assert limits == [["100"], ["20"]]
    assert set(feed[:120]) <= set(crawl.posts())


def test_since_bounds_the_feed(emu: BlueskyEmulator, tmp_path: Path) -> None:
    items = alice_feed(emu.dataset)
    since = items[59].value["createdAt"]  # newest first: items 0..59 are on or after it
    crawl = run_crawl(emu, tmp_path, "--actor", "alice.test", "--since", since)
    captured = feed_items_captured(crawl)
    assert len(crawl.captures("getAuthorFeed")) == 1  # stopped before following the cursor
    assert captured[:60] == [rec.uri for rec in items[:60]]
    pages = {r["url"] for r in crawl.captures("/profile/alice.test/post/")}
    newer = {f"{emu.base_url}/profile/alice.test/post/{rec.rkey}" for rec in items[:60]
             if rec.collection == POST}
    assert newer <= pages


@pytest.mark.parametrize(("args", "message"), [
    (("--actor", "not a handle!"), "not a Bluesky handle or DID"),
    (("--post", "https://example.org/nothing"), "not a Bluesky post"),
    (("--actor", "alice.test", "--since", "yesterday"), "expected a date"),
    (("--actor", "alice.test", "--appview", "ftp://x"), "expected an http(s) URL"),
    ((), "give at least one --actor or --post"),
])
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    proc = socialark("crawl", "bluesky", *args, data_dir=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_did_actor_with_pds_override_and_no_did_document(emu: BlueskyEmulator, tmp_path: Path) -> None:
    dave = emu.dataset.actor("dave.test")
    assert dave is not None
    crawl = run_crawl(emu, tmp_path, "--actor", dave.did, "--pds", emu.pds_url,
                      plc=f"{emu.base_url}/no-plc-here")
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    assert not crawl.captures("resolveHandle")
    assert crawl.stats()["archive/missing/DidNotFound"] == 1
    want = {r.uri for r in dave.records if r.collection == POST}
    assert set(crawl.posts()) == want and len(want) == 3
    [car] = crawl.captures("getRepo")
    assert car["status"] == 200
    for blob in (dave.avatar, dave.banner):
        [row] = crawl.captures(f"getBlob?did={dave.did.replace(':', '%3A')}&cid={blob.cid}")
        assert (row["status"], row["digest"]) == (200, sha256_digest(blob.data))


RATELIMIT = '{"crawler.middlewares.ratelimit.RateLimitMiddleware": 600}'


def test_rate_limited_crawl_loses_nothing(tmp_path: Path) -> None:
    with BlueskyEmulator(seed=1) as emu:
        dave = emu.dataset.actor("dave.test")
        assert dave is not None
        emu.faults.rate_limit(after=4, window=1.0)
        crawl = run_crawl(emu, tmp_path, "--actor", "dave.test", "-s",
                          f"DOWNLOADER_MIDDLEWARES={RATELIMIT}")
        stats = crawl.stats()
        assert crawl.returncode == 0, crawl.stderr[-3000:]
        assert stats.get("ratelimit/waits", 0) + stats.get("ratelimit/throttled", 0) > 0
        assert not [k for k in stats if k.startswith("archive/failed/")]
        assert set(crawl.posts()) == {r.uri for r in dave.records if r.collection == POST}
        for fragment in ("getRepo", "getProfile", "getAuthorFeed",
                         f"cid={dave.avatar.cid}", f"cid={dave.banner.cid}"):
            assert any(r["status"] == 200 for r in crawl.captures(fragment)), fragment
