"""``ArchiveSpider``: what every socialark spider shares (frontier for resume, outcomes)."""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Request, Spider
from scrapy.http import Response, TextResponse
from scrapy.settings import BaseSettings
from twisted.python.failure import Failure

from crawler.middlewares.archive_guard import ArchiveWriteStop
from crawler.middlewares.frontier import FrontierMiddleware, frontier_of
from crawler.stop import is_stop
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
    """Base spider: outcomes, shared requests and callbacks; the crawl's frontier (resume
    state) is owned by ``crawler.middlewares.frontier.FrontierMiddleware``."""

    @property
    def frontier(self) -> Frontier | None:
        """The crawl's frontier, owned by ``FrontierMiddleware`` (None before the engine runs,
        without a state dir, or once closed)."""
        crawler = getattr(self, "crawler", None)
        return frontier_of(crawler) if crawler is not None else None
    # Kinds of the capture-quality gate (crawler/quality.py) this spider judges itself: a
    # platform spider classifies "not found" answers from the platform's own words
    # (spiders/_outcomes.py), so soft-404 rules would only hide its outcomes.
    quality_skip: frozenset[str] = frozenset({"soft_404"})

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        """Enable the downloader middlewares the spider's platform registers (its rate-limit
        quirks, crawler/platforms.py), keeping those already configured (project,
        distributed, ``-s``)."""
        super().update_settings(settings)
        from crawler.platforms import platform_of_spider

        platform = platform_of_spider(getattr(cls, "name", ""))
        extra = dict(platform.downloader_middlewares) if platform else {}
        current = settings.getdict("DOWNLOADER_MIDDLEWARES")
        missing = {path: order for path, order in extra.items() if path not in current}
        if missing:
            priority = max(settings.getpriority("DOWNLOADER_MIDDLEWARES") or 0, 30)
            settings.set("DOWNLOADER_MIDDLEWARES", {**current, **missing}, priority=priority)

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
        frontier = self.frontier
        if frontier is not None and request is not None:
            fp = request.meta.get("frontier_fp")
            if fp:
                frontier.done(fp, outcome)
        if self.crawler and self.crawler.stats:
            self.crawler.stats.inc_value(f"archive/failed/{outcome}")
        if outcome != "IgnoreRequest":
            logger.warning("Failed %s: %s", getattr(request, "url", "?"), exc)

    # -- requests and answers every platform spider shares ----------------------------------
    def media_request(self, url: str, *, priority: int = -5) -> Request:
        """A media file, avatar or upload: archived as fetched; ``parse_plain`` counts it."""
        return Request(url, callback=self.parse_plain, priority=priority)

    def page_request(self, url: str) -> Request:
        """A human-viewable page, after the API answers (lower priority than media)."""
        return Request(url, callback=self.parse_plain, priority=-10)

    def parse_plain(self, response: Response) -> None:
        """Media, avatars, plain pages: the capture is the archive; only the outcome counts."""
        self.answer_ok(response)

    def answer_ok(self, response: Response, target: str | None = None) -> bool:
        """True for a 200; otherwise count and report the outcome. Platforms override it to
        name the error from the body (their API's error JSON)."""
        if response.status == 200:
            return True
        return self.check_response(response, target)

    @staticmethod
    def json_of(response: Response, default: Any = None) -> Any:
        """The decoded JSON of a response, or ``default`` (HTML error pages, binary bodies,
        bad JSON)."""
        if not isinstance(response, TextResponse):
            return default
        try:
            return response.json()
        except ValueError:
            return default

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

    # -- --recheck: revisit the posts already archived (edits, deletions) ---------------------
    def recheck_posts(self, platform: str) -> list[tuple[str, str, str]]:
        """(post_id, url, source_url) of the collection's archived, not-deleted posts of
        ``platform`` when the crawl runs with ``--recheck`` (``ARCHIVE_RECHECK``), else []."""
        if not self.settings.getbool("ARCHIVE_RECHECK"):
            return []
        from pathlib import Path

        from storage.archived import ArchivedItems

        index = Path(self.settings.get("ARCHIVE_INDEX_PATH") or "")
        archived = ArchivedItems(index, self.settings.get("ARCHIVE_COLLECTION") or "default")
        try:
            posts = archived.posts_to_recheck(platform)
        finally:
            archived.close()
        logger.info("Rechecking %d archived %s posts", len(posts), platform)
        self.crawler.stats.set_value("recheck/posts", len(posts))
        return posts

    def recheck_items(self, response: Response, items: list[Any]) -> list[Any]:
        """Count what a recheck found and pass the capture's items on (the platform's
        extractor yields a ``PostGone`` for a 404/410 or a tombstone page)."""
        gone = any(getattr(type(i), "table", "") == "post_gone" for i in items)
        key = "gone" if gone else "alive" if response.status == 200 else f"http_{response.status}"
        self.crawler.stats.inc_value(f"recheck/{key}")
        if gone:
            logger.info("Recheck: %s is gone (HTTP %d)", response.url, response.status)
        return items

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
        # First of the spider_closed handlers (the spider connects before any component): the
        # frontier's last done marks are committed before the WARC writer closes.
        try:
            mw = self.crawler.get_spider_middleware(FrontierMiddleware)
        except RuntimeError:  # closed before the engine was built
            return
        if mw is not None:
            mw.close()
