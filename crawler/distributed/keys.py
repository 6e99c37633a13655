"""Names of the Redis keys one distributed crawl uses (all under ``socialark:crawl:<id>``).

One place for them, so the scheduler, the workers' extension, ``crawl-status`` and the docs
agree. Every key of a crawl shares its prefix: ``redis-cli --scan --pattern
'socialark:crawl:<id>*'`` lists them and ``UNLINK`` on that list forgets the crawl.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CRAWLS_KEY = "socialark:crawls"  # zset: crawl id -> creation time (ms)
CRAWL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class CrawlIdError(ValueError):
    """A crawl id a user typed that cannot be one of ours."""


def check_crawl_id(crawl_id: str) -> str:
    if not CRAWL_ID_RE.match(crawl_id):
        raise CrawlIdError(
            f"invalid crawl id {crawl_id!r}: letters, digits, '.', '_' and '-' only"
        )
    return crawl_id


@dataclass(frozen=True)
class CrawlKeys:
    crawl_id: str

    @property
    def base(self) -> str:
        return f"socialark:crawl:{self.crawl_id}"

    @property
    def meta(self) -> str:
        """hash: config (JSON), state, reason, max_pages, deadline (ms), created (ms)."""
        return self.base

    @property
    def queue(self) -> str:
        """zset of encoded requests scored by -priority (scrapy-redis ``PriorityQueue``)."""
        return f"{self.base}:queue"

    @property
    def seen(self) -> str:
        """set of request fingerprints (scrapy-redis ``RFPDupeFilter``)."""
        return f"{self.base}:seen"

    @property
    def workers(self) -> str:
        """zset: worker id -> lease expiry (ms, Redis clock)."""
        return f"{self.base}:workers"

    @property
    def lease_prefix(self) -> str:
        return f"{self.base}:leases:"

    def leases(self, worker_id: str) -> str:
        """hash: lease token -> ``<score>|<encoded request>`` held by one worker."""
        return f"{self.lease_prefix}{worker_id}"

    @property
    def info_prefix(self) -> str:
        return f"{self.base}:worker:"

    def info(self, worker_id: str) -> str:
        """hash: host, pid, started, pages, rate, data_dir of one live worker."""
        return f"{self.info_prefix}{worker_id}"

    @property
    def lease_seq(self) -> str:
        return f"{self.base}:lease-seq"

    @property
    def pages(self) -> str:
        """counter: responses received by all workers (``--max-pages`` is checked against it)."""
        return f"{self.base}:pages"

    @property
    def requeued(self) -> str:
        """counter: requests put back in the queue from workers whose heartbeat expired."""
        return f"{self.base}:requeued"

    @property
    def lost_workers(self) -> str:
        """counter: workers whose heartbeat expired."""
        return f"{self.base}:lost-workers"
