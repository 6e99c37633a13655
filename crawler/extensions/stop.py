"""Stop means stop: Ctrl-C / SIGTERM end the crawl within ``ARCHIVE_STOP_TIMEOUT`` seconds.

Scrapy's graceful stop waits for every request the downloader holds: requests paused by a rate
limit (up to ``ARCHIVE_RATELIMIT_MAX_WAIT``), large slow downloads, browser pages. On the first
stop (``ArchiveCrawler.stop_async``, which Scrapy's signal handler reaches) this extension:

1. fails the requests waiting in the downloader's slot queues (``Downloader.cancel_waiting`` when
   the downloader has one, else Scrapy's ``slots[*].queue``) with ``CrawlStopped``;
2. sends ``crawler.stop.crawl_stopping``: the rate-limit middleware wakes its held requests and
   the download handlers cancel their transfers and browser pages, all with ``CrawlStopped``;
   errbacks leave such requests ``queued`` in the frontier, so ``--resume`` fetches them;
3. starts a watchdog thread. If the process is still alive ``EMERGENCY_LEAD`` seconds before the
   deadline, it asks the reactor thread to close the WARC writer (fsync, rename, index flush,
   ``crawls`` row), flush the item index and commit the frontier, then exits with code 3 at the
   deadline whatever the reactor did (a WARC it could not close stays ``.open``: repaired on
   resume).

A second signal makes Scrapy stop the reactor at once (its own behaviour); the reactor's
"before shutdown" trigger runs the same emergency close, so the files stay consistent.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.python.failure import Failure

from crawler.errors import ExitCode
from crawler.logsetup import console_line
from crawler.stop import CrawlStopped, crawl_stopping, stop_error

logger = logging.getLogger(__name__)

EMERGENCY_LEAD = 1.0  # seconds before the deadline at which the files are closed by force


class PromptStopExtension:
    def __init__(self, crawler: Crawler, timeout: float) -> None:
        self.crawler = crawler
        self.timeout = timeout
        self.stopping = False
        self.closed = False  # spider_closed ran, or the emergency close did
        self._watchdog: threading.Thread | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PromptStopExtension:
        timeout = crawler.settings.getfloat("ARCHIVE_STOP_TIMEOUT", 4.0)
        if timeout <= 0:
            raise NotConfigured("ARCHIVE_STOP_TIMEOUT <= 0: stops wait for every request")
        ext = cls(crawler, timeout)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        from twisted.internet import reactor

        reactor.addSystemEventTrigger("before", "shutdown", ext.reactor_shutdown)
        return ext

    # -- the stop ------------------------------------------------------------------------------
    def begin(self) -> None:
        """First stop: fail what is held or in flight, arm the watchdog. Reactor thread."""
        if self.stopping or self.closed:
            return
        self.stopping = True
        self._guard_second_signal()
        self._watchdog = threading.Thread(target=self._watch, name="socialark-stop-watchdog",
                                          daemon=True)
        self._watchdog.start()
        exc = CrawlStopped("crawl stopping")
        queued = self._cancel_queued(exc)
        held = sum(n for _, n in self.crawler.signals.send_catch_log(crawl_stopping, exc=exc)
                   if isinstance(n, int))
        stats = self.crawler.stats
        stats.set_value("stop/cancelled", queued + held)
        logger.info("Stopping: %d held or in-flight requests cancelled; they stay queued for "
                    "--resume (exit within %.0fs)", queued + held, self.timeout)

    def _guard_second_signal(self) -> None:
        """Wrap the "force" handler Scrapy installed for the second Ctrl-C: while the reactor
        runs it forces the stop as before; once the reactor has stopped (the crawl closed
        faster than the second signal came) the signal is ignored, so it cannot kill the
        process between the closed files and the exit code."""
        if threading.current_thread() is not threading.main_thread():
            return
        force = signal.getsignal(signal.SIGINT)
        if not callable(force):
            return

        def second_signal(signum: int, frame: Any) -> None:
            from twisted.internet import reactor

            if getattr(reactor, "running", False):
                force(signum, frame)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, second_signal)

    def _cancel_queued(self, exc: CrawlStopped) -> int:
        engine = self.crawler.engine
        downloader = getattr(engine, "downloader", None) if engine is not None else None
        if downloader is None:
            return 0
        cancel = getattr(downloader, "cancel_waiting", None)
        if callable(cancel):
            return int(cancel(exc))
        count = 0
        for slot in list(downloader.slots.values()):
            while slot.queue:
                _request, dfd = slot.queue.popleft()
                dfd.errback(Failure(stop_error(exc)))
                count += 1
        return count

    def spider_closed(self) -> None:
        self.closed = True

    def reactor_shutdown(self) -> None:
        """The reactor stops (second signal, or the end): close the files if nobody did."""
        if self.stopping and not self.closed:
            logger.warning("Forced stop: closing WARCs and committing the frontier now")
            self.emergency_close()

    # -- the watchdog -----------------------------------------------------------------------------
    def _watch(self) -> None:
        from twisted.internet import reactor

        started = time.monotonic()
        time.sleep(max(self.timeout - EMERGENCY_LEAD, 0.0))
        done = threading.Event()
        if not self.closed:
            reactor.callFromThread(self._emergency_then_signal, done)
            done.wait(max(self.timeout - (time.monotonic() - started), 0.1))
        else:
            # Everything is closed; give the normal exit (summary, mirror) until the deadline.
            time.sleep(max(self.timeout - (time.monotonic() - started), 0.0))
        sys.stderr.write(console_line(
            f"Stop took longer than {self.timeout:g}s: exiting now (exit {int(ExitCode.INTERRUPTED)}"
            "; resumable with --resume)", event="stop_timeout") + "\n")
        sys.stderr.flush()
        os._exit(int(ExitCode.INTERRUPTED))

    def _emergency_then_signal(self, done: threading.Event) -> None:
        try:
            self.emergency_close()
        finally:
            done.set()

    def emergency_close(self) -> None:
        """Close what must be consistent on disk, on the reactor thread, each step on its own."""
        if self.closed:
            return
        self.closed = True
        self.crawler.stats.set_value("finish_reason", "shutdown")
        from crawler.extensions.warc import WarcCaptureExtension
        from crawler.middlewares.frontier import FrontierMiddleware
        from crawler.pipelines.index import IndexPipeline

        steps: list[tuple[str, Any]] = []
        warc = self._component(self.crawler.get_extension, WarcCaptureExtension)
        if warc is not None:
            steps.append(("WARC writer", lambda: warc.spider_closed("shutdown")))
        pipe = self._component(self.crawler.get_item_pipeline, IndexPipeline)
        if pipe is not None:
            steps.append(("item index", pipe.flush))
        frontier_mw = self._component(self.crawler.get_spider_middleware, FrontierMiddleware)
        if frontier_mw is not None and frontier_mw.frontier is not None:
            steps.append(("frontier", lambda: self._close_frontier(frontier_mw)))
        for name, step in steps:
            try:
                step()
            except Exception as exc:  # each file on its own: one failure must not skip the rest
                logger.error("Forced stop: could not close the %s: %s", name, exc)

    @staticmethod
    def _component(getter: Any, cls: type) -> Any:
        try:
            return getter(cls)
        except RuntimeError:  # components not built yet
            return None

    @staticmethod
    def _close_frontier(frontier_mw: Any) -> None:
        frontier, frontier_mw.frontier = frontier_mw.frontier, None  # later marks not recorded
        frontier.close()


class ArchiveCrawler(Crawler):
    """A Crawler whose stop (signal, ``process.stop()``) first makes the crawl stop promptly."""

    async def stop_async(self) -> None:
        if self.crawling and self._extensions is not None:
            ext = self.get_extension(PromptStopExtension)
            if ext is not None:
                ext.begin()
        await super().stop_async()
