"""The crawl registry in Redis: what a crawl is (spider, targets, options), its state, its stop.

States: ``seeding`` (the ``crawl`` command is still queueing its start requests), ``running``,
``stopping`` (``crawl-stop`` or a crawl-wide limit: workers finish what they hold and exit),
``finished`` (queue empty, no live worker holds a lease). ``reason`` is the Scrapy close
reason workers use (``finished``, ``shutdown``, ``closespider_pagecount``,
``closespider_timeout``), so exit codes and the ``crawls`` table read as on one machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from crawler.distributed.keys import CRAWLS_KEY, CrawlKeys, check_crawl_id
from crawler.distributed.scripts import Scripts
from storage.redact import redact_text, redact_url

REDIS_SCHEMES = ("redis", "rediss", "unix")
ACTIVE_STATES = ("seeding", "running")


class RegistryError(Exception):
    """Something a user can fix: no such crawl, several crawls, Redis unreachable."""


def check_redis_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES or (parts.scheme != "unix" and not parts.hostname):
        raise RegistryError(
            f"--redis expects redis://HOST:PORT/DB (or rediss://, unix://), "
            f"got {redact_url(url)!r}"
        )
    return url


def connect(url: str) -> Any:
    """A client for ``url`` that answered PING (bytes replies, as scrapy-redis uses)."""
    try:
        import redis
        import scrapy_redis  # noqa: F401  (the scheduler needs it too)
    except ImportError as exc:
        raise RegistryError("distributed crawls need scrapy-redis and redis: "
                            "pip install 'socialark[redis]'") from exc
    check_redis_url(url)
    try:
        client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10)
        client.ping()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise RegistryError(f"cannot reach Redis at {redact_url(url)}: "
                            f"{redact_text(str(exc))}") from None
    except redis.exceptions.ResponseError as exc:
        raise RegistryError(f"Redis at {redact_url(url)} refused us: "
                            f"{redact_text(str(exc))}") from None
    return client


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


@dataclass
class CrawlRecord:
    crawl_id: str
    state: str
    reason: str
    config: dict[str, Any]
    max_pages: int
    deadline_ms: int
    created_ms: int


def register_crawl(url: str, crawl_id: str, config: dict[str, Any], *,
                   max_pages: int, max_time: float) -> None:
    """Store a new crawl (state ``seeding``) so workers anywhere can join it."""
    client = connect(url)
    keys = CrawlKeys(check_crawl_id(crawl_id))
    created = Scripts(client).register(
        keys=[keys.meta, CRAWLS_KEY],
        args=[crawl_id, json.dumps(config, sort_keys=True, default=str), int(max_pages),
              int(max_time * 1000)],
    )
    if not created:
        raise RegistryError(f"crawl {crawl_id!r} already exists in Redis at {redact_url(url)}")


def load_crawl(client: Any, crawl_id: str) -> CrawlRecord:
    keys = CrawlKeys(check_crawl_id(crawl_id))
    raw = {_text(k): v for k, v in client.hgetall(keys.meta).items()}
    if not raw:
        raise RegistryError(f"no crawl {crawl_id!r} in this Redis")
    return CrawlRecord(
        crawl_id=crawl_id, state=_text(raw.get("state")), reason=_text(raw.get("reason")),
        config=json.loads(_text(raw.get("config")) or "{}"),
        max_pages=int(_text(raw.get("max_pages")) or 0),
        deadline_ms=int(_text(raw.get("deadline")) or 0),
        created_ms=int(_text(raw.get("created")) or 0),
    )


def all_crawls(client: Any) -> list[CrawlRecord]:
    ids = [_text(c) for c in client.zrange(CRAWLS_KEY, 0, -1)]
    out = []
    for crawl_id in ids:
        try:
            out.append(load_crawl(client, crawl_id))
        except RegistryError:
            continue  # forgotten by hand: skip it
    return out


def pick_crawl(client: Any, crawl_id: str | None, *, active_only: bool = True) -> CrawlRecord:
    """The crawl named, or the only active one (an error when there are none or several)."""
    if crawl_id:
        return load_crawl(client, crawl_id)
    crawls = [c for c in all_crawls(client) if not active_only or c.state in ACTIVE_STATES]
    if not crawls:
        raise RegistryError("no running crawl in this Redis (start one with "
                            "`socialark crawl ... --redis URL`)")
    if len(crawls) > 1:
        names = ", ".join(c.crawl_id for c in crawls)
        raise RegistryError(f"several running crawls ({names}): choose one with --crawl ID")
    return crawls[0]


def mark_running(client: Any, crawl_id: str) -> None:
    """Seeding is over: from now on an empty queue with no leases means finished."""
    Scripts(client).transition(keys=[CrawlKeys(crawl_id).meta], args=["seeding", "running", ""])


def request_stop(client: Any, crawl_id: str, reason: str = "shutdown") -> bool:
    """Ask every worker to finish its in-flight requests and exit. False if not active."""
    scripts = Scripts(client)
    meta = CrawlKeys(crawl_id).meta
    return any(
        scripts.transition(keys=[meta], args=[state, "stopping", reason])
        for state in ACTIVE_STATES
    )


def crawl_state(client: Any, crawl_id: str) -> tuple[str, str]:
    state, reason = client.hmget(CrawlKeys(crawl_id).meta, ["state", "reason"])
    return _text(state), _text(reason)
