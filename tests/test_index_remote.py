"""``socialark index URL``: WARCs indexed where they are (a web server, a bucket), read back by range.

A real Mastodon emulator crawl writes the WARCs; a loopback HTTP server with Range support (and
one without) and moto_server serve them. Indexing by URL must give the same captures and the
same posts as indexing the local files, copy nothing to disk, and replay (real pywb) and
export must read the records from the server by range. A server without Range support gets
one clear line, never a silent whole-file download per record.
"""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path

import pytest

from crawler.replay import pywb_replay
from storage.db import open_database
from storage.offload import RemoteReader
from tests.conftest import socialark
from tests.emulators.mastodon import MastodonEmulator
from tests.procs import free_port
from tests.range_server import RangeServer
from tests.replay_helpers import expected_from_warc, replayable_captures
from tests.test_replay_pywb import get

pytest_plugins = ["tests.s3server"]


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real crawl of one Mastodon account, indexed locally (the reference)."""
    data_dir = tmp_path_factory.mktemp("remote-index") / "crawl"
    with MastodonEmulator(flavor="mastodon", seed=1) as emu:
        socialark("crawl", "mastodon", "--instance", emu.base_url, "--delay", "0",
                  "--account", "alice", "--max-posts", "40", "--collection", "toots",
                  data_dir=data_dir, check=True, timeout=240)
    return data_dir


def _warcs(data_dir: Path) -> list[Path]:
    files = sorted((data_dir / "warcs").rglob("*.warc.gz"))
    assert files
    return files


def _rel(data_dir: Path, path: Path) -> str:
    return path.relative_to(data_dir / "warcs").as_posix()


def _rows(data_dir: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(data_dir / "index.db") as db:
        return sorted(db.execute(sql).fetchall(), key=repr)


CAPTURES = ("SELECT collection, urlkey, url, timestamp, status, mime, digest, length, offset, "
            "filename, record_type, method FROM captures")
POSTS = "SELECT collection, platform, post_id, author_id, created_at, text FROM posts"


def test_index_by_http_url_extracts_posts_replays_and_exports_by_range(
        crawl: Path, tmp_path: Path) -> None:
    warcs = _warcs(crawl)
    remote = tmp_path / "remote"
    with RangeServer(crawl / "warcs") as server:
        urls = [server.url(_rel(crawl, p)) for p in warcs]
        run = socialark("index", *urls, data_dir=remote, check=True)
        assert "posts/accounts/media extracted" in run.stdout
        # The objects were each read once as a whole, the records for extraction by range.
        whole = [r for r in server.requests if r[0] == "GET" and r[2] is None]
        ranged = [r for r in server.requests if r[2] is not None]
        assert sorted(r[1] for r in whole) == sorted("/" + _rel(crawl, p) for p in warcs)
        assert ranged and all(r[3] == 206 for r in ranged)
        assert len({r[4] for r in ranged}) < len(ranged)  # kept-alive connections, not one each
        assert not (remote / "warcs").exists()  # streamed: no copy on disk

        # Same captures and the same posts as the crawl's own index.
        assert _rows(remote, CAPTURES) == _rows(crawl, CAPTURES)
        posts = _rows(remote, POSTS)
        assert len(posts) >= 40 and posts == _rows(crawl, POSTS)
        db = open_database(remote / "index.db", readonly=True)
        paths = {n: p for n, p in db.execute("SELECT name, path FROM warc_files")}
        assert sorted(paths.values()) == sorted(urls)

        # Search finds a post that came from the remote WARCs.
        text = next(str(p[5]) for p in posts if len(str(p[5]).split()) >= 3)
        word = max(text.split(), key=len).strip(".,!?#@:;\"'()")
        found = socialark("search", word, "--json", data_dir=remote, check=True)
        hits = [json.loads(line) for line in found.stdout.splitlines()]
        assert hits and any(word.lower() in (h.get("text") or "").lower() for h in hits)

        # Running again reads nothing new (same ETag and size).
        server.clear()
        again = socialark("index", *urls, data_dir=remote, check=True)
        assert sum("(1 unchanged)" in line for line in again.stdout.splitlines()) == len(urls)
        assert all(r[0] == "GET" and r[2] is None for r in server.requests)

        # Real pywb replays every capture, reading the records from the server by range.
        server.clear()
        local = open_database(crawl / "index.db", readonly=True)
        with pywb_replay(db, remote, free_port(), remote=RemoteReader()) as pywb:
            captures = [c for c in replayable_captures(db) if c["record_type"] == "response"]
            assert captures
            for capture in captures[:25]:
                expected = expected_from_warc(local, capture)
                status, _, body = get(pywb.port, f"/{capture['collection']}/"
                                                 f"{capture['timestamp']}id_/{capture['url']}")
                assert (capture["url"], status) == (capture["url"], expected.status)
                assert body == expected.payload, capture["url"]
        ranged = [r for r in server.requests if r[0] == "GET" and r[2] is not None]
        assert ranged and all(r[3] == 206 for r in ranged)
        assert not [r for r in server.requests if r[0] == "GET" and r[2] is None]

        # export wacz streams each remote WARC into the package, checked against the index.
        out = tmp_path / "remote.wacz"
        socialark("export", "wacz", "-o", str(out), data_dir=remote, check=True)
    with zipfile.ZipFile(out) as zf:
        for p in warcs:
            assert zf.read(f"archive/{p.name}") == p.read_bytes()

    # --rebuild streams the remote files again (the server is back) and checks their SHA-256.
    with RangeServer(crawl / "warcs") as server2:
        moved = {u: server2.url(u.split("/", 3)[3]) for u in urls}
        with sqlite3.connect(remote / "index.db") as conn:  # the server moved to a new port
            for old, new in moved.items():
                conn.execute("UPDATE warc_files SET path = ?, remote_key = ? WHERE path = ?",
                             [new, new, old])
        rebuilt = socialark("index", "--rebuild", data_dir=remote, check=True)
        assert "streamed from http://127.0.0.1" in rebuilt.stderr
    assert _rows(remote, CAPTURES) == _rows(crawl, CAPTURES)
    assert _rows(remote, POSTS) == _rows(crawl, POSTS)


def test_server_without_range_support_gets_one_clear_line(crawl: Path, tmp_path: Path) -> None:
    warcs = _warcs(crawl)
    remote = tmp_path / "remote"
    with RangeServer(crawl / "warcs", ranges=False) as server:
        urls = [server.url(_rel(crawl, p)) for p in warcs]
        run = socialark("index", *urls, data_dir=remote)
        # Captures are indexed from the stream; posts need single records: exit 1, said once
        # per file, and no whole-file download per record.
        assert run.returncode == 1, run.stderr
        assert _rows(remote, CAPTURES) == _rows(crawl, CAPTURES)
        lines = [ln for ln in run.stderr.splitlines() if "range requests" in ln]
        assert len(lines) == len(warcs), run.stderr
        assert "Traceback" not in run.stderr
        gets = [r for r in server.requests if r[0] == "GET"]
        assert len(gets) <= 3 * len(warcs)

        replay = socialark("replay", "--port", str(free_port()), data_dir=remote, timeout=60)
        # A WACZ needs whole files only: that works without ranges.
        out = tmp_path / "norange.wacz"
        socialark("export", "wacz", "-o", str(out), data_dir=remote, check=True)
    with zipfile.ZipFile(out) as zf:
        assert sorted(n for n in zf.namelist() if n.startswith("archive/")) == \
            sorted(f"archive/{p.name}" for p in warcs)
    assert replay.returncode == 2
    assert "does not support HTTP range requests" in replay.stderr
    assert "Traceback" not in replay.stderr
    assert len(replay.stderr.strip().splitlines()) <= 2, replay.stderr


def test_unreachable_or_missing_url_is_skipped_with_a_reason(crawl: Path, tmp_path: Path) -> None:
    with RangeServer(crawl / "warcs") as server:
        missing = server.url("toots/none.warc.gz")
        run = socialark("index", missing, data_dir=tmp_path / "d")
    assert run.returncode == 1
    assert f"skipped {missing}: HTTP 404" in run.stderr
    port = free_port()
    gone = socialark("index", f"http://127.0.0.1:{port}/x.warc.gz", data_dir=tmp_path / "d")
    assert gone.returncode == 1 and "cannot connect" in gone.stderr
    with RangeServer(crawl / "warcs") as server:  # a redirect is followed, ranges too
        url = server.url("moved/" + _rel(crawl, _warcs(crawl)[-1]))
        socialark("index", url, data_dir=tmp_path / "r", check=True)
        assert any(r[1].startswith("/moved/") and r[2] for r in server.requests)
    assert _rows(tmp_path / "r", POSTS)
    with RangeServer(crawl / "warcs", cut_at=5000) as cut:
        url = cut.url(_rel(crawl, _warcs(crawl)[0]))
        dropped = socialark("index", url, data_dir=tmp_path / "d")
    assert dropped.returncode == 1 and "Traceback" not in dropped.stderr
    assert f"skipped {url}: " in dropped.stderr, dropped.stderr
    with sqlite3.connect(tmp_path / "d" / "index.db") as db:  # nothing stored for that file
        assert db.execute("SELECT count(*) FROM warc_files").fetchone()[0] == 0
    mixed = socialark("index", missing, str(tmp_path), data_dir=tmp_path / "d")
    assert mixed.returncode == 2 and "cannot be mixed" in mixed.stderr


def test_central_index_from_a_bucket_has_the_posts(crawl: Path, s3_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A distributed crawl's WARCs mirrored to a bucket: the central index holds their posts."""
    s3_server.create_bucket("archive")
    client = s3_server.client()
    for p in _warcs(crawl):
        client.upload_file(str(p), "archive", f"crawls/{_rel(crawl, p)}")
    central = tmp_path / "central"
    run = socialark("index", "s3://archive/crawls", "--endpoint-url", s3_server.endpoint_url,
                    data_dir=central, check=True)
    assert "posts/accounts/media extracted" in run.stdout
    assert _rows(central, CAPTURES) == _rows(crawl, CAPTURES)
    assert len(_rows(central, POSTS)) >= 40 and _rows(central, POSTS) == _rows(crawl, POSTS)
    with sqlite3.connect(central / "index.db") as db:
        keys = [k for (k,) in db.execute("SELECT remote_key FROM warc_files")]
    assert keys and all(k.startswith("s3://archive/crawls/") for k in keys)
    assert not (central / "warcs").exists()
