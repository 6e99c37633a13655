"""The x platform as the registry sees it (crawler/platforms.py, docs/platforms.md)."""

from __future__ import annotations

from crawler.platforms import Platform
from spiders.x.extract import EXTRACTOR

PLATFORM = Platform(
    name="x",
    spider="x",
    extractor=EXTRACTOR,
)
