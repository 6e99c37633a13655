"""Index and files always agree: kill -9 at any moment, then --resume, loses nothing.

Kills are real SIGKILLs: at random moments, and at chosen ones through ``SOCIALARK_CRASH_AT``
(storage/_faults.py: the process kills itself with SIGKILL between a WARC's rename and its index
update, in the middle of an index transaction, between the WARC fsync and a frontier commit).
Also: a second process holding the index's write lock (SQLITE_BUSY) loses no row.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from storage.live_index import LiveIndex
from tests.conftest import FAST_RETRY, ROOT, socialark
from tests.emulators.mastodon import MastodonEmulator
from tests.platform_checks import rebuilt_item_rows
from tests.sites.core_site import CoreSite
from tests.test_crawl_resume import _assert_complete_and_valid
from tests.test_mastodon import ratelimit_args
from tests.test_write_failures import _row


def _popen(args: list[str], data_dir: Path, crash_at: str | None = None) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "crawler.cli", "crawl", *args, "--data-dir", str(data_dir),
           *FAST_RETRY]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SOCIALARK_CRASH_AT", None)
    if crash_at:
        env["SOCIALARK_CRASH_AT"] = crash_at
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _kill_after(proc: subprocess.Popen[str], seen: Callable[[], int], n: int, delay: float) -> None:
    """SIGKILL once ``seen()`` (requests the server answered in this run) reaches ``n``."""
    deadline = time.monotonic() + 120
    while seen() < n and proc.poll() is None:
        assert time.monotonic() < deadline, "crawl made no progress"
        time.sleep(0.01)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)


def _assert_warc_files_match_disk(data_dir: Path) -> None:
    """``warc_files`` lists exactly the WARCs on disk, all closed, with their sizes and records."""
    on_disk = {p.name: p for p in (data_dir / "warcs").rglob("*.warc.gz")}
    assert not list((data_dir / "warcs").rglob("*.open"))
    with sqlite3.connect(data_dir / "index.db") as conn:
        rows = conn.execute("SELECT name, state, size, records FROM warc_files").fetchall()
        per_file = dict(conn.execute("SELECT filename, COUNT(*) FROM captures GROUP BY filename"))
    assert {r[0] for r in rows} == set(on_disk)
    for name, state, size, records in rows:
        assert state in ("closed", "repaired"), (name, state)
        assert size == on_disk[name].stat().st_size, name
        assert records and per_file.get(name, 0) <= records, name


def test_kill_9_at_random_and_chosen_moments_then_resume(tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    rng = random.Random(11)
    first = ["site", "--scope", "host", "--concurrency", "2", "--delay", "0.02",
             "--warc-size", "64KB"]
    # (crash point or None for a random-time kill, requests to see first)
    plan: list[tuple[str | None, int]] = [
        ("warc_renamed:2", 0), ("index_flush:2", 0), ("frontier_commit:2", 0),
        (None, 20), (None, 10), (None, 5),
    ]
    with CoreSite() as site:
        for i, (crash_at, n) in enumerate(plan):
            args = [*first, site.base_url] if i == 0 else ["site", "--resume", "--delay", "0.02"]
            start = len(site.requests)
            proc = _popen(args, data_dir, crash_at)
            if crash_at is None:
                _kill_after(proc, lambda s=start: len(site.requests) - s, n, rng.uniform(0, 0.4))
            _, err = proc.communicate(timeout=180)
            assert "Traceback" not in err, err[-3000:]
            if crash_at is not None:
                assert proc.returncode == -signal.SIGKILL, f"{crash_at} never reached:\n{err[-2000:]}"
            assert proc.returncode in (-signal.SIGKILL, 0, 1), err[-3000:]
        final = socialark("crawl", "site", "--resume", "--delay", "0", data_dir=data_dir)
        assert final.returncode in (0, 1), final.stderr[-3000:]
        assert "Crawl finished" in final.stderr
        _assert_warc_files_match_disk(data_dir)
        _assert_complete_and_valid(site, data_dir)  # complete, warcio check, index == rebuild


def test_mastodon_posts_complete_after_kill_9_in_a_rate_limit_pause(tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    with MastodonEmulator(flavor="mastodon", seed=1) as emu:
        ds = emu.dataset
        # 60 requests per 6 s window: the crawl spends X-RateLimit-Remaining and pauses the host
        emu.faults.rate_limit(after=60, window=6.0)
        args = ["mastodon", "--instance", emu.base_url, "--account", "alice", "--account", "bob",
                "--delay", "0", *ratelimit_args()]
        proc = _popen(args, data_dir)
        _kill_after(proc, lambda: len(emu.requests), 60, 1.0)  # inside the pause
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL, err[-3000:]
        emu.faults.clear()

        resume = ["mastodon", "--resume", "--delay", "0", *ratelimit_args()]
        proc = _popen(resume, data_dir, "index_flush:2")  # and once more inside an index flush
        _, err = proc.communicate(timeout=180)
        assert proc.returncode in (-signal.SIGKILL, 0), err[-3000:]
        final = socialark("crawl", *resume, data_dir=data_dir, timeout=240)
        assert final.returncode == 0, final.stderr[-3000:]

        with sqlite3.connect(data_dir / "index.db") as conn:
            posts = {p for (p,) in conn.execute("SELECT post_id FROM posts")}
            states = {s for (s,) in conn.execute("SELECT state FROM warc_files")}
        for name in ("alice", "bob"):
            account = ds.by_username(name)
            assert account is not None
            missing = set(account.status_ids) - posts
            assert not missing, f"{name}: {len(missing)} of {len(account.status_ids)} posts lost"
        assert states <= {"closed", "repaired"}
        live, rebuilt = rebuilt_item_rows(data_dir / "index.db", tmp_path)
        assert live == rebuilt  # posts in the index == posts re-extracted from the WARCs


def test_sqlite_busy_during_a_flush_keeps_every_row(tmp_path: Path) -> None:
    index = LiveIndex(tmp_path / "index.db", batch_size=10**9, retry_for=30)
    for i in range(50):
        index.add(_row(i))
    other = sqlite3.connect(tmp_path / "index.db", timeout=0, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # a second process holds the write lock
    other.execute("DELETE FROM crawls")
    assert index.try_flush() is False, "busy: the rows wait"
    assert index.pending == 50
    for i in range(50, 80):
        index.add(_row(i))
    releaser = threading.Timer(1.5, other.commit)
    releaser.start()
    index.flush()  # retries with backoff until the lock is released
    releaser.join()
    assert index.pending == 0
    assert index.db.execute("SELECT COUNT(*) FROM captures").fetchone()[0] == 80
    other.close()
    index.close()


def test_crawl_with_the_index_locked_for_a_while_loses_no_row(tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    with CoreSite() as site:
        proc = _popen(["site", site.base_url, "--scope", "host", "--delay", "0.02"], data_dir)
        deadline = time.monotonic() + 60
        while len(site.requests) < 20:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        lock = sqlite3.connect(data_dir / "index.db", timeout=30)
        lock.execute("BEGIN IMMEDIATE")
        time.sleep(4)  # longer than the crawl's busy timeout: flushes must wait and retry
        lock.rollback()
        lock.close()
        _, err = proc.communicate(timeout=180)
        assert proc.returncode in (0, 1), err[-3000:]
        assert "locked by another process" in err
        _assert_complete_and_valid(site, data_dir)
