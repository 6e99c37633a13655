"""``crawl reddit``: archive subreddits, users and posts through Reddit's public ``.json`` endpoints.

Per ``--subreddit``: ``about.json`` and every page of ``/r/SUB/new.json`` (``after`` paging, 100
a page, ``raw_json=1``). Per ``--user``: ``about.json`` and every page of ``submitted.json`` and
``comments.json``. For every submission listed: its HTML page, its images/gallery/video
(``fallback_url``, previews, thumbnail, DASH/HLS playlists and tracks) and, when it has comments,
``/comments/ID.json`` with every "load more" stub expanded through ``/api/morechildren`` (100 ids
a request) and every "continue this thread" stub opened (``/comments/ID/_/PARENT.json``). Per
``--post``: the same for one post.

Private (403), banned (404) and quarantined (403) subreddits, suspended or unknown users and
missing posts are archived like any other answer and counted as ``archive/missing/<reason>``:
content gone from the platform is an outcome of the crawl, not a crawl error. Rate limits
(``x-ratelimit-*``, 429) are the shared rate-limit middleware's job.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy import Request
from scrapy.http import Response, TextResponse

from crawler.extraction import capture_from_response
from spiders._base import ArchiveSpider
from spiders._outcomes import Outcome, is_failure_status
from spiders.reddit import parsers
from spiders.reddit.extract import EXTRACTOR

logger = logging.getLogger(__name__)

DEFAULT_BASE = "https://old.reddit.com"
_THREAD = re.compile(r"/comments/([0-9a-z]+)")


class RedditSpider(ArchiveSpider):
    name = "reddit"

    def __init__(
        self,
        subreddits: list[str] | None = None,
        users: list[str] | None = None,
        posts: list[str] | None = None,
        base_url: str = DEFAULT_BASE,
        since: str | None = None,
        max_posts: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.subreddits = [parsers.normalize_subreddit(s) for s in subreddits or []]
        self.users = [parsers.normalize_user(u) for u in users or []]
        self.post_ids = [parsers.parse_post_ref(p) for p in posts or []]
        self.base = base_url.rstrip("/")
        # Milliseconds, as ``--since`` is written: float seconds would misorder equal times.
        self.since = round(parsers.parse_time(since).timestamp() * 1000) if since else None
        self.max_posts = int(max_posts or 0)

    async def start(self) -> AsyncIterator[Any]:
        for sub in self.subreddits:
            yield self._about_request(f"/r/{sub}", f"r/{sub}")
            yield self._listing_request(f"/r/{sub}/new", None, None, 0, 0)
        for user in self.users:
            yield self._about_request(f"/user/{user}", f"u/{user}")
            for what in ("submitted", "comments"):
                yield self._listing_request(f"/user/{user}/{what}", "new", None, 0, 0)
        for id36 in self.post_ids:
            yield self._comments_request(id36, follow=True)
        for id36 in self._recheck_threads():
            yield Request(parsers.comments_url(self.base, id36), callback=self.parse_recheck,
                          priority=4)

    # --- --recheck: the threads of every archived post and comment ----------------------------
    def _recheck_threads(self) -> list[str]:
        """id36 of each thread holding an archived post or comment of this server, once."""
        out: dict[str, None] = {}
        for post_id, url, source in self.recheck_posts("reddit"):
            if not source.startswith(self.base + "/"):
                continue
            if post_id.startswith("t3_"):
                out.setdefault(post_id[3:])
            elif m := _THREAD.search(url):
                out.setdefault(m[1])
        return list(out)

    def parse_recheck(self, response: Response) -> Iterator[Any]:
        """A thread again: edits and ``[deleted]``/``[removed]`` bodies become versions, a 404
        marks the post deleted (both from the extractor)."""
        yield from self.recheck_items(response, list(EXTRACTOR.extract(capture_from_response(response))))

    # --- about: the one answer that reports a gone target ---------------------------------------
    def _about_request(self, path: str, target: str) -> Request:
        return Request(parsers.about_url(self.base, path), callback=self.parse_about,
                       cb_kwargs={"target": target}, priority=20)

    def parse_about(self, response: Response, target: str) -> Iterator[Any]:
        if not self.answer_ok(response, target):
            return
        yield from EXTRACTOR.extract(capture_from_response(response))
        data = self.json_of(response)
        if isinstance(data, dict) and (data.get("data") or {}).get("is_suspended"):
            self.report_outcome(Outcome.BLOCKED, "suspended", target, response.url)

    # --- listings ----------------------------------------------------------------------------------
    def _listing_request(self, path: str, sort: str | None, after: str | None, count: int,
                         seen: int) -> Request:
        limit = parsers.LISTING_MAX
        if self.max_posts:
            limit = min(limit, self.max_posts - seen)
        return Request(parsers.listing_url(self.base, path, after, count, limit, sort),
                       callback=self.parse_listing, priority=10,
                       cb_kwargs={"path": path, "sort": sort, "count": count, "seen": seen})

    def parse_listing(self, response: Response, path: str, sort: str | None, count: int,
                      seen: int) -> Iterator[Any]:
        """One listing page: items, then each listed post's thread/page/media, then the next
        page (``after``) unless ``--since``/``--max-posts`` says stop. Newest first."""
        if not self.answer_ok(response, path, report=False):
            return  # about.json of the same target reports why
        yield from EXTRACTOR.extract(capture_from_response(response))
        body = self.json_of(response)
        things = parsers.listing_children(body)
        stop = False
        for thing in things:
            data = thing.get("data") or {}
            created = data.get("created_utc")
            if self.since and isinstance(created, int | float) and round(created * 1000) < self.since:
                stop = True
                break
            if self.max_posts and seen >= self.max_posts:
                stop = True
                break
            seen += 1
            if thing.get("kind") == "t3":
                yield from self._follow_post(data)
                if (data.get("num_comments") or 0) > 0 and data.get("id"):
                    yield self._comments_request(data["id"], follow=False)
            elif thing.get("kind") == "t1" and isinstance(data.get("link_id"), str):
                # A user's comment: archive the thread it belongs to.
                yield self._comments_request(parsers.id36_of(data["link_id"]), follow=True)
        after = parsers.listing_after(body)
        if things and after and not stop and not (self.max_posts and seen >= self.max_posts):
            yield self._listing_request(path, sort, after, count + len(things), seen)

    # --- posts and comment trees ------------------------------------------------------------------
    def _comments_request(self, id36: str, follow: bool) -> Request:
        return Request(parsers.comments_url(self.base, id36), callback=self.parse_comments,
                       cb_kwargs={"link": id36, "follow": follow}, priority=5)

    def parse_comments(self, response: Response, link: str, follow: bool) -> Iterator[Any]:
        """A post with its comment tree (or, from a "continue this thread" stub, a subtree)."""
        if not self.answer_ok(response, f"t3_{link}"):
            # a 404/410: PostGone (deleted if archived before)
            yield from EXTRACTOR.extract(capture_from_response(response))
            return
        yield from EXTRACTOR.extract(capture_from_response(response))
        head, forest = parsers.comment_response(self.json_of(response))
        if head and follow:
            yield from self._follow_post(head)
        yield from self._expand_stubs(forest, link)

    def parse_more(self, response: Response, link: str) -> Iterator[Any]:
        if not self.answer_ok(response, f"t3_{link}"):
            return
        yield from EXTRACTOR.extract(capture_from_response(response))
        yield from self._expand_stubs(parsers.morechildren_things(self.json_of(response)), link)

    def _expand_stubs(self, things: list[dict[str, Any]], link: str) -> Iterator[Request]:
        """Requests for every "more" stub of a comment forest (nested ones included)."""
        for thing in parsers.walk(things):
            if thing.get("kind") != "more":
                continue
            data = thing.get("data") or {}
            if parsers.is_continue_stub(data):
                parent = data.get("parent_id")
                if isinstance(parent, str) and parent.startswith("t1_"):
                    yield Request(parsers.continue_url(self.base, link, parsers.id36_of(parent)),
                                  callback=self.parse_comments, priority=6,
                                  cb_kwargs={"link": link, "follow": False})
                continue
            for url in parsers.morechildren_urls(self.base, f"t3_{link}",
                                                 parsers.more_children(data)):
                yield Request(url, callback=self.parse_more, cb_kwargs={"link": link}, priority=6)

    def _follow_post(self, data: dict[str, Any]) -> Iterator[Request]:
        """The HTML page and every image/video of a submission."""
        if data.get("permalink"):
            yield self.page_request(parsers.page_url(self.base, data["permalink"]))
        for url in dict.fromkeys(parsers.media_fetch_urls(data)):
            if ".mpd" in url.split("?", 1)[0]:
                yield Request(url, callback=self.parse_dash, priority=-5)
            else:
                yield self.media_request(url)

    # --- pages and media ------------------------------------------------------------------------
    def parse_dash(self, response: Response) -> Iterator[Request]:
        """A v.redd.it DASH manifest: fetch its tracks (the audio exists only there)."""
        if not self.answer_ok(response) or not isinstance(response, TextResponse):
            return
        for url in parsers.dash_segments(response.text, response.url):
            yield self.media_request(url)

    # --- outcomes ---------------------------------------------------------------------------------
    def answer_ok(self, response: Response, target: str | None = None, report: bool = True) -> bool:
        """True for a 200; otherwise count and report the outcome (spiders/_outcomes.py)."""
        if response.status == 200:
            return True
        reason = None
        if not is_failure_status(response.status):
            reason = parsers.error_reason(response.status, self.json_of(response))
        return self.check_response(response, target, reason, report=report)
