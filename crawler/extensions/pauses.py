"""Publish the hosts a running crawl is not sending to, for ``status`` and ``crawl-status``.

Every second, if the set of paused hosts (``crawler.gates``) changed, writes it to the crawl's
row in the index (``storage.crawl_live``) and, in a ``--redis`` crawl, to the worker's status
hash (field ``paused``), where ``socialark status`` and ``socialark crawl-status`` read it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from twisted.internet import task

from crawler.gates import Gates, gates_for
from storage.crawl_live import write_paused_hosts

logger = logging.getLogger(__name__)

INTERVAL = 1.0


class PauseReportExtension:
    def __init__(self, crawler: Crawler, gates: Gates, db_path: Path, crawl_id: str,
                 redis: bool) -> None:
        self.crawler = crawler
        self.gates = gates
        self.db_path = db_path
        self.crawl_id = crawl_id
        self.redis = redis
        self.loop: task.LoopingCall | None = None
        self.last: list[tuple[str, str, int]] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PauseReportExtension:
        s = crawler.settings
        ext = cls(crawler, gates_for(crawler), Path(s.get("ARCHIVE_DATA_DIR")) / "index.db",
                  s.get("ARCHIVE_CRAWL_ID") or "unnamed", bool(s.get("ARCHIVE_REDIS_URL")))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self) -> None:
        self.loop = task.LoopingCall(self.tick)
        self.loop.start(INTERVAL, now=False)

    def spider_closed(self) -> None:
        # The final stats replace the live ones in the index; a worker's status hash goes away
        # when it leaves the crawl.
        if self.loop is not None and self.loop.running:
            self.loop.stop()

    def tick(self) -> None:
        pauses = [p.to_dict() for p in self.gates.paused()]
        key = [(p["host"], p["reason"], round(p["until"])) for p in pauses]
        if key != self.last and self.publish(pauses):
            self.last = key

    def publish(self, pauses: list[dict[str, Any]]) -> bool:
        ok = write_paused_hosts(self.db_path, self.crawl_id, pauses)
        if self.redis:
            try:
                from crawler.distributed.context import worker_context

                ctx = worker_context(self.crawler)
                ctx.client.hset(ctx.keys.info(ctx.worker_id), "paused", json.dumps(pauses))
            except Exception as exc:  # Redis down: the heartbeat reports it; retry next tick
                logger.debug("Could not publish paused hosts to Redis: %s", exc)
                ok = False
        return ok
