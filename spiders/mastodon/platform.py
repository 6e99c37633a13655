"""The mastodon platform as the registry sees it (crawler/platforms.py, docs/platforms.md)."""

from __future__ import annotations

from crawler.platforms import Platform
from spiders.mastodon.extract import EXTRACTOR

PLATFORM = Platform(
    name="mastodon",
    spider="mastodon",
    extractor=EXTRACTOR,
)
