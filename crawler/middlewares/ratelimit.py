"""Rate limits: read each answer, decide retries, feed the host's send gate; lose nothing.

The gate itself (``crawler.gates``) is applied where a request leaves its slot queue, in
``crawler.downloader.ArchiveDownloader`` (setting ``DOWNLOADER``), which also feeds it every
answer's rate-limit headers the moment the answer arrives: this middleware holds nothing. It
adds what only the response chain knows: a ``Retry-After`` that a middleware closer to the
download derived from the body (Discourse's ``extras.wait_seconds``: ``spiders/discourse/wait.py``,
a platform quirk enabled through ``crawler/platforms.py``) pauses the host too, and 429s and 5xx answers are retried (the 429's retry waits behind the
host's gate; a 5xx retry carries a not-before time for exponential backoff) up to
``ARCHIVE_RATELIMIT_MAX_ATTEMPTS`` times, then handed to the callback and counted as
``archive/failed/http_<status>``. Every answer, 429s included, is already in the WARC (the
capture happens before any middleware).

Settings: ``ARCHIVE_RATELIMIT_ENABLED`` (True), ``ARCHIVE_RATELIMIT_MAX_ATTEMPTS`` (10),
``ARCHIVE_RATELIMIT_SERVER_ERROR_ATTEMPTS`` (8: for 5xx answers that announce no wait),
``ARCHIVE_RATELIMIT_BACKOFF`` (1.0 s, doubled per attempt), ``ARCHIVE_RATELIMIT_MAX_BACKOFF``
(60 s), ``ARCHIVE_RATELIMIT_MARGIN`` (0.1 s added to every announced reset),
``ARCHIVE_RATELIMIT_MAX_WAIT`` (3600 s: a longer announced reset is capped),
``ARCHIVE_RATELIMIT_MAX_HELD`` (1000 requests held for closed hosts before the engine stops
taking new work). Needs priority > 550 so it sees responses before Scrapy's RetryMiddleware.
"""

from __future__ import annotations

import logging
import time

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.utils.misc import load_object

from crawler.downloader import NOT_BEFORE_KEY, ArchiveDownloader, slot_key
from crawler.gates import Gates, gates_for, parse_int, parse_reset, read_rate_info

logger = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504, 520, 521, 522, 523, 524}
ATTEMPT_KEY = "ratelimit_attempt"

__all__ = ["NOT_BEFORE_KEY", "RateLimitMiddleware", "parse_int", "parse_reset", "read_rate_info"]


class RateLimitMiddleware:
    def __init__(self, crawler: Crawler, gates: Gates) -> None:
        s = crawler.settings
        self.crawler = crawler
        self.gates = gates
        self.max_attempts = s.getint("ARCHIVE_RATELIMIT_MAX_ATTEMPTS", 10)
        # A 5xx with no announced wait is often permanent: fewer tries than for a 429.
        self.max_error_attempts = s.getint("ARCHIVE_RATELIMIT_SERVER_ERROR_ATTEMPTS", 8)
        self.backoff = s.getfloat("ARCHIVE_RATELIMIT_BACKOFF", 1.0)
        self.max_backoff = s.getfloat("ARCHIVE_RATELIMIT_MAX_BACKOFF", 60.0)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RateLimitMiddleware:
        s = crawler.settings
        if not s.getbool("ARCHIVE_RATELIMIT_ENABLED", True):
            raise NotConfigured("ARCHIVE_RATELIMIT_ENABLED is False")
        if not issubclass(load_object(s["DOWNLOADER"]), ArchiveDownloader):
            logger.warning("DOWNLOADER is %s, not crawler.downloader.ArchiveDownloader: rate "
                           "limits are retried but not enforced at send time", s["DOWNLOADER"])
        return cls(crawler, gates_for(crawler))

    def _key(self, request: Request) -> str:
        return slot_key(self.crawler, request)

    def _inc(self, key: str) -> None:
        if self.crawler.stats:
            self.crawler.stats.inc_value(key)

    def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status == 429 or (response.status == 503
                                       and response.headers.get("Retry-After")):
            info = read_rate_info(response.headers)
            if info.retry_after is not None:
                # Usually already applied by the downloader; a body-derived Retry-After
                # (Discourse) is only visible here. Pauses never shorten, so this is idempotent.
                self.gates.pause(self._key(request), info.retry_after,
                                 f"{response.status} Retry-After")
            wait = info.retry_after if info.retry_after is not None else info.reset_in
            logger.info("%s: HTTP %d, pausing host %s%s", request.url, response.status,
                        self._key(request), f" for {wait:.1f}s" if wait is not None else "")
            return self._retry(request, response, 0.0)
        if response.status in RETRY_STATUSES:
            return self._retry(request, response, self._backoff(request),
                               max_attempts=self.max_error_attempts)
        return response

    def _backoff(self, request: Request) -> float:
        attempt = int(request.meta.get(ATTEMPT_KEY, 0))
        return min(self.backoff * (2 ** attempt), self.max_backoff)

    def _retry(self, request: Request, response: Response, delay: float,
               max_attempts: int | None = None) -> Request | Response:
        attempt = int(request.meta.get(ATTEMPT_KEY, 0)) + 1
        if attempt >= (max_attempts or self.max_attempts):
            self._inc(f"archive/failed/http_{response.status}")
            logger.warning("Gave up on %s after %d attempts (HTTP %d)", request.url, attempt,
                           response.status)
            return response
        self._inc("ratelimit/retries")
        retry = request.replace(dont_filter=True)
        retry.meta[ATTEMPT_KEY] = attempt
        retry.meta[NOT_BEFORE_KEY] = time.monotonic() + delay if delay else 0
        retry.priority = request.priority + 1
        return retry
