"""Stop means stop: SIGTERM / SIGINT end a crawl within 5 s whatever it is doing, exit 3, and
``--resume`` then captures everything the server has (issue 11, point 3).

Each test starts a real crawl in a subprocess against ``StopSite``, makes the server misbehave
(429 with a ten-minute Retry-After, a huge body trickling in, an image that never finishes), sends
a real signal once the crawl is stuck on it, and measures the wall time to exit. The server is
then made healthy and ``--resume`` must capture every URL it serves (server-side ground truth),
with WARCs that pass ``warcio check``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import FAST_RETRY, ROOT, socialark
from tests.sites.stop_site import StopSite
from tests.warc_checks import (
    assert_closed_and_valid,
    closed_warcs,
    warcio_check,
)

pytestmark = pytest.mark.serial  # timing windows: run alone (scripts/test.sh)

if TYPE_CHECKING:
    from tests.redisserver import RedisServer

pytest_plugins = ["tests.redisserver"]  # the redis_server fixture (a real redis-server)

STOP_BUDGET = 5.0  # the promise: the process is gone within 5 s of the signal


def _start(site: StopSite, data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "crawler.cli", "crawl", "site", site.base_url, "--scope", "host",
           "--concurrency", "4", "--delay", "0", "--data-dir", str(data_dir), *FAST_RETRY, *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_until(cond: Callable[[], bool], proc: subprocess.Popen[str], what: str,
                timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"crawl ended before {what}:\n{proc.communicate()[1][-3000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[str], *signals: signal.Signals, gap: float = 0.1) -> tuple[float, str]:
    """Send the signals, return (seconds from the first signal to exit, stderr)."""
    started = time.monotonic()
    for i, sig in enumerate(signals):
        if i:
            time.sleep(gap)
        proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"crawl still alive 60 s after {signals}:\n{err[-3000:]}") from None
    return time.monotonic() - started, err


def _captured_ok(data_dir: Path) -> set[str]:
    with sqlite3.connect(data_dir / "index.db") as conn:
        return {u for (u,) in conn.execute(
            "SELECT url FROM captures WHERE record_type IN ('response', 'revisit') AND status = 200")}


def _resume_and_check(site: StopSite, data_dir: Path) -> None:
    site.mode = "healthy"
    resumed = socialark("crawl", "site", "--resume", "--delay", "0", data_dir=data_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    missing = site.pages - _captured_ok(data_dir)
    assert not missing, f"lost after resume: {sorted(missing)}"
    assert_closed_and_valid(data_dir)


def _assert_stopped(proc: subprocess.Popen[str], elapsed: float, err: str) -> None:
    assert proc.returncode == 3, err[-3000:]
    assert elapsed < STOP_BUDGET, f"took {elapsed:.1f}s to stop:\n{err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]


def test_sigterm_while_host_paused_by_429_stops_within_5s(tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    with StopSite() as site:
        site.mode = "throttle"
        proc = _start(site, data_dir)
        # several requests answered 429 (Retry-After: 600): the host is paused for ten minutes
        _wait_until(lambda: sum(1 for _, s in site.served if s == 429) >= 3, proc, "429s")
        time.sleep(0.5)
        elapsed, err = _stop(proc, signal.SIGTERM)
        _assert_stopped(proc, elapsed, err)
        assert "interrupted" in err
        _resume_and_check(site, data_dir)


def test_sigint_during_huge_slow_download_stops_within_5s(tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    with StopSite() as site:
        site.mode = "slow"
        proc = _start(site, data_dir)
        _wait_until(lambda: site.count("/big.bin") >= 1, proc, "the big download")
        time.sleep(1.0)  # well inside the ~100 s trickle
        elapsed, err = _stop(proc, signal.SIGINT)
        _assert_stopped(proc, elapsed, err)
        assert "Received SIGINT, shutting down gracefully" in err  # the quiet terminal says so
        _resume_and_check(site, data_dir)


def test_sigterm_while_browser_page_waits_for_a_resource_stops_within_5s(tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    with StopSite(big=False, render=True) as site:
        site.mode = "stall"
        proc = _start(site, data_dir, "--browser")
        _wait_until(lambda: site.count("/stall.png") >= 1, proc, "the stalled image", timeout=180)
        time.sleep(1.0)
        elapsed, err = _stop(proc, signal.SIGTERM)
        _assert_stopped(proc, elapsed, err)
        _resume_and_check(site, data_dir)


def test_second_signal_forces_and_leaves_a_resumable_crawl(tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    with StopSite() as site:
        site.mode = "slow"
        proc = _start(site, data_dir)
        _wait_until(lambda: site.count("/big.bin") >= 1, proc, "the big download")
        time.sleep(0.5)
        elapsed, err = _stop(proc, signal.SIGINT, signal.SIGINT, gap=0.02)
        assert proc.returncode == 3, err[-3000:]
        assert elapsed < STOP_BUDGET, f"took {elapsed:.1f}s to stop:\n{err[-3000:]}"
        _resume_and_check(site, data_dir)


def test_signals_after_the_summary_do_not_kill_the_process(tmp_path: Path) -> None:
    """Ctrl-C held down: signals keep arriving after the crawl stopped and printed its summary,
    while the interpreter exits (Twisted restores Python's handlers when the reactor stops and
    CPython resets them to the OS default while it finalizes). The exit is still the contract's
    3, never death by signal (-2) or a traceback."""
    import threading

    data_dir = tmp_path / "archive"
    with StopSite() as site:
        site.mode = "slow"
        proc = _start(site, data_dir)
        _wait_until(lambda: site.count("/big.bin") >= 1, proc, "the big download")
        time.sleep(0.5)
        lines: list[str] = []
        summary = threading.Event()

        def read_stderr() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append(line)
                if "Crawl interrupted" in line:
                    summary.set()

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        proc.send_signal(signal.SIGINT)
        assert summary.wait(30), "".join(lines)[-3000:]
        started = time.monotonic()
        while proc.poll() is None and time.monotonic() - started < 30:
            proc.send_signal(signal.SIGINT)
            time.sleep(0.002)
        proc.wait(timeout=60)
        reader.join(timeout=10)
        err = "".join(lines)
        assert proc.returncode == 3, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        _resume_and_check(site, data_dir)


def test_watchdog_exits_3_when_a_component_does_not_stop(tmp_path: Path) -> None:
    """The mirror waits for its upload to an S3 endpoint that accepts and never answers: the
    watchdog still ends the process within 5 s, with the WARC closed and the crawl resumable."""
    import socket

    data_dir = tmp_path / "archive"
    with socket.socket() as black_hole, StopSite() as site:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(16)
        endpoint = f"http://127.0.0.1:{black_hole.getsockname()[1]}"
        site.mode = "slow"
        proc = _start(site, data_dir, "--mirror", "s3://bucket/crawls", "--endpoint-url", endpoint,
                      "-s", "AWS_ACCESS_KEY_ID=test", "-s", "AWS_SECRET_ACCESS_KEY=test",
                      "--log-format", "json")
        _wait_until(lambda: site.count("/big.bin") >= 1, proc, "the big download")
        time.sleep(0.5)
        elapsed, err = _stop(proc, signal.SIGTERM)
        _assert_stopped(proc, elapsed, err)
        # Even the watchdog's last words, written past logging, are a JSON event (docs/logging.md).
        events = [json.loads(line) for line in err.splitlines() if line]
        assert any(e["event"] == "stop_timeout" and "Stop took longer than" in e["message"]
                   for e in events), err[-3000:]
        assert not list((data_dir / "warcs").rglob("*.open")), "the WARC was closed before exit"
        _resume_and_check(site, data_dir)


def _popen(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "crawler.cli", *args, "-s",
                             "ARCHIVE_REDIS_POLL_INTERVAL=0.2"] if args[0] == "crawl" else
                            [sys.executable, "-m", "crawler.cli", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _paused_workers(client: Any) -> int:
    """How many workers of any crawl publish a paused host in their Redis status hash."""
    return sum(1 for key in client.scan_iter("socialark:crawl:*:worker:*")
               if client.hget(key, "paused") not in (None, b"", b"[]"))


def test_worker_sigterm_while_paused_stops_within_5s_and_requeues(
    redis_server: RedisServer, tmp_path: Path,
) -> None:
    with StopSite() as site:
        site.mode = "throttle"
        seed = _popen("crawl", "site", site.base_url, "--scope", "host", "--redis",
                      redis_server.url, "--data-dir", str(tmp_path / "a"), "--delay", "0",
                      "--concurrency", "4", *FAST_RETRY)
        client = redis_server.client()
        _wait_until(lambda: bool(client.zrange("socialark:crawls", 0, -1)), seed, "registration")
        worker = _popen("worker", "--redis", redis_server.url, "--data-dir", str(tmp_path / "b"),
                        "--concurrency", "4")
        # The send-time gate lets nothing through once the host said stop, so each process
        # sees its own first 429 and then holds the rest: wait until both report the pause.
        _wait_until(lambda: site.count("/", 200) >= 1 and _paused_workers(client) >= 2, worker,
                    "both processes paused by a 429")
        elapsed, err = _stop(worker, signal.SIGTERM)
        _assert_stopped(worker, elapsed, err)
        elapsed, err = _stop(seed, signal.SIGTERM)
        _assert_stopped(seed, elapsed, err)
        # Healthy again: a new worker finishes the crawl from the shared queue, nothing lost.
        # The ten-minute window the host announced is shared through Redis (every worker
        # honours it: crawler/distributed/shared_pauses.py); let it have passed.
        site.mode = "healthy"
        for key in client.scan_iter("socialark:crawl:*:pauses"):
            client.delete(key)
        again = _popen("worker", "--redis", redis_server.url, "--data-dir", str(tmp_path / "c"))
        _, err = again.communicate(timeout=180)
        assert again.returncode == 0, err[-3000:]
        captured = set().union(*(_captured_ok(tmp_path / d) for d in "abc"))
        missing = site.pages - captured
        assert not missing, f"lost by the stop: {sorted(missing)}"
        for d in "abc":
            assert not list((tmp_path / d / "warcs").rglob("*.open"))
            # A worker that learned the pause from the other and was stopped before sending
            # anything has nothing to archive (a WARC is opened with its first record).
            if warcs := closed_warcs(tmp_path / d):
                check = warcio_check(warcs)
                assert check.returncode == 0, check.stdout + check.stderr
        assert closed_warcs(tmp_path / "a") and closed_warcs(tmp_path / "c")
