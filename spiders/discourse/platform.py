"""The discourse platform as the registry sees it (crawler/platforms.py, docs/platforms.md)."""

from __future__ import annotations

from crawler.platforms import Platform
from spiders.discourse.extract import EXTRACTOR

PLATFORM = Platform(
    name="discourse",
    spider="discourse",
    extractor=EXTRACTOR,
    # 429s whose wait is only in the JSON body get a Retry-After header before
    # RateLimitMiddleware (600) sees them: PLATFORMS.md §6.3.
    downloader_middlewares={"spiders.discourse.wait.DiscourseWaitMiddleware": 610},
)
