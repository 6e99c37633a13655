"""``socialark crawl telegram`` end to end: real CLI subprocesses against the Telegram emulator,
every expectation taken from the emulator's ground-truth dataset."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from spiders.telegram.extract import EXTRACTOR
from tests.conftest import socialark
from tests.emulators.telegram import TelegramEmulator, abbreviate
from tests.emulators.telegram_data import Channel, TelegramDataset
from tests.platform_checks import rebuilt_item_rows

ITEM_TABLES = ("posts", "accounts", "media")


@dataclass
class Crawl:
    emu: TelegramEmulator
    data_dir: Path
    returncode: int
    stderr: str

    @property
    def ds(self) -> TelegramDataset:
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


def run_crawl(emu: TelegramEmulator, data_dir: Path, *args: str) -> Crawl:
    proc = socialark("crawl", "telegram", *args, "--base-url", emu.base_url, "--delay", "0",
                     data_dir=data_dir, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr[-4000:]
    return Crawl(emu, data_dir, proc.returncode, proc.stderr)


@pytest.fixture(scope="module")
def emu() -> Iterator[TelegramEmulator]:
    with TelegramEmulator(seed=1) as e:
        yield e


@pytest.fixture(scope="module")
def full(emu: TelegramEmulator, tmp_path_factory: pytest.TempPathFactory) -> Crawl:
    return run_crawl(emu, tmp_path_factory.mktemp("tg-full"), "--channel", "HarbourWatch",
                     "--channel", "@tinychan", "--channel", "secretchan")


def channel(ds: TelegramDataset, name: str) -> Channel:
    ch = ds.channel(name)
    assert ch is not None
    return ch


def test_every_visible_message_is_archived_exactly(full: Crawl) -> None:
    base, posts, ok = full.emu.base_url, full.posts(), full.statuses()
    for name in ("HarbourWatch", "tinychan"):
        ch = channel(full.ds, name)
        rows = {pid: r for pid, r in posts.items() if r["author"] == ch.username}
        assert set(rows) == {f"{ch.username}/{i}" for i in ch.visible_ids}
        for msg in ch.messages.values():
            row = rows[f"{ch.username}/{msg.id}"]
            raw = json.loads(row["raw"])
            assert row["url"] == f"{base}/{ch.username}/{msg.id}"
            assert ok[row["url"]] == [200] and 200 in ok[row["url"] + "?embed=1&mode=tme"]
            assert row["created_at"] == msg.date.replace("+00:00", "Z")
            assert row["text"] == msg.text_plain
            assert raw["views"] == abbreviate(msg.views)  # what the page shows
            assert abbreviate(raw["views_count"]) == raw["views"]
            assert abs(raw["views_count"] - msg.views) <= msg.views * 0.05
            assert (raw["edited"], raw["service"], raw["signature"]) == (
                msg.edited, msg.service, msg.signature)
            want_media = [base + p for p in msg.photo_paths]
            if msg.video_path:
                want_media.append(base + msg.video_path)
            assert json.loads(row["media"]) == want_media
            assert raw["album_ids"] == (msg.album_ids if len(msg.photo_paths) > 1 else [])
            video = raw["video"]
            assert (video and (video["url"], video["thumb"])) == (
                msg.video_path and (base + msg.video_path, base + str(msg.video_thumb_path)))
            fwd = raw["forwarded_from"]
            assert (fwd and (fwd["name"], fwd["url"])) == (msg.forwarded_from and msg.forwarded_from)
            assert row["reply_to_id"] == (
                f"{ch.username}/{msg.reply_to_id}" if msg.reply_to_id is not None else None)
            lp = raw["link_preview"]
            if msg.link_preview:
                assert (lp["url"], lp["title"], lp["description"], lp["image"]) == (
                    msg.link_preview.url, msg.link_preview.title, msg.link_preview.description,
                    base + msg.link_preview.image_path)
            else:
                assert lp is None


def test_media_and_accounts_are_captured(full: Crawl) -> None:
    base, ok = full.emu.base_url, full.statuses()
    ch = channel(full.ds, "HarbourWatch")
    paths = [p for m in ch.messages.values() for p in (
        *m.photo_paths, m.video_path, m.video_thumb_path,
        m.link_preview.image_path if m.link_preview else None) if p]
    assert len(paths) > 40
    for path in paths:
        assert 200 in ok[base + path], path
    with full.db() as conn:
        media = {(r["post_id"], r["url"], r["media_type"]) for r in conn.execute("SELECT * FROM media")}
        accounts = {r["account_id"]: r for r in conn.execute("SELECT * FROM accounts")}
    want = set()
    for m in ch.messages.values():
        pid = f"{ch.username}/{m.id}"
        want |= {(pid, base + p, "image") for p in m.photo_paths}
        if m.video_path:
            want.add((pid, base + m.video_path, "video"))
        if m.link_preview:
            want.add((pid, base + m.link_preview.image_path, "link_preview"))
    assert {x for x in media if x[0].startswith("HarbourWatch/")} == want
    assert set(accounts) == {"HarbourWatch", "tinychan"}
    assert accounts["HarbourWatch"]["followers_count"] == ch.subscribers
    assert 200 in ok[accounts["HarbourWatch"]["avatar_url"]]


def test_private_channel_and_deleted_messages_are_reported(full: Crawl) -> None:
    ch, ok, stats = channel(full.ds, "HarbourWatch"), full.statuses(), full.stats()
    assert full.returncode == 0, full.stderr[-3000:]
    assert stats["archive/missing/no_public_preview"] == 1
    assert stats["archive/missing/post_not_found"] == len(ch.deleted_ids) > 5
    base = full.emu.base_url
    for msg_id in ch.deleted_ids:
        assert ok[f"{base}/HarbourWatch/{msg_id}?embed=1&mode=tme"] == [200]
    assert ok[f"{base}/s/secretchan"] == [302]
    assert "secretchan has no public preview" in full.stderr
    assert f"post_not_found: {len(ch.deleted_ids)}" in full.stderr


def test_reextract_from_warcs_reproduces_the_rows(full: Crawl, tmp_path: Path) -> None:
    before, after = rebuilt_item_rows(full.data_dir / "index.db", tmp_path, extractors=[EXTRACTOR])
    assert len(before["posts"]) == 125
    assert after == before


def post_pages(crawl: Crawl) -> set[str]:
    """The messages whose own post page was fetched: those the crawl followed."""
    base = crawl.emu.base_url + "/"
    return {u.removeprefix(base) for u in crawl.statuses()
            if u.startswith(base) and u.removeprefix(base).count("/") == 1
            and u.rsplit("/", 1)[1].isdigit()}


def test_max_posts_and_since_bound_the_crawl(emu: TelegramEmulator, tmp_path: Path) -> None:
    ch = channel(emu.dataset, "HarbourWatch")
    limited = run_crawl(emu, tmp_path / "max", "--channel", "https://t.me/HarbourWatch",
                        "--max-posts", "25")
    assert post_pages(limited) == {f"HarbourWatch/{i}" for i in ch.visible_ids[-25:]}
    # Two preview pages were needed; every card they show is indexed (as a rebuild would).
    assert set(limited.posts()) == {f"HarbourWatch/{i}" for i in ch.visible_ids[-40:]}
    since = ch.messages[ch.visible_ids[-33]].date
    dated = run_crawl(emu, tmp_path / "since", "--channel", "HarbourWatch", "--since", since)
    assert post_pages(dated) == {f"HarbourWatch/{i}" for i in ch.visible_ids[-33:]}
    assert set(dated.posts()) == {f"HarbourWatch/{i}" for i in ch.visible_ids[-40:]}


def test_rate_limited_crawl_completes(tmp_path: Path) -> None:
    with TelegramEmulator(seed=2) as emu:
        emu.faults.rate_limit(after=8, window=1.0)
        crawl = run_crawl(emu, tmp_path, "--channel", "tinychan",
                          "-s", "ARCHIVE_RATELIMIT_BACKOFF=0.5")
        assert emu.faults.throttled > 0  # the limit really bit
        ch = channel(emu.dataset, "tinychan")
        assert crawl.returncode == 0, crawl.stderr[-3000:]
        assert set(crawl.posts()) == {f"tinychan/{i}" for i in ch.visible_ids}
        assert any(429 in s for s in crawl.statuses().values())  # every answer archived


def test_bad_channel_is_a_usage_error(tmp_path: Path) -> None:
    proc = socialark("crawl", "telegram", "--channel", "not a channel!", data_dir=tmp_path)
    assert proc.returncode == 2
    assert "not a Telegram channel name" in proc.stderr and "Traceback" not in proc.stderr
    proc = socialark("crawl", "telegram", data_dir=tmp_path)
    assert proc.returncode == 2 and "--channel" in proc.stderr
    helptext = socialark("crawl", "telegram", "--help").stdout
    assert "Example:" in helptext and "--since" in helptext
