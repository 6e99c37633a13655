"""What a crawl does when the archive cannot be written (disk full, file too large, I/O error).

Every failing write (WARC, index, frontier) is a ``storage.errors.ArchiveWriteError``. The first
one is reported as a single log line naming the file and the cause, then the spider is closed
with reason ``archive_write_failed`` (exit code 1, resumable). From then on nothing is written
and no response reaches a callback (``ArchiveGuardMiddleware``), so every URL not safely
recorded stays queued in the frontier for ``--resume``.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy.crawler import Crawler
from scrapy.utils.defer import deferred_from_coro

from storage.errors import ArchiveWriteError

logger = logging.getLogger(__name__)

REASON = "archive_write_failed"
STAT = "archive/write_failed"


def write_failed(crawler: Crawler) -> bool:
    return crawler.stats is not None and bool(crawler.stats.get_value(STAT))


def report_write_failure(crawler: Crawler, exc: ArchiveWriteError) -> None:
    """Log the first failure as one line and stop the crawl; later ones are only counted."""
    stats = crawler.stats
    if stats is None:
        return
    stats.inc_value("archive/write_errors")
    if stats.get_value(STAT):
        return
    stats.set_value(STAT, str(exc))
    logger.error("%s. The crawl stops: free some space, then run the same command with "
                 "--resume to finish it", exc)
    deferred_from_coro(_close(crawler))


async def _close(crawler: Crawler) -> Any:
    engine = crawler.engine
    if engine is None or engine.spider is None:
        return None
    try:
        await engine.close_spider_async(reason=REASON)
    except RuntimeError:  # already closed
        pass
    return None
