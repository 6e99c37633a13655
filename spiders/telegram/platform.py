"""The telegram platform as the registry sees it (crawler/platforms.py, docs/platforms.md)."""

from __future__ import annotations

from crawler.platforms import Platform
from spiders.telegram.extract import EXTRACTOR

PLATFORM = Platform(
    name="telegram",
    spider="telegram",
    extractor=EXTRACTOR,
)
