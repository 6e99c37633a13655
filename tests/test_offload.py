"""Offloaded WARCs stay indexed: a real Mastodon crawl, ``mirror --delete-after-verify`` to moto's
S3 server, then ``index``, ``index --rebuild`` (bucket reachable or not), ``cdx``, ``export`` and
``replay`` on an archive whose WARCs are only in the bucket."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from storage.db import open_database
from tests.conftest import socialark
from tests.emulators.mastodon import MastodonEmulator
from tests.procs import free_port
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
