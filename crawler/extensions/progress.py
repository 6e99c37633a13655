"""Live progress: a status line on a terminal, plain log lines otherwise.

Reads ``ARCHIVE_PROGRESS`` (``auto``: a live line when stderr is a terminal, log lines when not;
``line``; ``log``; ``off``) and ``ARCHIVE_PROGRESS_INTERVAL`` (seconds). Hosts paused by a rate
limit are shown with the reason and the (local) time they resume, e.g.
``paused: mastodon.example 429 Retry-After until 14:05:09 (52s)``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from crawler.gates import Pause, gates_for

logger = logging.getLogger("socialark.progress")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def render_pauses(pauses: list[Pause], now: float | None = None, shown: int = 3) -> str:
    """`` | paused: HOST REASON until HH:MM:SS (Ns); ...`` or nothing."""
    if not pauses:
        return ""
    now = time.time() if now is None else now
    parts = [f"{p.host} {p.reason} until {time.strftime('%H:%M:%S', time.localtime(p.until))}"
             f" ({max(p.until - now, 0):.0f}s)" for p in pauses[:shown]]
    more = f"; +{len(pauses) - shown} more" if len(pauses) > shown else ""
    return " | paused: " + "; ".join(parts) + more


def progress_fields(snap: dict[str, Any]) -> dict[str, Any]:
    """A snapshot as JSON-ready fields (``--log-format json``)."""
    fields = {k: v for k, v in snap.items() if k != "paused"}
    fields["rate"] = round(snap["rate"], 2)
    fields["paused"] = [p.to_dict() for p in snap.get("paused") or []]
    return fields


class ProgressExtension:
    def __init__(self, crawler: Crawler, mode: str, interval: float) -> None:
        self.crawler = crawler
        self.mode = mode
        self.interval = interval
        self.started = time.monotonic()
        self._task: task.LoopingCall | None = None
        self._last_len = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProgressExtension:
        mode = crawler.settings.get("ARCHIVE_PROGRESS", "auto")
        if mode == "off":
            raise NotConfigured("progress off")
        if mode == "auto":
            mode = "line" if sys.stderr.isatty() else "log"
        ext = cls(crawler, mode, crawler.settings.getfloat("ARCHIVE_PROGRESS_INTERVAL", 2.0))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def snapshot(self) -> dict[str, Any]:
        stats = self.crawler.stats
        elapsed = max(time.monotonic() - self.started, 1e-6)
        pages = stats.get_value("response_received_count", 0)
        queue = None
        engine = self.crawler.engine
        try:
            queue = len(engine._slot.scheduler)  # type: ignore[union-attr]
        except (AttributeError, TypeError):
            pass
        return {
            "pages": pages,
            "bytes": stats.get_value("warc/bytes_written", 0),
            "rate": pages / elapsed,
            "queue": queue,
            "in_flight": len(getattr(getattr(engine, "downloader", None), "active", ()) or ()),
            "warc": stats.get_value("warc/current_file") or "-",
            "errors": stats.get_value("log_count/ERROR", 0),
            "paused": gates_for(self.crawler).paused(),
        }

    def render(self, snap: dict[str, Any]) -> str:
        queue = "?" if snap["queue"] is None else snap["queue"]
        return (
            f"pages {snap['pages']} | {human_bytes(snap['bytes'])} | {snap['rate']:.1f} pages/s"
            f" | queue {queue} | in flight {snap['in_flight']} | errors {snap['errors']}"
            f" | {snap['warc']}"
        ) + render_pauses(snap.get("paused") or [])

    def tick(self) -> None:
        snap = self.snapshot()
        line = self.render(snap)
        if self.mode == "line":
            pad = max(self._last_len - len(line), 0)
            sys.stderr.write("\r" + line + " " * pad)
            sys.stderr.flush()
            self._last_len = len(line)
        else:
            logger.info("progress: %s", line, extra={"event": "progress",
                                                     "fields": progress_fields(snap)})

    def spider_opened(self) -> None:
        self.started = time.monotonic()
        self._task = task.LoopingCall(self.tick)
        self._task.start(self.interval, now=False)

    def spider_closed(self) -> None:
        if self._task and self._task.running:
            self._task.stop()
        if self.mode == "line" and self._last_len:
            sys.stderr.write("\n")
            sys.stderr.flush()
