"""Posts from what a rendered page loaded: the platform extractors run on browser exchanges.

A platform whose content arrives as API answers inside a rendered page (X's GraphQL) names
itself in ``ARCHIVE_BROWSER_EXTRACT`` (a platform spider sets it in ``custom_settings``); every
exchange the page makes that the platform's extractor ``matches`` is extracted the moment it is
recorded, with the same pure function ``socialark index --rebuild`` uses
(``crawler/extraction.py``), so a live crawl and a rebuild give the same rows. The items go to
the index with the captures and to the page's response (``meta["archive_browser_items"]``).
"""

from __future__ import annotations

import logging
from typing import Any

from crawler.browser.config import string_list
from crawler.extraction import Capture, Extractor, item_pairs, load_extractors
from storage.exchange import HttpExchange
from storage.records import timestamp14

logger = logging.getLogger(__name__)

ITEMS_META_KEY = "archive_browser_items"


class LiveExtraction:
    def __init__(self, platforms: Any) -> None:
        names = set(string_list(platforms))
        self.extractors: list[Extractor] = (
            [e for e in load_extractors() if e.platform in names] if names else [])

    def extract(self, exchange: HttpExchange) -> list[tuple[str, dict[str, Any]]]:
        if not self.extractors or exchange.truncated:
            return []
        found = [e for e in self.extractors if e.matches(exchange.url)]
        if not found:
            return []
        headers: dict[str, str] = {}
        for k, v in exchange.response_head.headers:
            headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
        capture = Capture(exchange.url, exchange.status or 0, headers, exchange.response_body,
                          timestamp14(exchange.date))
        out: list[tuple[str, dict[str, Any]]] = []
        for extractor in found:
            try:
                out += list(item_pairs(extractor.extract(capture)))
            except Exception as exc:  # a payload the parser did not expect: keep crawling
                logger.warning("%s: extraction of %s failed: %s", extractor.platform,
                               exchange.url, exc)
        return out
