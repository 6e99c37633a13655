"""Scrapy request/response -> ``storage.exchange.HttpExchange``.

Prefers the wire bytes recorded by ``WireRecordingDownloadHandler``; falls back to rebuilding the
heads from Scrapy's objects when a response came through another handler (the fallback cannot
know the reason phrase, header order across names or header case; README "Fidelity").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.http import Response

from crawler.capture.handler import WIRE_META_KEY, WireExchange
from storage.exchange import HttpExchange
from storage.records import HttpHead, warc_date


def _split_request(raw: bytes) -> tuple[HttpHead, bytes]:
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return HttpHead.parse(raw), b""
    return HttpHead.parse(raw[:end]), raw[end + 4 :]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _rebuilt_request_head(request: Request, protocol: str) -> HttpHead:
    parts = urlsplit(request.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = HttpHead(f"{request.method} {target} {protocol}".encode("latin-1"))
    head.headers.append((b"Host", parts.netloc.encode("idna") if parts.netloc else b""))
    for name, values in request.headers.items():
        for value in values:
            head.headers.append((bytes(name), bytes(value)))
    return head


def _rebuilt_response_head(response: Response) -> HttpHead:
    protocol = response.protocol or "HTTP/1.1"
    if not protocol.startswith("HTTP/1."):
        protocol = "HTTP/1.1"
    head = HttpHead(f"{protocol} {response.status} {_reason(response.status)}".encode("latin-1"))
    for name, values in response.headers.items():
        for value in values:
            head.headers.append((bytes(name), bytes(value)))
    return head


def exchange_from_scrapy(request: Request, response: Response) -> HttpExchange:
    latency = float(request.meta.get("download_latency") or 0.0)
    started = datetime.now(UTC) - timedelta(seconds=latency)
    wire: WireExchange | None = request.meta.pop(WIRE_META_KEY, None)
    protocol_field = None
    if wire is not None and wire.response_head:
        req_head, req_body = _split_request(wire.request_bytes)
        resp_head = HttpHead.parse(wire.response_head)
    else:
        req_head = _rebuilt_request_head(request, "HTTP/1.1")
        req_body = request.body or b""
        resp_head = _rebuilt_response_head(response)
        if response.protocol and not response.protocol.startswith("HTTP/1."):
            protocol_field = response.protocol.lower()
    truncated = None
    if "dataloss" in response.flags or "partial" in response.flags:
        truncated = "disconnect"
    return HttpExchange(
        url=request.url.split("#", 1)[0],
        date=warc_date(started),
        request_head=req_head,
        request_body=req_body,
        response_head=resp_head,
        response_body=response.body,
        ip_address=str(response.ip_address) if response.ip_address else None,
        truncated=truncated,
        protocol=protocol_field,
    )
