"""The bluesky platform as the registry sees it (crawler/platforms.py, docs/platforms.md)."""

from __future__ import annotations

from crawler.platforms import Platform
from spiders.bluesky.extract import EXTRACTOR

PLATFORM = Platform(
    name="bluesky",
    spider="bluesky",
    extractor=EXTRACTOR,
)
