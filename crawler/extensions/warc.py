"""WARC capture of every exchange Scrapy's downloader makes.

Hooks ``response_downloaded``, which Scrapy sends right after the download handler returns and
before any downloader middleware runs: the body is still content-encoded, redirects, retries,
robots.txt and error pages are all seen. Hands each exchange to ``storage.ArchiveRecorder``.

Reads: ``ARCHIVE_WARC_ENABLED``, ``ARCHIVE_DATA_DIR``, ``ARCHIVE_COLLECTION``, ``ARCHIVE_CRAWL_ID``,
``ARCHIVE_WARC_MAX_SIZE``, ``ARCHIVE_WARC_PREFIX``, ``ARCHIVE_WARC_GZIP_LEVEL``,
``ARCHIVE_DIGEST_ALGORITHM``, ``ARCHIVE_DEDUP_ENABLED``, ``ARCHIVE_DEDUP_MIN_SIZE``,
``ARCHIVE_KEEP_REQUEST_SECRETS``, ``ARCHIVE_CRAWL_CONFIG``, ``ARCHIVE_MEDIA_GZIP_LEVEL``,
``ARCHIVE_SPOOL_WRITERS``.
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

from crawler import __version__
from crawler import signals as archive_signals
from crawler.capture.exchange import exchange_from_scrapy
from crawler.capture.offthread import SpooledArchiver
from crawler.capture.spooling import SPOOLED_FLAG
from storage.exchange import DEFAULT_REDACT, HttpExchange
from storage.recorder import ArchiveRecorder, RecorderConfig
from storage.spool import SpooledBody
from storage.warc import ClosedFile, WrittenRecord

logger = logging.getLogger(__name__)

SKIP_METHODS = ("HEAD", "OPTIONS")


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
            redact=() if s.getbool("ARCHIVE_KEEP_REQUEST_SECRETS") else DEFAULT_REDACT,
            gzip_level=s.getint("ARCHIVE_WARC_GZIP_LEVEL"),
            media_gzip_level=s.getint("ARCHIVE_MEDIA_GZIP_LEVEL"),
            warcinfo=warcinfo_fields(crawler, collection, crawl_id),
        )
        ext = cls(crawler, config)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.response_downloaded, signal=signals.response_downloaded)
        return ext

    def spider_opened(self) -> None:
        self.recorder = ArchiveRecorder(self.config, on_file_closed=self._file_closed)
        self.repairs = self.recorder.repair_leftovers()
        self.spooled = SpooledArchiver(
            self.recorder, writers=self.crawler.settings.getint("ARCHIVE_SPOOL_WRITERS")
        )
        for rep in self.repairs:
            self.crawler.stats.inc_value("warc/files_repaired")
            logger.warning(
                "Repaired WARC left open by an earlier crash: %s (%d records kept, %d bytes cut)",
                rep.name, rep.records, rep.removed_bytes,
            )
        config = json.loads(self.crawler.settings.get("ARCHIVE_CRAWL_CONFIG") or "{}")
        self.recorder.index.crawl_started(
            self.config.crawl_id, self.config.collection, self.crawler.spider.name, config
        )

    def response_downloaded(self, response: Response, request: Request) -> None:
        if self.recorder is None or request.method.upper() in SKIP_METHODS:
            return
        if "cached" in response.flags or "playwright" in response.flags:
            return
        if SPOOLED_FLAG in response.flags:
            return  # archived by the download handler (record_spooled)
        exchange = exchange_from_scrapy(request, response)
        written = self.record_exchange(exchange)
        # Provenance for parsers: items name the capture they came from (source_timestamp).
        request.meta["warc_date"] = exchange.date
        request.meta["warc_record_id"] = written[0].record.record_id
        request.meta["warc_record_type"] = written[0].record.warc_type

    def record_exchange(self, exchange: HttpExchange) -> list[WrittenRecord]:
        """Write one exchange (any capture path: downloader, browser) and count it in stats."""
        assert self.recorder is not None
        written = self.recorder.record_exchange(exchange)
        self._count(written)
        return written

    async def record_spooled(self, request: Request, response: Response, body: SpooledBody) -> None:
        """Archive a response whose body was spooled to disk (``crawler/capture/spooling.py``):
        written from a worker thread, indexed here. Called by the download handler."""
        if self.recorder is None or self.spooled is None or request.method.upper() in SKIP_METHODS:
            return
        exchange = exchange_from_scrapy(request, response)
        written = await self.spooled.archive(exchange, body)
        self._count(written)
        request.meta["warc_date"] = exchange.date
        request.meta["warc_record_id"] = written[0].record.record_id
        request.meta["warc_record_type"] = written[0].record.warc_type

    def record_resource(self, uri: str, content_type: str, data: bytes) -> WrittenRecord:
        assert self.recorder is not None
        written = self.recorder.record_resource(uri, content_type, data)
        self._count([written])
        return written

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
        if self.recorder is None:
            return
        if self.spooled is not None:
            self.spooled.close()
        self.recorder.close()
        stats = dict(self.crawler.stats.get_stats())
        stats["finish_reason"] = reason
        self.crawler.stats.set_value("archive/finish_reason", reason)
        state = "finished" if reason in ("finished", "closespider_pagecount", "closespider_timeout",
                                         "archive_max_bytes") else "interrupted"
        self.recorder.index.crawl_finished(self.config.crawl_id, state, 0 if state == "finished" else 3, stats)
