"""Spider middleware owning the crawl's ``storage.frontier.Frontier`` and keeping it in step.

The frontier (``state/<collection>/<crawl_id>.frontier.sqlite``) is crawl state, not spider
state: this middleware opens it (``from_crawler``) and is the one place that holds it. The other
components reach it with ``frontier_of(crawler)`` (the WARC extension commits it, the stop
extension closes it, ``ArchiveSpider`` marks failed downloads done); nothing reads it off the
spider. ``ArchiveSpider.closed`` asks this middleware to close it, so it is still closed first
among the ``spider_closed`` handlers, before the WARC writer, as when the spider owned it.

Every request a callback yields is recorded as queued (and dropped if it was seen before, in
this run or an earlier one); once a callback's output is fully consumed, its request is marked
done in the same batch. Download errors reach ``ArchiveSpider.archive_errback``, which marks the
request done with its outcome. On ``--resume`` the unfinished requests are yielded first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response

from crawler.write_failure import report_write_failure
from storage.errors import ArchiveWriteError
from storage.frontier import Frontier, FrontierEntry

logger = logging.getLogger(__name__)

FP_KEY = "frontier_fp"


def _jsonable_meta(meta: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in meta.items():
        if key.startswith("_") or key in ("depth", "download_slot", "download_latency"):
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        out[key] = value
    return out


def frontier_of(crawler: Crawler) -> Frontier | None:
    """The crawl's frontier (None without state dir and crawl id, or once closed)."""
    try:
        mw = crawler.get_spider_middleware(FrontierMiddleware)
    except RuntimeError:  # the engine (and its middlewares) is not built yet
        return None
    return mw.frontier if mw is not None else None


class FrontierMiddleware:
    def __init__(self, crawler: Crawler, frontier: Frontier | None = None) -> None:
        self.crawler = crawler
        self.frontier = frontier

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FrontierMiddleware:
        state_dir = crawler.settings.get("ARCHIVE_STATE_DIR")
        crawl_id = crawler.settings.get("ARCHIVE_CRAWL_ID")
        frontier = None
        if state_dir and crawl_id:
            frontier = Frontier(Path(state_dir) / f"{crawl_id}.frontier.sqlite")
            frontier.on_commit_error = lambda exc: report_write_failure(crawler, exc)
        return cls(crawler, frontier)

    def close(self) -> None:
        """Commit and close the frontier; later done marks are not recorded. A failed commit
        is a write failure (the uncommitted batch is fetched again on resume)."""
        frontier, self.frontier = self.frontier, None
        if frontier is None:
            return
        try:
            frontier.close()
        except ArchiveWriteError as exc:
            report_write_failure(self.crawler, exc)

    def _fingerprint(self, request: Request) -> str:
        return self.crawler.request_fingerprinter.fingerprint(request).hex()

    def _track(self, request: Request) -> Request | None:
        frontier = self.frontier
        if frontier is None:
            return request
        if request.errback is None and hasattr(self.crawler.spider, "archive_errback"):
            # plain assignment, not request.replace(): keeps Scrapy's cached fingerprint
            request.errback = self.crawler.spider.archive_errback
        if FP_KEY in request.meta and request.dont_filter:
            return request
        fp = self._fingerprint(request)
        if frontier.known(fp):
            return None
        frontier.add(
            FrontierEntry(
                fingerprint=fp, url=request.url, method=request.method,
                callback=getattr(request.callback, "__name__", None),
                errback=getattr(request.errback, "__name__", None),
                cb_kwargs=request.cb_kwargs, meta=_jsonable_meta(request.meta),
                priority=request.priority, body=request.body,
                headers={k.decode(): [v.decode("latin-1") for v in vs] for k, vs in request.headers.items()},
            )
        )
        request.meta[FP_KEY] = fp
        return request

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        frontier = self.frontier
        if frontier is not None:
            resumed = 0
            for entry in frontier.pending():
                resumed += 1
                yield self._rebuild(entry)
            if resumed:
                logger.info("Resuming: %d unfinished requests from the previous run", resumed)
                self.crawler.stats.set_value("frontier/resumed", resumed)
        async for item in start:
            if isinstance(item, Request):
                item = self._track(item)
                if item is None:
                    continue
            yield item

    def _rebuild(self, entry: FrontierEntry) -> Request:
        spider = self.crawler.spider
        meta = dict(entry.meta)
        meta[FP_KEY] = entry.fingerprint
        return Request(
            entry.url, method=entry.method, body=entry.body or None, headers=entry.headers,
            callback=getattr(spider, entry.callback) if entry.callback else None,
            errback=getattr(spider, entry.errback) if entry.errback else None,
            cb_kwargs=entry.cb_kwargs, meta=meta, priority=entry.priority, dont_filter=True,
        )

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        async for item in result:
            if isinstance(item, Request):
                item = self._track(item)
                if item is None:
                    continue
            yield item
        self._done(response)

    def process_spider_output(self, response: Response, result: Any) -> Any:
        for item in result:
            if isinstance(item, Request):
                item = self._track(item)
                if item is None:
                    continue
            yield item
        self._done(response)

    def _done(self, response: Response) -> None:
        fp = response.meta.get(FP_KEY)
        if fp and self.frontier is not None:
            self.frontier.done(fp, f"http_{response.status}")
