"""Posts, accounts and media from captured Mastodon-API responses (one pure function).

Used live by the spider and offline by ``socialark index --rebuild``. All flavours use the
platform value ``mastodon`` (ids, routes and entities are shared, and a Truth Social account
payload carries nothing that tells it apart); the fork a post came from, judged from the payload
alone, is kept in ``raw["_flavor"]`` (``mastodon``/``truthsocial``/``gab``/``pleroma``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from crawler.extraction import GONE_STATUSES, Capture, Extractor, Wants
from crawler.items import Account, Media, Post, PostGone
from spiders.mastodon.parsers import (
    flavor_of_status,
    html_to_text,
    nested_statuses,
    quote_of,
    utc_iso,
)

PLATFORM = "mastodon"
ACCOUNT_PATH = re.compile(r"^/api/v1/(?:accounts/lookup|accounts/[^/]+|account_by_username/[^/]+)$")
STATUS_LIST_PATH = re.compile(
    r"^/api/v1/(?:accounts/[^/]+/statuses|timelines/[^/]+(?:/[^/]+)?|statuses"
    r"|statuses/[^/]+/context/descendants)$"
)
STATUS_PATH = re.compile(r"^/api/v1/statuses/[^/]+$")
CONTEXT_PATH = re.compile(r"^/api/v1/statuses/[^/]+/context$")


def matches(url: str) -> bool:
    path = urlsplit(url).path
    return any(p.match(path) for p in (ACCOUNT_PATH, STATUS_LIST_PATH, STATUS_PATH, CONTEXT_PATH))


def _statuses(path: str, data: Any) -> list[dict[str, Any]]:
    if CONTEXT_PATH.match(path) and isinstance(data, dict):
        return [s for key in ("ancestors", "descendants") for s in data.get(key) or []
                if isinstance(s, dict)]
    if STATUS_LIST_PATH.match(path) and isinstance(data, list):
        return [s for s in data if isinstance(s, dict)]
    if STATUS_PATH.match(path) and isinstance(data, dict) and "content" in data:
        return [data]
    return []


def extract(capture: Capture) -> Iterator[Any]:
    """Items of one captured API response (nothing for errors or non-JSON bodies, except a
    status URL answering 404/410: that post is gone)."""
    path = urlsplit(capture.url).path
    if capture.status in (404, 410) and STATUS_PATH.match(path):
        yield PostGone(platform=PLATFORM, post_id=path.rsplit("/", 1)[1],
                       source_url=capture.url, source_timestamp=capture.timestamp)
        return
    if capture.status != 200 or "json" not in capture.content_type:
        return
    data = capture.json_or_none()
    if data is None:
        return
    src = {"source_url": capture.url, "source_timestamp": capture.timestamp}
    if ACCOUNT_PATH.match(path):
        if isinstance(data, dict) and data.get("id"):
            yield account_item(data, src)
        return
    seen_accounts: set[str] = set()
    for status in _statuses(path, data):
        for st in [status, *nested_statuses(status)]:
            yield from status_items(st, src)
            acc = st.get("account")
            if isinstance(acc, dict) and acc.get("id") and str(acc["id"]) not in seen_accounts:
                seen_accounts.add(str(acc["id"]))
                yield account_item(acc, src)


def status_items(st: dict[str, Any], src: dict[str, str]) -> Iterator[Any]:
    """One Post (and its Media rows) for a Status entity."""
    post_id = str(st["id"])
    account = st.get("account") or {}
    attachments = [m for m in st.get("media_attachments") or [] if isinstance(m, dict)]
    media = [m.get("url") or m.get("remote_url") for m in attachments]
    reblog = st.get("reblog") if isinstance(st.get("reblog"), dict) else None
    raw = dict(st)
    raw["_flavor"] = flavor_of_status(st)
    yield Post(
        platform=PLATFORM, post_id=post_id, url=st.get("url") or st.get("uri"),
        author=account.get("acct"), author_id=str(account["id"]) if account.get("id") else None,
        created_at=utc_iso(st.get("created_at")), text=html_to_text(st.get("content")),
        content_html=st.get("content"), reply_to_id=_str(st.get("in_reply_to_id")),
        repost_of_id=str(reblog["id"]) if reblog else None, quote_of_id=quote_of(st),
        reply_count=_int(st.get("replies_count")), repost_count=_int(st.get("reblogs_count")),
        like_count=_int(st.get("favourites_count")), lang=st.get("language"),
        media=[u for u in media if u], raw=raw, **src,
    )
    for m in attachments:
        url = m.get("url") or m.get("remote_url")
        if url:
            yield Media(platform=PLATFORM, url=url, post_id=post_id, media_type=m.get("type"),
                        description=m.get("description"), preview_url=m.get("preview_url"), **src)


def account_item(acc: dict[str, Any], src: dict[str, str]) -> Account:
    return Account(
        platform=PLATFORM, account_id=str(acc["id"]), handle=acc.get("acct") or acc.get("username"),
        display_name=acc.get("display_name"), url=acc.get("url"),
        created_at=utc_iso(acc.get("created_at")), description=html_to_text(acc.get("note")),
        followers_count=_int(acc.get("followers_count")),
        following_count=_int(acc.get("following_count")),
        posts_count=_int(acc.get("statuses_count")), avatar_url=acc.get("avatar"),
        header_url=acc.get("header"), raw=acc, **src,
    )


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return str(value) if value is not None else None


EXTRACTOR = Extractor(platform=PLATFORM, matches=matches, extract=extract,
                      wants=Wants(mimes=("json",), statuses=GONE_STATUSES))
