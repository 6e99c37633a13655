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
