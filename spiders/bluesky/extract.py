"""Bluesky extraction: posts/accounts/media from captured AppView JSON (live and from WARCs).

Matches XRPC captures by NSID, wherever the AppView is hosted: ``getAuthorFeed``,
``getPostThread``, ``getPosts`` (posts + media) and ``getProfile`` (accounts). Error bodies
(400 ``NotFound``, ``AccountTakedown``...) yield nothing: they stay in the WARC as evidence.

Reposts: a feed item with ``reasonRepost`` yields the reposted post as its own row (author =
the original author) plus a repost row (post_id = the repost's AT-URI, author = the reposter,
``repost_of_id`` = the reposted post) -- the way Mastodon boosts are stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from crawler.extraction import Capture, Extractor, Wants
from spiders.bluesky import parsers

FEED = "app.bsky.feed.getAuthorFeed"
THREAD = "app.bsky.feed.getPostThread"
POSTS = "app.bsky.feed.getPosts"
PROFILE = "app.bsky.actor.getProfile"
NSIDS = (FEED, THREAD, POSTS, PROFILE)


def nsid_of(url: str) -> str | None:
    path = urlsplit(url).path
    if "/xrpc/" not in path:
        return None
    nsid = path.rsplit("/xrpc/", 1)[1]
    return nsid if nsid in NSIDS else None


def matches(url: str) -> bool:
    return nsid_of(url) is not None


def _post_and_media(view: Any, web: str, source: tuple[str, str]) -> Iterator[Any]:
    if not isinstance(view, dict):
        return
    post = parsers.post_item(view, web, source)
    if post is not None:
        yield post
        yield from parsers.embed_media(view, source)


def _feed(data: dict[str, Any], web: str, source: tuple[str, str]) -> Iterator[Any]:
    for item in data.get("feed") or []:
        if not isinstance(item, dict):
            continue
        # Reply context first, so the feed item's own view of a post is the one kept when
        # the same post appears twice in one capture (upserts: last write wins).
        reply = item.get("reply") or {}
        for key in ("root", "parent"):
            yield from _post_and_media(reply.get(key), web, source)
        yield from _post_and_media(item.get("post"), web, source)
        repost = parsers.repost_item(item, web, source)
        if repost is not None:
            yield repost


def extract(capture: Capture) -> list[Any]:
    nsid = nsid_of(capture.url)
    if nsid is None or capture.status != 200:
        return []
    data = capture.json_or_none()
    if data is None:
        return []
    if not isinstance(data, dict):
        return []
    web = parsers.web_base_for(capture.url)
    source = (capture.url, capture.timestamp)
    if nsid == PROFILE:
        account = parsers.account_item(data, web, source)
        return [account] if account else []
    if nsid == FEED:
        return list(_feed(data, web, source))
    views = parsers.thread_posts(data.get("thread")) if nsid == THREAD else data.get("posts") or []
    return [item for view in views for item in _post_and_media(view, web, source)]


EXTRACTOR = Extractor(platform="bluesky", matches=matches, extract=extract,
                      wants=Wants())

__all__ = ["EXTRACTOR", "extract", "matches"]
