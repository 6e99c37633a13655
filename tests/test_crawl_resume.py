"""Nothing lost: SIGINT stops gracefully (exit 3), kill -9 is repaired, --resume completes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import FAST_RETRY, ROOT, socialark
from tests.sites.core_site import CoreSite
from tests.warc_checks import (
    assert_closed_and_valid,
)


def _start_crawl(site: CoreSite, data_dir: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "crawler.cli", "crawl", "site", site.base_url, "--scope", "host",
           "--concurrency", "1", "--delay", "0.03", "--warc-size", "512KB",
           "--data-dir", str(data_dir), *FAST_RETRY]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_requests(site: CoreSite, n: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while len(site.requests) < n:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "crawl made no progress"
        time.sleep(0.02)


def _captured_urls(data_dir: Path) -> set[str]:
    with sqlite3.connect(data_dir / "index.db") as conn:
        return {u for (u,) in conn.execute(
            "SELECT url FROM captures WHERE record_type IN ('response', 'revisit')")}


def _assert_complete_and_valid(site: CoreSite, data_dir: Path) -> None:
    captured = _captured_urls(data_dir)
    missing = (site.html_pages | site.requisite_urls) - captured
    assert not missing, f"lost after resume: {sorted(missing)}"
    assert_closed_and_valid(data_dir)
    # the index agrees with the WARCs: a rebuild from the files gives the same rows
    with sqlite3.connect(data_dir / "index.db") as conn:
        before = sorted(conn.execute("SELECT url, record_id, filename, offset, length FROM captures"))
    assert socialark("index", "--rebuild", data_dir=data_dir).returncode == 0
    with sqlite3.connect(data_dir / "index.db") as conn:
        after = sorted(conn.execute("SELECT url, record_id, filename, offset, length FROM captures"))
    assert after == before


def test_kill_9_then_resume_loses_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    with CoreSite() as site:
        proc = _start_crawl(site, data_dir)
        _wait_for_requests(site, 40, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert list((data_dir / "warcs").rglob("*.warc.gz.open")), "a WARC was being written"

        resumed = socialark("crawl", "site", "--resume", "--delay", "0", data_dir=data_dir)
        assert resumed.returncode in (0, 1), resumed.stderr[-3000:]
        assert "Repaired WARC left open by an earlier crash" in resumed.stderr
        assert "Resuming:" in resumed.stderr
        _assert_complete_and_valid(site, data_dir)
        with sqlite3.connect(data_dir / "index.db") as conn:
            states = [s for (s,) in conn.execute("SELECT state FROM warc_files")]
            crawl_ids = {c for (c,) in conn.execute("SELECT crawl_id FROM crawls")}
        assert "repaired" in states
        assert len(crawl_ids) == 1, "resume continues the same crawl"
        # ... and its log file (docs/logging.md): both runs, one after the other.
        (log,) = (data_dir / "state" / "default" / "logs").glob("*.log")
        assert log.name == f"{crawl_ids.pop()}.log" and f"  log: {log}" in resumed.stderr
        text = log.read_text()
        assert text.index("Starting crawl ") < text.index("Resuming crawl ") < text.index("Resuming:")


def test_sigint_stops_gracefully_with_exit_3_then_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    with CoreSite() as site:
        proc = _start_crawl(site, data_dir)
        _wait_for_requests(site, 30, proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 3, err[-3000:]
        assert "interrupted" in err
        assert not list((data_dir / "warcs").rglob("*.open")), "open WARC closed on SIGINT"
        with sqlite3.connect(data_dir / "index.db") as conn:
            state = conn.execute("SELECT state FROM crawls").fetchone()[0]
        assert state == "interrupted"
        first_run = len(site.requests)

        resumed = socialark("crawl", "site", "--resume", "--delay", "0", data_dir=data_dir)
        assert resumed.returncode in (0, 1), resumed.stderr[-3000:]
        _assert_complete_and_valid(site, data_dir)
        # resume does not start over: pages fetched before the stop are not fetched again
        again = [r.target for r in site.requests[first_run:] if r.target.endswith(".html")]
        assert len(again) < len(site.html_pages)


def test_resume_without_an_earlier_crawl_is_a_usage_error(tmp_path: Path) -> None:
    proc = socialark("crawl", "site", "--resume", data_dir=tmp_path / "empty")
    assert proc.returncode == 2
    assert "nothing to resume" in proc.stderr
    assert "Traceback" not in proc.stderr
