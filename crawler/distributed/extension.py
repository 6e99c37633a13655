"""One worker's life in a shared crawl: heartbeat, reaping dead workers, limits, finishing.

Every ``poll_interval`` the worker pokes the engine (another worker may have queued work
while this one was idle). Every ``lease_ttl / 4`` it renews its heartbeat, publishes its page
count and rate for ``crawl-status``, and requeues the leases of workers whose heartbeat expired
(any worker may do it: the script is atomic and idempotent).

When the engine goes idle, the worker stays open unless the crawl is finished (queue empty,
no live worker holding a lease) or stopping (``crawl-stop``, ``--max-pages``, ``--max-time``);
then it closes with the crawl's reason, so WARCs are closed and mirrored as usual.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, DontCloseSpider, NotConfigured
from twisted.internet import task

from crawler.distributed.context import WorkerContext, worker_context
from crawler.distributed.registry import crawl_state

logger = logging.getLogger(__name__)


class DistributedCrawlExtension:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.ctx: WorkerContext = worker_context(crawler)
        self.loop: task.LoopingCall | None = None
        self.pages = 0
        self.last_beat = 0.0
        self.rate_mark = (time.monotonic(), 0)
        self.closing = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DistributedCrawlExtension:
        if not crawler.settings.get("ARCHIVE_REDIS_URL"):
            raise NotConfigured("not a distributed crawl")
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.response_received, signal=signals.response_received)
        return ext

    # -- lifecycle ---------------------------------------------------------------------------
    def spider_opened(self) -> None:
        ctx = self.ctx
        ctx.client.hset(ctx.keys.info(ctx.worker_id), mapping={
            "host": socket.gethostname(), "pid": os.getpid(), "role": ctx.role,
            "started": time.time(), "pages": 0, "rate": 0.0,
            "data_dir": self.crawler.settings.get("ARCHIVE_DATA_DIR") or "",
        })
        self.heartbeat()
        logger.info("Worker %s joined crawl %s (lease TTL %.0fs)", ctx.worker_id,
                    ctx.keys.crawl_id, ctx.lease_ttl)
        self.loop = task.LoopingCall(self.tick)
        self.loop.start(ctx.poll_interval, now=False)

    def spider_closed(self, reason: str) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        ctx = self.ctx
        ctx.flush()
        self.crawler.stats.set_value("scheduler/enqueued/redis", ctx.queued)
        self.crawler.stats.set_value("scheduler/duplicates/redis", ctx.duplicates)
        returned = ctx.scripts.leave(
            keys=[ctx.keys.workers, ctx.leases_key, ctx.keys.queue, ctx.keys.info(ctx.worker_id)],
            args=[ctx.worker_id],
        )
        if returned:
            logger.info("Put %d unfinished requests back in the shared queue", returned)
        self.crawler.stats.set_value("distributed/requeued_on_leave", int(returned))
        self.crawler.stats.set_value("distributed/worker_id", ctx.worker_id)

    def response_received(self) -> None:
        """Counted crawl-wide at the next flush (with the lease release, or the next tick)."""
        self.pages += 1
        self.ctx.pending_pages += 1

    # -- periodic ----------------------------------------------------------------------------
    def tick(self) -> None:
        try:
            self.ctx.flush()
            if time.monotonic() - self.last_beat >= self.ctx.lease_ttl / 4:
                self.heartbeat()
                self.reap()
            self._poke_engine()
        except Exception:  # a Redis hiccup must not stop the loop; the next tick retries
            logger.exception("Distributed heartbeat failed")

    def heartbeat(self) -> None:
        ctx = self.ctx
        self.last_beat = time.monotonic()
        revived = ctx.scripts.heartbeat(keys=[ctx.keys.workers], args=[ctx.worker_id, ctx.ttl_ms])
        if revived and self.pages:
            logger.warning("Heartbeat of %s had expired: its leases were given to other workers "
                           "(some pages may be fetched twice)", ctx.worker_id)
        then, pages_then = self.rate_mark
        now = time.monotonic()
        rate = (self.pages - pages_then) / (now - then) if now > then else 0.0
        self.rate_mark = (now, self.pages)
        ctx.client.hset(ctx.keys.info(ctx.worker_id), mapping={
            "pages": self.pages, "rate": round(rate, 2), "seen_at": time.time(),
        })

    def reap(self) -> None:
        ctx = self.ctx
        dead, requeued = ctx.scripts.reap(
            keys=[ctx.keys.workers, ctx.keys.queue, ctx.keys.requeued, ctx.keys.lost_workers],
            args=[ctx.keys.lease_prefix, ctx.keys.info_prefix],
        )
        if dead:
            logger.warning("%d worker(s) stopped sending heartbeats: %d requests put back in the "
                           "queue", dead, requeued)
            self.crawler.stats.inc_value("distributed/requeued_from_dead", int(requeued))

    def _poke_engine(self) -> None:
        slot = getattr(self.crawler.engine, "_slot", None)
        if slot is not None and not self.closing:
            slot.nextcall.schedule()

    # -- idle: stay, or close with the crawl's reason --------------------------------------
    def spider_idle(self) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        try:
            self._check_finished()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            logger.warning("Redis unavailable (%s): waiting", exc)
            raise DontCloseSpider from exc

    def _check_finished(self) -> None:
        ctx = self.ctx
        ctx.flush()
        # The engine is idle, so nothing held by this worker is in progress: a lease still held
        # leaked (e.g. a request dropped by a signal handler). Requeue it rather than lose it.
        leaked = ctx.client.hlen(ctx.leases_key)
        if leaked:
            logger.warning("%d lease(s) held while idle: putting them back in the queue", leaked)
            ctx.scripts.requeue(keys=[ctx.leases_key, ctx.keys.queue])
        self.reap()
        state = ctx.scripts.finish_check(
            keys=[ctx.keys.meta, ctx.keys.queue, ctx.keys.workers], args=[ctx.keys.lease_prefix],
        )
        state = state.decode() if isinstance(state, bytes) else str(state)
        if state == "":
            logger.error("Crawl %s is no longer in Redis (restarted without persistence, or "
                         "deleted): stopping", ctx.keys.crawl_id)
            self.closing = True
            raise CloseSpider("shutdown")
        if state in ("finished", "stopping"):
            reason = crawl_state(ctx.client, ctx.keys.crawl_id)[1] or "finished"
            self.closing = True
            raise CloseSpider(reason)
        raise DontCloseSpider
