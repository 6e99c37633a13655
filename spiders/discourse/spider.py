"""``crawl discourse``: archive a Discourse forum's public topics through its JSON API.

Topics come from ``--topic`` ids, from ``--category`` listings (``/c/SLUG/ID.json``), or, with
neither, from every page of ``/latest.json`` (``more_topics_url`` until absent). Per topic:
``/t/ID.json`` (the first 20 posts and the whole ``post_stream.stream``), then
``/t/ID/posts.json?post_ids[]=...`` in batches of 20 for every id of the stream not yet seen
(ids a server leaves out of a batch are asked again), every upload the posts show, the posters'
avatars and every page of the topic's server-rendered HTML (``/t/SLUG/ID?page=N``).

Both forms of Discourse 429 are honoured by pausing the host: ``Retry-After`` (and, through
``spiders.discourse.wait``, registered in ``platform.py``, a JSON ``extras.wait_seconds`` or
"retry again in N seconds" body without it). 403/404 error JSON (private category, deleted topic) is archived and
counted as ``archive/missing/<error_type>``, not fatal.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy import Request
from scrapy.http import Response

from crawler.extraction import capture_from_response
from spiders._base import ArchiveSpider
from spiders._outcomes import is_failure_status
from spiders.discourse import parsers
from spiders.discourse.extract import EXTRACTOR

logger = logging.getLogger(__name__)


class DiscourseSpider(ArchiveSpider):
    name = "discourse"

    def __init__(
        self,
        forum: str = "",
        topics: list[int] | None = None,
        categories: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base = parsers.normalize_forum(forum)
        self.topics = [int(t) for t in topics or []]
        self.categories = [parsers.parse_category(c) for c in categories or []]

    async def start(self) -> AsyncIterator[Any]:
        for topic_id in self.topics:
            yield self._topic_request(topic_id)
        for slug, cat_id in self.categories:
            yield Request(parsers.category_url(self.base, slug, cat_id), callback=self.parse_list,
                          cb_kwargs={"target": f"category {slug}"}, priority=20)
        if not self.topics and not self.categories:
            yield Request(parsers.latest_url(self.base), callback=self.parse_list,
                          cb_kwargs={"target": "latest"}, priority=20)

    # --- topic lists ----------------------------------------------------------------------------
    def parse_list(self, response: Response, target: str) -> Iterator[Request]:
        if not self.answer_ok(response, target):
            return
        topics, more = parsers.topic_list(self._json(response))
        for topic in topics:
            yield self._topic_request(topic["id"])
        if more and topics:
            yield Request(parsers.json_url(self.base, more), callback=self.parse_list,
                          cb_kwargs={"target": target}, priority=20)

    # --- one topic --------------------------------------------------------------------------------
    def _topic_request(self, topic_id: int) -> Request:
        return Request(parsers.topic_url(self.base, topic_id), callback=self.parse_topic,
                       cb_kwargs={"topic_id": topic_id}, priority=10)

    def parse_topic(self, response: Response, topic_id: int) -> Iterator[Any]:
        if not self.answer_ok(response, f"topic {topic_id}"):
            return
        data = self._json(response)
        yield from EXTRACTOR.extract(capture_from_response(response))
        stream, posts = parsers.stream_posts(data)
        yield from self._follow_posts(posts)
        seen = {p["id"] for p in posts}
        for batch in parsers.batches([i for i in stream if i not in seen]):
            yield self._posts_request(topic_id, batch)
        count = len(stream) or len(posts)
        for url in parsers.page_urls(self.base, str(data.get("slug") or ""), topic_id, count):
            yield Request(url, callback=self.parse_plain, priority=-10)

    def _posts_request(self, topic_id: int, ids: list[int]) -> Request:
        return Request(parsers.posts_url(self.base, topic_id, ids), callback=self.parse_posts,
                       cb_kwargs={"topic_id": topic_id, "ids": ids}, priority=15)

    def parse_posts(self, response: Response, topic_id: int, ids: list[int]) -> Iterator[Any]:
        if not self.answer_ok(response, f"topic {topic_id} posts"):
            return
        yield from EXTRACTOR.extract(capture_from_response(response))
        _, posts = parsers.stream_posts(self._json(response))
        yield from self._follow_posts(posts)
        got = {p["id"] for p in posts}
        rest = [i for i in ids if i not in got]
        if not rest:
            return
        if got:  # the server caps a batch below what we asked: ask for the rest
            yield from (self._posts_request(topic_id, b) for b in parsers.batches(rest, len(got)))
        elif len(rest) > 1:  # nothing came back: halve, to find the ids that cannot be had
            half = len(rest) // 2
            yield self._posts_request(topic_id, rest[:half])
            yield self._posts_request(topic_id, rest[half:])
        else:
            self.crawler.stats.inc_value("archive/missing/post_not_returned")
            logger.warning("discourse: topic %s: post %s is in the stream but not returned",
                           topic_id, rest[0])

    def _follow_posts(self, posts: list[dict[str, Any]]) -> Iterator[Request]:
        for post in posts:
            for url in parsers.upload_urls(post.get("cooked"), self.base):
                yield Request(url, callback=self.parse_plain, priority=-5)
            avatar = parsers.avatar_url(self.base, post.get("avatar_template"))
            if avatar:
                yield Request(avatar, callback=self.parse_plain, priority=-5)

    # --- outcomes ---------------------------------------------------------------------------------
    def _json(self, response: Response) -> Any:
        return self.json_of(response, {})

    def answer_ok(self, response: Response, target: str | None = None) -> bool:
        """True for a 200; otherwise count and report the outcome (spiders/_outcomes.py)."""
        if response.status == 200:
            return True
        reason = detail = None
        if not is_failure_status(response.status):
            data = self._json(response)
            reason = parsers.error_name(data, response.status)
            errors = data.get("errors") if isinstance(data, dict) else None
            detail = str(errors[0]) if isinstance(errors, list) and errors else None
        return self.check_response(response, target, reason, detail=detail)
