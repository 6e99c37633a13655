"""WARC capture of every exchange Scrapy's downloader makes.

Hooks ``response_downloaded``, which Scrapy sends right after the download handler returns and
before any downloader middleware runs: the body is still content-encoded, redirects, retries,
robots.txt and error pages are all seen. Hands each exchange to ``storage.ArchiveRecorder``.

A write that fails (``ArchiveWriteError``) stops the crawl (``crawler.write_failure``) and
``ArchiveGuardMiddleware`` keeps the response from its callback, so the URL stays queued. The
frontier's commits are hooked so a URL is marked done only after its WARC bytes are fsynced and
its index rows (and the posts extracted from it) are committed; a timer does the same every
second, so nothing waits in memory for the next response.

Reads: ``ARCHIVE_WARC_ENABLED``, ``ARCHIVE_DATA_DIR``, ``ARCHIVE_COLLECTION``, ``ARCHIVE_CRAWL_ID``,
``ARCHIVE_WARC_MAX_SIZE``, ``ARCHIVE_WARC_PREFIX``, ``ARCHIVE_WARC_GZIP_LEVEL``,
``ARCHIVE_DIGEST_ALGORITHM``, ``ARCHIVE_DEDUP_ENABLED``, ``ARCHIVE_DEDUP_MIN_SIZE``,
``ARCHIVE_KEEP_REQUEST_SECRETS``, ``ARCHIVE_CRAWL_CONFIG``, ``ARCHIVE_MEDIA_GZIP_LEVEL``,
``ARCHIVE_SPOOL_WRITERS``, ``ARCHIVE_SIGN_KEY``, ``ARCHIVE_TSA_URL`` (manifest entries,
storage.manifest).
"""

from __future__ import annotations

import json
import logging
import platform
import socket
from pathlib import Path
from typing import Any

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from twisted.internet import task

from crawler import __version__
from crawler import signals as archive_signals
from crawler.capture.exchange import exchange_from_scrapy
from crawler.capture.offthread import SpooledArchiver
from crawler.capture.spooling import SPOOLED_FLAG, SpoolConfig
from crawler.middlewares.frontier import frontier_of
from crawler.write_failure import REASON, report_write_failure, write_failed
from storage.errors import ArchiveWriteError
from storage.exchange import DEFAULT_REDACT, HttpExchange
from storage.manifest import make_signer
from storage.recorder import ArchiveRecorder, RecorderConfig
from storage.redact import words_from
from storage.spool import SpooledBody, remove_own_spools
from storage.warc import ClosedFile, WrittenRecord

logger = logging.getLogger(__name__)

SKIP_METHODS = ("HEAD", "OPTIONS")
FINISHED = ("finished", "closespider_pagecount", "closespider_timeout", "archive_max_bytes")
TICK = 1.0  # seconds between timed commits of the frontier, the WARC (fsync) and the index


def _redact_names(s: Any) -> tuple[bytes, ...]:
    """Request header names to redact: ``ARCHIVE_REDACT_NAMES`` words, else the default."""
    if not s.get("ARCHIVE_REDACT_NAMES"):
        return DEFAULT_REDACT
    return tuple(w.encode("latin-1") for w in words_from(s.get("ARCHIVE_REDACT_NAMES")))


def warcinfo_fields(crawler: Crawler, collection: str, crawl_id: str) -> list[tuple[str, str]]:
    s = crawler.settings
    return [
        ("software", f"socialark/{__version__} (Scrapy; Python {platform.python_version()})"),
        ("format", "WARC File Format 1.1"),
        ("conformsTo", "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"),
        ("hostname", socket.gethostname()),
        ("isPartOf", collection),
        ("socialark-crawl-id", crawl_id),
        ("robots", "obey" if s.getbool("ROBOTSTXT_OBEY") else "ignore"),
        ("http-header-user-agent", s.get("USER_AGENT") or ""),
        ("crawl-config", s.get("ARCHIVE_CRAWL_CONFIG") or "{}"),
    ]


class WarcCaptureExtension:
    def __init__(self, crawler: Crawler, config: RecorderConfig) -> None:
        self.crawler = crawler
        self.config = config
        self.recorder: ArchiveRecorder | None = None
        self.spooled: SpooledArchiver | None = None
        self.repairs: list[Any] = []
        self.failed: ArchiveWriteError | None = None
        self._timer: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcCaptureExtension:
        s = crawler.settings
        if not s.getbool("ARCHIVE_WARC_ENABLED"):
            raise NotConfigured("ARCHIVE_WARC_ENABLED is False")
        collection = s.get("ARCHIVE_COLLECTION") or "default"
        crawl_id = s.get("ARCHIVE_CRAWL_ID") or "unnamed"
        config = RecorderConfig(
            data_dir=Path(s.get("ARCHIVE_DATA_DIR")),
            collection=collection,
            crawl_id=crawl_id,
            max_size=s.getint("ARCHIVE_WARC_MAX_SIZE"),
            prefix=s.get("ARCHIVE_WARC_PREFIX") or "socialark",
            algorithm=s.get("ARCHIVE_DIGEST_ALGORITHM") or "sha256",
            dedup=s.getbool("ARCHIVE_DEDUP_ENABLED"),
            dedup_min_size=s.getint("ARCHIVE_DEDUP_MIN_SIZE"),
            redact=() if s.getbool("ARCHIVE_KEEP_REQUEST_SECRETS") else _redact_names(s),
            gzip_level=s.getint("ARCHIVE_WARC_GZIP_LEVEL"),
            media_gzip_level=s.getint("ARCHIVE_MEDIA_GZIP_LEVEL"),
            warcinfo=warcinfo_fields(crawler, collection, crawl_id),
            signer=make_signer(Path(s.get("ARCHIVE_DATA_DIR")), collection,
                               key_path=s.get("ARCHIVE_SIGN_KEY") or None,
                               tsa_url=s.get("ARCHIVE_TSA_URL") or None),
        )
        ext = cls(crawler, config)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.response_downloaded, signal=signals.response_downloaded)
        return ext

    def spider_opened(self) -> None:
        try:
            self.recorder = ArchiveRecorder(self.config, on_file_closed=self._file_closed)
            self.repairs = self.recorder.repair_leftovers()
            self.spooled = SpooledArchiver(
                self.recorder, writers=self.crawler.settings.getint("ARCHIVE_SPOOL_WRITERS")
            )
            self._report_repairs()
            config = json.loads(self.crawler.settings.get("ARCHIVE_CRAWL_CONFIG") or "{}")
            self.recorder.index.crawl_started(
                self.config.crawl_id, self.config.collection, self.crawler.spider.name, config
            )
        except ArchiveWriteError as exc:
            report_write_failure(self.crawler, exc)
            return
        frontier = frontier_of(self.crawler)
        if frontier is not None:
            frontier.before_commit = self._before_frontier_commit
        self._timer = task.LoopingCall(self._tick)
        self._timer.start(TICK, now=False)

    def _report_repairs(self) -> None:
        """Log and count what the crash repair did; re-extract posts from recovered captures."""
        assert self.recorder is not None
        recovered = [rep.name for rep in self.repairs if rep.records]
        for rep in self.repairs:
            if rep.kind == "repaired":
                self.crawler.stats.inc_value("warc/files_repaired")
                logger.warning(
                    "Repaired WARC left open by an earlier crash: %s (%d records kept, %d bytes cut)",
                    rep.name, rep.records, rep.removed_bytes,
                )
            else:
                self.crawler.stats.inc_value("warc/files_reconciled")
        if recovered:
            from crawler.extraction import reextract_files

            index, counted = self.recorder.index, []
            index.run_write(lambda: counted.append(reextract_files(index.db, recovered)))
            items = counted[-1]
            self.crawler.stats.set_value("warc/items_reextracted", items)
            if items:
                logger.info("Re-extracted %d posts/accounts/media from %d recovered WARC(s)",
                            items, len(recovered))

    def response_downloaded(self, response: Response, request: Request) -> None:
        if self.recorder is None or request.method.upper() in SKIP_METHODS:
            return
        if "cached" in response.flags or "playwright" in response.flags:
            return
        if SPOOLED_FLAG in response.flags:
            return  # archived by the download handler (record_spooled)
        exchange = exchange_from_scrapy(request, response)
        try:
            written = self.record_exchange(exchange)
        except ArchiveWriteError:
            return  # ArchiveGuardMiddleware keeps the response from its callback
        # Provenance for parsers: items name the capture they came from (source_timestamp).
        request.meta["warc_date"] = exchange.date
        request.meta["warc_record_id"] = written[0].record.record_id
        request.meta["warc_record_type"] = written[0].record.warc_type

    def record_exchange(self, exchange: HttpExchange) -> list[WrittenRecord]:
        """Write one exchange (any capture path: downloader, browser) and count it in stats.

        Raises ``ArchiveWriteError`` when it cannot be written (or an earlier write failed):
        the crawl is then stopping and the caller must not treat the exchange as archived.
        """
        assert self.recorder is not None
        self._check()
        try:
            written = self.recorder.record_exchange(exchange)
        except ArchiveWriteError as exc:
            self._fail(exc)
            raise
        self._count(written)
        return written

    async def record_spooled(self, request: Request, response: Response, body: SpooledBody) -> None:
        """Archive a response whose body was spooled to disk (``crawler/capture/spooling.py``):
        written from a worker thread, indexed here. Called by the download handler."""
        if self.recorder is None or self.spooled is None or request.method.upper() in SKIP_METHODS:
            return
        self._check()
        exchange = exchange_from_scrapy(request, response)
        try:
            written = await self.spooled.archive(exchange, body)
        except ArchiveWriteError as exc:
            self._fail(exc)
            raise  # the request fails: archive_errback leaves it queued for --resume
        self._count(written)
        request.meta["warc_date"] = exchange.date
        request.meta["warc_record_id"] = written[0].record.record_id
        request.meta["warc_record_type"] = written[0].record.warc_type

    def record_resource(self, uri: str, content_type: str, data: bytes) -> WrittenRecord:
        assert self.recorder is not None
        self._check()
        try:
            written = self.recorder.record_resource(uri, content_type, data)
        except ArchiveWriteError as exc:
            self._fail(exc)
            raise
        self._count([written])
        return written

    def add_items(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        """Posts, accounts... extracted by callbacks: committed with the captures they come from."""
        assert self.recorder is not None
        if self.failed is not None:
            return
        try:
            self.recorder.index.add_items(items, self.config.collection)
        except ArchiveWriteError as exc:
            self._fail(exc)

    def _check(self) -> None:
        """Write nothing once the archive failed (here, or in the index or the frontier)."""
        if self.failed is None and write_failed(self.crawler):
            self.failed = ArchiveWriteError("the archive", RuntimeError("an earlier write failed"))
        if self.failed is not None:
            raise self.failed

    def _fail(self, exc: ArchiveWriteError) -> None:
        if self.failed is None:
            self.failed = exc
        report_write_failure(self.crawler, exc)

    def _before_frontier_commit(self) -> bool:
        """fsync the WARC and commit the index before the frontier marks URLs done."""
        if self.recorder is None or self.failed is not None or write_failed(self.crawler):
            return False
        try:
            return self.recorder.sync()
        except ArchiveWriteError as exc:
            self._fail(exc)
            return False

    def _tick(self) -> None:
        """Every TICK seconds: commit the frontier (and with it the WARC and the index) so that
        posts and done marks do not wait for the next response, e.g. during a rate-limit pause."""
        if self.recorder is None or self.failed is not None:
            return
        frontier = frontier_of(self.crawler)
        try:
            if frontier is not None:
                frontier.commit()
            if self.recorder.index.due():
                self.recorder.sync()
        except ArchiveWriteError as exc:
            self._fail(exc)

    def _count(self, written: list[WrittenRecord]) -> None:
        stats = self.crawler.stats
        stats.inc_value("warc/records_written", len(written))
        stats.inc_value("warc/bytes_written", sum(w.length for w in written))
        if written[0].record.warc_type == "revisit":
            stats.inc_value("warc/revisits")
        if self.recorder is not None:
            stats.set_value("warc/current_file", self.recorder.writer.current_name)

    def _file_closed(self, closed: ClosedFile) -> None:
        self.crawler.stats.inc_value("warc/files_closed")
        logger.info("Closed %s (%d bytes, %d records)", closed.name, closed.size, closed.records)
        self.crawler.signals.send_catch_log(
            archive_signals.warc_file_closed, path=closed.path, name=closed.name,
            collection=self.config.collection, size=closed.size, sha256=closed.sha256,
        )

    def spider_closed(self, reason: str) -> None:
        """Close the WARC (fsync, rename), flush the index, record the crawl's end. Idempotent:
        a forced stop (crawler/extensions/stop.py) may run it before Scrapy does."""
        if self._timer is not None and self._timer.running:
            self._timer.stop()
        if self.recorder is None:
            return
        recorder, self.recorder = self.recorder, None
        try:
            if self.spooled is not None:
                self.spooled.close()
            recorder.close()
            remove_own_spools(SpoolConfig.from_settings(self.crawler.settings).directory)
        except ArchiveWriteError as exc:
            self._fail(exc)
        stats = dict(self.crawler.stats.get_stats())
        stats["finish_reason"] = reason
        self.crawler.stats.set_value("archive/finish_reason", reason)
        if self.failed is not None or reason == REASON:
            state, code = "failed", 1
        elif reason in FINISHED:
            state, code = "finished", 0
        else:
            state, code = "interrupted", 3
        try:
            recorder.index.crawl_finished(self.config.crawl_id, state, code, stats)
        except ArchiveWriteError as exc:
            logger.debug("crawl state not saved: %s", exc)
