"""Telegram extraction: posts/media/accounts from captured web-preview HTML (live and WARCs).

Matches by URL path on any host (``t.me`` or a mirror): the channel preview ``/s/NAME``, post
pages and widgets ``/NAME/ID`` (``?embed=1``, ``?single``) and landing pages ``/NAME``. A page
that is not Telegram's (no ``tgme_widget_message`` cards, no landing markup) yields nothing,
and a body without any ``tgme_`` markup is not even parsed. A widget saying "Post not found"
(or a post URL answering 404/410) yields a ``PostGone``: the WARC keeps the evidence, ``posts.deleted_at`` the
time (storage/versions.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from crawler.extraction import GONE_STATUSES, Capture, Extractor, Wants
from crawler.items import PostGone
from spiders.telegram import parsers

MARKUP = b"tgme_"


def matches(url: str) -> bool:
    return parsers.page_kind(url) is not None


def extract(capture: Capture) -> list[Any]:
    kind = parsers.page_kind(capture.url)
    if kind is None:
        return []
    if capture.status == 200 and MARKUP not in capture.body:
        return []  # not a Telegram page (every card, widget error and landing has tgme_ classes)
    if kind == "post" and _gone(capture):
        path = urlsplit(capture.url).path.strip("/").split("/")
        return [PostGone(platform="telegram", post_id=f"{path[0]}/{path[1]}",
                         source_url=capture.url, source_timestamp=capture.timestamp)]
    if kind is None or capture.status != 200 or "html" not in capture.content_type:
        return []
    source = (capture.url, capture.timestamp)
    if kind == "landing":
        account = parsers.account_item(capture.body, capture.url, source)
        return [account] if account else []
    out: list[Any] = []
    for msg in parsers.parse_cards(capture.body, capture.url, source):
        if msg.post is not None:
            out.append(msg.post)
            out.extend(msg.media)
    return out


def _gone(capture: Capture) -> bool:
    """A post URL answering 404/410, or its widget saying "Post not found" (Telegram's
    tombstone, served with 200)."""
    if capture.status in (404, 410):
        return True
    if capture.status != 200 or "html" not in capture.content_type:
        return False
    return (parsers.widget_error(capture.body) or "").lower() == "post not found"


EXTRACTOR = Extractor(platform="telegram", matches=matches, extract=extract,
                      wants=Wants(mimes=("html",), statuses=GONE_STATUSES))

__all__ = ["EXTRACTOR", "extract", "matches"]
