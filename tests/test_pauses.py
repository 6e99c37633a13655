"""Pauses are visible: the progress line, ``socialark status`` and the log say which host is
paused, why, and until when; ``crawl-status`` does the same for a ``--redis`` crawl.

A Discourse emulator answers 429 with ``Retry-After: 120`` (its real text/plain shape) after
two requests, so the crawl sits in a long pause; the test reads the live figures from the
outside, then ends the crawl with kill -9 (stopping gracefully is another feature's test).
"""

from __future__ import annotations

import json
import os
import pty
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import ROOT, socialark
from tests.emulators.discourse import DiscourseEmulator

pytestmark = pytest.mark.serial  # timing windows: run alone (scripts/test.sh)

if TYPE_CHECKING:
    from tests.redisserver import RedisServer

pytest_plugins = ["tests.redisserver"]  # redis_server fixture

PAUSE = 120.0


def _poll(read: Any, deadline: float = 90) -> Any:
    """Call ``read`` until it returns something truthy (or fail after ``deadline`` s)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = read()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("condition never met")


def _check_pause(entry: dict[str, Any], port: int) -> None:
    assert entry["host"] == "127.0.0.1" and entry["reason"] == "429 Retry-After"
    assert time.time() + 60 < entry["until"] <= time.time() + PAUSE + 2
    assert entry["until_iso"].endswith("Z")


def test_progress_line_status_and_warning_show_a_long_pause(tmp_path: Path) -> None:
    with DiscourseEmulator(seed=1) as emu:
        emu.faults.surprise_429(after=2, seconds=PAUSE)
        pid, fd = pty.fork()
        if pid == 0:  # child: the real CLI with a terminal as stdout/stderr
            os.chdir(ROOT)
            os.environ["PYTHONPATH"] = str(ROOT)
            os.execv(sys.executable, [sys.executable, "-m", "crawler.cli", "crawl", "discourse",
                                      "--forum", emu.base_url, "-s", "ARCHIVE_PROGRESS_INTERVAL=0.3",
                                      "--data-dir", str(tmp_path)])
        out = bytearray()

        def pump() -> None:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                out.extend(chunk)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            def paused_crawl() -> dict[str, Any] | None:
                if not (tmp_path / "index.db").exists():
                    return None
                proc = socialark("status", "--json", data_dir=tmp_path)
                if proc.returncode != 0:
                    return None
                crawls = json.loads(proc.stdout)["crawls"]
                return crawls[0] if crawls and crawls[0]["paused_hosts"] else None

            crawl = _poll(paused_crawl)
            assert crawl["state"] == "running"
            _check_pause(crawl["paused_hosts"][0], emu.port)
            text = socialark("status", data_dir=tmp_path).stdout
            assert "paused: 127.0.0.1 (429 Retry-After) until " in text
            _poll(lambda: b"\rpages " in out and b"| paused: 127.0.0.1 429 Retry-After until" in out)
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            reader.join(5)
        log = out.decode("utf-8", "replace")
        warnings = [ln for ln in log.splitlines() if "Host 127.0.0.1 paused for" in ln]
        assert len(warnings) == 1, log[-3000:]  # logged once, however many requests wait
        assert "WARNING" in warnings[0] and "(429 Retry-After)" in warnings[0]
        assert "nothing is sent to it until 20" in warnings[0]  # the ISO end time
        # During the pause nothing was sent (the two requests, then the 429, then silence).
        start = emu.faults.surprise_start
        assert start is not None
        assert [r for r in emu.requests if r.time >= start + 0.5] == []


def test_crawl_status_shows_paused_hosts(redis_server: RedisServer, tmp_path: Path) -> None:
    import subprocess

    with DiscourseEmulator(seed=1) as emu:
        emu.faults.surprise_429(after=2, seconds=PAUSE)
        log = (tmp_path / "crawl.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "crawl", "discourse", "--forum", emu.base_url,
             "--redis", redis_server.url, "--data-dir", str(tmp_path / "a"),
             "-s", "ARCHIVE_REDIS_POLL_INTERVAL=0.2", "-s", "ARCHIVE_PROGRESS=off"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=log)
        try:
            def paused() -> dict[str, Any] | None:
                res = socialark("crawl-status", "--redis", redis_server.url, "--json")
                if res.returncode != 0:
                    return None
                status = json.loads(res.stdout)
                status = status[0] if isinstance(status, list) else status
                return status if status.get("paused_hosts") else None

            status = _poll(paused)
            entry = status["paused_hosts"][0]
            _check_pause(entry, emu.port)
            assert entry["worker_id"] == status["workers"][0]["worker_id"]
            text = socialark("crawl-status", "--redis", redis_server.url, check=True).stdout
            assert "paused: 127.0.0.1 (429 Retry-After) until " in text
        finally:
            proc.kill()
            proc.wait()
            log.close()
