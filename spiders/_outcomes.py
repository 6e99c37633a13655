"""One outcome logic for every platform spider: what an answer means for the thing asked for.

* ``ok``: captured (2xx; 3xx are followed by Scrapy before a callback sees them);
* ``missing``: gone from the platform (404, 410, deleted, tombstone, "not found" errors);
* ``blocked``: exists but is withheld (401, 403, 451, private, suspended, banned, quarantined,
  taken down);
* ``failed``: the platform failed us and the content may still exist (429 and 5xx after the
  rate-limit middleware's retries, network errors): a crawl with failures exits 1.

Every answer, whatever its outcome, is already in the WARC. Spiders count outcomes as
``archive/<outcome>/<reason>`` (reason: the platform's error name, else ``http_<status>``) and
log one line ``<platform>: <target>: <reason> (<outcome>)``; named targets (an account, a post
the user asked for) are also listed in the ``archive/targets`` stat, which the CLI summary prints.
"""

from __future__ import annotations

import enum

MISSING_STATUSES = frozenset({404, 410})
BLOCKED_STATUSES = frozenset({401, 403, 451})
# Error names (any platform) that mean "exists, but you may not see it".
BLOCKED_REASONS = frozenset({
    "private", "banned", "quarantined", "suspended", "forbidden", "unauthorized",
    "invalid_access", "accounttakedown", "repotakendown", "blockedactor", "blockedbyactor",
    "gold_only", "age_restricted",
})
MAX_LISTED_TARGETS = 100


class Outcome(enum.StrEnum):
    OK = "ok"
    MISSING = "missing"
    BLOCKED = "blocked"
    FAILED = "failed"


def is_failure_status(status: int) -> bool:
    """429 and 5xx: the platform failed to answer (after the middleware's retries)."""
    return status == 429 or status >= 500


def classify(status: int, reason: str | None = None) -> Outcome:
    """The outcome of an answer with HTTP ``status`` and the platform's error name, if any.

    A reason can turn a 200 into missing/blocked (a tombstone, ``"suspended": true``); it never
    turns a 429/5xx into anything but failed."""
    if is_failure_status(status):
        return Outcome.FAILED
    if reason and reason.lower() in BLOCKED_REASONS:
        return Outcome.BLOCKED
    if status in BLOCKED_STATUSES:
        return Outcome.BLOCKED
    if reason or status >= 400:
        return Outcome.MISSING
    return Outcome.OK


def default_reason(status: int) -> str:
    return f"http_{status}"


def report_line(platform: str, target: str, outcome: Outcome, reason: str,
                archived: str | None = None, detail: str | None = None) -> str:
    """The one log/summary line every platform writes for a target that was not captured:
    ``<platform>: <target>: <reason> (<outcome>)[: <platform's message>][ (archived: <url>)]``."""
    where = f" (archived: {archived})" if archived and archived != target else ""
    said = f": {detail}" if detail else ""
    return f"{platform}: {target}: {reason.replace('_', ' ')} ({outcome}){said}{where}"
