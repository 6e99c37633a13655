"""What a worker accepts from Redis: the crawl plan is data written by whoever can reach Redis.

A worker runs the spider, options and ``-s`` settings it reads from the registry. Only a
whitelist of crawl settings, each with a value check, is taken; settings that name files,
classes, feeds, executables or scripts (``FEEDS``, ``EXTENSIONS``, ``ARCHIVE_DATA_DIR``,
``ARCHIVE_BROWSER_EXECUTABLE``...) are refused, as is a collection outside the collection rule
or a spider that does not exist. The seeding ``crawl --redis`` checks the same rules first, so
a user learns before anything starts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from storage._s3 import MirrorConfigError, S3Target, endpoint_problem
from storage.names import CollectionNameError, check_collection

_SAFE_TEXT = re.compile(r"^[\x20-\x7e]{0,512}$")
_WORD = re.compile(r"^[A-Za-z0-9._-]{0,64}$")


class UntrustedPlanError(ValueError):
    """A crawl plan from Redis (or for Redis) that a worker must not run."""


def _int(value: str) -> Any:
    if not re.fullmatch(r"-?[0-9]{1,18}", value.strip()):
        raise ValueError("an integer")
    return int(value)


def _float(value: str) -> Any:
    if not re.fullmatch(r"-?[0-9]{1,15}(\.[0-9]{1,9})?", value.strip()):
        raise ValueError("a number")
    return float(value)


def _bool(value: str) -> Any:
    if value.strip().lower() not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
        raise ValueError("true or false")
    return value


def _text(value: str) -> Any:
    if not _SAFE_TEXT.match(value):
        raise ValueError("printable ASCII text of at most 512 characters")
    return value


def _word(value: str) -> Any:
    if not _WORD.match(value):
        raise ValueError("letters, digits, '.', '_' or '-'")
    return value


def _headers(value: str) -> Any:
    try:
        data = json.loads(value)
    except ValueError:
        raise ValueError("a JSON object of header names to values") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and _SAFE_TEXT.match(k) and _SAFE_TEXT.match(v)
        for k, v in data.items()
    ):
        raise ValueError("a JSON object of header names to values")
    return value


def _no_scripts(value: str) -> Any:
    """Behavior scripts are local file paths: a worker never reads files Redis names."""
    if value.strip() not in ("", "[]"):
        raise ValueError("empty (behavior scripts are not taken from Redis: give "
                         "--behavior-script on a single-machine crawl)")
    return value


def _selectors(value: str) -> Any:
    try:
        data = json.loads(value or "[]")
    except ValueError:
        raise ValueError("a JSON list of CSS selectors") from None
    if not isinstance(data, list) or not all(
            isinstance(v, str) and _SAFE_TEXT.match(v) for v in data):
        raise ValueError("a JSON list of CSS selectors")
    return value


_BROWSER_HANDLERS = {"http": "crawler.browser.handler.BrowserDownloadHandler",
                     "https": "crawler.browser.handler.BrowserDownloadHandler"}


def _handlers(value: str) -> Any:
    """Only the browser download handler ``--browser`` sets (no other class from Redis)."""
    try:
        data = json.loads(value)
    except ValueError:
        data = None
    if data != _BROWSER_HANDLERS:
        raise ValueError("the browser download handler set by --browser")
    return value


_INT = ("ARCHIVE_BROWSER_CONCURRENCY ARCHIVE_BROWSER_RECYCLE_PAGES ARCHIVE_BROWSER_RETRIES "
        "ARCHIVE_BROWSER_SCROLL_LIMIT ARCHIVE_DEDUP_MIN_SIZE ARCHIVE_MAX_BYTES "
        "ARCHIVE_MAX_RECORD_SIZE ARCHIVE_MEDIA_GZIP_LEVEL ARCHIVE_RATELIMIT_MAX_ATTEMPTS "
        "ARCHIVE_RATELIMIT_MAX_HELD ARCHIVE_RATELIMIT_SERVER_ERROR_ATTEMPTS "
        "ARCHIVE_SPOOL_TEXT_MAX ARCHIVE_SPOOL_THRESHOLD ARCHIVE_WARC_GZIP_LEVEL "
        "ARCHIVE_WARC_MAX_SIZE ARCHIVE_MEMORY_BUDGET CONCURRENT_REQUESTS_PER_DOMAIN DEPTH_LIMIT "
        "DOWNLOAD_MAXSIZE DOWNLOAD_WARNSIZE RETRY_TIMES REDIRECT_MAX_TIMES").split()
_FLOAT = ("ARCHIVE_BROWSER_IDLE_TIME ARCHIVE_BROWSER_PAGE_TIMEOUT ARCHIVE_PROGRESS_INTERVAL "
          "ARCHIVE_RATELIMIT_BACKOFF ARCHIVE_RATELIMIT_MARGIN ARCHIVE_RATELIMIT_MAX_BACKOFF "
          "ARCHIVE_RATELIMIT_MAX_WAIT ARCHIVE_REDIS_LEASE_TTL ARCHIVE_REDIS_POLL_INTERVAL "
          "ARCHIVE_STOP_TIMEOUT DOWNLOAD_DELAY DOWNLOAD_TIMEOUT").split()
_BOOL = ("ARCHIVE_BROWSER_ENABLED ARCHIVE_BROWSER_HEADLESS ARCHIVE_BROWSER_LOAD_MORE "
         "ARCHIVE_BROWSER_SCREENSHOT ARCHIVE_DEDUP_ENABLED ARCHIVE_RATELIMIT_ENABLED "
         "RANDOMIZE_DOWNLOAD_DELAY ROBOTSTXT_OBEY RETRY_ENABLED COOKIES_ENABLED").split()
_TEXT = "ARCHIVE_BROWSER_USER_AGENT USER_AGENT".split()
_WORDS = "ARCHIVE_DIGEST_ALGORITHM ARCHIVE_PROGRESS ARCHIVE_WARC_PREFIX LOG_LEVEL".split()

ALLOWED_SETTINGS: dict[str, Callable[[str], Any]] = {
    **{k: _int for k in _INT}, **{k: _float for k in _FLOAT}, **{k: _bool for k in _BOOL},
    **{k: _text for k in _TEXT}, **{k: _word for k in _WORDS},
    "DEFAULT_REQUEST_HEADERS": _headers,
    "ARCHIVE_BROWSER_BEHAVIOR_SCRIPTS": _no_scripts,
    "ARCHIVE_BROWSER_LOAD_MORE": _selectors,
    "DOWNLOAD_HANDLERS": _handlers,
}

# CrawlOptions fields a worker takes from Redis, with their types.
_OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "collection": (str,), "browser": (bool,), "max_pages": (int,), "max_bytes": (int,),
    "max_time": (int, float), "concurrency": (int,), "delay": (int, float, type(None)),
    "ignore_robots": (bool,), "warc_size": (int,), "max_record_size": (int,),
    "settings": (list,), "mirror": (str, type(None)), "endpoint_url": (str, type(None)),
}


def check_settings(items: list[Any]) -> list[str]:
    """The ``-s KEY=VALUE`` list, if every item is whitelisted with a valid value."""
    out = []
    for item in items:
        if not isinstance(item, str):
            raise UntrustedPlanError(f"setting {item!r} is not KEY=VALUE text")
        key, sep, value = item.partition("=")
        key = key.strip()
        check = ALLOWED_SETTINGS.get(key)
        if not sep or check is None:
            raise UntrustedPlanError(
                f"setting {key[:64]!r} is not allowed in a distributed crawl (workers take only "
                "crawl settings from Redis; see docs/security.md)"
            )
        try:
            check(value)
        except ValueError as exc:
            raise UntrustedPlanError(f"setting {key} must be {exc}, got {value[:64]!r}") from None
        out.append(f"{key}={value}")
    return out


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    """The crawl options read from Redis, type-checked; unknown ones are dropped."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        types = _OPTION_TYPES.get(key)
        if types is None:
            continue  # local to the seeding machine (data dir, resume...), or unknown
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise UntrustedPlanError(f"crawl option {key} has an invalid value {value!r:.64}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise UntrustedPlanError(f"crawl option {key} must not be negative")
        out[key] = value
    try:
        check_collection(out.get("collection", "default"))
        if out.get("mirror"):
            S3Target.parse(out["mirror"])
    except (CollectionNameError, MirrorConfigError) as exc:
        raise UntrustedPlanError(str(exc)) from None
    if out.get("endpoint_url") and (problem := endpoint_problem(out["endpoint_url"])):
        raise UntrustedPlanError(f"endpoint_url: {problem}")
    out["settings"] = check_settings(out.get("settings") or [])
    return out


def _spider_names() -> set[str]:
    """Names Scrapy's spider loader knows in this project (``SPIDER_MODULES``)."""
    import os

    from scrapy.spiderloader import SpiderLoader
    from scrapy.utils.project import get_project_settings

    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    return set(SpiderLoader.from_settings(get_project_settings()).list())


def check_spider(name: Any, args: Any) -> tuple[str, dict[str, Any]]:
    """A known spider name and JSON-scalar (or list of scalar) arguments."""
    if not isinstance(name, str) or name not in _spider_names():
        raise UntrustedPlanError(f"unknown spider {name!r:.64}")
    if not isinstance(args, dict):
        raise UntrustedPlanError("spider arguments must be an object")
    scalar = (str, int, float, bool, type(None))
    for key, value in args.items():
        ok = isinstance(value, scalar) or (
            isinstance(value, list) and all(isinstance(v, scalar) for v in value))
        if not isinstance(key, str) or not _WORD.match(key) or not ok:
            raise UntrustedPlanError(f"spider argument {key!r:.64} has an invalid value")
    return name, args
