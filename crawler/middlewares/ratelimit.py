"""Rate limits: pause a host (only that host) until its limit resets; retry 429/5xx, lose nothing.

Understands Mastodon ``X-RateLimit-Remaining/Reset`` (ISO 8601 reset), Bluesky
``RateLimit-Remaining/Reset`` (epoch seconds), Reddit ``x-ratelimit-remaining/reset`` (seconds
until reset) and ``Retry-After`` (seconds or an HTTP date). The budget a server announces is
spent *before* sending: each request leaving this middleware reserves one unit, so with N
requests in flight the host pauses when ``remaining - in_flight`` reaches 0, and the server never
sees a request inside an exhausted window. 429s and 5xx answers are retried (after the reset, or
with exponential backoff) up to ``ARCHIVE_RATELIMIT_MAX_ATTEMPTS`` times, then handed to the
callback and counted as ``archive/failed/http_<status>``. Every answer, 429s included, is already
in the WARC (the capture happens before any middleware).

Settings: ``ARCHIVE_RATELIMIT_ENABLED`` (True), ``ARCHIVE_RATELIMIT_MAX_ATTEMPTS`` (10),
``ARCHIVE_RATELIMIT_SERVER_ERROR_ATTEMPTS`` (8: for 5xx answers that announce no wait),
``ARCHIVE_RATELIMIT_BACKOFF`` (1.0 s, doubled per attempt), ``ARCHIVE_RATELIMIT_MAX_BACKOFF``
(60 s), ``ARCHIVE_RATELIMIT_MARGIN`` (0.1 s added to every announced reset),
``ARCHIVE_RATELIMIT_MAX_WAIT`` (3600 s: a longer announced reset is capped).
Needs priority > 550 so it sees responses before Scrapy's RetryMiddleware.

A held request sleeps in a future of its own: ``cancel_waiting(exc)`` (called on
``crawler.stop.crawl_stopping``) fails every sleeping request at once, so a stop does not wait
for a host's reset; such requests stay unfinished in the frontier.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response

from crawler.stop import crawl_stopping, stop_error

logger = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504, 520, 521, 522, 523, 524}
ATTEMPT_KEY = "ratelimit_attempt"
NOT_BEFORE_KEY = "ratelimit_not_before"
EPOCH_THRESHOLD = 1_000_000_000  # a bigger numeric reset is an epoch time, a smaller one a delay


def _header(headers: Any, *names: str) -> str | None:
    for name in names:
        value = headers.get(name)
        if value:
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None


def parse_reset(value: str | None, now: float) -> float | None:
    """Seconds from ``now`` (wall clock) until a reset given as ISO 8601, HTTP date, epoch
    seconds or a delay in seconds. None when unparseable."""
    if not value:
        return None
    text = value.strip().split(";", 1)[0].strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return max(number - now, 0.0) if number >= EPOCH_THRESHOLD else max(number, 0.0)
    for parse in (_iso, parsedate_to_datetime):
        try:
            dt = parse(text)
        except (TypeError, ValueError, IndexError):
            continue
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return max(dt.timestamp() - now, 0.0)
    return None


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_int(value: str | None) -> int | None:
    """``"42"``, ``"598.0"`` (Reddit) or ``"3000;w=300"`` (IETF draft) → the leading integer."""
    if not value:
        return None
    try:
        return int(float(value.split(";", 1)[0].split(",", 1)[0].strip()))
    except ValueError:
        return None


@dataclass
class RateInfo:
    """What one response says about the host's budget."""

    remaining: int | None
    limit: int | None
    reset_in: float | None  # seconds from now
    retry_after: float | None


def read_rate_info(headers: Any, now: float | None = None) -> RateInfo:
    now = time.time() if now is None else now
    remaining = parse_int(_header(headers, "X-RateLimit-Remaining", "RateLimit-Remaining"))
    limit = parse_int(_header(headers, "X-RateLimit-Limit", "RateLimit-Limit"))
    used = parse_int(_header(headers, "X-RateLimit-Used"))
    if limit is None and used is not None and remaining is not None:
        limit = used + remaining  # Reddit announces used + remaining, not the limit
    return RateInfo(
        remaining=remaining,
        limit=limit,
        reset_in=parse_reset(_header(headers, "X-RateLimit-Reset", "RateLimit-Reset"), now),
        retry_after=parse_reset(_header(headers, "Retry-After"), now),
    )


@dataclass
class HostBudget:
    remaining: int | None = None  # requests we may still send in the current window
    limit: int | None = None
    reset_at: float = 0.0  # time.monotonic() when the window ends
    paused_until: float = 0.0  # time.monotonic() before which nothing is sent
    in_flight: int = 0


class RateLimitMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        s = crawler.settings
        if not s.getbool("ARCHIVE_RATELIMIT_ENABLED", True):
            raise NotConfigured
        self.crawler = crawler
        self.max_attempts = s.getint("ARCHIVE_RATELIMIT_MAX_ATTEMPTS", 10)
        # A 5xx with no announced wait is often permanent: fewer tries than for a 429.
        self.max_error_attempts = s.getint("ARCHIVE_RATELIMIT_SERVER_ERROR_ATTEMPTS", 8)
        self.backoff = s.getfloat("ARCHIVE_RATELIMIT_BACKOFF", 1.0)
        self.max_backoff = s.getfloat("ARCHIVE_RATELIMIT_MAX_BACKOFF", 60.0)
        self.margin = s.getfloat("ARCHIVE_RATELIMIT_MARGIN", 0.1)
        self.max_wait = s.getfloat("ARCHIVE_RATELIMIT_MAX_WAIT", 3600.0)
        self.hosts: dict[str, HostBudget] = {}
        self._sleepers: set[asyncio.Future[None]] = set()
        self._stopped: BaseException | None = None
        crawler.signals.connect(self.cancel_waiting, signal=crawl_stopping)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RateLimitMiddleware:
        return cls(crawler)

    def cancel_waiting(self, exc: BaseException) -> int:
        """Fail every held request (and any arriving later) with a copy of ``exc``."""
        self._stopped = exc
        count = 0
        for fut in list(self._sleepers):
            if not fut.done():
                fut.set_exception(stop_error(exc))
                count += 1
        return count

    async def _sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(seconds, lambda: fut.done() or fut.set_result(None))
        self._sleepers.add(fut)
        try:
            await fut
        finally:
            timer.cancel()
            self._sleepers.discard(fut)

    def _key(self, request: Request) -> str:
        engine = self.crawler.engine
        downloader = getattr(engine, "downloader", None)
        if downloader is not None:
            return downloader.get_slot_key(request)
        return request.url.split("/", 3)[2] if "://" in request.url else request.url

    def _host(self, request: Request) -> HostBudget:
        return self.hosts.setdefault(self._key(request), HostBudget())

    def _inc(self, key: str) -> None:
        if self.crawler.stats:
            self.crawler.stats.inc_value(key)

    async def process_request(self, request: Request) -> None:
        """Hold the request while its host is paused or its announced budget is spent."""
        host = self._host(request)
        while True:
            if self._stopped is not None:
                raise stop_error(self._stopped)
            now = time.monotonic()
            if host.reset_at and now >= host.reset_at:
                host.remaining, host.reset_at = host.limit, 0.0  # a fresh window
            wait = max(host.paused_until, float(request.meta.get(NOT_BEFORE_KEY) or 0)) - now
            if wait <= 0 and host.remaining is not None and host.remaining <= 0:
                if not host.reset_at:  # spent, but no reset announced: back off once
                    host.paused_until, host.remaining = now + self.backoff, None
                    continue
                wait = host.reset_at - now
            if wait <= 0:
                break
            self._inc("ratelimit/waits")
            await self._sleep(min(wait, self.max_wait))
        if host.remaining is not None:
            host.remaining -= 1
        host.in_flight += 1
        request.meta["_ratelimit_counted"] = True
        return None

    def _release(self, request: Request) -> HostBudget:
        host = self._host(request)
        if request.meta.pop("_ratelimit_counted", False):
            host.in_flight = max(host.in_flight - 1, 0)
        return host

    def process_exception(self, request: Request, exception: BaseException) -> None:
        self._release(request)
        return None

    def process_response(self, request: Request, response: Response) -> Request | Response:
        host = self._release(request)
        info = read_rate_info(response.headers)
        now = time.monotonic()
        if info.limit is not None:
            host.limit = info.limit
        same_window = False
        if info.reset_in is not None:
            reset_at = now + min(info.reset_in, self.max_wait) + self.margin
            same_window = bool(host.reset_at) and abs(reset_at - host.reset_at) < 0.5
            host.reset_at = reset_at
        if info.remaining is not None:
            # Requests still in flight may not be counted in this answer yet: reserve them.
            estimate = info.remaining - host.in_flight
            if same_window and host.remaining is not None:
                estimate = min(estimate, host.remaining)  # answers can arrive out of order
            host.remaining = estimate
        if response.status == 429 or (response.status == 503 and info.retry_after is not None):
            wait = info.retry_after if info.retry_after is not None else info.reset_in
            if wait is None:
                wait = self._backoff(request)
            host.paused_until = max(host.paused_until, now + min(wait, self.max_wait) + self.margin)
            host.remaining = 0 if info.reset_in is None else host.remaining
            self._inc("ratelimit/throttled")
            logger.info("%s: HTTP %d, pausing host %s for %.1fs", request.url, response.status,
                        self._key(request), wait)
            return self._retry(request, response, 0.0)
        if info.remaining is not None and info.remaining <= 0 and info.reset_in is not None:
            self._inc("ratelimit/exhausted")
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
