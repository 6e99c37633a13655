"""Discourse extraction: posts/media from captured topic JSON (live and from WARCs).

Matches ``/t/ID.json`` (also ``/t/SLUG/ID.json``, ``/t/ID/N.json``) and ``/t/ID/posts.json``
batches on any host, under any path prefix: every post of ``post_stream.posts`` becomes a
``posts`` row. Error bodies (403 ``invalid_access``, 404 ``not_found``) yield nothing: they stay
in the WARC as evidence.
"""

from __future__ import annotations

from typing import Any

from crawler.extraction import Capture, Extractor, Wants
from spiders.discourse import parsers


def matches(url: str) -> bool:
    return parsers.forum_base_of(url) is not None


def extract(capture: Capture) -> list[Any]:
    base = parsers.forum_base_of(capture.url)
    if base is None or capture.status != 200:
        return []
    data = capture.json_or_none()
    if data is None:
        return []
    _, posts = parsers.stream_posts(data)
    source = (capture.url, capture.timestamp)
    return [item for post in posts for item in parsers.post_items(post, base, source)]


EXTRACTOR = Extractor(platform="discourse", matches=matches, extract=extract,
                      wants=Wants())

__all__ = ["EXTRACTOR", "extract", "matches"]
