"""``crawl ids``: emergency ID enumeration — fetch item URLs directly from an ID range.

The approach that saved Parler: when a platform's items have sequential (or hex) ids, walking the
id space finds everything, including items nothing links to any more. Each id becomes one request
to ``--url-template``; a 2xx is a hit, a 404/410 a (cheap, expected) miss; everything fetched is
archived. A cursor file (``state/<collection>/<crawl_id>.ids-cursor``) records how far the id space
was handed out, so ``--resume`` continues without re-walking it; unfinished requests come back
from the frontier.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response

from crawler.browser import BROWSER_META_KEY, PAGE_META_KEY
from spiders._base import ArchiveSpider
from spiders._spec_flow import SpecFlow

logger = logging.getLogger(__name__)

MISS_STATUSES = (404, 410)


def format_id(value: int, fmt: str) -> str:
    return format(value, "x") if fmt == "hex" else str(value)


class IdsSpider(SpecFlow, ArchiveSpider):
    quality_skip: frozenset[str] = frozenset()  # every capture-quality rule applies
    name = "ids"

    def __init__(
        self,
        url_template: str = "",
        start: int = 0,
        end: int = 0,
        step: int = 1,
        id_format: str = "dec",
        ids: list[str] | None = None,
        parser: str | None = None,
        spec_text: str | None = None,
        spec_name: str | None = None,
        spec_vars: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec: Any = None
        if spec_text:  # crawl ids --spec: the whole spec travels in the crawl's arguments
            from crawler.spec.model import parse_spec, parse_vars

            self.spec = parse_spec(spec_text, spec_name or "crawl config",
                                   parse_vars(list(spec_vars or [])))
            url_template = url_template or "{id}"
            id_format = self.spec.id_format
        self.url_template = url_template
        self.first, self.last, self.step = int(start), int(end), int(step)
        self.id_format = id_format
        self.explicit_ids = list(ids or [])
        self.parser = parser
        self.cursor_path: Path | None = None
        self._extractor: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> IdsSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        state_dir, crawl_id = crawler.settings.get("ARCHIVE_STATE_DIR"), crawler.settings.get("ARCHIVE_CRAWL_ID")
        if state_dir and crawl_id:
            spider.cursor_path = Path(state_dir) / f"{crawl_id}.ids-cursor"
        if spider.spec is not None:
            from crawler.spec.extract import extractor

            spider._extractor = extractor(spider.spec) if spider.spec.posts else None
            _apply_politeness(crawler, spider.spec)
        elif spider.parser:
            from crawler.extraction import load_extractors

            found = [e for e in load_extractors() if e.platform == spider.parser]
            spider._extractor = found[0] if found else None
        return spider

    def _id_sequence(self, resume_from: int) -> Iterator[tuple[int, str]]:
        if self.explicit_ids:
            for n, raw in enumerate(self.explicit_ids):
                if n >= resume_from:
                    yield n, raw
            return
        value = self.first + resume_from * self.step
        n = resume_from
        while (self.step > 0 and value <= self.last) or (self.step < 0 and value >= self.last):
            yield n, format_id(value, self.id_format)
            value += self.step
            n += 1

    def _load_cursor(self) -> int:
        if self.cursor_path and self.cursor_path.exists():
            return int(json.loads(self.cursor_path.read_text())["next"])
        return 0

    def _save_cursor(self, nxt: int) -> None:
        if self.cursor_path:
            tmp = self.cursor_path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"next": nxt}))
            tmp.replace(self.cursor_path)

    async def start(self) -> AsyncIterator[Any]:
        resume_from = self._load_cursor()
        if resume_from:
            logger.info("Resuming id enumeration at position %d", resume_from)
        for n, item_id in self._id_sequence(resume_from):
            if self.spec is not None:
                for request in self.spec_first_requests(item_id):
                    yield request
            else:
                meta: dict[str, Any] = {"kind": "id"}
                if self.settings.getbool("ARCHIVE_BROWSER_ENABLED"):
                    meta[BROWSER_META_KEY] = True  # --browser: render each item page in Chromium
                url = self.url_template.replace("{id}", item_id)
                yield Request(url, callback=self.parse_item, cb_kwargs={"item_id": item_id},
                              meta=meta)
            # The frontier commits this request before the cursor moves past it (its batch is
            # flushed at least every 0.5 s), so a crash can only make us re-hand-out ids.
            if n % 100 == 99 and self.frontier is not None:
                self.frontier.commit()
                self._save_cursor(n + 1)
        if self.frontier is not None:
            self.frontier.commit()
        self._save_cursor(len(self.explicit_ids) if self.explicit_ids else
                          max(0, (self.last - self.first) // self.step + 1))

    def parse_item(self, response: Response, item_id: str) -> Iterator[Any]:
        stats = self.crawler.stats
        if PAGE_META_KEY in response.meta:
            from crawler.browser.items import page_item

            page = page_item(response, self.settings.get("ARCHIVE_CRAWL_ID") or "")
            if page is not None and 200 <= response.status < 300:
                yield page
        if 200 <= response.status < 300:
            stats.inc_value("ids/hit")
            if self._extractor is not None:
                from crawler.extraction import capture_from_response

                yield from self._extractor.extract(capture_from_response(response))
        elif response.status in MISS_STATUSES:
            stats.inc_value("ids/miss")
        else:
            stats.inc_value(f"ids/other/{response.status}")


def _apply_politeness(crawler: Crawler, spec: Any) -> None:
    """The spec's per-host delay/concurrency as Scrapy download slots (keyed by hostname).

    Runs while the spider is created, before Scrapy freezes the settings and builds the
    downloader; ``-s DOWNLOAD_SLOTS`` entries already there win."""
    if not spec.politeness:
        return
    slots = dict(crawler.settings.getdict("DOWNLOAD_SLOTS"))
    for host, limits in spec.politeness.items():
        entry: dict[str, Any] = {}
        if limits.delay is not None:
            entry["delay"] = limits.delay
        if limits.concurrency is not None:
            entry["concurrency"] = limits.concurrency
        slots.setdefault(host, entry)
    crawler.settings.set("DOWNLOAD_SLOTS", slots, priority="spider")
