"""Offloaded WARCs stay indexed: a real Mastodon crawl, ``mirror --delete-after-verify`` to moto's
S3 server, then ``index``, ``index --rebuild`` (bucket reachable or not), ``cdx``, ``export`` and
``replay`` on an archive whose WARCs are only in the bucket."""

from __future__ import annotations

import hashlib
import http.client
import shutil
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from crawler.replay import pywb_replay
from storage.db import open_database
from storage.offload import RemoteReader
from storage.wacz import verify_wacz
from tests.conftest import socialark
from tests.emulators.mastodon import MastodonEmulator
from tests.procs import free_port
from tests.replay_helpers import expected_from_warc, replayable_captures
from tests.test_mastodon import Crawl, crawl
from tests.test_mirror import write_warc

if TYPE_CHECKING:
    from tests.s3server import MotoS3Server

pytest_plugins = ["tests.s3server"]  # the s3_server fixture

BUCKET = "offload"
TARGET = f"s3://{BUCKET}/crawls"
TABLES = {"captures": "filename, offset", "posts": "collection, post_id",
          "accounts": "collection, account_id", "media": "collection, url, post_id",
          "pages": "collection, url, timestamp"}


@pytest.fixture(scope="module")
def mastodon_crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawl]:
    """alice's newest 80 posts, in WARCs small enough to make several files."""
    with MastodonEmulator(flavor="mastodon", seed=3) as emu:
        result = crawl(emu, tmp_path_factory.mktemp("offload"), "--account", "alice",
                       "--max-posts", "80", "--warc-size", "150KB")
        assert result.returncode == 0, result.stderr[-3000:]
        yield result


def snapshot(data_dir: Path) -> dict[str, list[tuple]]:
    """Every row of the derived tables, without row ids (which mean nothing across rebuilds)."""
    out = {}
    with sqlite3.connect(data_dir / "index.db") as conn:
        for table, order in TABLES.items():
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != "id"]
            out[table] = conn.execute(
                f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}").fetchall()
    return out


def warc_files(data_dir: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(data_dir / "index.db") as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM warc_files ORDER BY name").fetchall()


@pytest.fixture
def offloaded(mastodon_crawl: Crawl, s3_server: MotoS3Server, tmp_path: Path,
              ) -> tuple[Path, dict[str, list[tuple]]]:
    """A copy of the crawl, mirrored and deleted locally; and its rows from before."""
    data_dir = tmp_path / "archive"
    shutil.copytree(mastodon_crawl.data_dir, data_dir)
    with sqlite3.connect(data_dir / "index.db") as conn:  # warc_files.path is absolute
        conn.execute("UPDATE warc_files SET path = replace(path, ?, ?)",
                     [str(mastodon_crawl.data_dir), str(data_dir)])
    before = snapshot(data_dir)
    s3_server.create_bucket(BUCKET)
    out = socialark("mirror", TARGET, "--delete-after-verify", data_dir=data_dir,
                    env=s3_server.env())
    assert out.returncode == 0, out.stderr
    return data_dir, before


def test_mirror_records_offloaded_files_and_index_keeps_their_rows(
    offloaded: tuple[Path, dict[str, list[tuple]]], s3_server: MotoS3Server, tmp_path: Path,
) -> None:
    data_dir, before = offloaded
    files = warc_files(data_dir)
    assert len(files) >= 2 and len(before["posts"]) >= 80 and before["accounts"]
    for f in files:
        assert not Path(f["path"]).exists()
        assert f["offloaded_at"] and f["state"] == "closed"
        assert f["remote_key"] == f"{TARGET}/{f['collection']}/{f['name']}"
    # the mirror still re-verifies them (read back from the bucket), and nothing else changes
    again = socialark("mirror", TARGET, "--verify", data_dir=data_dir, env=s3_server.env())
    assert again.returncode == 0 and f"{len(files)} verified" in again.stdout, again.stderr
    other = socialark("mirror", f"s3://{BUCKET}/elsewhere", data_dir=data_dir, env=s3_server.env())
    assert other.returncode == 1 and f"not on this machine: offloaded to {TARGET}/" in other.stderr
    # index another WARC into the same data dir: that re-extracts posts of every collection
    extra = write_warc(tmp_path / "elsewhere", "other-20260101000000-00000-host.warc.gz", 2_000)
    out = socialark("index", str(extra), data_dir=data_dir)
    assert out.returncode == 0, out.stderr
    assert f"kept the index rows of {len(files)} WARC file(s) not on this machine ({TARGET})" \
        in out.stderr
    after = snapshot(data_dir)
    assert {t: [r for r in rows if "elsewhere" not in r] for t, rows in after.items()} == before


def test_rebuild_streams_offloaded_files_from_the_bucket(
    offloaded: tuple[Path, dict[str, list[tuple]]], s3_server: MotoS3Server,
) -> None:
    data_dir, before = offloaded
    files = warc_files(data_dir)
    with sqlite3.connect(data_dir / "index.db") as conn:  # prove the rows come back from S3
        conn.execute("UPDATE captures SET status = 999")
        conn.execute("UPDATE posts SET text = 'stale'")
    out = socialark("index", "--rebuild", data_dir=data_dir, env=s3_server.env())
    assert out.returncode == 0, out.stderr
    assert out.stderr.count(f"(streamed from {TARGET}/") == len(files)
    assert snapshot(data_dir) == before
    assert [dict(f) for f in warc_files(data_dir)] == [dict(f) for f in files]


@pytest.mark.parametrize("broken", ["unreachable", "no-credentials"])
def test_rebuild_without_the_bucket_keeps_rows_and_exits_1(
    offloaded: tuple[Path, dict[str, list[tuple]]], s3_server: MotoS3Server, tmp_path: Path,
    broken: str,
) -> None:
    data_dir, before = offloaded
    n = len(warc_files(data_dir))
    env = s3_server.env()
    if broken == "unreachable":
        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        reason = "S3 unreachable"
    else:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env[key] = ""  # socialark() merges os.environ: empty is "not set" for botocore
        env["AWS_SHARED_CREDENTIALS_FILE"] = env["AWS_CONFIG_FILE"] = str(tmp_path / "none")
        reason = "no AWS credentials found"
    out = socialark("index", "--rebuild", data_dir=data_dir, env=env)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    kept = [line for line in out.stderr.splitlines() if line.startswith("kept the index rows")]
    assert len(kept) == 1, out.stderr
    assert f"of {n} WARC file(s) not on this machine ({TARGET}): " in kept[0] and reason in kept[0]
    assert snapshot(data_dir) == before


def test_migration_backfills_offloaded_at_from_the_mirror_note(
    offloaded: tuple[Path, dict[str, list[tuple]]],
) -> None:
    data_dir, _ = offloaded
    want = {f["name"]: f["offloaded_at"] for f in warc_files(data_dir)}
    with sqlite3.connect(data_dir / "index.db") as conn:  # an index written before m004
        conn.execute("ALTER TABLE warc_files DROP COLUMN offloaded_at")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm004_warc_files_offloaded_at'")
    db = open_database(data_dir / "index.db")
    got = {r["name"]: r["offloaded_at"] for r in db.query("SELECT * FROM warc_files")}
    assert got == want and all(got.values())


def test_cdx_and_exports_name_the_files_that_need_the_remote_copy(
    offloaded: tuple[Path, dict[str, list[tuple]]], tmp_path: Path,
) -> None:
    data_dir, before = offloaded
    n = len(warc_files(data_dir))
    with sqlite3.connect(data_dir / "index.db") as conn:
        source_url = conn.execute("SELECT source_url FROM posts LIMIT 1").fetchone()[0]
        matches = conn.execute("SELECT count(*) FROM captures WHERE url = ?", [source_url]).fetchone()[0]
    where = f"not on this machine ({TARGET}): reading them needs the remote copy"

    cdx = socialark("cdx", source_url, data_dir=data_dir)
    assert cdx.returncode == 0 and len(cdx.stdout.splitlines()) == matches >= 1
    assert cdx.stderr.strip() == f"note: {matches} capture(s) in 1 WARC file(s) of these captures are {where}"

    cdxj = socialark("export", "cdxj", data_dir=data_dir)
    assert cdxj.returncode == 0 and cdxj.stdout
    assert f"note: {n} WARC file(s) of this CDXJ are {where}" in cdxj.stderr

    captures = socialark("export", "captures", "--format", "csv", data_dir=data_dir)
    assert captures.returncode == 0
    assert f"note: {len(before['captures'])} capture(s) in {n} WARC file(s) of these captures are" \
        f" {where}" in captures.stderr

    posts = socialark("export", "posts", "--format", "jsonl", data_dir=data_dir)
    assert posts.returncode == 0 and len(posts.stdout.splitlines()) == len(before["posts"])
    assert f"{n} WARC file(s) of the exported posts' collection(s) (their replay links) are" \
        f" {where}" in posts.stderr


def test_export_wacz_streams_offloaded_warcs_or_writes_nothing(
    offloaded: tuple[Path, dict[str, list[tuple]]], mastodon_crawl: Crawl,
    s3_server: MotoS3Server, tmp_path: Path,
) -> None:

    data_dir, _ = offloaded
    files = {f["name"]: f["sha256"] for f in warc_files(data_dir)}
    broken = {**s3_server.env(), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    failed = socialark("export", "wacz", "-o", str(tmp_path / "x.wacz"), data_dir=data_dir,
                       env=broken)
    assert failed.returncode == 1, failed.stderr
    assert "no WACZ written" in failed.stderr and "Traceback" not in failed.stderr
    assert not list(tmp_path.glob("x.wacz*"))

    out = socialark("export", "wacz", "-o", str(tmp_path / "x.wacz"), data_dir=data_dir,
                    env=s3_server.env())
    assert out.returncode == 0, out.stderr
    assert f"streaming them from {TARGET} into the WACZ" in out.stderr
    assert verify_wacz(tmp_path / "x.wacz") == []
    with zipfile.ZipFile(tmp_path / "x.wacz") as zf:
        got = {Path(n).name: hashlib.sha256(zf.read(n)).hexdigest()
               for n in zf.namelist() if n.startswith("archive/")}
    assert got == files


def test_replay_serves_offloaded_warcs_from_the_bucket(
    offloaded: tuple[Path, dict[str, list[tuple]]], mastodon_crawl: Crawl,
    s3_server: MotoS3Server,
) -> None:
    data_dir, _ = offloaded
    broken = {**s3_server.env(), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    refused = socialark("replay", "--port", str(free_port()), data_dir=data_dir, env=broken)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"WARC file(s) of collection default are only in {TARGET} and cannot be read" \
        in refused.stderr

    original = open_database(mastodon_crawl.data_dir / "index.db", readonly=True)
    captures = [c for c in replayable_captures(original)
                if c["record_type"] == "response" and c["status"] == 200][:6]
    assert len(captures) == 6
    db = open_database(data_dir / "index.db", readonly=True)
    with pywb_replay(db, data_dir, free_port(),
                     remote=RemoteReader(endpoint_url=s3_server.endpoint_url)) as server:
        for capture in captures:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            conn.request("GET", f"/default/{capture['timestamp']}id_/{capture['url']}",
                         headers={"Accept-Encoding": "gzip, deflate, br"})
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            assert (resp.status, body) == (200, expected_from_warc(original, capture).payload)


def test_rebuild_with_some_files_back_on_disk_and_the_bucket_down(
    offloaded: tuple[Path, dict[str, list[tuple]]], mastodon_crawl: Crawl,
    s3_server: MotoS3Server,
) -> None:
    """The local file is rebuilt, the offloaded ones keep their rows, and posts whose capture is a
    revisit of a payload held in an offloaded file survive too."""
    data_dir, before = offloaded
    files = warc_files(data_dir)
    # The file brought back: the one holding most revisits of payloads stored in other files
    # (which file that is depends on the order captures were written in).
    with sqlite3.connect(data_dir / "index.db") as conn:
        counts = {name: n for name, n in conn.execute(
            "SELECT r.filename, count(*) FROM captures r JOIN captures o ON o.digest = r.digest"
            " AND o.record_type = 'response' WHERE r.record_type = 'revisit'"
            " AND o.filename != r.filename GROUP BY r.filename")}
    assert counts, "no revisit of a payload held in another file: the case this test is about"
    newest = next(f for f in files if f["name"] == max(counts, key=lambda k: counts[k]))
    shutil.copy(mastodon_crawl.data_dir / "warcs" / newest["collection"] / newest["name"],
                newest["path"])
    broken = {**s3_server.env(), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    out = socialark("index", "--rebuild", data_dir=data_dir, env=broken)
    assert out.returncode == 1, out.stderr
    assert f"  {newest['name']}: " in out.stderr
    assert f"kept the index rows of {len(files) - 1} WARC file(s) not on this machine" in out.stderr
    assert snapshot(data_dir) == before
