"""Host pauses shared by every worker of a distributed crawl.

A 429 with ``Retry-After`` (or an announced reset) closes the host's send gate in the worker
that received it (``crawler.gates``). The platform limits the crawl, not one process: without
sharing, every other worker would find out by sending into the window and getting its own 429.
Every ``POLL`` seconds each worker writes the pauses it learned from the host itself to the
crawl's ``pauses`` hash (host -> epoch second it reopens) and closes its own gates for the pauses
the others wrote, so a window one worker hit is respected by all within ~``POLL`` s.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from crawler.gates import Gates, gates_for

logger = logging.getLogger(__name__)

POLL = 0.1
SHARED = "shared: "  # reason prefix of pauses learned from another worker (never re-published)


class SharedPausesExtension:
    def __init__(self, crawler: Crawler, gates: Gates) -> None:
        self.crawler, self.gates = crawler, gates
        self.loop: task.LoopingCall | None = None
        self.published: dict[str, float] = {}
        self.applied: dict[str, float] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedPausesExtension:
        if not crawler.settings.get("ARCHIVE_REDIS_URL") \
                or not crawler.settings.getbool("ARCHIVE_RATELIMIT_ENABLED", True):
            raise NotConfigured("not a distributed crawl")
        ext = cls(crawler, gates_for(crawler))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self) -> None:
        # The first exchange runs now, before the engine sends anything: a worker joining in the
        # middle of another's 429 window must not open it with its first request.
        self.loop = task.LoopingCall(self.tick)
        self.loop.start(POLL, now=True)

    def spider_closed(self) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()

    def tick(self) -> None:
        try:
            self._exchange()
        except Exception as exc:  # Redis away: the heartbeat reports it; try again next tick
            logger.debug("Could not exchange host pauses through Redis: %s", exc)

    def _exchange(self) -> None:
        from crawler.distributed.context import worker_context

        ctx = worker_context(self.crawler)
        key = f"{ctx.keys.base}:pauses"
        now, wall = self.gates.clock(), self.gates.wall()
        own = {host: wall + g.paused_until - now for host, g in list(self.gates.hosts.items())
               if g.paused_until > now and not g.reason.startswith(SHARED)}
        pipe = ctx.client.pipeline(transaction=False)
        fresh = {h: u for h, u in own.items() if u > self.published.get(h, 0.0) + 0.05}
        if fresh:
            pipe.hset(key, mapping={h: f"{u:.3f}" for h, u in fresh.items()})
            pipe.expire(key, int(max(fresh.values()) - wall) + 3600)
        pipe.hgetall(key)
        answer: Any = pipe.execute()[-1]
        self.published.update(fresh)
        for raw_host, raw_until in (answer or {}).items():
            host = raw_host.decode() if isinstance(raw_host, bytes) else str(raw_host)
            try:
                until = float(raw_until)
            except (TypeError, ValueError):
                continue
            left = until - wall
            if left > 0.02 and host not in own:
                if until > self.applied.get(host, 0.0) + 0.5:
                    logger.info("Another worker was told to wait: pausing host %s for %.1fs",
                                host, left)
                self.applied[host] = max(until, self.applied.get(host, 0.0))
                self.gates.pause(host, left - self.gates.margin, SHARED + "another worker's 429")


__all__ = ["SharedPausesExtension"]
