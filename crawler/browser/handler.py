"""``BrowserDownloadHandler``: Scrapy's http/https handler, plus rendering in Chromium on request.

Requests with ``meta["archive_browser"]`` are rendered in a browser page; every other request
goes through ``WireRecordingDownloadHandler`` exactly as before (wire-faithful records). A page:

1. opens in a recycled context (``BrowserPool``), with the network captured (``PageNetwork``);
2. navigates, runs the behaviors (scroll, load more, lazy images, site scripts);
3. waits for network idle and for every body capture, takes a screenshot (``resource`` record
   ``urn:screenshot:<url>``) and the title/text (``meta["archive_browser_page"]``);
4. returns the rendered DOM as an ``HtmlResponse`` flagged ``"playwright"``, which the WARC
   extension never records (STYLE.md C10) and the spider parses for links.

A page that crashes the browser or hangs past its time limit restarts the browser and is tried
again (``ARCHIVE_BROWSER_RETRIES``). A record that cannot be written (disk full...) stops the
crawl like any capture (``crawler/write_failure.py``): the page's response is dropped by
``ArchiveGuardMiddleware`` and the URL stays queued. Why not scrapy-playwright: docs/browser.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import HtmlResponse, Response

from crawler.browser import BROWSER_META_KEY, PAGE_META_KEY
from crawler.browser.behaviors import extract_text, run_behaviors
from crawler.browser.config import BrowserConfig
from crawler.browser.extract import ITEMS_META_KEY, LiveExtraction
from crawler.browser.lifecycle import BrowserPool
from crawler.browser.network import PageNetwork
from crawler.capture.exchange import exchange_from_scrapy
from crawler.capture.handler import WireRecordingDownloadHandler
from storage.errors import ArchiveWriteError
from storage.exchange import HttpExchange
from storage.records import timestamp14, warc_date

logger = logging.getLogger(__name__)

HARD_MARGIN = 30.0  # at most this far past its time limit a page is "hung": restart the browser
SCREENSHOT_TIMEOUT = 10.0
RESERVE = 0.15  # share of the page time kept for idle wait, body captures and the screenshot
REFETCH_DROP = (b"host", b"range", b"if-range", b"content-length", b"connection",
                b"if-none-match", b"if-modified-since")
BROKEN_MARKERS = ("crash", "has been closed", "target closed", "disconnected", "connection closed")


class BrowserCaptureError(Exception):
    """A page could not be rendered (navigation error, or the browser failed every try)."""


class _NotAPage(Exception):
    """The URL is a download (PDF, archive...), not a page: fetch it without the browser."""


class _BrowserBroken(Exception):
    """The page crashed or the browser went away: restart and retry."""


@dataclass
class _Attempt:
    generation: int = 0


def wants_browser(request: Request) -> bool:
    return bool(request.meta.get(BROWSER_META_KEY))


class BrowserDownloadHandler(WireRecordingDownloadHandler):
    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.crawler = crawler
        self._config: BrowserConfig | None = None
        self._browsers: BrowserPool | None = None
        self._written: set[tuple[str, int]] = set()
        self._refetched: set[str] = set()
        self._refetch_tasks: set[asyncio.Task[None]] = set()
        self._live_items = LiveExtraction(crawler.settings.get("ARCHIVE_BROWSER_EXTRACT"))

    # -- ExchangeSink ------------------------------------------------------------------------
    def stat(self, name: str, value: int = 1) -> None:
        stats = self.crawler.stats
        if stats is None:
            return
        if name.endswith("_max"):
            stats.max_value(name, value)
        else:
            stats.inc_value(name, value)

    def _recorder(self) -> Any:
        """The WARC extension (it writes and counts records), or None when capture is off."""
        from crawler.extensions.warc import WarcCaptureExtension

        ext = self.crawler.get_extension(WarcCaptureExtension)
        return ext if ext is not None and ext.recorder is not None else None

    def already_written(self, url: str, status: int) -> bool:
        return (url, status) in self._written

    def record(self, exchange: HttpExchange) -> list[tuple[str, dict[str, Any]]] | None:
        recorder = self._recorder()
        if recorder is None:
            return None
        try:
            recorder.record_exchange(exchange)
        except ArchiveWriteError:
            return None  # the crawl is stopping; the page's response will not reach its callback
        status = exchange.status or 0
        if exchange.method == "GET" and not 300 <= status < 400:
            self._written.add((exchange.url, status))
        self.stat("browser/exchanges")
        self._observe_rate_limits(exchange)
        items = self._live_items.extract(exchange)
        if items:
            recorder.add_items(items)
        return items

    async def _gate_open(self, request: Request) -> None:
        """Pages wait here for a browser slot after leaving the downloader's queue, so a host
        that closed meanwhile (rate-limit headers of an earlier page's calls) is waited for
        again before this page makes its own calls (crawler/gates.py)."""
        from crawler.gates import gates_for

        downloader = getattr(self.crawler.engine, "downloader", None)
        if downloader is None:
            return
        key, gates = downloader.get_slot_key(request), gates_for(self.crawler)
        while 0 < (wait := gates.wait(key)) < float("inf"):
            self.stat("browser/gate_waits")
            await asyncio.sleep(min(wait, 1.0))

    def _observe_rate_limits(self, exchange: HttpExchange) -> None:
        """Rate-limit headers of what a page loaded close its host's send gate like a Scrapy
        answer's would: the next page to that host waits (crawler/gates.py)."""
        from scrapy.http import Headers

        from crawler.gates import gates_for

        downloader = getattr(self.crawler.engine, "downloader", None)
        status = exchange.status or 0
        if downloader is None or not status:
            return
        key = downloader.get_slot_key(Request(exchange.url))
        headers = Headers([(k, v) for k, v in exchange.response_head.headers])
        gates_for(self.crawler).observe(key, status, headers)

    def refetch(self, url: str, headers: list[tuple[bytes, bytes]], reason: str) -> asyncio.Task[None] | None:
        """Fetch ``url`` whole (no Range) through the wire-recording handler and record it."""
        if url in self._refetched:
            return None
        self._refetched.add(url)
        self.stat(f"browser/refetch/{reason}")
        task = asyncio.ensure_future(self._refetch(url, headers))
        self._refetch_tasks.add(task)
        task.add_done_callback(self._refetch_tasks.discard)
        return task

    async def _refetch(self, url: str, headers: list[tuple[bytes, bytes]]) -> None:
        s = self.crawler.settings
        kept = [(k, v) for k, v in headers if k.lower() not in REFETCH_DROP]
        request = Request(url, headers=kept, dont_filter=True,
                          meta={"download_timeout": s.getfloat("DOWNLOAD_TIMEOUT", 60)})
        try:
            response = await WireRecordingDownloadHandler.download_request(self, request)
        except Exception as exc:
            self.stat("browser/refetch_failed")
            logger.warning("Whole-resource refetch of %s failed: %s", url, exc)
            return
        recorder = self._recorder()
        if recorder is not None:
            try:
                recorder.record_exchange(exchange_from_scrapy(request, response))
            except ArchiveWriteError:
                return
            self._written.add((url, response.status))

    # -- Scrapy handler API -----------------------------------------------------------------
    async def _fetch(self, request: Request) -> Response:
        if not wants_browser(request):
            return await super()._fetch(request)
        if self._config is None:
            self._config = BrowserConfig.from_settings(self.crawler.settings)
            self._browsers = BrowserPool(self._config, self.stat)
        return await self._render(request)

    async def close(self) -> None:
        if self._refetch_tasks:
            await asyncio.wait(list(self._refetch_tasks), timeout=30)
        if self._browsers is not None:
            await self._browsers.close()
        await super().close()

    # -- rendering --------------------------------------------------------------------------
    async def _render(self, request: Request) -> Response:
        assert self._config is not None and self._browsers is not None
        cfg, pool = self._config, self._browsers
        tries = cfg.retries + 1
        try:
            async with pool.slot():
                await self._gate_open(request)
                for attempt in range(1, tries + 1):
                    state = _Attempt(pool.generation)
                    try:
                        return await asyncio.wait_for(self._render_once(request, state),
                                                      cfg.page_timeout + self._hard_margin(cfg))
                    except (_BrowserBroken, TimeoutError) as exc:
                        why = "hung" if isinstance(exc, TimeoutError) else f"broke ({exc})"
                        logger.warning("Browser %s on %s (try %d of %d)", why, request.url,
                                       attempt, tries)
                        self.stat("browser/page_failures")
                        await pool.restart(state.generation)
        except _NotAPage:
            self.stat("browser/downloads")
            return await WireRecordingDownloadHandler._fetch(self, request)
        self.stat("browser/pages_failed")
        raise BrowserCaptureError(f"{request.url}: the browser failed on every try ({tries})")

    async def _render_once(self, request: Request, state: _Attempt) -> Response:
        assert self._config is not None and self._browsers is not None
        cfg = self._config
        async with self._browsers.page() as (page, generation):
            state.generation = generation
            crashed: list[bool] = []
            page.on("crash", lambda _page: crashed.append(True))
            net = PageNetwork(page, self, cfg.body_timeout)
            start_date = warc_date(datetime.now(UTC))
            deadline = time.monotonic() + cfg.page_timeout
            try:
                await net.attach()
                main = await self._navigate(page, request.url, cfg)
                behave_until = deadline - cfg.page_timeout * RESERVE
                try:
                    await run_behaviors(page, net, cfg, behave_until)
                except Exception as exc:
                    if crashed or self._broken(exc):
                        raise
                    self.stat("browser/behavior_errors")
                    logger.warning("Behaviors stopped early on %s: %s", request.url, exc)
                left = max(1.0, deadline - time.monotonic())
                await net.wait_idle(cfg.idle_time, min(5.0, left))
                await net.drain(left)
                info = await extract_text(page)
                html = await page.content()
                png = await self._screenshot(page) if cfg.screenshot else b""
            except (BrowserCaptureError, _NotAPage):
                raise
            except Exception as exc:
                if crashed or self._broken(exc) or not self._browsers.is_connected():
                    raise _BrowserBroken(str(exc).splitlines()[0]) from exc
                raise BrowserCaptureError(f"{request.url}: {str(exc).splitlines()[0]}") from exc
            final_url = page.url if page.url.startswith("http") else request.url
        return self._response(request, final_url, main, net, info, html, png, start_date)

    async def _screenshot(self, page: Any) -> bytes:
        """PNG of the viewport at the top of the page (what a reader first sees), or b"" if the
        page cannot be drawn in time: the network capture matters more than the picture."""
        try:
            await page.evaluate("() => window.scrollTo(0, 0)")
            return bytes(await page.screenshot(timeout=SCREENSHOT_TIMEOUT * 1000))
        except Exception as exc:
            if self._broken(exc):
                raise
            self.stat("browser/screenshot_errors")
            logger.warning("No screenshot of %s: %s", page.url, str(exc).splitlines()[0])
            return b""

    async def _navigate(self, page: Any, url: str, cfg: BrowserConfig) -> Any:
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        try:
            return await page.goto(url, wait_until="load", timeout=cfg.page_timeout * 600)
        except PlaywrightTimeout:
            if not page.url.startswith("http"):
                raise BrowserCaptureError(f"{url}: navigation timed out") from None
            # Slow subresources: keep going with what loaded, if the document did.
            self.stat("browser/load_timeouts")
            return None
        except Exception as exc:
            if "download is starting" in str(exc).lower():
                raise _NotAPage(url) from exc
            raise

    @staticmethod
    def _hard_margin(cfg: BrowserConfig) -> float:
        """How long past its time limit a page may run before it counts as hung."""
        return min(HARD_MARGIN, max(3.0, cfg.page_timeout))

    @staticmethod
    def _broken(exc: BaseException) -> bool:
        text = str(exc).lower()
        return any(marker in text for marker in BROKEN_MARKERS)

    def _response(self, request: Request, url: str, main: Any, net: PageNetwork,
                  info: dict[str, str], html: str, png: bytes, start_date: str) -> Response:
        date = net.document_dates.get(url) or net.document_dates.get(request.url) or start_date
        recorder = self._recorder()
        if png and recorder is not None:
            try:
                recorder.record_resource(f"urn:screenshot:{url}", "image/png", png)
                self.stat("browser/screenshots")
            except ArchiveWriteError:
                pass  # ArchiveGuardMiddleware drops this page's response: it stays queued
        self.stat("browser/pages")
        request.meta[PAGE_META_KEY] = {"url": url, "timestamp": timestamp14(date), **info}
        request.meta["warc_date"] = date
        request.meta[ITEMS_META_KEY] = net.items
        return HtmlResponse(
            url=url, status=main.status if main is not None else 200,
            headers={"Content-Type": "text/html; charset=utf-8"},
            body=html.encode("utf-8"), encoding="utf-8", request=request, flags=["playwright"],
        )
