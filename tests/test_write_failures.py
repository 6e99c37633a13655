"""Write failures stop the crawl cleanly: one line, exit 1, the URL stays queued, --resume finishes.

Failures are real: ``RLIMIT_FSIZE`` in the crawl's process (CPython ignores SIGXFSZ, so a write
past the limit fails with EFBIG) and a tiny tmpfs that really fills up (ENOSPC), grown afterwards
with ``mount -o remount`` ("space freed").
"""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.errors import ArchiveWriteError
from storage.frontier import Frontier, FrontierEntry
from storage.live_index import LiveIndex
from tests.conftest import FAST_RETRY, ROOT, socialark
from tests.sites.core_site import CoreSite
from tests.test_crawl_resume import _assert_complete_and_valid, _captured_urls
from tests.warc_checks import closed_warcs, warcio_check


def _crawl_limited(site: CoreSite, data_dir: Path, fsize: int | None, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "crawler.cli", "crawl", "site", site.base_url, "--scope", "host",
           "--delay", "0", "--data-dir", str(data_dir), *FAST_RETRY, *extra]

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=limit)


def _frontier(data_dir: Path) -> Path:
    (path,) = (data_dir / "state" / "default").glob("*.frontier.sqlite")
    return path


FULL = ("No space left on device", "database or disk is full")  # ENOSPC: from a WARC / SQLite


def _assert_stopped_cleanly(proc: subprocess.CompletedProcess[str], *causes: str) -> str:
    """Exit 1, no traceback, exactly one error line, naming a file of the archive and the cause."""
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-5000:]
    errors = [line for line in proc.stderr.splitlines() if " ERROR: " in line]
    assert len(errors) == 1, errors
    assert "cannot write " in errors[0] and any(c in errors[0] for c in causes), errors[0]
    assert "--resume" in errors[0]
    assert "the archive could not be written" in proc.stderr  # the summary says why it stopped
    return errors[0].split("cannot write ", 1)[1].split(":", 1)[0]


def _assert_nothing_done_without_capture(data_dir: Path) -> None:
    """Every URL the frontier marked done has its capture in the index, some are still queued,
    and the index agrees with the (valid) WARCs: no row points at a partial record."""
    captured = _captured_urls(data_dir)
    with sqlite3.connect(_frontier(data_dir)) as conn:
        done = {u for (u,) in conn.execute(
            "SELECT url FROM frontier WHERE state = 'done' AND outcome LIKE 'http_%'")}
        queued = conn.execute("SELECT COUNT(*) FROM frontier WHERE state = 'queued'").fetchone()[0]
        total = conn.execute("SELECT COUNT(*) FROM frontier").fetchone()[0]
    # the URL whose write failed stays queued (or, if the disk filled before the first frontier
    # commit, nothing was committed and --resume starts again from the seeds)
    assert queued > 0 or total == 0
    assert not done - captured, f"marked done but not archived: {sorted(done - captured)}"
    warcs = closed_warcs(data_dir)
    check = warcio_check(warcs)
    assert check.returncode == 0, check.stdout + check.stderr
    with sqlite3.connect(data_dir / "index.db") as conn:
        rows = conn.execute("SELECT filename, offset, length FROM captures").fetchall()
    sizes = {p.name: p.stat().st_size for p in warcs}
    for name, offset, length in rows:
        assert name in sizes and offset + length <= sizes[name], (name, offset, length)


def _resume_and_check(site: CoreSite, data_dir: Path) -> None:
    resumed = socialark("crawl", "site", "--resume", "--delay", "0", data_dir=data_dir)
    assert resumed.returncode in (0, 1), resumed.stderr[-3000:]
    assert "Crawl finished" in resumed.stderr, resumed.stderr[-3000:]
    _assert_complete_and_valid(site, data_dir)


def test_efbig_on_a_warc_stops_with_one_line_and_resume_completes(tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    with CoreSite() as site:
        # the core site has 1.5-2 MB media records: the WARC is the first file past 1 MB
        proc = _crawl_limited(site, data_dir, 1_000_000)
        failed = _assert_stopped_cleanly(proc, "File too large")
        assert failed.endswith(".warc.gz.open"), failed
        assert not list((data_dir / "warcs").rglob("*.open")), "the cut-back WARC was closed"
        _assert_nothing_done_without_capture(data_dir)
        _resume_and_check(site, data_dir)


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB tmpfs (root only); the test grows it with ``remount`` to "free space"."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _grow(mnt: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)


def test_enospc_on_a_full_disk_stops_with_one_line_and_resume_completes(tiny_fs: Path) -> None:
    data_dir = tiny_fs / "archive"
    with CoreSite() as site:
        proc = _crawl_limited(site, data_dir, None, "--warc-size", "256KB")
        _assert_stopped_cleanly(proc, *FULL)
        _grow(tiny_fs)
        _assert_nothing_done_without_capture(data_dir)
        _resume_and_check(site, data_dir)


def _row(i: int) -> dict[str, object]:
    return {"collection": "c", "urlkey": f"k{i}", "url": f"http://x/{i}", "timestamp": "20240101000000",
            "status": 200, "mime": "text/html", "digest": f"sha256:{i:040d}" + "x" * 2000,
            "length": 1, "offset": i, "filename": "f.warc.gz", "record_type": "response",
            "record_id": f"<urn:uuid:{i}>", "crawl_id": "t", "warc_date": "2024-01-01T00:00:00Z"}


def test_index_and_frontier_keep_their_batches_when_the_disk_is_full(tiny_fs: Path) -> None:
    index = LiveIndex(tiny_fs / "index.db", batch_size=10**9)
    frontier = Frontier(tiny_fs / "f.sqlite", batch_size=10**9)
    filler = tiny_fs / "filler"
    free = os.statvfs(tiny_fs).f_bavail * os.statvfs(tiny_fs).f_frsize
    filler.write_bytes(b"\0" * (free - 4096))
    for i in range(200):
        index.add(_row(i))
        frontier.add(FrontierEntry(f"fp{i}", f"http://x/{i}" + "q" * 2000, "GET", None, None,
                                   {}, {}, 0, b"", {}))
    with pytest.raises(ArchiveWriteError) as err:
        index.flush()
    assert str(err.value).startswith(f"cannot write {tiny_fs / 'index.db'}: ")
    assert index.pending == 200, "rows stay buffered until committed"
    with pytest.raises(ArchiveWriteError):
        frontier.commit()
    filler.unlink()  # space freed
    index.flush()
    assert frontier.commit()
    assert index.pending == 0
    assert index.db.execute("SELECT COUNT(*) FROM captures").fetchone()[0] == 200
    assert frontier.counts() == {"queued": 200}
    index.close()
    frontier.close()


def test_enospc_during_browser_capture_stops_cleanly_and_resume_completes(tiny_fs: Path) -> None:
    """The browser records through the same path: a full disk while pages render stops the crawl
    the same way, and the pages not archived are rendered again on --resume."""
    from tests.sites.spa_site import SpaSite

    data_dir = tiny_fs / "archive"
    with SpaSite(page_count=40) as site:
        args = ["crawl", "site", site.base_url, "--scope", "host", "--delay", "0", "--browser",
                "--browser-concurrency", "2", "-s", "ARCHIVE_BROWSER_IDLE_TIME=0.2"]
        subprocess.run(["mount", "-o", "remount,size=1m", str(tiny_fs)], check=True)
        proc = socialark(*args, data_dir=data_dir)
        _assert_stopped_cleanly(proc, *FULL)
        _grow(tiny_fs)
        _assert_nothing_done_without_capture(data_dir)
        resumed = socialark("crawl", "site", "--resume", "--delay", "0", "--browser",
                            data_dir=data_dir)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        with sqlite3.connect(data_dir / "index.db") as conn:
            shots = {u for (u,) in conn.execute(
                "SELECT url FROM captures WHERE url LIKE 'urn:screenshot:%'")}
        pages = {site.url(f"/p/{n}") for n in range(1, 41)}
        assert {f"urn:screenshot:{u}" for u in pages} <= shots
        check = warcio_check(closed_warcs(data_dir))
        assert check.returncode == 0, check.stdout + check.stderr


def test_warc_writer_cuts_a_failed_append_back_to_the_last_record(tmp_path: Path) -> None:
    """EFBIG in the middle of a record: the file ends on the last good record, the writer can go
    on once the limit is lifted, and the closed WARC passes warcio check."""
    from datetime import UTC, datetime

    from storage.exchange import resource_record
    from storage.records import warc_date
    from storage.warc import WarcWriter, scan_members

    writer = WarcWriter(tmp_path, max_size=10**9)
    date = warc_date(datetime.now(UTC))

    def record(i: int, size: int) -> object:
        return resource_record(f"urn:test:{i}", date, "application/octet-stream",
                               os.urandom(size), algorithm="sha256")

    writer.write([record(0, 1000)])
    good = writer.current_size
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (good + 5000, hard))
    try:
        with pytest.raises(ArchiveWriteError) as err:
            writer.write([record(1, 20_000)])  # incompressible: crosses the limit mid-record
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert "File too large" in str(err.value) and str(err.value).endswith("File too large")
    (open_file,) = tmp_path.glob("*.open")
    assert open_file.stat().st_size == good == writer.current_size
    assert all(m.complete for m in scan_members(open_file))
    written = writer.write([record(2, 20_000)])
    assert written[0].offset == good
    closed = writer.close()
    assert closed is not None and closed.records == 3  # warcinfo, record 0, record 2
    check = warcio_check([closed.path])
    assert check.returncode == 0, check.stdout + check.stderr
