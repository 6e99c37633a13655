"""The request flow of ``crawl ids --spec``: id -> (lookup ->) API answers + page -> media.

A mixin of ``IdsSpider`` (spiders/ids.py): callbacks must be methods of the spider, by name, so
requests survive the Redis queue. Every answer is archived by the recorder before it gets here;
these callbacks only decide what to fetch next and extract ``posts`` with the spec's extractor
(crawler/spec/extract.py, the same function ``index --rebuild`` uses).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

from scrapy import Request
from scrapy.http import Response, TextResponse

from crawler.spec.model import Spec

API_PRIORITY, MEDIA_PRIORITY, PAGE_PRIORITY = 0, -5, -10


class SpecFlow:
    """Needs ``self.spec`` (a loaded Spec) and ``self.crawler`` (a Scrapy spider)."""

    spec: Spec
    crawler: Any

    def spec_first_requests(self, item_id: str) -> list[Request]:
        spec = self.spec
        if spec.lookup is not None:
            return [Request(spec.expand(spec.lookup.url, id=item_id), callback=self.parse_lookup,
                            cb_kwargs={"item_id": item_id}, meta={"kind": "spec-lookup"})]
        return self._item_requests(item_id, item_id)

    def _item_requests(self, item_id: str, key: str) -> list[Request]:
        spec = self.spec
        out = [Request(spec.expand(t, id=item_id, key=key), callback=self.parse_spec_api,
                       cb_kwargs={"item_id": item_id}, meta={"kind": "spec-api"},
                       priority=API_PRIORITY) for t in spec.api]
        if spec.page is not None:
            meta: dict[str, Any] = {"kind": "spec-page"}
            if self.crawler.settings.getbool("ARCHIVE_BROWSER_ENABLED"):
                from crawler.browser import BROWSER_META_KEY

                meta[BROWSER_META_KEY] = True  # --browser renders the page, not the API answers
            out.append(Request(spec.expand(spec.page, id=item_id, key=key),
                               callback=self.parse_spec_page, cb_kwargs={"item_id": item_id},
                               meta=meta, priority=PAGE_PRIORITY))
        return out

    def _stat(self, key: str) -> None:
        self.crawler.stats.inc_value(key)

    def _outcome(self, response: Response) -> str:
        """hit, deleted or other (a failure the retry middleware gave up on)."""
        if self.spec.is_deleted(response.status, response.body):
            return "deleted"
        return "hit" if 200 <= response.status < 300 else "other"

    def _key_of(self, response: Response) -> str | None:
        lookup = self.spec.lookup
        assert lookup is not None
        text = response.body[:65536].decode("utf-8", "replace")
        if lookup.regex is not None:
            m = lookup.regex.search(text)
            return m.group(1) if m else None
        try:
            value = lookup.json.first(json.loads(text)) if lookup.json else None
        except ValueError:
            return None
        return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None

    def parse_lookup(self, response: Response, item_id: str) -> Iterator[Any]:
        outcome = self._outcome(response)
        if outcome == "deleted":
            self._stat("ids/miss")
            return
        if outcome == "other":
            self._stat(f"ids/other/{response.status}")
            return
        key = self._key_of(response)
        if key is None:
            self._stat("ids/other/no-key")
            return
        yield from self._item_requests(item_id, key)

    def parse_spec_api(self, response: Response, item_id: str) -> Iterator[Any]:
        outcome = self._outcome(response)
        if outcome != "hit":
            self._stat("ids/miss" if outcome == "deleted" else f"ids/other/{response.status}")
            return
        self._stat("ids/hit")
        from crawler.extraction import capture_from_response

        if self._extractor is not None:  # type: ignore[attr-defined]
            yield from self._extractor.extract(capture_from_response(response))  # type: ignore[attr-defined]
        try:
            body = json.loads(response.body)
        except ValueError:
            return
        urls = [u for path in self.spec.media_json for u in path.select(body, body)]
        yield from self._media_requests(response, urls + self._shortlinks_in(response))

    def parse_spec_page(self, response: Response, item_id: str) -> Iterator[Any]:
        if self._outcome(response) != "hit":
            return
        from crawler.browser import PAGE_META_KEY

        if PAGE_META_KEY in response.meta:  # rendered in Chromium (--browser)
            from crawler.browser.items import page_item

            page = page_item(response, self.crawler.settings.get("ARCHIVE_CRAWL_ID") or "")
            if page is not None:
                yield page
        if not isinstance(response, TextResponse):
            return
        urls = [u for css in self.spec.media_css for u in response.css(css).getall()]
        yield from self._media_requests(response, urls + self._shortlinks_in(response))

    def parse_spec_media(self, response: Response) -> Iterator[Any]:
        """A medium (or a shortlink's target, reached through its archived redirects)."""
        if response.status != 200:
            self.answer_ok(response)  # type: ignore[attr-defined]
            return
        self._stat("ids/media")
        for rx, repl in self.spec.variants:
            other = rx.sub(repl, response.url)
            if other != response.url:
                yield Request(other, callback=self.parse_spec_media, priority=MEDIA_PRIORITY)

    def _shortlinks_in(self, response: Response) -> list[str]:
        """Shortlinks written anywhere in the answer (text, attributes, JSON strings)."""
        if not self.spec.shortlinks:
            return []
        text = response.body[:4_000_000].decode("utf-8", "replace")
        return [m.group(0) for rx in self._shortlink_res() for m in rx.finditer(text)]

    def _shortlink_res(self) -> list[re.Pattern[str]]:
        cached = getattr(self, "_shortlink_cache", None)
        if cached is None:
            cached = [re.compile(re.escape(self.spec.expand(p)) + r"[A-Za-z0-9_-]+")
                      for p in self.spec.shortlinks]
            self._shortlink_cache = cached
        return cached

    def _media_requests(self, response: Response, urls: list[Any]) -> Iterator[Request]:
        seen: set[str] = set()
        for raw in urls:
            if not isinstance(raw, str) or not raw.strip():
                continue
            url = urljoin(response.url, raw.strip())
            if not url.startswith(("http://", "https://")) or url in seen:
                continue
            seen.add(url)
            yield Request(url, callback=self.parse_spec_media, priority=MEDIA_PRIORITY)


__all__ = ["SpecFlow"]
