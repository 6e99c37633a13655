"""Per-host send gates: what each host said about when we may send to it again.

One :class:`Gates` per crawl, shared by the downloader (which asks :meth:`Gates.wait` before a
request leaves its slot queue, :meth:`Gates.spend` when it does, and feeds each answer to
:meth:`Gates.observe` the moment it arrives) and the rate-limit middleware (retry decisions, and
waits found only in a body, e.g. Discourse's ``extras.wait_seconds``, via :meth:`Gates.pause`).

Understands Mastodon ``X-RateLimit-Remaining/Reset`` (ISO 8601 reset), Bluesky
``RateLimit-Remaining/Reset`` (epoch seconds), X ``x-rate-limit-remaining/reset`` (epoch
seconds), Reddit ``x-ratelimit-remaining/reset`` (seconds
until reset, ``used`` instead of ``limit``) and ``Retry-After`` (seconds or an HTTP date).

A host is *closed* while a 429 (or a 503 with ``Retry-After``) pause lasts, and while its
announced budget is spent until the window resets. A 429 that announces no wait closes the host
for an exponential backoff, then lets one probe through: nothing else leaves until the probe's
answer says the host is open again. Pure Python (no Scrapy): times are ``time.monotonic()``;
:meth:`Gates.paused` converts them to wall-clock for display.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

logger = logging.getLogger("socialark.ratelimit")

EPOCH_THRESHOLD = 1_000_000_000  # a bigger numeric reset is an epoch time, a smaller one a delay
LONG_PAUSE = 60.0  # pauses longer than this are logged once at WARNING


def _header(headers: Any, *names: str) -> str | None:
    for name in names:
        value = headers.get(name)
        if value:
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_reset(value: str | None, now: float) -> float | None:
    """Seconds from ``now`` (wall clock) until a reset given as ISO 8601, HTTP date, epoch
    seconds or a delay in seconds. None when unparseable."""
    if not value:
        return None
    text = value.strip().split(";", 1)[0].strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return max(number - now, 0.0) if number >= EPOCH_THRESHOLD else max(number, 0.0)
    for parse in (_iso, parsedate_to_datetime):
        try:
            dt = parse(text)
        except (TypeError, ValueError, IndexError):
            continue
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return max(dt.timestamp() - now, 0.0)
    return None


def parse_int(value: str | None) -> int | None:
    """``"42"``, ``"598.0"`` (Reddit) or ``"3000;w=300"`` (IETF draft) → the leading integer."""
    if not value:
        return None
    try:
        return int(float(value.split(";", 1)[0].split(",", 1)[0].strip()))
    except ValueError:
        return None


@dataclass
class RateInfo:
    """What one response says about the host's budget."""

    remaining: int | None
    limit: int | None
    reset_in: float | None  # seconds from now
    retry_after: float | None


def read_rate_info(headers: Any, now: float | None = None) -> RateInfo:
    now = time.time() if now is None else now
    remaining = parse_int(_header(headers, "X-RateLimit-Remaining", "RateLimit-Remaining",
                                  "X-Rate-Limit-Remaining"))
    limit = parse_int(_header(headers, "X-RateLimit-Limit", "RateLimit-Limit",
                              "X-Rate-Limit-Limit"))
    used = parse_int(_header(headers, "X-RateLimit-Used"))
    if limit is None and used is not None and remaining is not None:
        limit = used + remaining  # Reddit announces used + remaining, not the limit
    return RateInfo(
        remaining=remaining,
        limit=limit,
        reset_in=parse_reset(_header(headers, "X-RateLimit-Reset", "RateLimit-Reset",
                                     "X-Rate-Limit-Reset"), now),
        retry_after=parse_reset(_header(headers, "Retry-After"), now),
    )


@dataclass(frozen=True)
class Pause:
    """A closed host, for display: why, and when (wall clock, epoch seconds) it reopens."""

    host: str
    reason: str
    until: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["until_iso"] = iso_utc(self.until)
        return out


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class HostGate:
    remaining: int | None = None  # requests we may still send in the current window
    limit: int | None = None
    reset_at: float = 0.0  # monotonic time when the window ends (0: unknown)
    paused_until: float = 0.0  # monotonic time before which nothing is sent
    reason: str = ""  # why paused_until was set
    in_flight: int = 0  # sent, answer not arrived yet
    strikes: int = 0  # 429s in a row that announced no wait
    probing: bool = False  # after an unannounced 429: one request at a time until an answer
    warned_until: float = 0.0  # the pause end we last logged a WARNING for

    def budget_spent(self, now: float) -> bool:
        return self.remaining is not None and self.remaining <= 0 and self.reset_at > now


class Gates:
    def __init__(self, *, margin: float = 0.1, max_wait: float = 3600.0, backoff: float = 1.0,
                 max_backoff: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.margin, self.max_wait = margin, max_wait
        self.backoff, self.max_backoff = backoff, max_backoff
        self.clock, self.wall = clock, wall
        self.hosts: dict[str, HostGate] = {}
        self.throttled = 0  # 429s (and 503s with Retry-After) seen

    def gate(self, key: str) -> HostGate:
        return self.hosts.setdefault(key, HostGate())

    # -- the downloader's side ---------------------------------------------------------------
    def wait(self, key: str, now: float | None = None) -> float:
        """Seconds before the next request may leave for ``key``: 0 when open, ``math.inf``
        while a probe is out (the probe's answer reopens or pauses the host)."""
        now = self.clock() if now is None else now
        g = self.gate(key)
        if g.reset_at and now >= g.reset_at:
            g.remaining, g.reset_at = g.limit, 0.0  # a fresh window
        if g.paused_until > now:
            return g.paused_until - now
        if g.remaining is not None and g.remaining <= 0:
            if not g.reset_at:  # spent, but no reset announced: back off once
                g.remaining = None
                self._pause(key, g, now, self.backoff, "budget spent")
                return g.paused_until - now
            self._warn_long(key, g, g.reset_at, now, "budget spent")
            return g.reset_at - now
        if g.probing and g.in_flight > 0:
            return math.inf
        return 0.0

    def spend(self, key: str) -> None:
        """A request leaves for the wire: one unit of the announced budget is gone."""
        g = self.gate(key)
        if g.remaining is not None:
            g.remaining -= 1
        g.in_flight += 1

    def done(self, key: str) -> None:
        """A request is off the wire (answer or failure)."""
        g = self.gate(key)
        g.in_flight = max(g.in_flight - 1, 0)

    def observe(self, key: str, status: int, headers: Mapping[str, Any] | Any) -> str | None:
        """Feed one answer (call :meth:`done` first). Returns the pause reason if it closed
        the host."""
        g = self.gate(key)
        now = self.clock()
        info = read_rate_info(headers, self.wall())
        if info.limit is not None:
            g.limit = info.limit
        same_window = False
        if info.reset_in is not None:
            reset_at = now + min(info.reset_in, self.max_wait) + self.margin
            same_window = bool(g.reset_at) and abs(reset_at - g.reset_at) < 0.5
            g.reset_at = reset_at
        if info.remaining is not None:
            # Requests still in flight may not be counted in this answer yet: reserve them.
            estimate = info.remaining - g.in_flight
            if same_window and g.remaining is not None:
                estimate = min(estimate, g.remaining)  # answers can arrive out of order
            g.remaining = estimate
        if status == 429 or (status == 503 and info.retry_after is not None):
            self.throttled += 1
            if info.retry_after is not None:
                wait, reason = info.retry_after, f"{status} Retry-After"
            elif info.reset_in is not None:
                wait, reason = info.reset_in, f"{status} rate-limit reset"
            else:
                wait = min(self.backoff * (2 ** g.strikes), self.max_backoff)
                reason, g.strikes, g.probing = f"{status} backoff", g.strikes + 1, True
            if info.reset_in is None:
                g.remaining = None  # the pause covers it; no window to count in
            self._pause(key, g, now, wait, reason)
            return reason
        g.strikes, g.probing = 0, False
        if g.budget_spent(now):
            self._warn_long(key, g, g.reset_at, now, "budget spent")
        return None

    # -- the middleware's side ------------------------------------------------------------------
    def pause(self, key: str, seconds: float, reason: str) -> None:
        """Close ``key`` for ``seconds`` (plus the margin); never shortens a longer pause."""
        self._pause(key, self.gate(key), self.clock(), seconds, reason)

    def _pause(self, key: str, g: HostGate, now: float, seconds: float, reason: str) -> None:
        until = now + min(max(seconds, 0.0), self.max_wait) + self.margin
        if until > g.paused_until + 0.05:
            g.paused_until, g.reason = until, reason
        self._warn_long(key, g, g.paused_until, now, g.reason)

    def _warn_long(self, key: str, g: HostGate, until: float, now: float, reason: str) -> None:
        if until - now <= LONG_PAUSE or abs(until - g.warned_until) < 1.0:
            return
        g.warned_until = until
        end = self.wall() + (until - now)
        logger.warning("Host %s paused for %.0fs (%s): nothing is sent to it until %s",
                       key, until - now, reason, iso_utc(end))

    # -- display -----------------------------------------------------------------------------
    def paused(self) -> list[Pause]:
        """Every closed host, soonest reopening first."""
        now, wall = self.clock(), self.wall()
        out = []
        for key, g in self.hosts.items():
            if g.paused_until > now:
                out.append(Pause(key, g.reason, wall + g.paused_until - now))
            elif g.budget_spent(now):
                out.append(Pause(key, "budget spent", wall + g.reset_at - now))
        return sorted(out, key=lambda p: p.until)


def gates_from_settings(settings: Any) -> Gates:
    return Gates(
        margin=settings.getfloat("ARCHIVE_RATELIMIT_MARGIN", 0.1),
        max_wait=settings.getfloat("ARCHIVE_RATELIMIT_MAX_WAIT", 3600.0),
        backoff=settings.getfloat("ARCHIVE_RATELIMIT_BACKOFF", 1.0),
        max_backoff=settings.getfloat("ARCHIVE_RATELIMIT_MAX_BACKOFF", 60.0),
    )


def gates_for(crawler: Any) -> Gates:
    """The crawl's one :class:`Gates` (built on first use, kept on the crawler)."""
    gates = getattr(crawler, "_archive_gates", None)
    if gates is None:
        gates = gates_from_settings(crawler.settings)
        crawler._archive_gates = gates
    return gates
