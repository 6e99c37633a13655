"""Scrapy settings that turn a crawl into a distributed one (scrapy-redis + our leases)."""

from __future__ import annotations

from typing import Any

from crawler.distributed.keys import CrawlKeys

SCHEDULER = "crawler.distributed.scheduler.LeaseScheduler"
QUEUE = "crawler.distributed.queue.LeasedPriorityQueue"
DUPEFILTER = "scrapy_redis.dupefilter.RFPDupeFilter"
SERIALIZER = "crawler.distributed.serializer"  # JSON with a schema: never pickle from Redis
EXTENSION = "crawler.distributed.extension.DistributedCrawlExtension"
SPIDER_MW = "crawler.distributed.middleware.LeaseSpiderMiddleware"
DOWNLOADER_MW = "crawler.distributed.middleware.LeaseDownloaderMiddleware"


def apply_redis_settings(settings: Any, url: str, crawl_id: str, role: str) -> None:
    """Point ``settings`` at the crawl's shared frontier in Redis.

    ``role`` is ``seed`` for the ``crawl`` command (runs the spider's ``start()``) and
    ``worker`` for ``socialark worker`` (takes requests from the queue only). Crawl-wide
    limits replace the per-process ones; the local SQLite frontier is off (Redis is the
    frontier). Later ``-s KEY=VALUE`` still override any of these.
    """
    keys = CrawlKeys(crawl_id)
    settings.setdict({
        "ARCHIVE_REDIS_URL": url,
        "ARCHIVE_REDIS_ROLE": role,
        "ARCHIVE_STATE_DIR": "",
        "CLOSESPIDER_PAGECOUNT": 0,
        "CLOSESPIDER_TIMEOUT": 0,
        "SCHEDULER": SCHEDULER,
        "SCHEDULER_QUEUE_CLASS": QUEUE,
        "SCHEDULER_QUEUE_KEY": keys.queue,
        "SCHEDULER_SERIALIZER": SERIALIZER,
        "SCHEDULER_DUPEFILTER_KEY": keys.seen,
        "SCHEDULER_PERSIST": True,
        "SCHEDULER_FLUSH_ON_START": False,
        "DUPEFILTER_CLASS": DUPEFILTER,
        "REDIS_URL": url,
        # A worker whose host is paused takes only a little shared work it cannot send yet
        # (then it stops pulling), so other workers, maybe from other addresses, take the rest.
        "ARCHIVE_RATELIMIT_MAX_HELD": max(settings.getint("CONCURRENT_REQUESTS", 16), 1),
    }, priority="cmdline")
    for name, path, order in (("EXTENSIONS", EXTENSION, 5), ("SPIDER_MIDDLEWARES", SPIDER_MW, 1),
                              ("DOWNLOADER_MIDDLEWARES", DOWNLOADER_MW, 1)):
        merged = dict(settings.getdict(name))
        merged[path] = order
        settings.set(name, merged, priority="cmdline")
