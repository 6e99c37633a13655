"""``ArchiveSpider``: what every socialark spider shares (frontier for resume, error outcomes)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from scrapy import Spider
from scrapy.crawler import Crawler
from twisted.python.failure import Failure

from crawler.middlewares.archive_guard import ArchiveWriteStop
from crawler.write_failure import report_write_failure
from storage.errors import ArchiveWriteError
from storage.frontier import Frontier

logger = logging.getLogger(__name__)


class ArchiveSpider(Spider):
    """Base spider: owns the crawl's on-disk frontier (``state/<collection>/<crawl_id>.frontier``)."""

    frontier: Frontier | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> ArchiveSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        state_dir = crawler.settings.get("ARCHIVE_STATE_DIR")
        crawl_id = crawler.settings.get("ARCHIVE_CRAWL_ID")
        if state_dir and crawl_id:
            spider.frontier = Frontier(Path(state_dir) / f"{crawl_id}.frontier.sqlite")
            spider.frontier.on_commit_error = lambda exc: report_write_failure(crawler, exc)
        return spider

    def archive_errback(self, failure: Failure) -> None:
        """Download failed for good (after retries) or was refused (robots.txt, offsite)."""
        request = getattr(failure, "request", None)
        exc = failure.value
        if failure.check(ArchiveWriteStop, ArchiveWriteError):
            return  # not archived: stays queued in the frontier for --resume
        outcome = type(exc).__name__
        if self.frontier is not None and request is not None:
            fp = request.meta.get("frontier_fp")
            if fp:
                self.frontier.done(fp, outcome)
        if self.crawler and self.crawler.stats:
            self.crawler.stats.inc_value(f"archive/failed/{outcome}")
        if outcome != "IgnoreRequest":
            logger.warning("Failed %s: %s", getattr(request, "url", "?"), exc)

    def closed(self, reason: str) -> None:
        if self.frontier is not None:
            try:
                self.frontier.close()
            except ArchiveWriteError as exc:  # the uncommitted batch is fetched again on resume
                report_write_failure(self.crawler, exc)
