"""The facebook platform as the registry sees it (crawler/platforms.py, docs/platforms.md)."""

from __future__ import annotations

from crawler.platforms import Platform

PLATFORM = Platform(
    name="facebook",
    spider="facebook",
    # Posts come from the rendered DOM (not archived as a response): nothing to re-extract
    # from the WARCs (docs/facebook.md).
)
