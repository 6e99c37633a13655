"""Scriptable fault injection shared by all emulators (thread-safe).

Faults match on ``re.search(path_regex, path_with_query)``. Counted faults (``times=N``)
disarm themselves after N hits; ``times=None`` means forever. ``clear()`` removes everything.

Rate limits come in two shapes: ``rate_limit(after, window)``, a fixed-window budget that the
platform announces in its headers (a client that reads them never needs a 429), and
``surprise_429(after, seconds)``, a 429 window that opens without warning in the middle of a
burst (another limiter of the same server, a CDN, an operator), announced only on the 429s
themselves (remaining 0, reset / Retry-After at the window's end), while the ordinary budget
keeps counting down in every other answer.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass


@dataclass
class _Rule:
    pattern: re.Pattern[str]
    times: int | None
    value: float | int = 0

    def take(self, target: str) -> bool:
        if self.times == 0 or not self.pattern.search(target):
            return False
        if self.times is not None:
            self.times -= 1
        return True


@dataclass(frozen=True)
class RateLimitState:
    """Snapshot handed to the platform to render its own rate-limit headers."""

    limit: int
    remaining: int
    window: float
    reset_epoch: float  # wall-clock time.time() at which the current window ends
    limited: bool


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors: list[_Rule] = []
        self._slow: list[_Rule] = []
        self._truncate: list[_Rule] = []
        self._rl_limit: int | None = None
        self._rl_window = 0.0
        self._rl_start: float | None = None
        self._rl_count = 0
        self.throttled = 0  # number of 429s sent so far
        self._surprise_after: int | None = None  # requests still served before the window
        self._surprise_for = 0.0
        self.surprise_start: float | None = None  # time.monotonic() of the window's first 429
        self.surprise_end: float | None = None

    # scripting API ------------------------------------------------------------
    def rate_limit(self, after: int, window: float) -> None:
        """Allow ``after`` requests per fixed window of ``window`` seconds, then 429 until the
        window ends; the next window starts with the first request after that. While armed,
        every response carries the platform's rate-limit headers."""
        with self._lock:
            self._rl_limit, self._rl_window = after, window
            self._rl_start, self._rl_count = None, 0

    def surprise_429(self, after: int, seconds: float, limit: int = 300,
                     window: float = 300.0) -> None:
        """Serve ``after`` more requests, then answer 429 to everything for ``seconds``.

        Arms a generous announced budget (``limit`` per ``window`` s) if none is armed, so every
        answer carries the platform's usual counting-down headers; the 429s carry remaining 0
        and the window's end as reset. The window's bounds are in ``surprise_start`` and
        ``surprise_end`` (time.monotonic(), comparable with the request log)."""
        with self._lock:
            if self._rl_limit is None:
                self._rl_limit, self._rl_window = limit, window
                self._rl_start, self._rl_count = None, 0
            self._surprise_after, self._surprise_for = after, seconds
            self.surprise_start = self.surprise_end = None

    def server_error(self, path_regex: str, times: int | None = 1, status: int = 500) -> None:
        with self._lock:
            self._errors.append(_Rule(re.compile(path_regex), times, status))

    def slow(self, path_regex: str, seconds: float, times: int | None = None) -> None:
        with self._lock:
            self._slow.append(_Rule(re.compile(path_regex), times, seconds))

    def truncate(self, path_regex: str, times: int | None = 1) -> None:
        """Send a Content-Length larger than the body, half the body, then close."""
        with self._lock:
            self._truncate.append(_Rule(re.compile(path_regex), times))

    def clear(self) -> None:
        with self._lock:
            self._errors.clear()
            self._slow.clear()
            self._truncate.clear()
            self._rl_limit = None
            self._surprise_after = None
            self.surprise_start = self.surprise_end = None

    # used by the server ---------------------------------------------------------
    def _first(self, rules: list[_Rule], target: str) -> _Rule | None:
        with self._lock:
            for rule in rules:
                if rule.take(target):
                    return rule
        return None

    def take_server_error(self, target: str) -> int | None:
        rule = self._first(self._errors, target)
        return int(rule.value) if rule else None

    def take_delay(self, target: str) -> float:
        rule = self._first(self._slow, target)
        return float(rule.value) if rule else 0.0

    def take_truncate(self, target: str) -> bool:
        return self._first(self._truncate, target) is not None

    def check_rate_limit(self) -> RateLimitState | None:
        """Count one request against the armed limit; None when no limit is armed."""
        with self._lock:
            if self._rl_limit is None:
                return None
            now = time.monotonic()
            surprise = self._surprise(now)
            if surprise is not None:
                return surprise
            if self._rl_start is None or now >= self._rl_start + self._rl_window:
                self._rl_start, self._rl_count = now, 0
            self._rl_count += 1
            limited = self._rl_count > self._rl_limit
            if limited:
                self.throttled += 1
            left = self._rl_start + self._rl_window - now
            return RateLimitState(
                limit=self._rl_limit,
                remaining=max(self._rl_limit - self._rl_count, 0),
                window=self._rl_window,
                reset_epoch=time.time() + left,
                limited=limited,
            )

    def _surprise(self, now: float) -> RateLimitState | None:
        """The surprise window's 429 state, or None outside it (lock held)."""
        if self._surprise_after is not None:
            if self._surprise_after > 0:
                self._surprise_after -= 1
                return None
            self._surprise_after = None
            self.surprise_start, self.surprise_end = now, now + self._surprise_for
        if self.surprise_end is None or now >= self.surprise_end:
            if self.surprise_end is not None and self._rl_start is not None \
                    and self._rl_start < self.surprise_end:
                self._rl_start = None  # the budget starts afresh after the window
            return None
        self.throttled += 1
        assert self._rl_limit is not None
        return RateLimitState(limit=self._rl_limit, remaining=0, window=self._surprise_for,
                              reset_epoch=time.time() + self.surprise_end - now, limited=True)

    @property
    def window_end(self) -> float | None:
        """time.monotonic() at which the current rate-limit window ends (None if unarmed)."""
        with self._lock:
            if self.surprise_end is not None and time.monotonic() < self.surprise_end:
                return self.surprise_end
            if self._rl_limit is None or self._rl_start is None:
                return None
            return self._rl_start + self._rl_window
