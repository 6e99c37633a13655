"""Pure helpers for the Mastodon family: HTML to text, Link headers, flavours, ids, statuses.

No Scrapy here: the extractor (live and ``index --rebuild``) and the spider both use these.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

FLAVORS = ("mastodon", "truthsocial", "gab", "pleroma")
BLOCK_TAGS = {"p", "div", "blockquote", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "pre"}
LINK_RE = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]+=(?:"[^"]*"|[^;,]*)\s*)*)')
STATUS_ID_RE = re.compile(r"/(?:@[^/]+(?:/posts)?|[^/@]+/posts|notice|users/[^/]+/statuses"
                          r"|api/v1/statuses)/([A-Za-z0-9]+)/?$")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def _newline(self, count: int) -> None:
        text = "".join(self.parts)
        if not text:
            return
        trailing = len(text) - len(text.rstrip("\n"))
        if trailing < count:
            self.parts.append("\n" * (count - trailing))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag in BLOCK_TAGS:
            self._newline(2)

    def handle_endtag(self, tag: str) -> None:
        if tag in BLOCK_TAGS:
            self._newline(2)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str | None) -> str:
    """Plain text of Mastodon's sanitised HTML.

    Paragraphs become blank-line separated blocks, ``<br>`` a newline, links their text (the
    ``invisible``/``ellipsis`` spans of long links are joined back into the full URL), no tags.
    """
    if not html:
        return ""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts).strip("\n").strip()


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` target of an RFC 8288 ``Link`` header, if any."""
    for m in LINK_RE.finditer(header or ""):
        params = m.group(2)
        rel = re.search(r'rel\s*=\s*"?([^";,]+)"?', params)
        if rel and "next" in rel.group(1).split():
            return m.group(1)
    return None


def flavor_from_instance(info: Any) -> str:
    """Guess the server software from ``/api/v1/instance`` (its ``version`` string)."""
    if not isinstance(info, dict):
        return "mastodon"
    version = str(info.get("version") or "").lower()
    if "truthsocial" in version:
        return "truthsocial"
    if "gab social" in version or "gabsocial" in version:
        return "gab"
    if "pleroma" in version or "akkoma" in version or "pleroma" in info:
        return "pleroma"
    return "mastodon"


def flavor_of_status(status: dict[str, Any]) -> str:
    """The fork a Status entity comes from, judged from its own keys only."""
    if "pleroma" in status:
        return "pleroma"
    if "quote_id" in status and "sponsored" in status:
        return "truthsocial"
    account = status.get("account") or {}
    if "quote_of_id" in status or "reactions_counts" in status or "is_pro" in account:
        return "gab"
    return "mastodon"


def quote_of(status: dict[str, Any]) -> str | None:
    """Id of the quoted post: Mastodon 4.4 ``quote``, Truth ``quote_id``, Gab ``quote_of_id``,
    Pleroma/Akkoma ``pleroma.quote_id``."""
    for key in ("quote_id", "quote_of_id"):
        if status.get(key):
            return str(status[key])
    pleroma = status.get("pleroma")
    if isinstance(pleroma, dict) and pleroma.get("quote_id"):
        return str(pleroma["quote_id"])
    quote = status.get("quote")
    if isinstance(quote, dict):
        inner = quote.get("quoted_status")
        if isinstance(inner, dict) and inner.get("id"):
            return str(inner["id"])
        if quote.get("quoted_status_id"):
            return str(quote["quoted_status_id"])
        if quote.get("id") and "state" not in quote:
            return str(quote["id"])
    return None


def quoted_status(status: dict[str, Any]) -> dict[str, Any] | None:
    """The embedded quoted Status, whatever the flavour nests it as."""
    quote = status.get("quote")
    if isinstance(quote, dict):
        inner = quote.get("quoted_status") if "state" in quote else quote
        if isinstance(inner, dict) and inner.get("id") and "content" in inner:
            return inner
    return None


def nested_statuses(status: dict[str, Any]) -> list[dict[str, Any]]:
    """Statuses embedded in ``status``: the boosted original, the quoted post, Truth's parent."""
    out = []
    for candidate in (status.get("reblog"), quoted_status(status), status.get("in_reply_to")):
        if isinstance(candidate, dict) and candidate.get("id"):
            out.append(candidate)
    return out


def utc_iso(value: str | None) -> str | None:
    """ISO 8601 UTC as the server sent it when already UTC (``…Z``), else converted to UTC."""
    if not value:
        return None
    if value.endswith("Z"):
        return value
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return value
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_id_from_target(target: str) -> str | None:
    """A status id from ``--status``: a bare id or a post URL of any flavour."""
    target = target.strip()
    if re.fullmatch(r"[A-Za-z0-9]+", target):
        return target
    path = urlsplit(target).path.rstrip("/")
    m = STATUS_ID_RE.search(path)
    return m.group(1) if m else None


def id_key(value: str) -> tuple[int, str]:
    """Sort key for both id families: numeric snowflakes and fixed-length Pleroma FlakeIds."""
    return (len(value), value)


def media_urls(attachment: dict[str, Any]) -> list[str]:
    """The original file and the preview of a media attachment (whichever are present)."""
    urls = []
    for key in ("url", "preview_url"):
        value = attachment.get(key)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            urls.append(value)
    if not attachment.get("url") and isinstance(attachment.get("remote_url"), str):
        urls.insert(0, attachment["remote_url"])
    return urls


def account_image_urls(account: dict[str, Any]) -> list[str]:
    urls: list[str] = []
    for key in ("avatar", "avatar_static", "header", "header_static"):
        value = account.get(key)
        if isinstance(value, str) and value.startswith(("http://", "https://")) and value not in urls:
            urls.append(value)
    return urls


def parse_since(value: str | None) -> str | None:
    """``--since`` as an ISO 8601 UTC prefix comparable with ``created_at`` strings."""
    if not value:
        return None
    text = value.strip()
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m", "%Y"):
        try:
            dt = datetime.strptime(text.rstrip("Z"), fmt)
        except ValueError:
            continue
        return dt.strftime("%Y-%m-%dT%H:%M:%S")
    raise ValueError(f"cannot parse date {value!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)")
