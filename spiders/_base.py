"""``ArchiveSpider``: what every socialark spider shares (frontier for resume, outcomes)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.middlewares.archive_guard import ArchiveWriteStop
from crawler.stop import is_stop
from crawler.write_failure import report_write_failure
from spiders._outcomes import (
    MAX_LISTED_TARGETS,
    Outcome,
    classify,
    default_reason,
    report_line,
)
from storage.errors import ArchiveWriteError
from storage.frontier import Frontier

RATELIMIT_MIDDLEWARE = "crawler.middlewares.ratelimit.RateLimitMiddleware"

logger = logging.getLogger(__name__)


class ArchiveSpider(Spider):
    """Base spider: owns the crawl's on-disk frontier (``state/<collection>/<crawl_id>.frontier``)."""

    frontier: Frontier | None = None
    # Kinds of the capture-quality gate (crawler/quality.py) this spider judges itself: a
    # platform spider classifies "not found" answers from the platform's own words
    # (spiders/_outcomes.py), so soft-404 rules would only hide its outcomes.
    quality_skip: frozenset[str] = frozenset({"soft_404"})

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
        if is_stop(failure):
            # Cancelled by a stop, not an outcome: the request stays queued for --resume.
            if self.crawler and self.crawler.stats:
                self.crawler.stats.inc_value("archive/stopped")
            return
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

    # -- outcomes (spiders/_outcomes.py) ------------------------------------------------------
    def check_response(self, response: Response, target: str | None = None,
                       reason: str | None = None, *, report: bool = True,
                       detail: str | None = None) -> bool:
        """True when ``response`` is a capture to parse; otherwise count and report its outcome.

        ``reason`` is the platform's error name (from the body) when it has one. ``target`` names
        what was asked for (an account, a post); without it the URL is the target. With
        ``report=False`` a missing/blocked answer is only logged at INFO (e.g. a listing page
        behind a target already reported)."""
        outcome = classify(response.status, reason)
        if outcome is Outcome.OK:
            return True
        if outcome is Outcome.FAILED or not reason:
            reason = default_reason(response.status)  # one key per status for failures
        self.report_outcome(outcome, reason, target or response.url, response.url,
                            count=report or outcome is Outcome.FAILED, detail=detail)
        return False

    def report_outcome(self, outcome: Outcome, reason: str, target: str,
                       archived: str | None = None, *, count: bool = True,
                       detail: str | None = None) -> None:
        """Count ``archive/<outcome>/<reason>`` and log the one report line."""
        line = report_line(self.name, target, outcome, reason, archived, detail)
        if not count:
            logger.info(line)
            return
        stats = self.crawler.stats
        if not self._counted_by_middleware(outcome, reason):
            stats.inc_value(f"archive/{outcome}/{reason}")
        logger.warning(line)
        if target != archived:  # a named target: listed in the summary
            self.list_target(line.split(": ", 1)[1])

    def list_target(self, line: str) -> None:
        """Add a line to the ``archive/targets`` stat (printed by the CLI summary)."""
        stats = self.crawler.stats
        listed = list(stats.get_value("archive/targets") or [])
        if len(listed) < MAX_LISTED_TARGETS:
            listed.append(line)
            stats.set_value("archive/targets", listed)

    def _counted_by_middleware(self, outcome: Outcome, reason: str) -> bool:
        """The rate-limit middleware counts the 429/5xx it gives up on: don't count them twice."""
        if outcome is not Outcome.FAILED or not reason.startswith("http_"):
            return False
        from crawler.middlewares.ratelimit import RETRY_STATUSES

        s = self.crawler.settings
        return (reason[5:].isdigit() and int(reason[5:]) in RETRY_STATUSES
                and s.getbool("ARCHIVE_RATELIMIT_ENABLED", True)
                and RATELIMIT_MIDDLEWARE in s.getdict("DOWNLOADER_MIDDLEWARES"))

    def closed(self, reason: str) -> None:
        if self.frontier is not None:
            try:
                self.frontier.close()
            except ArchiveWriteError as exc:  # the uncommitted batch is fetched again on resume
                report_write_failure(self.crawler, exc)
