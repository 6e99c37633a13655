"""Scrapy's robots.txt middleware, with every request that waits for a host's robots.txt obeying it.

Scrapy 2.19's ``RobotsTxtMiddleware`` keeps one ``Deferred`` per host while its robots.txt is
being fetched, and every request that arrives meanwhile awaits that ``Deferred`` through
``maybe_deferred_to_future``. Under the asyncio reactor that is Twisted's ``Deferred.asFuture``,
which "converts the Deferred into one firing with None": the first waiter gets the parser, every
later one gets ``None`` — and ``None`` means "no robots.txt, everything allowed". So all but one
of the requests that reached a new host before its robots.txt arrived ignored it. It showed up as
``crawl site --processes 2`` fetching a ``Disallow``-ed page: a process pops many requests for the
host at once (tests/test_robots.py reproduces it in one process with several start URLs).

Here each waiter gets its own ``Deferred``, fed from the host's one by a callback that passes the
parser on, so every waiter sees it. Fetching, parsing, errors (a robots.txt that cannot be fetched
allows everything, as in Scrapy) and stats are Scrapy's.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred


class ArchiveRobotsTxtMiddleware(RobotsTxtMiddleware):
    async def robot_parser(self, request: Request) -> Any:
        pending = self._parsers.get(urlparse_cached(request).netloc)
        if not isinstance(pending, Deferred):
            # Not asked for yet (Scrapy fetches it and answers the first request) or known.
            return await super().robot_parser(request)
        waiter: Deferred[Any] = Deferred()

        def relay(result: Any) -> Any:
            waiter.callback(result)
            return result  # the next waiter's callback gets the parser too

        pending.addCallback(relay)
        return await maybe_deferred_to_future(waiter)


__all__ = ["ArchiveRobotsTxtMiddleware"]
