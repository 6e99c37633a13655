"""Capture every network exchange of one page as it happens (WARC.md §2.6, approach 2).

Playwright's page events give each request and response, including redirect hops, XHR/fetch,
POST bodies, frames, fonts and media. Bodies are taken with ``response.body()`` in a task per
response (redirects have none: they are archived with an empty body). A CDP session on the page
disables the HTTP cache and bypasses service workers, so every resource is really fetched and
its body is available (WARC.md §2.4).

What is not archived: HEAD/OPTIONS, ``data:``/``blob:`` URLs, WebSocket/EventSource, 304s and
service-worker answers (no network body), and a GET already written in this crawl with the same
URL and status (shared CSS/JS/fonts on every page). A partial 206 is not written: the whole
resource is fetched again without ``Range`` through the wire-recording HTTP handler, and a body
the browser cannot hand over (evicted, aborted media) or one over ``BODY_LIMIT`` is fetched again
the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol
from urllib.parse import urlsplit

from crawler.browser.exchange import browser_exchange, header_pairs, is_whole_range, started_at
from storage.exchange import HttpExchange

logger = logging.getLogger(__name__)

SKIP_METHODS = frozenset({"HEAD", "OPTIONS"})
SKIP_SCHEMES = ("data:", "blob:", "ws:", "wss:", "about:", "chrome:", "chrome-extension:")
SKIP_TYPES = frozenset({"websocket", "eventsource"})
# Streaming resources do not hold the page "busy": media can stream for as long as it plays.
NOT_BUSY_TYPES = frozenset({"media", "websocket", "eventsource"})
BODY_LIMIT = 50 * 1024 * 1024  # larger bodies are fetched again by the HTTP handler
# response.body() can wait forever for an answer the page never reads (an error answer a script
# throws on): each body read has this deadline; a missed body is recorded as such (empty,
# WARC-Truncated: time), never waited for.
BODY_DEADLINE = 15.0


class ExchangeSink(Protocol):
    """Where a page's exchanges go (the download handler, which owns the recorder)."""

    def already_written(self, url: str, status: int) -> bool: ...
    def record(self, exchange: HttpExchange) -> list[tuple[str, dict[str, Any]]] | None: ...
    def refetch(
        self, url: str, headers: list[tuple[bytes, bytes]], reason: str
    ) -> asyncio.Task[None] | None: ...
    def stat(self, name: str, value: int = 1) -> None: ...


def skipped(request: Any) -> bool:
    return (
        request.method.upper() in SKIP_METHODS
        or request.url.startswith(SKIP_SCHEMES)
        or request.resource_type in SKIP_TYPES
    )


class PageNetwork:
    def __init__(self, page: Any, sink: ExchangeSink, body_timeout: float = BODY_DEADLINE) -> None:
        self.page = page
        self.sink = sink
        self.body_timeout = body_timeout
        self.busy: set[Any] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.last_activity = time.monotonic()
        self.protocols: dict[str, str] = {}  # origin -> protocol ("h2", "http/1.1")
        self.exchanges = 0
        self.document_dates: dict[str, str] = {}  # navigation URL -> WARC-Date of its capture
        self.items: list[tuple[str, dict[str, Any]]] = []  # extracted live from exchanges

    async def attach(self) -> None:
        page = self.page
        page.on("request", self._on_request)
        page.on("requestfinished", self._on_done)
        page.on("requestfailed", self._on_done)
        page.on("response", self._on_response)
        cdp = await page.context.new_cdp_session(page)
        cdp.on("Network.responseReceived", self._on_cdp_response)
        await cdp.send("Network.enable")
        await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        await cdp.send("Network.setBypassServiceWorker", {"bypass": True})

    # -- events -----------------------------------------------------------------------------
    def _on_request(self, request: Any) -> None:
        self.last_activity = time.monotonic()
        if request.resource_type not in NOT_BUSY_TYPES:
            self.busy.add(request)

    def _on_done(self, request: Any) -> None:
        self.last_activity = time.monotonic()
        self.busy.discard(request)

    def _on_cdp_response(self, event: dict[str, Any]) -> None:
        resp = event.get("response") or {}
        parts = urlsplit(resp.get("url", ""))
        if resp.get("protocol"):
            self.protocols[f"{parts.scheme}://{parts.netloc}"] = resp["protocol"]

    def _on_response(self, response: Any) -> None:
        self.last_activity = time.monotonic()
        task = asyncio.ensure_future(self._capture(response))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- capture ----------------------------------------------------------------------------
    async def _capture(self, response: Any) -> None:
        try:
            await self._capture_one(response)
        except Exception as exc:  # page or browser gone mid-capture: count it, never crash
            self.sink.stat("browser/capture_errors")
            logger.debug("Browser capture of %s failed: %s", response.url, exc)

    async def _capture_one(self, response: Any) -> None:
        request = response.request
        if skipped(request):
            self.sink.stat("browser/skipped")
            return
        url, status, method = response.url, response.status, request.method.upper()
        if status == 304 or response.from_service_worker:
            self.sink.stat("browser/skipped")
            return
        redirect = 300 <= status < 400 and response.headers.get("location") is not None
        if method == "GET" and not redirect and self.sink.already_written(url, status):
            self.sink.stat("browser/duplicates")
            return
        req_headers = header_pairs(await request.headers_array())
        if status == 206 and not is_whole_range(response.headers.get("content-range")):
            self._track(self.sink.refetch(url, req_headers, "partial"))
            return
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > BODY_LIMIT:
            # Too big to pass through the browser protocol in one piece: take it from the wire.
            self._track(self.sink.refetch(url, req_headers, "large"))
            return
        body, truncated = b"", None
        if not redirect:
            try:
                body = await asyncio.wait_for(response.body(), self.body_timeout)
            except TimeoutError:
                logger.info("No body from the browser for %s within %.0fs: recorded without it",
                            url, self.body_timeout)
                self.sink.stat("browser/body_timeout")
                truncated = "time"
            except Exception as exc:
                logger.debug("No body from the browser for %s: %s", url, exc)
                self.sink.stat("browser/body_unavailable")
                if method == "GET" and 200 <= status < 300:
                    self._track(self.sink.refetch(url, req_headers, "no-body"))
                return
        resp_headers = header_pairs(await response.headers_array())
        addr = await response.server_addr()
        parts = urlsplit(url)
        ex = browser_exchange(
            url=url, method=method, date=started_at(request.timing),
            req_headers=req_headers, req_body=request.post_data_buffer or b"",
            status=status, reason=response.status_text, resp_headers=resp_headers, body=body,
            ip=(addr or {}).get("ipAddress", "").strip("[]") or None,
            protocol=self.protocols.get(f"{parts.scheme}://{parts.netloc}"),
            resource_type=request.resource_type,
        )
        ex.truncated = truncated
        items = self.sink.record(ex)
        if items:
            self.items.extend(items)
        self.exchanges += 1
        if request.resource_type == "document" and request.is_navigation_request():
            self.document_dates.setdefault(ex.url, ex.date)

    def _track(self, task: asyncio.Task[None] | None) -> None:
        """Refetches a page starts are waited for with its own body captures."""
        if task is not None:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    # -- waiting ----------------------------------------------------------------------------
    async def wait_idle(self, quiet: float, limit: float) -> bool:
        """Wait until no request is in flight for ``quiet`` seconds, at most ``limit`` seconds."""
        end = time.monotonic() + max(0.0, limit)
        while True:
            now = time.monotonic()
            if not self.busy and now - self.last_activity >= quiet:
                return True
            if now >= end:
                return False
            await asyncio.sleep(0.05)

    async def drain(self, limit: float) -> None:
        """Let the body captures (and refetches) already started finish, at most ``limit`` s."""
        end = time.monotonic() + max(0.1, limit)
        while self.tasks and time.monotonic() < end:
            await asyncio.wait(list(self.tasks), timeout=end - time.monotonic())
