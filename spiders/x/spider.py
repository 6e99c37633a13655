"""``crawl x``: profiles, posts and searches of X rendered in a logged-in browser (docs/x.md).

Navigation only. Every page is rendered in Chromium (``meta["archive_browser"]``) with the
user's session (``--cookies``); the x.com app fetches its GraphQL answers itself, the browser
capture archives every one, and ``spiders.x.extract`` parses them into posts as they are
recorded (``ARCHIVE_BROWSER_EXTRACT``), the same code ``index --rebuild`` runs. From those items
the spider opens each post's page (its thread, ``TweetDetail``) and fetches each image at
``name=orig`` and the best mp4 of each video (or the HLS playlist and its segments) through the
wire-recording handler. The timeline is scrolled by the behaviors until it stops growing or
``--scroll-limit``; ``--max-posts`` and ``--since`` bound the post pages opened per target.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote, urljoin

from scrapy import Request
from scrapy.http import Response

from crawler.browser import BROWSER_META_KEY
from crawler.browser.extract import ITEMS_META_KEY
from crawler.browser.items import page_item
from spiders._base import ArchiveSpider
from spiders._outcomes import Outcome

logger = logging.getLogger(__name__)

PRIO_POST, PRIO_MEDIA = 0, 10
BASE_URL = "https://x.com"


class XSpider(ArchiveSpider):
    quality_skip: frozenset[str] = frozenset()  # every capture-quality rule applies
    name = "x"
    custom_settings = {"ARCHIVE_BROWSER_EXTRACT": ["x"]}

    def __init__(self, base_url: str = BASE_URL, users: list[str] | None = None,
                 posts: list[str] | None = None, searches: list[str] | None = None,
                 since: str | None = None, max_posts: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = base_url.rstrip("/")
        self.users = [u.lstrip("@") for u in users or []]
        self.posts = list(posts or [])
        self.searches = list(searches or [])
        self.since = since
        self.max_posts = int(max_posts or 0)
        self.opened: set[str] = set()  # post ids whose page was requested
        self.fetched_media: set[str] = set()

    # -- requests ----------------------------------------------------------------------------
    def _page(self, url: str, callback: Any, target: str, priority: int = 0) -> Request:
        return Request(url, callback=callback, errback=self.archive_errback, priority=priority,
                       meta={BROWSER_META_KEY: True}, cb_kwargs={"target": target})

    async def start(self) -> AsyncIterator[Any]:
        for handle in self.users:
            yield self._page(f"{self.base}/{handle}", self.parse_timeline, f"@{handle}")
        for query in self.searches:
            yield self._page(f"{self.base}/search?q={quote(query)}&src=typed_query&f=live",
                             self.parse_timeline, f"search {query!r}")
        for post in self.posts:
            url = post if post.startswith(("http://", "https://")) else None
            if url is None:
                continue
            post_id = url.rstrip("/").rsplit("/", 1)[-1]
            self.opened.add(post_id)
            yield self._page(url, self.parse_post, url)

    # -- callbacks ---------------------------------------------------------------------------
    def _items(self, response: Response) -> list[tuple[str, dict[str, Any]]]:
        return list(response.meta.get(ITEMS_META_KEY) or [])

    def _common(self, response: Response, target: str) -> Iterator[Any]:
        """The page row, media downloads, and the report of unavailable posts."""
        page = page_item(response, self.settings.get("ARCHIVE_CRAWL_ID") or "")
        if page is not None:
            yield page
        items = self._items(response)
        for table, row in items:
            if table == "media":
                yield from self._media(row["url"], response.url)
            elif table == "accounts" and row.get("avatar_url"):
                yield from self._media(row["avatar_url"], response.url)
            elif table == "posts" and row["raw"].get("_unavailable"):
                outcome = Outcome(row["raw"].get("_outcome") or "missing")
                post_url = f"{self.base}/i/web/status/{row['post_id']}"
                self.report_outcome(outcome, row["raw"]["_unavailable"], post_url,
                                    response.url, count=True)
        self.crawler.stats.inc_value("x/posts_seen", sum(
            1 for t, r in items if t == "posts" and not r["raw"].get("_unavailable")))

    def _media(self, url: str, referer: str) -> Iterator[Request]:
        if url in self.fetched_media:
            return
        self.fetched_media.add(url)
        callback = self.parse_playlist if url.split("?", 1)[0].endswith(".m3u8") else self.parse_media
        yield Request(url, callback=callback, errback=self.archive_errback, priority=PRIO_MEDIA,
                      headers={"Referer": referer})

    def parse_timeline(self, response: Response, target: str) -> Iterator[Any]:
        if not self.check_response(response, target):
            return
        yield from self._common(response, target)
        opened = 0
        for table, row in self._items(response):
            if table != "posts" or row["raw"].get("_unavailable") or not row.get("url"):
                continue
            if self.since and (row.get("created_at") or "") < self.since:
                continue
            if self.max_posts and opened >= self.max_posts:
                break
            opened += 1
            if row["post_id"] in self.opened:
                continue
            self.opened.add(row["post_id"])
            url = f"{self.base}/{row['author']}/status/{row['post_id']}"
            yield self._page(url, self.parse_post, url, priority=PRIO_POST)

    def parse_post(self, response: Response, target: str) -> Iterator[Any]:
        if not self.check_response(response, target):
            return
        yield from self._common(response, target)

    def parse_media(self, response: Response) -> None:
        self.check_response(response)

    def parse_playlist(self, response: Response) -> Iterator[Request]:
        """HLS: the playlist, then every variant playlist and segment it names."""
        if not self.check_response(response):
            return
        for line in response.text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                yield from self._media(urljoin(response.url, line), response.url)
