"""Crawl scope: which discovered URLs are pages to follow, and link-trap bounding.

Pure logic (no Scrapy), shared by the site spider and platform spiders.

Scopes, relative to the seed URLs:
``page``   only the seeds themselves (plus their page requisites);
``prefix`` URLs starting with a seed's URL up to its last ``/``;
``host``   URLs on a seed's host name (any port, http or https);
``domain`` a seed's host and all its subdomains (a leading ``www.`` is dropped first).

Traps are bounded without knowing the site: URLs longer than ``max_url_length``; a path segment
repeated more than ``max_path_repeats`` times (``/a/x/x/x/x``); more than
``max_query_variants`` distinct query strings on one path (calendars, session ids).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SCOPES = ("page", "prefix", "host", "domain")


class ScopeError(ValueError):
    pass


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


@dataclass
class Scope:
    mode: str
    seeds: list[str]
    excludes: list[str] = field(default_factory=list)
    max_url_length: int = 1024
    max_path_repeats: int = 3
    max_query_variants: int = 20
    _exclude_res: list[re.Pattern[str]] = field(init=False, repr=False)
    _variants: dict[tuple[str, str], set[str]] = field(
        init=False, repr=False, default_factory=lambda: defaultdict(set)
    )
    trapped: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.mode not in SCOPES:
            raise ScopeError(f"unknown scope {self.mode!r} (choose from {', '.join(SCOPES)})")
        try:
            self._exclude_res = [re.compile(x) for x in self.excludes]
        except re.error as exc:
            raise ScopeError(f"bad --exclude regex: {exc}") from exc
        self._seed_set = {s.split("#", 1)[0] for s in self.seeds}
        self._prefixes = [s[: s.rfind("/") + 1] if urlsplit(s).path else s + "/" for s in self._seed_set]
        self._hosts = {_host(s) for s in self.seeds}
        self._domains = {h[4:] if h.startswith("www.") else h for h in self._hosts}

    def excluded(self, url: str) -> bool:
        return any(rx.search(url) for rx in self._exclude_res)

    def in_scope(self, url: str) -> bool:
        """Is ``url`` a page this crawl should follow?"""
        url = url.split("#", 1)[0]
        if self.excluded(url):
            return False
        if self.mode == "page":
            return url in self._seed_set
        if self.mode == "prefix":
            return any(url.startswith(p) for p in self._prefixes)
        host = _host(url)
        if self.mode == "host":
            return host in self._hosts
        return any(host == d or host.endswith("." + d) for d in self._domains)

    def is_trap(self, url: str) -> bool:
        """Bound link traps; counts a URL as a new query variant when it is not a trap."""
        if len(url) > self.max_url_length:
            self.trapped += 1
            return True
        parts = urlsplit(url)
        segments = [s for s in parts.path.split("/") if s]
        if segments and max(segments.count(s) for s in set(segments)) > self.max_path_repeats:
            self.trapped += 1
            return True
        if parts.query:
            key = (parts.netloc.lower(), parts.path)
            variants = self._variants[key]
            if parts.query not in variants:
                if len(variants) >= self.max_query_variants:
                    self.trapped += 1
                    return True
                variants.add(parts.query)
        return False


def validate_seeds(urls: Iterable[str]) -> list[str]:
    """Seeds must be absolute http(s) URLs; returns them with fragments removed."""
    out = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ScopeError(f"not an absolute http(s) URL: {url!r}")
        out.append(url.split("#", 1)[0])
    return out
