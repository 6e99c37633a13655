"""scrapy-redis's scheduler with leases: the queue and seen-set are shared in Redis.

Differences from ``scrapy_redis.scheduler.Scheduler``: requests are pushed in batches (one
pipeline per callback) with an atomic seen+queue script, handing over the lease of the request
they replace (retries, redirects); pops are leased; ``has_pending_requests`` is False once the crawl is stopping, so
each worker goes idle when its in-flight work is done and the extension closes it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.utils.misc import load_object
from scrapy_redis.scheduler import Scheduler

from crawler.distributed.context import WorkerContext, worker_context
from crawler.distributed.queue import LEASE_META, LeasedPriorityQueue
from crawler.distributed.registry import ACTIVE_STATES, crawl_state
from storage.redact import redact_text

STATE_CACHE_SECONDS = 0.5
MAX_POP_BATCH = 32  # requests leased in one round trip (never more than free download slots)
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)
logger = logging.getLogger(__name__)


class LeaseScheduler(Scheduler):
    ctx: WorkerContext
    queue: LeasedPriorityQueue

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LeaseScheduler:
        instance: LeaseScheduler = super().from_crawler(crawler)
        instance.ctx = worker_context(crawler)
        instance.crawler = crawler
        instance._state = ("", 0.0)
        instance._leased = deque()
        return instance

    def open(self, spider: Any) -> None:
        """As scrapy-redis's ``open`` without ``flush_on_start`` (ours never flushes a shared
        crawl) and without ``Spider.log`` (deprecated in Scrapy 2.13+)."""
        self.spider = spider
        queue_cls = load_object(self.queue_cls)
        if not issubclass(queue_cls, LeasedPriorityQueue):
            raise TypeError("SCHEDULER_QUEUE_CLASS must be a LeasedPriorityQueue")
        self.queue = queue_cls(server=self.server, spider=spider, key=self.queue_key,
                               serializer=self.serializer)
        self.queue.configure(self.ctx.keys, self.ctx.worker_id, self.ctx.ttl_ms)
        if not self.df:
            self.df = load_object(self.dupefilter_cls).from_spider(spider)
        queued = len(self.queue)
        if queued:
            logger.info("Joining crawl %s: %d requests queued", self.ctx.keys.crawl_id, queued)

    def close(self, reason: str) -> None:
        """Never flush: the queue and seen-set belong to the crawl, not to this worker."""

    def crawl_active(self) -> bool:
        state, checked = self._state
        now = time.monotonic()
        if now - checked > STATE_CACHE_SECONDS:
            state = crawl_state(self.ctx.client, self.ctx.keys.crawl_id)[0]
            self._state = (state, now)
        return state in ACTIVE_STATES

    def enqueue_request(self, request: Request) -> bool:
        """Add to the batch sent at the next flush (end of the callback, or next pop).

        Always True: whether the URL was seen is known only when the batch reaches Redis, so
        duplicates are counted (``scheduler/duplicates/redis``) but not signalled one by one.
        """
        handover = request.meta.pop(LEASE_META, None) or ""
        fingerprint = "" if request.dont_filter else self.df.request_fingerprint(request)
        self.ctx.add_push(fingerprint, -request.priority, self.queue.encode(request), handover)
        return True

    def next_request(self) -> Request | None:
        """The next leased request. When none is left from the last batch, one round trip
        sends what is pending (children, releases, page count) and leases as many requests
        as the downloader has free slots (``MAX_POP_BATCH`` at most)."""
        if not self._leased:
            try:
                self._leased.extend(self.ctx.flush(take=self._free_slots()))
            except REDIS_ERRORS as exc:
                self._redis_trouble(exc)
                return None
        while self._leased:
            token, data = self._leased.popleft()
            request = self.queue.leased(token, data)
            if request is None:
                self.ctx.release(token)  # an invalid entry: dropped with its lease
                continue
            if self.stats:
                self.stats.inc_value("scheduler/dequeued/redis")
            return request
        return None

    def _free_slots(self) -> int:
        downloader = getattr(getattr(self.crawler, "engine", None), "downloader", None)
        if downloader is None:
            return 1
        free = int(downloader.total_concurrency) - len(downloader.active)
        return max(1, min(free, MAX_POP_BATCH))

    def has_pending_requests(self) -> bool:
        if self.ctx.pending or self._leased:
            return True
        try:
            return self.crawl_active() and len(self) > 0
        except REDIS_ERRORS as exc:
            self._redis_trouble(exc)
            return True  # not idle: try again at the next poll rather than finish

    def _redis_trouble(self, exc: Exception) -> None:
        """Redis unreachable for a moment: keep going, say so at most every 10 s."""
        now = time.monotonic()
        if now - getattr(self, "_last_warning", 0.0) > 10:
            self._last_warning = now
            logger.warning("Redis unavailable (%s): retrying", redact_text(str(exc)))
