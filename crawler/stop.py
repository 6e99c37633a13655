"""What a prompt stop (Ctrl-C, SIGTERM) tells the components that hold or carry requests.

On the first signal ``PromptStopExtension`` (crawler/extensions/stop.py) sends
``crawl_stopping`` with a ``CrawlStopped`` exception. Components holding requests (the rate-limit
middleware's pause, the download handlers' transfers and browser pages) fail them with a copy of
it. Whoever sees the failure afterwards (``ArchiveSpider.archive_errback``, the distributed lease
middleware) asks ``is_stop`` and leaves the request unfinished: it stays ``queued`` in the
frontier (or leased in Redis) and ``--resume`` fetches it.
"""

from __future__ import annotations

from typing import Any

crawl_stopping = object()
"""Signal sent once, on the reactor thread, when a stop begins. Keyword argument: ``exc``
(``CrawlStopped``). Handlers must not block; they fail what they hold with ``stop_error(exc)``."""


class CrawlStopped(Exception):
    """A request abandoned because the crawl is stopping; not an outcome of the request."""


def stop_error(exc: BaseException | None = None) -> CrawlStopped:
    """A fresh ``CrawlStopped`` (one per request, so tracebacks do not pile up on one object)."""
    return CrawlStopped(*(exc.args if exc is not None else ("crawl stopping",)))


def is_stop(failure_or_exc: Any) -> bool:
    """True when a Twisted ``Failure`` or an exception is the stop's cancellation."""
    exc = getattr(failure_or_exc, "value", failure_or_exc)
    return isinstance(exc, CrawlStopped)


class LateSignalGuard:
    """Keeps a late Ctrl-C / SIGTERM from killing a crawl process that has already stopped.

    Twisted restores the signal handlers it found when the reactor stops, and CPython resets
    Python-level handlers to the OS default while the interpreter finalizes. A second Ctrl-C
    that landed after the files were closed but before the process was gone therefore killed
    it (exit -2 instead of the contract's 3). Installed before the reactor starts, the guard is
    what Twisted restores (while the crawl runs Scrapy's handlers replace it): it ignores
    signals once the reactor has run. When the crawl has returned, ``crawl_returned`` ignores
    SIGINT/SIGTERM at the OS level (``SIG_IGN`` survives finalization): the files are closed
    and the exit code is decided, so there is nothing left to interrupt. The crawl commands
    exit right after; a signal before the reactor started keeps its usual meaning.
    """

    def __init__(self) -> None:
        self.started = False

    def install(self) -> None:
        import signal

        from twisted.internet import reactor

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)
        reactor.callWhenRunning(self._mark_started)

    def crawl_returned(self) -> None:
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)

    def _mark_started(self) -> None:
        self.started = True

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.started:
            raise KeyboardInterrupt


def quiet_stop_tracebacks() -> None:
    """Log a request abandoned by the stop as one line, not an error with a traceback.

    Components we do not own log the ``CrawlStopped`` failure of a request they awaited as an
    error (Scrapy's robots.txt middleware: "Error downloading …" with the whole traceback). The
    stop is not an error of that request: the record keeps its message, loses the traceback and
    becomes INFO. Installed once per process, on the log record factory (which sees every
    record, whichever handler prints it).
    """
    import logging

    if getattr(quiet_stop_tracebacks, "installed", False):
        return
    quiet_stop_tracebacks.installed = True  # type: ignore[attr-defined]
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, CrawlStopped) and record.levelno > logging.INFO:
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = f"{record.getMessage()} (the crawl is stopping; it stays queued)"
            record.args = ()
        return record

    logging.setLogRecordFactory(factory)
