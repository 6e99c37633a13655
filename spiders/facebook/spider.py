"""``crawl facebook``: a page's timeline rendered in a logged-in browser (docs/facebook.md).

The page is rendered with the user's session (``--cookies``) and scrolled until the feed stops
growing (or ``--scroll-limit``): every ``POST /api/graphql/`` the scrolling makes is archived
with its body, like every browser exchange. Posts are parsed from the rendered DOM
(``spiders.facebook.parsers.articles``); each post's images are fetched by the wire-recording
handler; ``--post URL`` renders one permalink page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

from scrapy import Request
from scrapy.http import Response

from crawler.browser import BROWSER_META_KEY, PAGE_META_KEY
from crawler.browser.items import page_item
from crawler.items import Media, Post
from spiders._base import ArchiveSpider
from spiders.facebook.parsers import articles

BASE_URL = "https://www.facebook.com"
PLATFORM = "facebook"


class FacebookSpider(ArchiveSpider):
    quality_skip: frozenset[str] = frozenset()  # every capture-quality rule applies
    name = "facebook"

    def __init__(self, base_url: str = BASE_URL, pages: list[str] | None = None,
                 posts: list[str] | None = None, max_posts: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = base_url.rstrip("/")
        self.pages = list(pages or [])
        self.posts = list(posts or [])
        self.max_posts = int(max_posts or 0)
        self.fetched: set[str] = set()

    async def start(self) -> AsyncIterator[Any]:
        for name in self.pages:
            yield Request(f"{self.base}/{name}", callback=self.parse_page,
                          errback=self.archive_errback, meta={BROWSER_META_KEY: True},
                          cb_kwargs={"target": name})
        for url in self.posts:
            yield Request(url, callback=self.parse_page, errback=self.archive_errback,
                          meta={BROWSER_META_KEY: True}, cb_kwargs={"target": url})

    def parse_page(self, response: Response, target: str) -> Iterator[Any]:
        if not self.check_response(response, target):
            return
        page = page_item(response, self.settings.get("ARCHIVE_CRAWL_ID") or "")
        if page is not None:
            yield page
        info = response.meta.get(PAGE_META_KEY) or {}
        stamp = info.get("timestamp") or datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        found = articles(response.text, response.url)
        if self.max_posts:
            found = found[:self.max_posts]
        self.crawler.stats.inc_value("facebook/posts", len(found))
        for art in found:
            yield Post(platform=PLATFORM, post_id=art["post_id"], url=art["url"],
                       author=art["author"], author_id=art["author_id"],
                       created_at=art["created_at"], text=art["text"], media=art["images"],
                       like_count=art["like_count"], reply_count=art["reply_count"],
                       raw={"_from": "dom"}, source_url=response.url, source_timestamp=stamp)
            for url in art["images"]:
                yield Media(platform=PLATFORM, url=url, post_id=art["post_id"],
                            media_type="image", source_url=response.url,
                            source_timestamp=stamp)
                if url not in self.fetched:
                    self.fetched.add(url)
                    yield Request(url, callback=self.parse_media, errback=self.archive_errback,
                                  priority=10)

    def parse_media(self, response: Response) -> None:
        self.check_response(response)
