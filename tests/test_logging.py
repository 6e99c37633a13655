"""A crawl's terminal talks to archivists: socialark's own lines by default, Scrapy's log with
-v, one JSON object per event with --log-format json; everything in a log file per crawl."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import socialark
from tests.sites.core_site import CoreSite

SCRAPY_DUMPS = ("Enabled downloader middlewares", "Overridden settings", "Enabled extensions",
                "Scrapy 2.", "Spider opened")
SECRET = "hunter2-do-not-log"
# Scrapy logs its overridden settings (the log file, -v): the value must come out redacted.
SECRET_HEADER = ("-s", f"AWS_SECRET_ACCESS_KEY={SECRET}")


def _log_file(stderr: str) -> Path:
    (line,) = [ln for ln in stderr.splitlines() if ln.startswith("  log: ")]
    return Path(line.removeprefix("  log: "))


def _responses(stderr: str) -> tuple[int, dict[int, int], int, int]:
    """(total, by status, handled, redirected or retried) from the summary's responses line."""
    (line,) = [ln for ln in stderr.splitlines() if ln.startswith("  responses: ")]
    m = re.fullmatch(r"  responses: (\d+) \(([^)]*)\)(?:; (\d+) handled, (\d+) redirected or "
                     r"retried)?", line)
    assert m, line
    by_status = {int(c): int(n) for c, n in (p.split(": ") for p in m.group(2).split(", "))}
    total = int(m.group(1))
    handled = int(m.group(3)) if m.group(3) else total
    return total, by_status, handled, int(m.group(4) or 0)


def _archived_responses(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "index.db") as conn:
        (n,) = conn.execute("SELECT count(*) FROM captures "
                            "WHERE record_type IN ('response', 'revisit')").fetchone()
    return int(n)


def test_default_terminal_is_quiet_and_the_log_file_has_everything(core_site: CoreSite,
                                                                   tmp_path: Path) -> None:
    data_dir = tmp_path / "a"
    proc = socialark("crawl", "site", core_site.base_url, "--scope", "host", "--delay", "0",
                     *SECRET_HEADER, data_dir=data_dir)
    assert proc.returncode == 1, proc.stderr[-4000:]  # /error answers 500 for ever
    err = proc.stderr
    for dump in SCRAPY_DUMPS:
        assert dump not in err, err[:3000]
    assert "[scrapy" not in err and "Disabled " not in err, err[:3000]
    assert "Starting crawl site-" in err and f"seeds: {core_site.base_url}" in err
    assert f"data dir {data_dir.resolve()}" in err
    assert "WARNING: Gave up on " + core_site.url("/error") in err  # warnings still shown
    assert "Crawl finished (exit 1)" in err and "  WARCs: " in err

    log = _log_file(err)
    assert log.parent == data_dir / "state" / "default" / "logs" and log.name.startswith("site-")
    text = log.read_text()
    for dump in ("Enabled downloader middlewares", "Overridden settings", "Spider opened"):
        assert dump in text
    assert "Starting crawl site-" in text and "Gave up on " in text
    assert "[socialark.summary] INFO: Crawl finished (exit 1)" in text  # the summary too
    assert "'AWS_SECRET_ACCESS_KEY': '[redacted]'" in text
    assert SECRET not in text and SECRET not in err

    # The summary's counts add up, and count what the archive holds.
    total, by_status, handled, other = _responses(err)
    assert total == sum(by_status.values()) == handled + other
    assert other > 0 and by_status[500] > 1 and by_status[301] == 1  # retries and redirects
    assert total == _archived_responses(data_dir)


def test_verbose_shows_scrapy_log(core_site: CoreSite, tmp_path: Path) -> None:
    proc = socialark("crawl", "site", core_site.base_url, "--scope", "page", "--delay", "0", "-v",
                     data_dir=tmp_path / "v")
    assert proc.returncode == 0, proc.stderr[-4000:]
    for dump in ("Enabled downloader middlewares", "Overridden settings", "Spider opened"):
        assert dump in proc.stderr
    assert "] DEBUG: " not in proc.stderr  # LOG_LEVEL stays INFO
    assert "Crawl finished (exit 0)" in proc.stderr and _log_file(proc.stderr).exists()

    debug = socialark("crawl", "site", core_site.base_url, "--scope", "page", "--delay", "0",
                      "-vv", data_dir=tmp_path / "vv")
    assert debug.returncode == 0, debug.stderr[-4000:]
    assert "] DEBUG: Crawled (200) <GET " + core_site.base_url in debug.stderr
    assert "] DEBUG: Crawled (200) <GET " in _log_file(debug.stderr).read_text()


def test_json_log_format(core_site: CoreSite, tmp_path: Path) -> None:
    data_dir = tmp_path / "j"
    proc = socialark("crawl", "site", core_site.base_url, "--scope", "host", "--delay", "0",
                     "--concurrency", "2", "--log-format", "json",
                     "-s", "ARCHIVE_PROGRESS_INTERVAL=0.2", *SECRET_HEADER,
                     data_dir=data_dir)
    assert proc.returncode == 1, proc.stderr[-4000:]
    events: list[dict[str, Any]] = [json.loads(ln) for ln in proc.stderr.splitlines() if ln]
    assert all({"time", "level", "logger", "event", "message"} <= set(e) for e in events)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "summary" and "progress" in kinds, kinds
    start, summary = events[0], events[-1]
    assert start["crawl_id"].startswith("site-") and start["collection"] == "default"
    assert start["targets"]["seeds"] == [core_site.base_url]
    progress = next(e for e in events if e["event"] == "progress")
    assert {"pages", "bytes", "rate", "queue", "paused"} <= set(progress)
    assert any(e["level"] == "warning" and "Gave up on" in e["message"] for e in events)
    assert not any(d in e["message"] for e in events for d in SCRAPY_DUMPS)

    counts = summary["responses"]
    assert counts["total"] == sum(counts["by_status"].values())
    assert counts["total"] == counts["handled"] + counts["redirected_or_retried"]
    assert counts["total"] == _archived_responses(data_dir)
    assert summary["exit_code"] == 1 and summary["reason"] == "finished"
    log = Path(summary["log_file"])
    assert log == Path(start["log_file"]) and "Overridden settings" in log.read_text()
    assert SECRET not in proc.stderr and SECRET not in log.read_text()


def test_worker_and_crawl_commands_offer_the_log_options() -> None:
    for args in (("crawl", "site"), ("crawl", "mastodon"), ("worker",)):
        out = socialark(*args, "--help").stdout
        assert "-v, --verbose" in out and "--log-format [text|json]" in out, args
