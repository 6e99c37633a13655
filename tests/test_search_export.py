"""``socialark search`` and ``export posts|captures`` on a real crawl of the emulator."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import socialark
from tests.emulators.dataset import plain_text
from tests.emulators.mastodon import MastodonEmulator
from tests.test_mastodon import Crawl, crawl


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MastodonEmulator, Crawl]]:
    with MastodonEmulator(seed=5) as emu:
        result = crawl(emu, tmp_path_factory.mktemp("search"), "--account", "alice")
        assert result.returncode == 0, result.stderr[-3000:]
        yield emu, result


def _alice_ids_with(emu: MastodonEmulator, word: str, since: str = "", until: str = "~") -> set[str]:
    ds = emu.dataset
    alice = ds.by_username("alice")
    assert alice is not None
    return {sid for sid in alice.status_ids
            if word in plain_text(ds.statuses[sid], ds).lower().replace("#", " ").split()
            and since <= ds.statuses[sid].created_at <= until}


def _search(data_dir: Path, *args: str) -> list[dict]:
    proc = socialark("search", *args, "--json", "--limit", "1000", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_search_returns_exactly_the_matching_posts(archived: tuple[MastodonEmulator, Crawl]) -> None:
    emu, result = archived
    want = _alice_ids_with(emu, "harbour")
    assert want
    hits = _search(result.data_dir, "harbour", "--author", "alice")
    assert {h["post_id"] for h in hits} == want
    assert all("<mark>" in h["snippet"].lower() for h in hits)
    ranks = [h["rank"] for h in hits]
    assert ranks == sorted(ranks)  # bm25: best (lowest) first
    # the date window narrows to exactly the posts created in it
    alice = emu.dataset.by_username("alice")
    assert alice is not None
    times = sorted(emu.dataset.statuses[s].created_at for s in alice.status_ids)
    since, until = times[50][:19], times[200][:19]
    hits = _search(result.data_dir, "archive", "--author", "alice", "--since", since, "--until", until)
    assert {h["post_id"] for h in hits} == _alice_ids_with(emu, "archive", since, until + "~")
    assert _search(result.data_dir, "harbour", "--platform", "bluesky") == []


def test_search_links_to_the_api_and_page_captures(archived: tuple[MastodonEmulator, Crawl]) -> None:
    _, result = archived
    [hit] = [h for h in _search(result.data_dir, "harbour", "--author", "alice",
                                "--replay-base", "http://replay.test")][:1]
    assert hit["api_replay_url"] == f"http://replay.test/default/{hit['source_timestamp']}/{hit['source_url']}"
    [page_ts] = [r["timestamp"] for r in result.query(
        "SELECT timestamp FROM captures WHERE url = ? ORDER BY timestamp DESC LIMIT 1", hit["url"])]
    assert hit["page_replay_url"] == f"http://replay.test/default/{page_ts}/{hit['url']}"


def test_bad_query_is_a_usage_error(archived: tuple[MastodonEmulator, Crawl]) -> None:
    _, result = archived
    proc = socialark("search", 'archive AND (', data_dir=result.data_dir)
    assert proc.returncode == 2
    assert "invalid search query" in proc.stderr and "Traceback" not in proc.stderr
    proc = socialark("search", "x", "--since", "last week", data_dir=result.data_dir)
    assert proc.returncode == 2 and "invalid date" in proc.stderr


def test_export_posts_jsonl_and_csv(archived: tuple[MastodonEmulator, Crawl], tmp_path: Path) -> None:
    emu, result = archived
    alice = emu.dataset.by_username("alice")
    assert alice is not None
    proc = socialark("export", "posts", "--format", "jsonl", "--author", "alice", data_dir=result.data_dir)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["post_id"] for r in rows] == list(reversed(alice.status_ids))  # oldest first
    by_id = {r["post_id"]: r for r in rows}
    for sid in alice.status_ids:
        st = emu.dataset.statuses[sid]
        assert by_id[sid]["created_at"] == st.created_at
        assert by_id[sid]["media"] == [emu.base_url + m.path for m in st.media]
        assert by_id[sid]["raw"]["id"] == sid
    out = tmp_path / "posts.csv"
    proc = socialark("export", "posts", "--format", "csv", "-o", str(out), "--author", "alice",
                     "--query", "harbour", data_dir=result.data_dir)
    assert proc.returncode == 0, proc.stderr
    table = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert {r["post_id"] for r in table} == _alice_ids_with(emu, "harbour")
    assert {"text", "content_html", "raw", "api_replay_url", "page_replay_url"} <= set(table[0])


def test_export_captures(archived: tuple[MastodonEmulator, Crawl]) -> None:
    _, result = archived
    proc = socialark("export", "captures", "--format", "csv", "--collection", "default",
                     data_dir=result.data_dir)
    assert proc.returncode == 0, proc.stderr
    table = list(csv.DictReader(io.StringIO(proc.stdout)))
    with sqlite3.connect(result.data_dir / "index.db") as conn:
        want = conn.execute("SELECT url, timestamp, status FROM captures ORDER BY timestamp, id").fetchall()
    assert [(r["url"], r["timestamp"], int(r["status"]) if r["status"] else None) for r in table] == want
    proc = socialark("export", "captures", "--format", "jsonl", "--until", "2000",
                     data_dir=result.data_dir)
    assert proc.returncode == 0 and proc.stdout == ""
