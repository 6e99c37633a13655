"""Scrapy's downloader with a send-time gate per host (setting ``DOWNLOADER``).

Downloader middlewares run *before* the per-slot queue that spaces requests by the download
delay, so a pause applied in a middleware cannot stop requests already queued behind it. Here
the gate sits where a request leaves its slot queue for the wire: while its host is closed
(429 / ``Retry-After`` pause, spent ``*-RateLimit-Remaining`` until the reset, a probe out after
an unannounced 429) nothing leaves for it, whatever ``--concurrency`` and ``--delay`` say;
requests already on the wire finish. A request may also carry a not-before time
(``meta["ratelimit_not_before"]``: a 5xx retry's backoff); the next ready request of the host
goes first. The budget is spent when a request actually leaves, and every answer is fed to the
gate the moment it arrives, before the slot can send the next request.

Requests held for a closed host stay as Scrapy keeps them, ``(request, deferred)`` in
``slot.queue``; they do not count against ``CONCURRENT_REQUESTS`` (other hosts keep going), up
to ``ARCHIVE_RATELIMIT_MAX_HELD`` held requests in all. :meth:`cancel_waiting` fails every
queued request (the stop path uses it so they go back to the frontier as unfinished).
"""

from __future__ import annotations

import math
from time import monotonic

from scrapy import Request, signals
from scrapy.core.downloader import Downloader, Slot
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.utils.asyncio import call_later
from scrapy.utils.defer import _process_pending_io, _schedule_coro
from twisted.python.failure import Failure

from crawler.gates import Gates, gates_for

NOT_BEFORE_KEY = "ratelimit_not_before"  # time.monotonic() before which a request may not leave


def not_before(request: Request) -> float:
    return float(request.meta.get(NOT_BEFORE_KEY) or 0.0)


def slot_key(crawler: Crawler, request: Request) -> str:
    """The downloader slot (host) a request goes to: the key of its send-time gate."""
    downloader = getattr(crawler.engine, "downloader", None)
    if downloader is not None:
        return str(downloader.get_slot_key(request))
    return request.url.split("/", 3)[2] if "://" in request.url else request.url


class ArchiveDownloader(Downloader):
    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.gates: Gates = gates_for(crawler)
        self.max_held = crawler.settings.getint("ARCHIVE_RATELIMIT_MAX_HELD", 1000)
        self.gate_enabled = crawler.settings.getbool("ARCHIVE_RATELIMIT_ENABLED", True)

    # -- what counts as busy -----------------------------------------------------------------
    def held_count(self, now: float | None = None) -> int:
        """Queued requests that may not leave yet: all of a closed host's, plus those waiting
        for their own not-before time."""
        now = monotonic() if now is None else now
        held = 0
        for slot in self.slots.values():
            if not slot.queue:
                continue
            if self.gate_enabled and self.gates.wait(self._key(slot), now) > 0:
                held += len(slot.queue)
            else:
                held += sum(1 for request, _ in slot.queue if not_before(request) > now)
        return held

    def needs_backout(self) -> bool:
        held = self.held_count()
        if held >= self.max_held:
            return True  # too many piled up behind closed hosts: stop taking new work
        return 0 < self.total_concurrency <= len(self.active) - held

    # -- the gate ----------------------------------------------------------------------------
    @staticmethod
    def _key(slot: Slot) -> str:
        return str(slot.queue[0][0].meta.get(Downloader.DOWNLOAD_SLOT, ""))

    def _hold(self, slot: Slot, wait: float) -> None:
        """Come back when the gate may open (an infinite wait ends with the probe's answer:
        ``_download`` processes the queue again when any request leaves the wire)."""
        if math.isfinite(wait):
            slot.latercall = call_later(max(wait, 0.001), self._latercall, slot)

    def _held_by_gate(self, slot: Slot, wait: float) -> None:
        if self.crawler.stats:
            self.crawler.stats.inc_value("ratelimit/waits")
        self._hold(slot, wait)

    def _next_ready(self, slot: Slot, now: float) -> int | float:
        """Index of the first queued request whose not-before time has come, or (as a float)
        the seconds until the earliest one is ready."""
        earliest = math.inf
        for index, (request, _) in enumerate(slot.queue):
            ready_at = not_before(request)
            if ready_at <= now:
                return index
            earliest = min(earliest, ready_at - now)
        return float(earliest)

    def _process_queue(self, slot: Slot) -> None:
        if slot.latercall or not slot.queue:
            return
        now = monotonic()
        key = self._key(slot)
        if self.gate_enabled and (wait := self.gates.wait(key, now)) > 0:
            self._held_by_gate(slot, wait)
            return
        delay = slot.download_delay()
        if delay:
            penalty = delay - now + slot.lastseen
            if penalty > 0:
                slot.latercall = call_later(penalty, self._latercall, slot)
                return
        while slot.queue and slot.free_transfer_slots() > 0:
            if self.gate_enabled and (wait := self.gates.wait(key, now)) > 0:
                self._held_by_gate(slot, wait)  # the budget ran out in this loop, or a probe
                return
            ready = self._next_ready(slot, now)
            if isinstance(ready, float):
                self._hold(slot, ready)
                return
            request, queue_dfd = slot.queue[ready]
            del slot.queue[ready]
            slot.lastseen = now
            self.gates.spend(key)
            _schedule_coro(self._wait_for_download(slot, request, queue_dfd))
            if delay:  # one request per delay: schedules the next one
                self._process_queue(slot)
                break

    async def _download(self, slot: Slot, request: Request) -> Response:
        # Scrapy's order, plus: the gate hears the answer before the slot sends anything else.
        key = str(request.meta.get(self.DOWNLOAD_SLOT, ""))
        slot.transferring.add(request)
        released = False
        try:
            response: Response = await self.handlers.download_request_async(request)
            self.gates.done(key)
            released = True
            if self.gates.observe(key, response.status, response.headers) and self.crawler.stats:
                self.crawler.stats.inc_value("ratelimit/throttled")
            self.signals.send_catch_log(signal=signals.response_downloaded, response=response,
                                        request=request, spider=self.crawler.spider)
            return response
        except Exception:
            await _process_pending_io()
            raise
        finally:
            if not released:
                self.gates.done(key)
            slot.transferring.remove(request)
            self._process_queue(slot)
            self.signals.send_catch_log(signal=signals.request_left_downloader, request=request,
                                        spider=self.crawler.spider)

    # -- stopping ------------------------------------------------------------------------------
    def cancel_waiting(self, exc: BaseException) -> int:
        """Fail every request still queued in a slot (held for a closed host or for the delay)
        with ``exc``; requests on the wire are untouched. Returns how many were failed."""
        cancelled = 0
        for slot in list(self.slots.values()):
            if slot.latercall:
                slot.latercall.cancel()
                slot.latercall = None
            while slot.queue:
                _, queue_dfd = slot.queue.popleft()
                queue_dfd.errback(Failure(exc))
                cancelled += 1
        return cancelled
