"""A download handler that records the exact request and response heads on the wire.

Scrapy's HTTP/1.1 handler (Twisted) hands over headers canonicalised: names re-cased, repeated
headers regrouped, the reason phrase and ``Transfer-Encoding`` dropped. Archival fidelity needs
what was really exchanged, so this handler keeps Scrapy's handler and adds two taps:

* the connection's ``write``/``writeSequence`` are teed, which yields the request bytes exactly
  as sent (request line, headers in order, body);
* the response parser's raw header lines are kept, which yields the status line and header block
  exactly as received.

Both are attached to the Twisted response and then to ``request.meta[WIRE_META_KEY]``, where
the WARC extension picks them up on ``response_downloaded`` (which fires before any downloader
middleware sees the response, so the body is still content-encoded). Anything this handler
cannot see (HTTP/2, other handlers) falls back to reconstruction from Scrapy's objects, and the
record says so (see ``crawler/extensions/warc.py``).

Every transfer runs in an asyncio task this handler tracks: on ``crawler.stop.crawl_stopping``
the tasks are cancelled (the Twisted deferred underneath aborts the connection) and the request
fails with ``CrawlStopped``, so a stop never waits for a large slow body. Subclasses implement
``_fetch`` (the browser handler renders pages there) and get the same tracking.

Bodies past ``ARCHIVE_SPOOL_THRESHOLD`` are spooled to disk as they arrive and archived from
the spool before the response is returned (``crawler/capture/spooling.py``,
``crawler/capture/spooled_response.py``); the head capture above is the same for them.

This relies on Scrapy's private ``_ScrapyAgent``; it is pinned by the tests in
``tests/test_capture_fidelity.py``, which compare records with the bytes the server sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

from scrapy import Request
from scrapy.core.downloader.handlers import http11
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future

from crawler.capture.spooled_response import archive_spooled
from crawler.capture.spooling import SPOOL_META_KEY, MemoryBudget, SpoolConfig, SpoolingAgent
from crawler.stop import crawl_stopping, stop_error
from crawler.write_failure import report_write_failure
from storage.errors import ArchiveWriteError
from storage.spool import remove_stale_spools

WIRE_META_KEY = "_socialark_wire"


@dataclass
class WireExchange:
    request_bytes: bytes
    response_head: bytes


class _RecordingParser(http11._LenientHTTPClientParser):  # type: ignore[misc]
    """Keeps every raw line of the status line and header block."""

    def lineReceived(self, line: bytes) -> None:
        raw = getattr(self, "_socialark_lines", None)
        if raw is None:
            raw = self._socialark_lines = []
        raw.append(line)
        super().lineReceived(line)


class _RecordingProtocol(http11._LenientHTTP11ClientProtocol):  # type: ignore[misc]
    _sent: list[bytes]

    def makeConnection(self, transport: Any) -> None:
        self._sent = []
        write, write_seq = transport.write, transport.writeSequence

        def tee_write(data: bytes) -> None:
            self._sent.append(bytes(data))
            write(data)

        def tee_write_seq(seq: Any) -> None:
            seq = list(seq)
            self._sent.extend(bytes(s) for s in seq)
            write_seq(seq)

        transport.write, transport.writeSequence = tee_write, tee_write_seq
        super().makeConnection(transport)

    def request(self, request: Any) -> Any:
        self._sent = []
        d = super().request(request)
        parser = self._parser
        if parser is not None:
            parser.__class__ = _RecordingParser
        sent = self._sent

        def attach(response: Any) -> Any:
            lines = getattr(parser, "_socialark_lines", None) or []
            head = b"\r\n".join(ln.removesuffix(b"\r") for ln in lines)
            response._socialark_wire = WireExchange(b"".join(sent), head)
            return response

        d.addCallback(attach)
        return d


class _RecordingFactory(http11._LenientHTTP11ClientFactory):  # type: ignore[misc]
    def buildProtocol(self, addr: Any) -> Any:
        return _RecordingProtocol(self._quiescentCallback)


class _RecordingAgent(SpoolingAgent):
    def _cb_bodyready(self, txresponse: Any, request: Request) -> Any:
        wire = getattr(txresponse, "_socialark_wire", None)
        if wire is not None:
            request.meta[WIRE_META_KEY] = wire
        return super()._cb_bodyready(txresponse, request)


class WireRecordingDownloadHandler(http11.HTTP11DownloadHandler):  # type: ignore[misc]
    """Drop-in replacement for Scrapy's ``http``/``https`` handler that records wire heads."""

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        self._pool._factory = _RecordingFactory
        self._transfers: set[asyncio.Task[object]] = set()
        self._stopped: BaseException | None = None
        crawler.signals.connect(self.cancel_transfers, signal=crawl_stopping)
        self._spool_config = dataclasses.replace(SpoolConfig.from_settings(crawler.settings),
                                                 budget=MemoryBudget.of(crawler))
        remove_stale_spools(self._spool_config.directory)

    def cancel_transfers(self, exc: BaseException) -> int:
        """Cancel every transfer (and refuse new ones): they fail with ``CrawlStopped``."""
        self._stopped = exc
        tasks = [t for t in self._transfers if not t.done()]
        for task in tasks:
            task.cancel()
        return len(tasks)

    async def download_request(self, request: Request) -> Response:
        if self._stopped is not None:
            raise stop_error(self._stopped)
        task = asyncio.current_task()
        if task is not None:
            self._transfers.add(task)
        try:
            return await self._fetch(request)
        except asyncio.CancelledError:
            if self._stopped is None:
                raise
            # Scrapy's downloader only handles Exception: turn our own cancellation into one.
            raise stop_error(self._stopped) from None
        finally:
            if task is not None:
                self._transfers.discard(task)

    async def _fetch(self, request: Request) -> Response:
        agent = _RecordingAgent(
            contextFactory=self._contextFactory,
            bindAddress=self._bind_address,
            pool=self._pool,
            maxsize=self._default_maxsize,
            warnsize=self._default_warnsize,
            fail_on_dataloss=self._fail_on_dataloss,
            crawler=self._crawler,
            tls_verbose_logging=self._tls_verbose_logging,
        )
        agent.spool_config = self._spool_config
        try:
            with http11.wrap_twisted_exceptions():
                response = await maybe_deferred_to_future(agent.download_request(request))
        except http11.ResponseDataLossError:
            if not self._fail_on_dataloss_warned:
                http11.logger.warning(http11.get_dataloss_msg(request.url))
                self._fail_on_dataloss_warned = True
            raise
        except BaseException as exc:
            leftover = request.meta.pop(SPOOL_META_KEY, None)
            if leftover is not None:
                leftover.discard()
            if isinstance(exc, ArchiveWriteError):  # the spool file could not be written
                report_write_failure(self._crawler, exc)
            raise
        # A body past ARCHIVE_SPOOL_THRESHOLD was spooled (crawler/capture/spooling.py): archive
        # it from the spool now, off the reactor thread, and hand callbacks a light response.
        body = request.meta.pop(SPOOL_META_KEY, None)
        if body is None:
            return response
        try:
            return await archive_spooled(self._crawler, request, response, body)
        finally:
            body.discard()
