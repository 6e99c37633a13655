"""The capture index: rows point at the right records, --rebuild reproduces the live index,
foreign and damaged WARCs are indexed record by record."""

from __future__ import annotations

import gzip
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import socialark
from tests.sites.core_site import CoreSite
from tests.warc_checks import closed_warcs

COLUMNS = ("collection, urlkey, url, timestamp, warc_date, status, mime, digest, length, offset,"
           " filename, record_type, record_id, method, request_body, refers_to_url,"
           " refers_to_date, crawl_id")


def _rows(db_path: Path) -> list[tuple]:
    with sqlite3.connect(db_path) as conn:
        return sorted(conn.execute(f"SELECT {COLUMNS} FROM captures").fetchall())


def test_rows_point_at_their_records(core_crawl: Path) -> None:
    with sqlite3.connect(core_crawl / "index.db") as conn:
        rows = conn.execute(
            "SELECT c.url, c.offset, c.length, c.record_type, c.record_id, f.path"
            " FROM captures c JOIN warc_files f ON f.name = c.filename"
        ).fetchall()
        states = {s for (s,) in conn.execute("SELECT state FROM warc_files")}
    assert rows and states == {"closed"}
    for url, offset, length, rtype, record_id, path in rows:
        with open(path, "rb") as fh:
            fh.seek(offset)
            member = fh.read(length)
        text = gzip.decompress(member)  # exactly one whole gzip member
        head = text[: text.index(b"\r\n\r\n")].decode()
        assert f"WARC-Type: {rtype}" in head
        assert f"WARC-Record-ID: {record_id}" in head
        assert f"WARC-Target-URI: {url}" in head


def test_rebuild_reproduces_the_live_index(core_crawl: Path, tmp_path: Path) -> None:
    copy = tmp_path / "archive"
    shutil.copytree(core_crawl, copy)
    live = _rows(copy / "index.db")
    (copy / "index.db").unlink()
    for extra in ("index.db-wal", "index.db-shm"):
        (copy / extra).unlink(missing_ok=True)
    proc = socialark("index", "--rebuild", data_dir=copy)
    assert proc.returncode == 0, proc.stderr
    assert _rows(copy / "index.db") == live
    # and rebuilding over an existing index is idempotent
    assert socialark("index", "--rebuild", data_dir=copy).returncode == 0
    assert _rows(copy / "index.db") == live


def test_corrupt_record_is_skipped_and_reported(core_crawl: Path, tmp_path: Path) -> None:
    src = closed_warcs(core_crawl)[0]
    damaged = tmp_path / "damaged.warc.gz"
    data = bytearray(src.read_bytes())
    with sqlite3.connect(core_crawl / "index.db") as conn:
        offsets = [o for (o,) in conn.execute(
            "SELECT offset FROM captures WHERE filename = ? ORDER BY offset", [src.name])]
    victim = offsets[2]
    data[victim + 20 : victim + 60] = b"\x00" * 40  # break one gzip member in the middle
    damaged.write_bytes(bytes(data))
    proc = socialark("index", str(damaged), "--collection", "damaged", data_dir=tmp_path / "a")
    assert proc.returncode == 1, proc.stderr  # finished, with errors
    assert f"corrupt record skipped in {damaged} at offset {victim}" in proc.stderr
    with sqlite3.connect(tmp_path / "a" / "index.db") as conn:
        got = [o for (o,) in conn.execute("SELECT offset FROM captures ORDER BY offset")]
    assert got == [o for o in offsets if o != victim]


@pytest.mark.skipif(shutil.which("wget") is None, reason="wget not installed")
def test_indexes_a_wget_warc(core_site: CoreSite, tmp_path: Path) -> None:
    subprocess.run(
        ["wget", "-q", f"--warc-file={tmp_path / 'wget'}", "--no-warc-keep-log", "-O", "/dev/null",
         core_site.url("/enc/gzip.html"), core_site.url("/about.html")],
        check=False, timeout=60, cwd=tmp_path,
    )
    warc = tmp_path / "wget.warc.gz"
    assert warc.exists()
    proc = socialark("index", str(warc), "--collection", "wget", data_dir=tmp_path / "a")
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(tmp_path / "a" / "index.db") as conn:
        urls = {u for (u,) in conn.execute("SELECT url FROM captures WHERE collection = 'wget'")}
        state = conn.execute("SELECT state FROM warc_files").fetchone()[0]
    assert {core_site.url("/enc/gzip.html"), core_site.url("/about.html")} <= urls
    assert state == "foreign"


def test_index_refuses_non_warc_input(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello")
    proc = socialark("index", str(bogus), data_dir=tmp_path / "a")
    assert proc.returncode == 2
    assert "not a WARC file" in proc.stderr
    assert "Traceback" not in proc.stderr
    missing = socialark("index", str(tmp_path / "nope.warc.gz"), data_dir=tmp_path / "a")
    assert missing.returncode == 2 and "no such file" in missing.stderr
