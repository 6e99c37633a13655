"""Playwright request/response -> ``storage.exchange.HttpExchange``.

What the browser hands over: header lists as received (Chromium's raw "ExtraInfo" headers, case
and repeats kept), the status code and reason, and a body **after** content decoding. So every
browser exchange is ``body_decoded=True``: the recorder renames ``Content-Encoding`` and
``Transfer-Encoding`` to ``X-Archive-Orig-*`` and writes the real ``Content-Length``. HTTP/2
pseudo-headers (``:status``, ``:authority``) are dropped and the message is written as
HTTP/1.1 with the real protocol in ``WARC-Protocol`` (WARC.md §2.1, §2.4).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from storage.exchange import HttpExchange
from storage.records import HttpHead, warc_date

CONTENT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.I)


def reason_phrase(status: int, given: str) -> str:
    if given:
        return given
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def header_pairs(items: list[dict[str, str]]) -> list[tuple[bytes, bytes]]:
    """Playwright's ``headers_array()`` as wire pairs, without HTTP/2 pseudo-headers."""
    return [
        (h["name"].encode("latin-1", "replace"), h["value"].encode("latin-1", "replace"))
        for h in items if not h["name"].startswith(":")
    ]


def request_target(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def request_head(method: str, url: str, headers: list[tuple[bytes, bytes]]) -> HttpHead:
    head = HttpHead(f"{method} {request_target(url)} HTTP/1.1".encode("latin-1"))
    if not any(k.lower() == b"host" for k, _ in headers):
        head.headers.append((b"Host", urlsplit(url).netloc.encode("idna")))
    head.headers += headers
    return head


def response_head(status: int, reason: str, headers: list[tuple[bytes, bytes]]) -> HttpHead:
    line = f"HTTP/1.1 {status} {reason_phrase(status, reason)}"
    return HttpHead(line.encode("latin-1", "replace"), list(headers))


def content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``Content-Range: bytes a-b/total`` -> (a, b, total or None)."""
    m = CONTENT_RANGE_RE.match(value or "")
    if not m:
        return None
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), int(m.group(2)), total


def is_whole_range(value: str | None) -> bool:
    rng = content_range(value)
    return rng is not None and rng[0] == 0 and rng[2] is not None and rng[1] == rng[2] - 1


def started_at(timing: dict[str, Any] | None) -> str:
    """WARC-Date: when the browser started the request (``timing.startTime`` is epoch ms)."""
    start = float((timing or {}).get("startTime") or 0)
    dt = datetime.fromtimestamp(start / 1000, UTC) if start > 0 else datetime.now(UTC)
    return warc_date(dt)


def browser_exchange(
    *, url: str, method: str, date: str, req_headers: list[tuple[bytes, bytes]],
    req_body: bytes, status: int, reason: str, resp_headers: list[tuple[bytes, bytes]],
    body: bytes, ip: str | None, protocol: str | None, resource_type: str | None = None,
) -> HttpExchange:
    resp = response_head(status, reason, resp_headers)
    if status == 206 and is_whole_range((resp.get(b"Content-Range") or b"").decode("latin-1")):
        # A 206 that holds the whole body replays as the full resource (Browsertrix PR #646):
        # written as 200 with the range header renamed, so every range request can be served.
        resp.first_line = f"HTTP/1.1 200 {reason_phrase(200, '')}".encode()
        resp.rename(b"Content-Range")
    proto = protocol.lower() if protocol and not protocol.lower().startswith("http/1") else None
    return HttpExchange(
        url=url.split("#", 1)[0],
        date=date,
        request_head=request_head(method, url, req_headers),
        request_body=req_body,
        response_head=resp,
        response_body=body,
        ip_address=ip,
        body_decoded=True,
        protocol=proto,
        extra_fields=[("WARC-Resource-Type", resource_type)] if resource_type else [],
    )
