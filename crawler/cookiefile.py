"""``--cookies FILE``: a Netscape ``cookies.txt`` (as browser extensions export it).

Pure Python (no Scrapy, no Playwright). The same cookies are handed to Scrapy's cookie jar
(``crawler.middlewares.cookies``) and to every browser context (``crawler.browser.lifecycle``).
The file's *path* is the only thing a crawl keeps (``crawls.config``); values never reach a
WARC because request records redact ``Cookie`` (``storage.exchange.DEFAULT_REDACT``).

Format: one cookie a line, seven TAB-separated fields ``domain  include_subdomains  path
secure  expires  name  value``; ``#`` starts a comment, except the ``#HttpOnly_`` prefix some
exporters put before the domain of an HttpOnly cookie. ``expires`` 0 means a session cookie.
"""

from __future__ import annotations

import http.cookiejar
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HTTPONLY_PREFIX = "#HttpOnly_"


class CookieFileError(ValueError):
    """The file cannot be read or is not a Netscape cookies.txt (message names file and line)."""


@dataclass(frozen=True)
class FileCookie:
    domain: str  # as in the file: ".x.com" matches subdomains, "x.com" only the host
    include_subdomains: bool
    path: str
    secure: bool
    expires: int  # epoch seconds, 0 = session cookie
    name: str
    value: str
    http_only: bool = False

    @property
    def host(self) -> str:
        return self.domain.lstrip(".")

    def to_playwright(self) -> dict[str, Any]:
        """The cookie as ``BrowserContext.add_cookies`` takes it."""
        out: dict[str, Any] = {
            "name": self.name, "value": self.value,
            "domain": f".{self.host}" if self.include_subdomains else self.host,
            "path": self.path or "/", "secure": self.secure, "httpOnly": self.http_only,
        }
        if self.expires > 0:
            out["expires"] = float(self.expires)
        return out

    def to_cookiejar(self) -> http.cookiejar.Cookie:
        """The cookie as ``http.cookiejar`` (and so Scrapy's ``CookieJar``) keeps it."""
        domain = f".{self.host}" if self.include_subdomains else self.host
        return http.cookiejar.Cookie(
            version=0, name=self.name, value=self.value, port=None, port_specified=False,
            domain=domain, domain_specified=self.include_subdomains,
            domain_initial_dot=self.include_subdomains, path=self.path or "/",
            path_specified=True, secure=self.secure,
            expires=self.expires or None, discard=self.expires == 0, comment=None,
            comment_url=None, rest={"HttpOnly": ""} if self.http_only else {},
        )


def parse_cookies_txt(text: str, source: str = "cookies file") -> list[FileCookie]:
    """Every cookie in ``text``; a malformed line is a :class:`CookieFileError`."""
    cookies = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r\n")
        http_only = line.startswith(HTTPONLY_PREFIX)
        if http_only:
            line = line[len(HTTPONLY_PREFIX):]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) == 6:  # some exporters drop an empty value's trailing TAB
            fields.append("")
        if len(fields) != 7:
            raise CookieFileError(f"{source} line {lineno}: expected 7 TAB-separated fields "
                                  f"(Netscape cookies.txt), got {len(fields)}")
        domain, sub, path, secure, expires, name, value = fields
        if not domain.strip() or not name:
            raise CookieFileError(f"{source} line {lineno}: a cookie needs a domain and a name")
        try:
            expiry = int(float(expires or 0))
        except ValueError as exc:
            raise CookieFileError(f"{source} line {lineno}: expiry {expires!r} is not a "
                                  f"number") from exc
        cookies.append(FileCookie(
            domain=domain.strip().lower(), include_subdomains=sub.strip().upper() == "TRUE",
            path=path or "/", secure=secure.strip().upper() == "TRUE", expires=max(expiry, 0),
            name=name, value=value, http_only=http_only,
        ))
    return cookies


def load_cookies(path: str | Path, now: float | None = None) -> list[FileCookie]:
    """The unexpired cookies of the file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CookieFileError(f"cannot read cookies file {path}: {exc.strerror or exc}") from exc
    now = time.time() if now is None else now
    return [c for c in parse_cookies_txt(text, str(path)) if not c.expires or c.expires > now]
