"""Progress: a live status line on a terminal, plain log lines otherwise, a summary at the end."""

from __future__ import annotations

import os
import pty
import sys
import time
from pathlib import Path

from tests.conftest import FAST_RETRY, ROOT, socialark
from tests.sites.core_site import CoreSite


def test_log_lines_when_not_a_terminal_and_a_summary(core_site: CoreSite, tmp_path: Path) -> None:
    proc = socialark("crawl", "site", core_site.base_url, "--scope", "host", "--concurrency", "1",
                     "--delay", "0.02", "-s", "ARCHIVE_PROGRESS_INTERVAL=0.3", data_dir=tmp_path / "a")
    assert proc.returncode in (0, 1)
    lines = [ln for ln in proc.stderr.splitlines() if "progress: pages" in ln]
    assert len(lines) >= 2
    assert "pages/s" in lines[-1] and "queue" in lines[-1] and ".warc.gz" in lines[-1]
    assert "\r" not in proc.stderr
    for expected in ("Crawl finished", "responses:", "WARC records:", "WARCs:", "index:"):
        assert expected in proc.stderr


def test_live_line_on_a_terminal(core_site: CoreSite, tmp_path: Path) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # child: the real CLI with a terminal as stdout/stderr
        os.chdir(ROOT)
        os.environ["PYTHONPATH"] = str(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "crawler.cli", "crawl", "site",
                                  core_site.base_url, "--scope", "host", "--concurrency", "1",
                                  "--delay", "0.02", "-s", "ARCHIVE_PROGRESS_INTERVAL=0.3",
                                  *FAST_RETRY, "--data-dir", str(tmp_path / "a")])
    out = bytearray()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    text = out.decode("utf-8", "replace")
    assert os.WEXITSTATUS(status) in (0, 1), text[-2000:]
    assert "\rpages " in text, "status line is redrawn in place"
    assert "Crawl finished" in text


def test_status_reports_the_archive(core_crawl: Path) -> None:
    proc = socialark("status", "--json", data_dir=core_crawl)
    assert proc.returncode == 0
    import json

    status = json.loads(proc.stdout)
    coll = status["collections"]["default"]
    assert coll["files"] >= 2 and coll["captures"] > 50 and coll["open_files"] == 0
    assert status["crawls"][0]["state"] == "finished"
    text = socialark("status", data_dir=core_crawl).stdout
    assert "collection default" in text and "Recent crawls" in text
    missing = socialark("status", data_dir=core_crawl / "nope")
    assert missing.returncode == 2 and "no index" in missing.stderr
