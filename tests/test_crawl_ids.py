"""Emergency ID enumeration: every existing item in a range with gaps is found, and resumable."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, socialark
from tests.emulators.idsite import IdSiteEmulator


def _captured(data_dir: Path, status: int) -> set[str]:
    with sqlite3.connect(data_dir / "index.db") as conn:
        return {u for (u,) in conn.execute(
            "SELECT url FROM captures WHERE status = ? AND record_type IN ('response', 'revisit')",
            [status])}


def test_enumeration_finds_every_existing_item(tmp_path: Path) -> None:
    with IdSiteEmulator(seed=1, last_id=200) as emu:
        existing = {i for i in emu.dataset.existing_ids if i <= 200}
        proc = socialark("crawl", "ids", "--url-template", emu.base_url + "/post/{id}",
                         "--range", "1-200", "--delay", "0", "--concurrency", "8",
                         data_dir=tmp_path / "a")
        assert proc.returncode == 0, proc.stderr[-3000:]
        hits = {int(u.rsplit("/", 1)[1]) for u in _captured(tmp_path / "a", 200) if "/post/" in u}
        misses = {int(u.rsplit("/", 1)[1]) for u in _captured(tmp_path / "a", 404) if "/post/" in u}
        assert hits == existing
        assert misses == set(range(1, 201)) - existing
        assert f"ids: {len(existing)} hits, {200 - len(existing)} misses" in proc.stderr
        fetched = [r for r in emu.requests if "/post/" in r[2]]
        assert len(fetched) == 200, "each id fetched exactly once"


def test_hex_ids_and_step(tmp_path: Path) -> None:
    with IdSiteEmulator(seed=1, last_id=60) as emu:
        proc = socialark("crawl", "ids", "--url-template", emu.base_url + "/post/{id}",
                         "--range", "a-3c", "--format", "hex", "--step", "2", "--delay", "0",
                         data_dir=tmp_path / "a")
        assert proc.returncode == 0, proc.stderr[-2000:]
        asked = sorted(r[2].rsplit("/", 1)[1] for r in emu.requests if "/post/" in r[2])
        assert asked == sorted(format(i, "x") for i in range(10, 61, 2))


def test_enumeration_resumes_after_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "a"
    with IdSiteEmulator(seed=1, last_id=400) as emu:
        existing = set(emu.dataset.existing_ids)
        cmd = [sys.executable, "-m", "crawler.cli", "crawl", "ids", "--url-template",
               emu.base_url + "/post/{id}", "--range", "1-400", "--delay", "0.02",
               "--concurrency", "1", "--data-dir", str(data_dir)]
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while sum("/post/" in r[2] for r in emu.requests) < 150:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first_run = sum("/post/" in r[2] for r in emu.requests)
        resumed = socialark("crawl", "ids", "--resume", "--delay", "0", data_dir=data_dir)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        hits = {int(u.rsplit("/", 1)[1]) for u in _captured(data_dir, 200) if "/post/" in u}
        assert hits == existing
        second_run = sum("/post/" in r[2] for r in emu.requests) - first_run
        assert second_run < 400 - 100, "the resumed run does not walk the id space again"


def test_bad_id_options(tmp_path: Path) -> None:
    for args, message in (
        (["--url-template", "http://x.test/post/", "--range", "1-2"], "must contain {id}"),
        (["--url-template", "http://x.test/{id}", "--range", "zz"], "expected START-END"),
        (["--url-template", "http://x.test/{id}"], "give --range"),
        (["--url-template", "http://x.test/{id}", "--range", "1-5", "--step", "0"], "--step"),
    ):
        proc = socialark("crawl", "ids", *args, data_dir=tmp_path / "a")
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr
        assert "Traceback" not in proc.stderr


def test_enumeration_with_the_browser_renders_hits(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("playwright.async_api")
    from crawler.browser.config import browser_problem

    if browser_problem(None) is not None:
        pytest.skip("no Chromium for Playwright")
    with IdSiteEmulator(seed=1, last_id=12) as emu:
        existing = {i for i in emu.dataset.existing_ids if i <= 12}
        proc = socialark("crawl", "ids", "--url-template", emu.base_url + "/post/{id}",
                         "--range", "1-12", "--delay", "0", "--browser", "--scroll-limit", "0",
                         data_dir=tmp_path / "a")
        assert proc.returncode == 0, proc.stderr[-3000:]
    with sqlite3.connect(tmp_path / "a" / "index.db") as conn:
        pages = {u for (u,) in conn.execute("SELECT url FROM pages")}
        shots = conn.execute(
            "SELECT COUNT(*) FROM captures WHERE url LIKE 'urn:screenshot:%'").fetchone()[0]
    assert {int(u.rsplit("/", 1)[1]) for u in pages} == existing  # one rendered page per hit
    assert shots >= len(existing)
    assert f"ids: {len(existing)} hits" in proc.stderr
