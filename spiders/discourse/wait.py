"""Discourse 429s whose wait is only in the body: give them a ``Retry-After`` header.

Discourse's rate-limit quirk, registered in ``spiders/discourse/platform.py``: the registry
enables it for the Discourse spider (``ArchiveSpider.update_settings``).

Discourse's action limiter answers ``{"error_type": "rate_limit", "extras": {"wait_seconds": N}}``
and its global IP limiter "Please retry again in N seconds." (PLATFORMS.md §6.3). Both usually
come with ``Retry-After``, but not from every version or proxy. This middleware sits just before
``RateLimitMiddleware`` in response order (higher priority number) and, for a 429 without
``Retry-After``, copies the body's wait into that header, so the generic middleware pauses the
host for exactly that long instead of guessing with backoff. The WARC is not affected: capture
happens in the download handler, before any middleware.
"""

from __future__ import annotations

import math

from scrapy import Request
from scrapy.http import Response

from spiders.discourse.parsers import wait_seconds


class DiscourseWaitMiddleware:
    def process_response(self, request: Request, response: Response) -> Response:
        if response.status != 429 or response.headers.get("Retry-After"):
            return response
        content_type = response.headers.get("Content-Type", b"").decode("latin-1").lower()
        wait = wait_seconds(response.body, content_type)
        if wait is None:
            return response
        headers = response.headers.copy()
        headers["Retry-After"] = str(max(math.ceil(wait), 1))
        return response.replace(headers=headers)
