"""Chromium's lifecycle: launch, pages at most N at once, context recycling, restart.

One browser process serves the crawl. Pages open in a shared context that is retired after
``recycle_pages`` pages (closed once its last page closes), so per-context memory (caches,
detached DOMs, cookies jars of long sessions) cannot grow without bound. ``restart()`` tears the
whole Playwright driver down and starts again; it is how a crashed or hung browser is recovered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from crawler.browser.config import LAUNCH_ARGS, BrowserConfig

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 10.0


@dataclass
class _Context:
    context: Any
    opened: int = 0
    active: int = 0
    retired: bool = False


class BrowserPool:
    def __init__(self, config: BrowserConfig, stat: Callable[[str, int], None]) -> None:
        self.config = config
        self._stat = stat
        self._sem = asyncio.Semaphore(config.concurrency)
        self._lock = asyncio.Lock()
        self._playwright: Any = None
        self._browser: Any = None
        self._current: _Context | None = None
        self.generation = 0  # bumped on every (re)start; a failure only restarts its generation
        self.open_pages = 0

    # -- start / stop -----------------------------------------------------------------------
    async def _start(self) -> None:
        from playwright.async_api import async_playwright

        self._playwright = await async_playwright().start()
        try:
            self._browser = await self._playwright.chromium.launch(
                executable_path=self.config.executable,
                headless=self.config.headless,
                args=list(LAUNCH_ARGS),
            )
        except Exception:
            await self._playwright.stop()
            self._playwright = None
            raise
        self.generation += 1
        self._stat("browser/launches", 1)
        logger.info("Browser started: Chromium %s (%s)", self._browser.version,
                    self.config.executable or "Playwright's bundled browser")

    async def _stop(self) -> None:
        browser, pw = self._browser, self._playwright
        self._browser = self._playwright = self._current = None
        if browser is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(browser.close(), CLOSE_TIMEOUT)
        if pw is not None:
            # Stopping the driver kills a browser that did not close by itself.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pw.stop(), CLOSE_TIMEOUT)

    async def close(self) -> None:
        async with self._lock:
            await self._stop()

    async def restart(self, generation: int) -> None:
        """Restart the browser if it is still the one that failed (``generation``)."""
        async with self._lock:
            if generation != self.generation or self._browser is None:
                return
            logger.warning("Restarting the browser (generation %d)", generation)
            self._stat("browser/restarts", 1)
            await self._stop()

    def is_connected(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    # -- pages ------------------------------------------------------------------------------
    async def _context_for_page(self) -> _Context:
        async with self._lock:
            if self._browser is None or not self._browser.is_connected():
                await self._stop()
                await self._start()
            cur = self._current
            if cur is None or cur.opened >= self.config.recycle_pages:
                if cur is not None:
                    cur.retired = True
                    self._stat("browser/contexts_recycled", 1)
                    if cur.active == 0:
                        await self._close_context(cur)
                kwargs: dict[str, Any] = {
                    # Requests a service worker answers never reach the network: block them.
                    "service_workers": "block",
                    "viewport": {"width": self.config.viewport[0], "height": self.config.viewport[1]},
                }
                if self.config.user_agent:
                    kwargs["user_agent"] = self.config.user_agent
                if self.config.storage_state:  # --profile: the saved login
                    kwargs["storage_state"] = self.config.storage_state
                context = await self._browser.new_context(**kwargs)
                if self.config.cookies:  # --cookies: the user's session in every context
                    await context.add_cookies(list(self.config.cookies))
                cur = self._current = _Context(context)
                self._stat("browser/contexts", 1)
            cur.opened += 1
            cur.active += 1
            return cur

    async def _close_context(self, ctx: _Context) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ctx.context.close(), CLOSE_TIMEOUT)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the ``concurrency`` page slots (time limits start after this)."""
        async with self._sem:
            yield

    @contextlib.asynccontextmanager
    async def page(self) -> AsyncIterator[tuple[Any, int]]:
        """A fresh page (and the browser generation it belongs to); always closed afterwards."""
        ctx = await self._context_for_page()
        generation = self.generation
        page = None
        try:
            page = await ctx.context.new_page()
            self.open_pages += 1
            self._stat("browser/pages_open_max", self.open_pages)
            yield page, generation
        finally:
            if page is not None:
                self.open_pages -= 1
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(page.close(run_before_unload=False), CLOSE_TIMEOUT)
            ctx.active -= 1
            if ctx.retired and ctx.active == 0:
                await self._close_context(ctx)
