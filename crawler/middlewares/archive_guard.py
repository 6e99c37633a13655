"""Downloader middleware that keeps unarchived responses away from callbacks.

WARC capture runs on ``response_downloaded``, inside Scrapy's ``send_catch_log``: an exception
there is only logged, the response would still reach its callback and the frontier would mark
the URL done although nothing was archived. The capture therefore only records the failure
(``crawler.write_failure``); this middleware, at a priority above every built-in one so its
``process_response`` runs first, turns every response that arrives once the archive has failed
into ``ArchiveWriteStop``. That is an ``IgnoreRequest``: Scrapy does not log it, and
``ArchiveSpider.archive_errback`` leaves the URL queued for ``--resume``.
"""

from __future__ import annotations

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from crawler.write_failure import write_failed


class ArchiveWriteStop(IgnoreRequest):
    """The response could not be archived (or the archive already failed): not processed."""


class ArchiveGuardMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchiveGuardMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        if write_failed(self.crawler):
            raise ArchiveWriteStop(f"not archived (archive write failed): {request.url}")
        return response
