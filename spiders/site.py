"""``crawl site``: archive websites page by page with their page requisites.

Pages are followed within the scope (``crawler.scope``); page requisites (images, CSS, JS,
fonts, media, icons, frames) of every in-scope page are captured wherever they are hosted, as
archivists expect from a replayable capture. CSS is parsed for ``url()`` and ``@import``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy import Request
from scrapy.http import Response, TextResponse

from crawler.browser import BROWSER_META_KEY, PAGE_META_KEY
from crawler.browser.items import page_item
from crawler.scope import Scope
from spiders._base import ArchiveSpider

CSS_URL_RE = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)|@import\s+(['"])([^'"]+)\3""", re.I)
HTML_TYPES = ("text/html", "application/xhtml+xml")

REQUISITE_XPATH = " | ".join((
    "//img/@src", "//img/@data-src", "//input[@type='image']/@src",
    "//script/@src", "//link[contains(concat(' ', normalize-space(@rel), ' '), ' stylesheet ')]/@href",
    "//link[contains(@rel, 'icon')]/@href", "//link[@rel='preload' or @rel='modulepreload']/@href",
    "//video/@src", "//video/@poster", "//audio/@src", "//source/@src", "//track/@src",
    "//embed/@src", "//object/@data", "//iframe/@src", "//frame/@src",
    "//*[@background]/@background",
))
SRCSET_XPATH = "//img/@srcset | //source/@srcset | //img/@data-srcset"


def _srcset_urls(value: str) -> Iterator[str]:
    for candidate in value.split(","):
        url = candidate.strip().split(" ", 1)[0]
        if url:
            yield url


def css_urls(text: str) -> Iterator[str]:
    for m in CSS_URL_RE.finditer(text):
        url = (m.group(2) or m.group(4) or "").strip()
        if url and not url.startswith(("data:", "#")):
            yield url


def _usable(url: str) -> bool:
    return url.startswith(("http://", "https://"))


class SiteSpider(ArchiveSpider):
    quality_skip: frozenset[str] = frozenset()  # every capture-quality rule applies
    name = "site"

    def __init__(
        self,
        seeds: list[str] | None = None,
        scope: str = "prefix",
        depth: int = 0,
        excludes: list[str] | None = None,
        max_query_variants: int = 20,
        max_url_length: int = 1024,
        max_path_repeats: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.seeds = list(seeds or [])
        self.max_depth = int(depth)
        self.scope = Scope(
            scope, self.seeds, list(excludes or []), max_url_length=max_url_length,
            max_path_repeats=max_path_repeats, max_query_variants=max_query_variants,
        )
        self._yielded: set[str] = set(self.seeds)

    def _page_meta(self) -> dict[str, Any]:
        """Pages are rendered in the browser with ``--browser`` (``ARCHIVE_BROWSER_ENABLED``)."""
        if self.settings.getbool("ARCHIVE_BROWSER_ENABLED"):
            return {"kind": "page", BROWSER_META_KEY: True}
        return {"kind": "page"}

    async def start(self) -> AsyncIterator[Any]:
        for url in self.seeds:
            yield Request(url, callback=self.parse_page, cb_kwargs={"depth": 0}, meta=self._page_meta())

    def parse_page(self, response: Response, depth: int = 0) -> Iterator[Any]:
        if PAGE_META_KEY in response.meta and isinstance(response, TextResponse):
            # Rendered in the browser: its requisites are already captured; links come from
            # the rendered DOM; title and text go to the pages table.
            item = page_item(response, self.settings.get("ARCHIVE_CRAWL_ID") or "")
            if item is not None:
                yield item
            yield from self._links(response, depth)
            return
        ctype = response.headers.get(b"Content-Type", b"").decode("latin-1").lower()
        if isinstance(response, TextResponse) and any(t in ctype for t in HTML_TYPES):
            yield from self._from_html(response, depth)
        elif "text/css" in ctype and isinstance(response, TextResponse):
            yield from self._requisites(response, css_urls(response.text))

    def parse_requisite(self, response: Response) -> Iterator[Request]:
        ctype = response.headers.get(b"Content-Type", b"").decode("latin-1").lower()
        if "text/css" in ctype and isinstance(response, TextResponse):
            yield from self._requisites(response, css_urls(response.text))

    def _new(self, url: str) -> bool:
        """First time this run sees ``url``? (Saves building Requests the frontier would drop.)"""
        if url in self._yielded:
            return False
        self._yielded.add(url)
        return True

    def _requisites(self, response: Response, urls: Iterator[str]) -> Iterator[Request]:
        for raw in urls:
            url = response.urljoin(raw.strip()).split("#", 1)[0]
            if _usable(url) and self._new(url):
                yield Request(url, callback=self.parse_requisite, meta={"kind": "requisite"}, priority=10)

    def _from_html(self, response: TextResponse, depth: int) -> Iterator[Request]:
        sel = response.selector
        urls = sel.xpath(REQUISITE_XPATH).getall()
        urls += [u for v in sel.xpath(SRCSET_XPATH).getall() for u in _srcset_urls(v)]
        urls += list(css_urls(" ".join(sel.xpath("//style/text()").getall())))
        urls += list(css_urls(" ".join(sel.xpath("//@style").getall())))
        yield from self._requisites(response, iter(urls))
        yield from self._links(response, depth)

    def _links(self, response: TextResponse, depth: int) -> Iterator[Request]:
        sel = response.selector
        if not 200 <= response.status < 300:
            return
        if self.max_depth and depth >= self.max_depth:
            return
        for href in sel.xpath("//a/@href | //area/@href").getall():
            url = response.urljoin(href.strip()).split("#", 1)[0]
            if url in self._yielded or not _usable(url) or not self.scope.in_scope(url):
                continue
            if self.scope.is_trap(url):
                self._yielded.add(url)
                self.crawler.stats.inc_value("scope/trap_bounded")
                continue
            self._yielded.add(url)
            yield Request(url, callback=self.parse_page, cb_kwargs={"depth": depth + 1},
                          meta=self._page_meta())
