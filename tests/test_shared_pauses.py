"""Distributed crawls share host pauses: a 429 window one worker hit is respected by all.

Two processes (the seeding ``crawl ids --redis`` and a ``worker``) each send one request at a
time, one every 1.5-4.5 s (``--delay 3``, randomized), to one host. A surprise 429 window (6 s,
reset announced on the 429s) opens on whichever request arrives; the other process usually has
nothing on the wire then, and its next request would land inside the window (without sharing,
this test fails in most runs); with the pause shared through Redis it waits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import ROOT
from tests.emulators.idsite import IdSiteEmulator

if TYPE_CHECKING:
    from tests.redisserver import RedisServer

pytest_plugins = ["tests.redisserver"]

GRACE = 0.5  # requests already on the wire when the first 429 went out


def _cli(*args: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "crawler.cli", *args], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)


@pytest.mark.serial
def test_a_429_window_closes_the_host_in_every_worker(redis_server: RedisServer,
                                                      tmp_path: Path) -> None:
    with IdSiteEmulator(seed=1, last_id=24) as emu:
        emu.faults.surprise_429(after=8, seconds=6.0)
        seed = _cli("crawl", "ids", "--url-template", emu.base_url + "/post/{id}",
                    "--range", "1-24", "--redis", redis_server.url, "--delay", "3",
                    "--concurrency", "1", "--ignore-robots", "--data-dir", str(tmp_path / "a"),
                    "-s", "ARCHIVE_REDIS_POLL_INTERVAL=0.2", "-s", "ARCHIVE_PROGRESS=off",
                    log=tmp_path / "a.log")
        client = redis_server.client()
        deadline = time.monotonic() + 60
        while not client.zrange("socialark:crawls", 0, -1):
            assert seed.poll() is None and time.monotonic() < deadline, \
                (tmp_path / "a.log").read_text()[-3000:]
            time.sleep(0.05)
        worker = _cli("worker", "--redis", redis_server.url, "--concurrency", "1",
                      "--data-dir", str(tmp_path / "b"), log=tmp_path / "b.log")
        try:
            assert seed.wait(timeout=240) == 0, (tmp_path / "a.log").read_text()[-3000:]
            assert worker.wait(timeout=60) == 0, (tmp_path / "b.log").read_text()[-3000:]
        finally:
            for p in (seed, worker):
                if p.poll() is None:
                    p.kill()
                    p.wait()
        start, end = emu.faults.surprise_start, emu.faults.surprise_end
        assert start is not None and end is not None, "the crawl never reached the window"
        times = [r.time for r in emu.requests]
    late = [round(t - start, 3) for t in times if start + GRACE <= t < end]
    assert late == [], f"requests reached the host inside the 429 window: {late}"
    told = [(tmp_path / f"{n}.log").read_text() for n in ("a", "b")]
    if sum("HTTP 429" in log for log in told) == 1:  # one process hit the window, one was told
        assert any("Another worker was told to wait: pausing host 127.0.0.1" in log
                   for log in told)
    assert sum(1 for t in times if t >= end) >= 3  # the crawl went on after the window
