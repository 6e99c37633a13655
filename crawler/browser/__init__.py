"""Browser capture: pages rendered in Chromium (Playwright), every network exchange archived.

Opt in per request with ``meta={"archive_browser": True}`` (``crawl site --browser`` does this
for every page). ``BrowserDownloadHandler`` renders such requests; everything else goes through
the wire-recording HTTP handler unchanged. See ``docs/browser.md``.
"""

from __future__ import annotations

BROWSER_META_KEY = "archive_browser"
PAGE_META_KEY = "archive_browser_page"

__all__ = ["BROWSER_META_KEY", "PAGE_META_KEY"]
