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
from crawler.distributed.scripts import Scripts, pairs

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

    def _encode_request(self, request: Request) -> bytes:
        return self.serializer.dumps(request_dict(request, self.spider))

    def push(self, request: Request, fingerprint: str = "", handover: str = "") -> bool:
        """Queue ``request`` (unless ``fingerprint`` was seen); release lease ``handover``."""
        return bool(self.scripts.push(
            keys=[self.keys.seen, self.keys.queue, self.keys.leases(self.worker_id)],
            args=[fingerprint, -request.priority, self._encode_request(request), handover],
        ))

    def pop(self, timeout: int = 0) -> Request | None:
        """The next request, leased; entries that are not valid requests are dropped.

        (The scheduler leases in batches through ``WorkerContext.flush`` and ``leased``.)
        """
        for _ in range(MAX_BAD_PER_POP):
            result = pairs(self.scripts.pop(
                keys=[self.keys.meta, self.keys.queue, self.keys.leases(self.worker_id),
                      self.keys.workers, self.keys.lease_seq, self.keys.pages],
                args=[self.worker_id, self.ttl_ms, 1],
            ))
            if not result:
                return None
            token, data = result[0]
            request = self.leased(_text(token), data)
            if request is not None:
                return request
            self.release(_text(token))
        return None

    def leased(self, token: str, data: bytes) -> Request | None:
        """The request of a leased queue entry, carrying its lease token; None for an entry
        that is not a valid request (planted in Redis: a pickle, an unknown field, a callback
        the spider lacks), logged once so a worker neither runs it nor loops on it. The
        caller releases the lease of such an entry (which drops it)."""
        try:
            request: Request = self._decode_request(data)
        except Exception as exc:
            logger.error("Dropped an invalid entry from the Redis queue of crawl %s: %s",
                         self.keys.crawl_id, exc)
            return None
        request.meta[LEASE_META] = token
        return request

    def release(self, token: str) -> None:
        self.server.hdel(self.keys.leases(self.worker_id), token)

    def held(self) -> int:
        return int(self.server.hlen(self.keys.leases(self.worker_id)))


def method_name(spider: Any, func: Any) -> Any:
    """The spider method name of a callback/errback (``None`` and names pass through).

    ``Request.to_dict`` finds it with ``inspect.getmembers`` on the spider for every request
    (about a millisecond each); a bound method of the spider is named by ``__name__`` when
    the class attribute of that name is the same function. Anything else goes the slow way.
    """
    if func is None or isinstance(func, str):
        return func
    function = getattr(func, "__func__", None)
    if function is not None and getattr(func, "__self__", None) is spider:
        name = function.__name__
        if getattr(type(spider), name, None) is function:
            return name
    from scrapy.http.request import _find_method

    return _find_method(spider, func)


def request_dict(request: Request, spider: Any) -> dict[str, Any]:
    """``request.to_dict(spider=spider)``, without its per-request ``inspect`` scan."""
    d: dict[str, Any] = {
        "url": request.url,
        "callback": method_name(spider, request.callback),
        "errback": method_name(spider, request.errback),
        "headers": dict(request.headers),
    }
    for attr in request.attributes:
        d.setdefault(attr, getattr(request, attr))
    if type(request) is not Request:
        d["_class"] = type(request).__module__ + "." + type(request).__name__
    return d


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
