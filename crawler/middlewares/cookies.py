"""Scrapy's cookie middleware with every jar seeded from ``ARCHIVE_COOKIES_FILE`` (``--cookies``)
and ``ARCHIVE_BROWSER_PROFILE`` (``--profile``).

Replaces ``scrapy.downloadermiddlewares.cookies.CookiesMiddleware`` at the same priority (700):
every jar (the default one and each ``meta["cookiejar"]`` one) starts with the file's cookies,
so API spiders and page requests send the user's session like a logged-in browser would.
The request records still redact ``Cookie`` (``ARCHIVE_KEEP_REQUEST_SECRETS`` is off).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.cookies import CookiesMiddleware
from scrapy.http.cookies import CookieJar

from crawler.cookiefile import FileCookie, load_cookies


class FileCookiesMiddleware(CookiesMiddleware):
    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Any:
        mw = super().from_crawler(crawler)
        path = crawler.settings.get("ARCHIVE_COOKIES_FILE") or ""
        profile = crawler.settings.get("ARCHIVE_BROWSER_PROFILE") or ""
        cookies = load_cookies(path) if path else []
        if profile:
            from crawler.profiles import load_state, state_cookies

            cookies += state_cookies(load_state(profile))
        if cookies:
            mw.jars = defaultdict(lambda: _seeded_jar(cookies))
            if crawler.stats:
                crawler.stats.set_value("cookies/loaded", len(cookies))
        return mw


def _seeded_jar(cookies: list[FileCookie]) -> CookieJar:
    jar = CookieJar()
    for cookie in cookies:
        jar.jar.set_cookie(cookie.to_cookiejar())
    return jar
