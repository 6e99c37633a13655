"""Crawl limits Scrapy does not have: ``ARCHIVE_MAX_BYTES`` (bytes written to WARCs).

Pages and time use Scrapy's own ``CLOSESPIDER_PAGECOUNT`` and ``CLOSESPIDER_TIMEOUT`` (set by the
CLI from ``--max-pages`` / ``--max-time``). Reaching a limit is a normal, successful finish.
"""

from __future__ import annotations

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import deferred_from_coro


class ArchiveLimitsExtension:
    def __init__(self, crawler: Crawler, max_bytes: int) -> None:
        self.crawler = crawler
        self.max_bytes = max_bytes
        self.closing = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchiveLimitsExtension:
        max_bytes = crawler.settings.getint("ARCHIVE_MAX_BYTES")
        if max_bytes <= 0:
            raise NotConfigured("no byte limit")
        ext = cls(crawler, max_bytes)
        crawler.signals.connect(ext.response_downloaded, signal=signals.response_downloaded)
        return ext

    def response_downloaded(self) -> None:
        if self.closing:
            return
        if (self.crawler.stats.get_value("warc/bytes_written") or 0) >= self.max_bytes:
            self.closing = True
            assert self.crawler.engine is not None
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="archive_max_bytes"))
