"""Reddit extraction: posts/accounts/media from captured ``.json`` answers (live and from WARCs).

Matches by path, wherever Reddit is served (old./www./oauth.reddit.com, a mirror, an emulator):

* listings -- ``/r/SUB[/new|hot|top|controversial|rising].json``,
  ``/user/NAME/submitted|comments|overview.json``, ``/api/info``, ``/by_id/…``;
* comment trees -- ``/comments/ID.json``, ``/r/SUB/comments/ID/SLUG[/COMMENT].json``;
* ``/api/morechildren`` (flat comment lists);
* ``/user/NAME/about.json`` (accounts).

Submissions and comments are both ``posts`` rows keyed by fullname (``t3_…``/``t1_…``); a
comment's ``reply_to_id`` is its ``parent_id``. Captures made without ``raw_json=1`` are
un-escaped first, so rows do not depend on how the JSON was requested. Error answers (403
private, 404 banned...) yield nothing: they stay in the WARC as evidence; a post's own thread
(``/comments/ID.json``) answering 404/410 yields a ``PostGone`` (storage/versions.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from crawler.extraction import GONE_STATUSES, Capture, Extractor, Wants
from crawler.items import PostGone
from spiders.reddit import parsers

_JSON = r"/?\.json$"
PATTERNS = {
    "comments": re.compile(r"^/(?:r/[^/]+/)?comments/[0-9a-z]+(?:/[^/]*(?:/[0-9a-z_]+)?)?" + _JSON),
    "listing": re.compile(r"^/(?:r/[^/]+(?:/(?:new|hot|top|controversial|rising))?"
                          r"|(?:user|u)/[^/]+/(?:submitted|comments|overview)|by_id/[^/]+)" + _JSON
                          + r"|^/api/info(?:\.json)?$"),
    "more": re.compile(r"^/api/morechildren(?:\.json)?$"),
    "about": re.compile(r"^/(?:user|u)/[^/]+/about" + _JSON),
}


def kind_of(url: str) -> str | None:
    path = urlsplit(url).path
    return next((kind for kind, rx in PATTERNS.items() if rx.match(path)), None)


def matches(url: str) -> bool:
    return kind_of(url) is not None


def _thing_items(thing: dict[str, Any], origin: str, source: tuple[str, str]) -> Iterator[Any]:
    data = thing.get("data")
    if not isinstance(data, dict):
        return
    if thing.get("kind") == "t3":
        post = parsers.post_item(data, origin, source)
        if post is not None:
            yield post
            yield from parsers.post_media(data, source)
    elif thing.get("kind") == "t1":
        comment = parsers.comment_item(data, origin, source)
        if comment is not None:
            yield comment


def items_of(kind: str, body: Any, origin: str, source: tuple[str, str]) -> Iterator[Any]:
    """The items of one decoded answer of the given kind (see ``PATTERNS``)."""
    if kind == "about":
        data = body.get("data") if isinstance(body, dict) and body.get("kind") == "t2" else None
        account = parsers.account_item(data, origin, source) if isinstance(data, dict) else None
        if account is not None:
            yield account
        return
    if kind == "comments":
        head, forest = parsers.comment_response(body)
        things = ([{"kind": "t3", "data": head}] if head else []) + list(parsers.walk(forest))
    elif kind == "more":
        things = list(parsers.walk(parsers.morechildren_things(body)))
    else:
        things = parsers.listing_children(body)
    for thing in things:
        yield from _thing_items(thing, origin, source)


_POST_TREE = re.compile(r"^/(?:r/[^/]+/)?comments/([0-9a-z]+)(?:/[^/]*)?/?\.json$")


def extract(capture: Capture) -> list[Any]:
    kind = kind_of(capture.url)
    if kind == "comments" and capture.status in (404, 410):
        # A post's own thread URL (not a comment subtree) answering 404/410: the post is gone.
        m = _POST_TREE.match(urlsplit(capture.url).path)
        return [PostGone(platform="reddit", post_id=f"t3_{m[1]}", source_url=capture.url,
                         source_timestamp=capture.timestamp)] if m else []
    if kind is None or capture.status != 200:
        return []
    body = capture.json_or_none()
    if body is None:
        return []  # an HTML "blocked" page served where JSON was asked for
    if parse_qs(urlsplit(capture.url).query).get("raw_json") != ["1"]:
        body = parsers.unescape(body)
    return list(items_of(kind, body, parsers.origin_of(capture.url),
                         (capture.url, capture.timestamp)))


EXTRACTOR = Extractor(platform="reddit", matches=matches, extract=extract,
                      wants=Wants(statuses=GONE_STATUSES))

__all__ = ["EXTRACTOR", "extract", "matches"]
