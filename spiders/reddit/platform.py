"""The reddit platform as the registry sees it (crawler/platforms.py, docs/platforms.md)."""

from __future__ import annotations

from crawler.platforms import Platform
from spiders.reddit.extract import EXTRACTOR

PLATFORM = Platform(
    name="reddit",
    spider="reddit",
    extractor=EXTRACTOR,
)
