"""The ``pages`` row of a rendered page (stored by ``crawler.pipelines.index.IndexPipeline``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from scrapy.http import Response

from crawler.browser import PAGE_META_KEY


@dataclass
class PageCapture:
    table: ClassVar[str] = "pages"

    url: str
    timestamp: str  # 14 digits, the WARC-Date of the page's capture
    title: str
    text: str
    crawl_id: str


def page_item(response: Response, crawl_id: str) -> PageCapture | None:
    """The page row for a browser-rendered response, or None for any other response.

    Platform spiders that render with ``meta={"archive_browser": True}`` yield this too.
    """
    page: dict[str, Any] | None = response.meta.get(PAGE_META_KEY)
    if not page:
        return None
    return PageCapture(url=page["url"], timestamp=page["timestamp"], title=page["title"],
                       text=page["text"], crawl_id=crawl_id)
