"""Posts, accounts and media from captured X GraphQL answers (one pure function).

Used live (the browser handler runs it on every GraphQL exchange a rendered X page makes,
``ARCHIVE_BROWSER_EXTRACT``) and offline by ``socialark index --rebuild``, so both give the same
rows. Deleted and withheld posts are reported as ``raw["_unavailable"]`` posts with empty text
(``post_id`` known from the entry), never dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from crawler.extraction import Capture, Extractor, Wants
from crawler.items import Account, Media, Post
from spiders.x.parsers import (
    OPERATIONS,
    timeline_of,
    timeline_results,
    tweet_fields,
    unavailable,
    unwrap,
    user_fields,
)

PLATFORM = "x"
GRAPHQL_PATH = re.compile(r"/i/api/graphql/[^/]+/(?P<op>[A-Za-z]+)$")
TOMBSTONE_ID = re.compile(r"tweet-(\d+)")


def operation(url: str) -> str | None:
    m = GRAPHQL_PATH.search(urlsplit(url).path)
    return m.group("op") if m and m.group("op") in OPERATIONS else None


def matches(url: str) -> bool:
    return operation(url) is not None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _account(fields: dict[str, Any], origin: str, capture: Capture) -> Account:
    return Account(platform=PLATFORM, url=f"{origin}/{fields['handle']}", raw={},
                   source_url=capture.url, source_timestamp=capture.timestamp, **fields)


def _tweet_items(result: dict[str, Any], origin: str, capture: Capture,
                 seen: set[str]) -> Iterator[Any]:
    gone = unavailable(unwrap(result))
    if gone:
        return  # reported by the entry walk (it knows the id)
    fields = tweet_fields(result)
    if fields is None or fields["post_id"] in seen:
        return
    seen.add(fields["post_id"])
    for nested in fields.pop("nested"):
        yield from _tweet_items(nested, origin, capture, seen)
    author = fields.pop("author_account")
    media = fields.pop("media")
    long_post = fields.pop("long")
    if author:
        yield _account(author, origin, capture)
    url = f"{origin}/{fields['author'] or 'i/web'}/status/{fields['post_id']}"
    yield Post(platform=PLATFORM, url=url, media=[m["url"] for m in media],
               raw={"_operation": operation(capture.url), "_long": long_post},
               source_url=capture.url, source_timestamp=capture.timestamp, **fields)
    for m in media:
        yield Media(platform=PLATFORM, post_id=fields["post_id"], source_url=capture.url,
                    source_timestamp=capture.timestamp, **m)


def _unavailable_posts(timeline: dict[str, Any], origin: str,
                       capture: Capture) -> Iterator[Post]:
    for ins in timeline.get("instructions") or []:
        for entry in (ins or {}).get("entries") or []:
            results = [(entry.get("entryId") or "", _entry_result(entry))]
            results += [(i.get("entryId") or "", _item_result(i))
                        for i in (entry.get("content") or {}).get("items") or []]
            for entry_id, result in results:
                gone = unavailable(unwrap(result)) if isinstance(result, dict) else None
                m = TOMBSTONE_ID.search(entry_id)
                if gone and m:
                    outcome, reason = gone
                    yield Post(platform=PLATFORM, post_id=m.group(1), url=None, author=None,
                               author_id=None, created_at=None, text="",
                               raw={"_unavailable": reason, "_outcome": outcome},
                               source_url=capture.url, source_timestamp=capture.timestamp)


def _entry_result(entry: dict[str, Any]) -> Any:
    return (((entry.get("content") or {}).get("itemContent") or {}).get("tweet_results")
            or {}).get("result")


def _item_result(item: dict[str, Any]) -> Any:
    return ((((item.get("item") or {}).get("itemContent") or {}).get("tweet_results") or {})
            .get("result"))


def extract(capture: Capture) -> Iterator[Any]:
    """Items of one captured GraphQL answer (nothing for errors or non-JSON bodies)."""
    if capture.status != 200 or "json" not in capture.content_type:
        return
    data = capture.json_or_none()
    if data is None:
        return
    origin = _origin(capture.url)
    op = operation(capture.url)
    if op == "UserByScreenName":
        fields = user_fields((data.get("data") or {}).get("user", {}).get("result") or {})
        if fields:
            yield _account(fields, origin, capture)
        return
    seen: set[str] = set()
    if op == "TweetResultByRestId":
        result = ((data.get("data") or {}).get("tweetResult") or {}).get("result")
        if isinstance(result, dict):
            yield from _tweet_items(result, origin, capture, seen)
        return
    timeline = timeline_of(data)
    if timeline is None:
        return
    for result in timeline_results(timeline):
        yield from _tweet_items(result, origin, capture, seen)
    yield from _unavailable_posts(timeline, origin, capture)


EXTRACTOR = Extractor(platform=PLATFORM, matches=matches, extract=extract,
                      wants=Wants(mimes=("json",)))
