"""Releasing leases: after a response's callback output is queued, or when a request failed.

``LeaseSpiderMiddleware`` sits closest to the engine. It queues the requests a callback yields
itself (what Scrapy's scraper would do with them) and releases the response's lease only once
the callback is exhausted, so a worker dying at any point leaves either the lease (the page is
fetched again) or the children in the queue, never neither. The release is sent with the next
round trip (``WorkerContext.flush``), after the children, in the same pipeline. It also keeps ``start()`` to the
process that seeds the crawl and marks the crawl running when seeding is done.

``LeaseDownloaderMiddleware`` releases the lease of a request whose download failed for good
(after retries) or was refused (robots.txt, offsite). Retries and redirects are new requests
carrying the lease token: the scheduler hands the lease over when it queues them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response

from crawler.distributed.context import WorkerContext, worker_context
from crawler.distributed.queue import LEASE_META
from crawler.distributed.registry import mark_running
from crawler.stop import is_stop

logger = logging.getLogger(__name__)

SEED_AT_ONCE = 1000  # start requests queued eagerly (see process_start)


class LeaseSpiderMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.ctx: WorkerContext = worker_context(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LeaseSpiderMiddleware:
        return cls(crawler)

    def _prepare(self, request: Request) -> Request:
        """Children start without a lease; failures reach the spider's errback (stats)."""
        request.meta.pop(LEASE_META, None)
        spider = self.crawler.spider
        if request.errback is None and hasattr(spider, "archive_errback"):
            request = request.replace(errback=spider.archive_errback)
        return request

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        if self.ctx.role != "seed":
            return  # workers take their requests from the shared queue only
        # Scrapy pulls start requests lazily (only while its scheduler is idle), and the shared
        # queue is rarely idle: a small start set is queued at once so the crawl leaves
        # "seeding" right away; a large one (e.g. an id range) streams as before.
        buffered: list[Any] = []
        iterator = start.__aiter__()
        exhausted = False
        while len(buffered) < SEED_AT_ONCE:
            try:
                buffered.append(await iterator.__anext__())
            except StopAsyncIteration:
                exhausted = True
                break
        if exhausted and self.crawler.engine is not None:
            for item in buffered:
                if isinstance(item, Request):
                    self.crawler.engine.crawl(self._prepare(item))
                else:
                    yield item
            self.ctx.flush()
            mark_running(self.ctx.client, self.ctx.keys.crawl_id)
            return
        for item in buffered:
            yield self._prepare(item) if isinstance(item, Request) else item
        async for item in iterator:
            yield self._prepare(item) if isinstance(item, Request) else item
        self.ctx.flush()
        mark_running(self.ctx.client, self.ctx.keys.crawl_id)
        logger.info("Seeded crawl %s", self.ctx.keys.crawl_id)

    def _schedule(self, request: Request) -> None:
        self.crawler.engine.crawl(self._prepare(request))

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        try:
            async for item in result:
                if isinstance(item, Request):
                    self._schedule(item)
                else:
                    yield item
        except Exception:
            self.ctx.release(response.meta.get(LEASE_META))
            raise
        self.ctx.release(response.meta.get(LEASE_META))

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterator[Any]:
        try:
            for item in result:
                if isinstance(item, Request):
                    self._schedule(item)
                else:
                    yield item
        except Exception:
            self.ctx.release(response.meta.get(LEASE_META))
            raise
        self.ctx.release(response.meta.get(LEASE_META))

    def process_spider_exception(self, response: Response, exception: Exception) -> None:
        self.ctx.release(response.meta.get(LEASE_META))


class LeaseDownloaderMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.ctx: WorkerContext = worker_context(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LeaseDownloaderMiddleware:
        return cls(crawler)

    def process_exception(self, request: Request, exception: BaseException) -> None:
        if is_stop(exception):
            return  # cancelled by a stop: the lease is put back in the queue when the worker leaves
        self.ctx.release(request.meta.get(LEASE_META))
