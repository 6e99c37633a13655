"""Large response bodies go to a spool file as they arrive, not into memory.

Scrapy's ``_ResponseReader`` keeps a whole body in a ``BytesIO`` (and refuses one past
``DOWNLOAD_MAXSIZE``). ``SpoolingResponseReader`` keeps that behaviour up to
``ARCHIVE_SPOOL_THRESHOLD`` bytes; past it the body so far and every later chunk are written to a
``storage.spool.BodySpool`` under ``<data dir>/spool/<host>/``, digested on the way. A body longer
than ``ARCHIVE_MAX_RECORD_SIZE`` is kept up to that size, the connection is dropped and the
record is marked ``WARC-Truncated: length``. ``DOWNLOAD_MAXSIZE`` no longer refuses any body this
handler downloads (it still bounds decompression in ``HttpCompressionMiddleware``).

The finished spool travels in ``request.meta[SPOOL_META_KEY]`` to
``WireRecordingDownloadHandler.download_request``, which has it archived off the reactor thread
and hands callbacks a response with ``"spooled"`` in ``response.flags`` (see ``docs/settings.md``,
"Large bodies").
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from scrapy import Request, signals
from scrapy.core.downloader.handlers import http11
from scrapy.settings import Settings
from twisted.internet.defer import Deferred

from storage.errors import ArchiveWriteError
from storage.exchange import normalize_response_head
from storage.records import HttpHead
from storage.spool import BodySpool, SpooledBody

if TYPE_CHECKING:
    from crawler.capture.handler import WireExchange

DEFAULT_MEMORY_BUDGET = 256 * 1024 * 1024


class MemoryBudget:
    """Bytes of response bodies buffered in memory by every in-flight download of a crawler.

    A hostile site (or many big pages at once) cannot make the crawler hold more than
    ``ARCHIVE_MEMORY_BUDGET`` in download buffers: a download whose next chunk would pass the
    budget is spooled to disk from then on, whatever ``ARCHIVE_SPOOL_THRESHOLD`` says. Used
    on the reactor thread only.
    """

    def __init__(self, limit: int, stats: Any = None) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self.stats = stats  # archive/memory/peak_buffered_bytes, .../spooled_over_budget

    def take(self, n: int) -> bool:
        if self.limit and self.used + n > self.limit:
            if self.stats is not None:
                self.stats.inc_value("archive/memory/spooled_over_budget")
            return False
        self.used += n
        if self.used > self.peak:
            self.peak = self.used
            if self.stats is not None:
                self.stats.max_value("archive/memory/peak_buffered_bytes", self.peak)
        return True

    def release(self, n: int) -> None:
        self.used = max(0, self.used - n)

    @classmethod
    def of(cls, crawler: Any) -> MemoryBudget:
        """The crawler's one budget (shared by its http and https handlers)."""
        budget = getattr(crawler, "_socialark_memory_budget", None)
        if budget is None:
            limit = crawler.settings.getint("ARCHIVE_MEMORY_BUDGET", DEFAULT_MEMORY_BUDGET)
            budget = cls(max(0, limit), crawler.stats)
            crawler._socialark_memory_budget = budget
        return budget


SPOOL_META_KEY = "_socialark_spool"
SPOOLED_FLAG = "spooled"
TRUNCATED_FLAG = "truncated"


@dataclass(frozen=True)
class SpoolConfig:
    directory: Path
    threshold: int
    max_record_size: int
    algorithm: str
    budget: MemoryBudget | None = None

    @classmethod
    def from_settings(cls, s: Settings) -> SpoolConfig:
        host = socket.gethostname() or "host"
        return cls(
            directory=Path(s.get("ARCHIVE_DATA_DIR") or "./archive") / "spool" / host,
            threshold=max(1, s.getint("ARCHIVE_SPOOL_THRESHOLD")),
            max_record_size=s.getint("ARCHIVE_MAX_RECORD_SIZE"),
            algorithm=s.get("ARCHIVE_DIGEST_ALGORITHM") or "sha256",
        )

    def new_spool(self, wire: WireExchange | None) -> BodySpool:
        prefix = b""
        if wire is not None and wire.response_head:
            head = normalize_response_head(HttpHead.parse(wire.response_head), b"", body_decoded=False)
            prefix = head.to_bytes()
        return BodySpool(self.directory, block_prefix=prefix, algorithm=self.algorithm,
                         limit=self.max_record_size)


class SpoolingResponseReader(http11._ResponseReader):  # type: ignore[misc]
    """``_ResponseReader`` that moves to a spool file past the threshold (module docstring)."""

    def __init__(self, *args: Any, new_spool: Callable[[], BodySpool], threshold: int,
                 limit: int, spool_dir: Path, budget: MemoryBudget | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._new_spool = new_spool
        self._spool_dir = spool_dir
        self._threshold = min(threshold, limit) if limit else threshold
        self._spool: BodySpool | None = None
        self._spooled: SpooledBody | None = None
        self._budget = budget
        self._held = 0  # bytes of this download counted in the budget

    def _release_budget(self) -> None:
        if self._budget is not None and self._held:
            self._budget.release(self._held)
        self._held = 0

    def dataReceived(self, data: bytes) -> None:
        if self._finished.called:
            return
        if self._spool is None:
            if self._budget is not None:
                if self._budget.take(len(data)):
                    self._held += len(data)
                else:  # over the crawl's memory budget: spool from now on
                    self._threshold = 0
            super().dataReceived(data)  # buffer in memory, bytes_received signal, warnsize
            if self._finished.called or self._bytes_received <= self._threshold:
                return
            self._release_budget()
            try:
                self._spool = self._new_spool()
                self._spool.write(self._bodybuf.getvalue())
            except OSError as exc:
                self._spool_failed(exc)
                return
            self._bodybuf = BytesIO()
        else:
            self._bytes_received += len(data)
            try:
                self._spool.write(data)
            except OSError as exc:
                self._spool_failed(exc)
                return
            stop = http11.check_stop_download(
                signals.bytes_received, self._crawler, self._request, data=data
            )
            if stop:
                self._abort()
                self._finish_response(stop_download=stop)
                return
        if self._spool.full:
            # Past ARCHIVE_MAX_RECORD_SIZE: keep what we have, marked truncated.
            self._abort()
            self._finish_response(flags=[TRUNCATED_FLAG])

    def _spool_failed(self, exc: OSError) -> None:
        """The spool file cannot be written (disk full…): an archive write failure. The
        download fails with ``ArchiveWriteError`` (the request stays queued) and the crawl
        stops (crawler/write_failure.py)."""
        spool, self._spool = self._spool, None
        path = spool.path if spool is not None else self._spool_dir
        if spool is not None:
            spool.discard()
        self._abort()
        if not self._finished.called:
            self._finished.errback(ArchiveWriteError(path, exc))

    def _abort(self) -> None:
        assert self.transport
        self.transport.stopProducing()
        self.transport.loseConnection()

    def _finish_response(self, flags: list[str] | None = None, stop_download: Any = None) -> None:
        self._release_budget()
        if self._spool is not None and self._spooled is None:
            self._spooled = self._spool.finish()
            self._request.meta[SPOOL_META_KEY] = self._spooled
            flags = [*(flags or []), SPOOLED_FLAG]
        super()._finish_response(flags=flags, stop_download=stop_download)

    def connectionLost(self, reason: Any = None) -> None:
        self._release_budget()
        try:
            if reason is None:
                super().connectionLost()
            else:
                super().connectionLost(reason)
        finally:
            # Cancelled, timed out or failed before the body was finished: nothing to keep.
            if self._spool is not None and self._spooled is None:
                self._spool.discard()


class SpoolingAgent(http11._ScrapyAgent):  # type: ignore[misc]
    """``_ScrapyAgent`` whose bodies are read by ``SpoolingResponseReader``.

    ``_cb_bodyready`` follows Scrapy 2.19's, minus the ``DOWNLOAD_MAXSIZE`` refusal (archival
    bodies are bounded by ``ARCHIVE_MAX_RECORD_SIZE`` and truncated, never dropped).
    """

    spool_config: SpoolConfig | None = None

    def _cb_bodyready(self, txresponse: Any, request: Request) -> Any:
        if self.spool_config is None:
            return super()._cb_bodyready(txresponse, request)
        if stop_download := http11.check_stop_download(
            signals.headers_received, self._crawler, request,
            headers=self._headers_from_twisted_response(txresponse),
            body_length=txresponse.length,
        ):
            txresponse._transport.stopProducing()
            txresponse._transport.loseConnection()
            return {"txresponse": txresponse, "stop_download": stop_download}
        if cast("int", txresponse.length) == 0:
            return {
                "txresponse": txresponse,
                "certificate": getattr(txresponse, "_scrapy_certificate", None),
                "ip_address": getattr(txresponse, "_scrapy_ip_address", None),
            }
        cfg = self.spool_config
        wire = getattr(txresponse, "_socialark_wire", None)
        # A body announced longer than the threshold is spooled from its first byte.
        length = txresponse.length if isinstance(txresponse.length, int) else -1
        threshold = 0 if length > cfg.threshold else cfg.threshold
        d: Deferred[Any] = Deferred(partial(self._cancel, txresponse=txresponse))
        txresponse.deliverBody(
            SpoolingResponseReader(
                finished=d, txresponse=txresponse, request=request, maxsize=0,
                warnsize=request.meta.get("download_warnsize", self._warnsize),
                fail_on_dataloss=request.meta.get("download_fail_on_dataloss", self._fail_on_dataloss),
                crawler=self._crawler, tls_verbose_logging=self._tls_verbose_logging,
                new_spool=partial(cfg.new_spool, wire), threshold=threshold,
                limit=cfg.max_record_size, spool_dir=cfg.directory, budget=cfg.budget,
            )
        )
        self._txresponse = txresponse
        return d


__all__ = ["SPOOLED_FLAG", "SPOOL_META_KEY", "TRUNCATED_FLAG", "MemoryBudget", "SpoolConfig",
           "SpoolingAgent", "SpoolingResponseReader"]
