"""Telegram extraction: posts/media/accounts from captured web-preview HTML (live and WARCs).

Matches by URL path on any host (``t.me`` or a mirror): the channel preview ``/s/NAME``, post
pages and widgets ``/NAME/ID`` (``?embed=1``, ``?single``) and landing pages ``/NAME``. A page
that is not Telegram's (no ``tgme_widget_message`` cards, no landing markup) yields nothing, so
the loose path match costs only a parse. Widget error pages ("Post not found") yield nothing:
they stay in the WARC as evidence of the deletion.
"""

from __future__ import annotations

from typing import Any

from crawler.extraction import Capture, Extractor
from spiders.telegram import parsers


def matches(url: str) -> bool:
    return parsers.page_kind(url) is not None


def extract(capture: Capture) -> list[Any]:
    kind = parsers.page_kind(capture.url)
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


EXTRACTOR = Extractor(platform="telegram", matches=matches, extract=extract)

__all__ = ["EXTRACTOR", "extract", "matches"]
