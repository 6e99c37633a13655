"""What every distributed component of one worker process shares: client, keys, worker id.

Built once per crawler from its settings and kept on the crawler, so the scheduler, the
middlewares and the extension use one Redis connection pool and one worker id.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from scrapy.crawler import Crawler

from crawler.distributed.keys import CrawlKeys
from crawler.distributed.registry import connect
from crawler.distributed.scripts import POP, PUSH, Scripts, pairs

DEFAULT_LEASE_TTL = 60.0
DEFAULT_POLL_INTERVAL = 1.0


def new_worker_id() -> str:
    """``<host>-<pid>-<random>``: unique across machines and pid reuse."""
    host = socket.gethostname().split(".")[0] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class WorkerContext:
    url: str
    keys: CrawlKeys
    worker_id: str
    role: str
    lease_ttl: float
    poll_interval: float
    client: Any = field(repr=False)
    scripts: Scripts = field(repr=False)
    pending: list[tuple[str, int, bytes, str]] = field(default_factory=list, repr=False)
    releases: list[str] = field(default_factory=list, repr=False)
    pending_pages: int = 0
    queued: int = 0
    duplicates: int = 0

    @property
    def ttl_ms(self) -> int:
        return int(self.lease_ttl * 1000)

    @property
    def leases_key(self) -> str:
        return self.keys.leases(self.worker_id)

    def add_push(self, fingerprint: str, score: int, data: bytes, handover: str) -> None:
        """Queue a request at the next ``flush`` (one round trip for a callback's children)."""
        self.pending.append((fingerprint, score, data, handover))

    def release(self, token: str | None) -> None:
        """Release lease ``token`` at the next ``flush`` (after the pushes queued before it).

        Deferred so one round trip carries a response's children, its release, the page
        count and the next pop. A worker dying before that flush leaves the lease (the page
        is fetched again), never a lost child: Redis runs a pipeline's commands in order.
        """
        if token:
            self.releases.append(token)

    def flush(self, take: int = 0) -> list[tuple[str, bytes]]:
        """Send pending pushes, releases and the page count, then lease up to ``take`` requests
        from the queue, in one round trip; the leased (token, data) pairs."""
        if not (self.pending or self.releases or self.pending_pages or take):
            return []
        pending, self.pending = self.pending, []
        releases, self.releases = self.releases, []
        pages, self.pending_pages = self.pending_pages, 0
        keys = self.keys
        pipe = self.client.pipeline(transaction=False)
        for fingerprint, score, data, handover in pending:
            pipe.eval(PUSH, 3, keys.seen, keys.queue, self.leases_key,
                      fingerprint, score, data, handover)
        if releases:
            pipe.hdel(self.leases_key, *releases)
        if pages:
            pipe.incrby(keys.pages, pages)
        if take:
            pipe.eval(POP, 6, keys.meta, keys.queue, self.leases_key, keys.workers,
                      keys.lease_seq, keys.pages, self.worker_id, self.ttl_ms, take)
        try:
            results = pipe.execute()
        except Exception:
            self.pending = pending + self.pending  # keep them for the next flush
            self.releases = releases + self.releases
            self.pending_pages += pages
            raise
        added = sum(int(r) for r in results[: len(pending)])
        self.queued += added
        self.duplicates += len(pending) - added
        return [(_text(t), d) for t, d in pairs(results[-1])] if take else []


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def worker_context(crawler: Crawler) -> WorkerContext:
    ctx = getattr(crawler, "_socialark_worker", None)
    if ctx is None:
        s = crawler.settings
        url = s.get("ARCHIVE_REDIS_URL")
        client = connect(url)
        ctx = WorkerContext(
            url=url,
            keys=CrawlKeys(s.get("ARCHIVE_CRAWL_ID")),
            worker_id=new_worker_id(),
            role=s.get("ARCHIVE_REDIS_ROLE") or "worker",
            lease_ttl=max(1.0, s.getfloat("ARCHIVE_REDIS_LEASE_TTL", DEFAULT_LEASE_TTL)),
            poll_interval=max(0.05, s.getfloat("ARCHIVE_REDIS_POLL_INTERVAL",
                                               DEFAULT_POLL_INTERVAL)),
            client=client,
            scripts=Scripts(client),
        )
        crawler._socialark_worker = ctx  # type: ignore[attr-defined]
    return ctx
