"""Writing spooled responses into WARCs from worker threads, off the reactor.

Gzip-compressing a 2 GB body takes tens of seconds; on the reactor thread that freezes every
download, timeout and heartbeat. ``SpooledArchiver`` owns a small thread pool and one
``StreamingWarcWriter`` per thread (own files, unique names), so the recorder's main writer stays
single-threaded on the reactor. What must stay on the reactor does: the dedup lookup and index
rows (``LiveIndex`` is single-threaded), the ``warc_files`` bookkeeping of the side files (their
open/close callbacks are sent back to the reactor), and revisits (no payload: main writer).

A writer is handed back to the pool only after its rows are in the index, so a rotation in the
thread (which closes a file and marks it closed in the index) never overtakes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadable import isInIOThread
from twisted.python.threadpool import ThreadPool

from storage.exchange import HttpExchange
from storage.recorder import ArchiveRecorder
from storage.spool import SpooledBody
from storage.spooled import SpooledPlan, index_spooled, plan_spooled, write_revisit, write_spooled
from storage.warc import WrittenRecord
from storage.warc_stream import StreamingWarcWriter

# Serial numbers of side-writer files start here (the main writer counts from 0).
FIRST_SERIAL = 50000
SERIALS_PER_WRITER = 1000


def on_reactor(func: Callable[..., Any]) -> Callable[..., None]:
    """``func`` run on the reactor thread, whichever thread calls the wrapper."""

    def call(*args: Any) -> None:
        if isInIOThread():
            func(*args)
        else:
            from twisted.internet import reactor

            reactor.callFromThread(func, *args)  # type: ignore[attr-defined]

    return call


class _Done:
    """A one-shot event many can wait for (Deferreds fire once per waiter)."""

    def __init__(self) -> None:
        self._waiters: list[Deferred[None]] = []

    def wait(self) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self._waiters.append(d)
        return d

    def fire(self) -> None:
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)


class SpooledArchiver:
    def __init__(self, recorder: ArchiveRecorder, *, writers: int = 2) -> None:
        self.recorder = recorder
        self._threads = ThreadPool(minthreads=0, maxthreads=max(1, writers), name="socialark-warc")
        self._threads.start()
        self._writers: list[StreamingWarcWriter] = []
        self._free: DeferredQueue[StreamingWarcWriter] = DeferredQueue()
        self._inflight: dict[str, _Done] = {}
        for k in range(max(1, writers)):
            writer = self._new_writer(k)
            self._writers.append(writer)
            self._free.put(writer)

    def _new_writer(self, k: int) -> StreamingWarcWriter:
        cfg = self.recorder.config
        return StreamingWarcWriter(
            cfg.warc_dir, first_serial=FIRST_SERIAL + k * SERIALS_PER_WRITER, prefix=cfg.prefix,
            max_size=cfg.max_size, warcinfo=cfg.warcinfo, gzip_level=cfg.gzip_level,
            media_gzip_level=cfg.media_gzip_level,
            on_open=on_reactor(self.recorder._file_opened),
            on_close=on_reactor(self.recorder._file_closed),
        )

    async def archive(self, exchange: HttpExchange, body: SpooledBody) -> list[WrittenRecord]:
        """Write ``exchange`` (its body in ``body``) and index it; runs on the reactor.

        The same payload already being written (two URLs of one video fetched at once) is
        waited for, so this one becomes a revisit of it instead of a second copy.
        """
        digest = body.payload_digest
        while digest in self._inflight:
            await maybe_deferred_to_future(self._inflight[digest].wait())
        plan = plan_spooled(self.recorder, exchange, body)
        if plan.is_revisit:
            written = write_revisit(self.recorder, plan)
            index_spooled(self.recorder, plan, written)
            return written
        done = self._inflight[digest] = _Done()
        try:
            return await self._write(plan)
        finally:
            del self._inflight[digest]
            done.fire()

    async def _write(self, plan: SpooledPlan) -> list[WrittenRecord]:
        from twisted.internet import reactor

        writer = await maybe_deferred_to_future(self._free.get())
        try:
            written = await maybe_deferred_to_future(deferToThreadPool(
                reactor, self._threads, write_spooled, writer, plan  # type: ignore[arg-type]
            ))
            index_spooled(self.recorder, plan, written)
        finally:
            self._free.put(writer)
        return written

    def close(self) -> None:
        """Wait for running writes, then close the side files (on the reactor thread)."""
        self._threads.stop()
        for writer in self._writers:
            writer.close()
