"""scrapy-redis's priority queue, with a lease on every request popped.

scrapy-redis pops with ZRANGE+ZREMRANGEBYRANK and forgets the request: a worker killed with
requests in flight loses them, and the seen-set then blocks them for good. Here a pop moves
the request into the worker's lease hash in the same Lua step; the request's ``meta`` carries
the lease token until it is released (see ``crawler.distributed.middleware``) or handed over
to the request that replaces it (retry, redirect).
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Request
from scrapy_redis.queue import PriorityQueue

from crawler.distributed.keys import CrawlKeys
from crawler.distributed.scripts import Scripts

LEASE_META = "_socialark_lease"
MAX_BAD_PER_POP = 100
logger = logging.getLogger(__name__)


class LeasedPriorityQueue(PriorityQueue):
    """``scrapy_redis.queue.PriorityQueue`` whose pops are leased to one worker."""

    keys: CrawlKeys
    worker_id: str
    ttl_ms: int

    def configure(self, keys: CrawlKeys, worker_id: str, ttl_ms: int) -> None:
        self.keys = keys
        self.worker_id = worker_id
        self.ttl_ms = ttl_ms
        self.scripts = Scripts(self.server)

    def encode(self, request: Request) -> bytes:
        return self._encode_request(request)

    def push(self, request: Request, fingerprint: str = "", handover: str = "") -> bool:
        """Queue ``request`` (unless ``fingerprint`` was seen); release lease ``handover``."""
        return bool(self.scripts.push(
            keys=[self.keys.seen, self.keys.queue, self.keys.leases(self.worker_id)],
            args=[fingerprint, -request.priority, self._encode_request(request), handover],
        ))

    def pop(self, timeout: int = 0) -> Request | None:
        """The next request, leased; entries that are not valid requests are dropped.

        An entry planted in Redis (a pickle, an unknown field, a callback the spider lacks)
        is logged once and removed, so a worker neither runs it nor loops on it.
        """
        for _ in range(MAX_BAD_PER_POP):
            result = self.scripts.pop(
                keys=[self.keys.meta, self.keys.queue, self.keys.leases(self.worker_id),
                      self.keys.workers, self.keys.lease_seq, self.keys.pages],
                args=[self.worker_id, self.ttl_ms],
            )
            if not result:
                return None
            token, data = result
            try:
                request: Request = self._decode_request(data)
            except Exception as exc:
                self.release(_text(token))
                logger.error("Dropped an invalid entry from the Redis queue of crawl %s: %s",
                             self.keys.crawl_id, exc)
                continue
            request.meta[LEASE_META] = _text(token)
            return request
        return None

    def release(self, token: str) -> None:
        self.server.hdel(self.keys.leases(self.worker_id), token)

    def held(self) -> int:
        return int(self.server.hlen(self.keys.leases(self.worker_id)))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
