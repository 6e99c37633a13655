"""The options every ``socialark crawl <platform>`` command shares, and running the crawl."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from crawler.cli.common import (
    check_collection_option,
    check_endpoint_option,
    check_mirror_option,
    data_dir_option,
)
from crawler.cli.log_options import current_console, log_options
from crawler.errors import ExitCode
from storage.units import parse_duration, parse_size


class SizeType(click.ParamType):
    name = "SIZE"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class DurationType(click.ParamType):
    name = "DURATION"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def crawl_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a crawl command with the common options (DESIGN.md)."""
    options = [
        click.option("--collection", callback=check_collection_option, default="default", show_default=True,
                     help="Collection to crawl into (warcs/<collection>/)."),
        data_dir_option,
        click.option("--browser/--no-browser", default=False, show_default=True,
                     help="Render pages in Chromium and capture every network exchange."),
        click.option("--browser-concurrency", type=click.IntRange(min=1), default=2,
                     show_default=True, help="Pages rendered in the browser at once."),
        click.option("--scroll-limit", type=click.IntRange(min=0), default=20, show_default=True,
                     help="Most auto-scroll steps per rendered page (0 = do not scroll)."),
        click.option("--page-timeout", type=DurationType(), default="60s", show_default=True,
                     help="Time limit for rendering one page, behaviors included (e.g. 30s, 2m)."),
        click.option("--behavior-script", "behavior_scripts", multiple=True,
                     type=click.Path(exists=True, dir_okay=False, readable=True),
                     metavar="FILE",
                     help="JavaScript run in every rendered page after load (repeatable)."),
        click.option("--load-more", "load_more", multiple=True, metavar="SELECTOR",
                     help="CSS selector of 'load more' buttons to click while scrolling "
                          "(repeatable)."),
        click.option("--max-pages", type=click.IntRange(min=0), default=0,
                     help="Stop after this many responses in this run (0 = no limit)."),
        click.option("--max-bytes", type=SizeType(), default="0",
                     help="Stop after writing this much WARC data (e.g. 10GB; 0 = no limit)."),
        click.option("--max-time", type=DurationType(), default="0",
                     help="Stop after this long (e.g. 90s, 2h30m; 0 = no limit)."),
        click.option("--concurrency", type=click.IntRange(min=1), default=16, show_default=True,
                     help="Concurrent requests (also per host)."),
        click.option("--delay", type=click.FloatRange(min=0), default=None,
                     help="Seconds between requests to the same host [default: 0.25]."),
        click.option("--ignore-robots", is_flag=True, help="Do not obey robots.txt."),
        click.option("--warc-size", type=SizeType(), default="1GB", show_default=True,
                     help="Rotate WARC files at this size."),
        click.option("--max-record-size", type=SizeType(), default="20GB", show_default=True,
                     help="Keep at most this much of one response body; a longer one is archived "
                          "truncated (WARC-Truncated: length). 0 = no limit."),
        click.option("--mirror", metavar="s3://BUCKET/PREFIX", default=None, callback=check_mirror_option,
                     help="Upload and verify each WARC in S3-compatible storage as it closes."),
        click.option("--endpoint-url", metavar="URL", callback=check_endpoint_option, default=None,
                     help="S3 endpoint for --mirror (MinIO, R2, B2, ...). Env: AWS_ENDPOINT_URL."),
        click.option("--sign-key", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     metavar="FILE",
                     help="Sign each manifest entry with this key (`socialark keys create`); "
                          "default: <data-dir>/keys/<collection>.pem when it exists."),
        click.option("--tsa", "tsa_url", metavar="URL", default=None,
                     help="RFC 3161 timestamp authority: timestamp each manifest entry."),
        click.option("--redis", metavar="URL", default=None,
                     help="Share the queue and seen-URLs through Redis: redis://HOST:PORT/DB (docs/scaling.md)."),
        click.option("--recheck", is_flag=True,
                     help="Also revisit every post already archived in this collection, so "
                          "edits and deletions are recorded (`socialark changes`; Mastodon, "
                          "Reddit, Telegram)."),
        click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Crawl with this many local processes sharing one frontier (uses "
                          "every core; needs redis-server, else one process; docs/scaling.md)."),
        click.option("--resume", is_flag=True,
                     help="Continue the last interrupted crawl of this collection."),
        click.option("--cookies", metavar="FILE", default=None,
                     type=click.Path(exists=True, dir_okay=False, readable=True),
                     help="Netscape cookies.txt of a logged-in session, sent with every request "
                          "and page (values are never archived; only the path is recorded)."),
        click.option("--profile", metavar="NAME", default=None,
                     help="Saved browser login (`socialark login URL --profile NAME`) for every "
                          "request and page."),
        click.option("-s", "--set", "settings", multiple=True, metavar="KEY=VALUE",
                     help="Override a Scrapy/ARCHIVE_* setting (repeatable)."),
    ]
    func = log_options(func)  # -v, --log-format: last in --help
    for option in reversed(options):
        func = option(func)
    return func


def options_from_kwargs(kwargs: dict[str, Any]) -> Any:
    from crawler.run import CrawlOptions

    names = CrawlOptions.__dataclass_fields__.keys()
    picked = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
    picked["data_dir"] = Path(picked["data_dir"])
    picked["settings"] = list(picked.get("settings") or [])
    if picked.get("redis"):
        from crawler.distributed.registry import RegistryError, check_redis_url

        try:
            check_redis_url(picked["redis"])
        except RegistryError as exc:
            raise click.BadParameter(str(exc), param_hint="--redis") from exc
        if picked.get("resume"):
            raise click.UsageError("--resume is for crawls on one machine; a --redis crawl "
                                   "lives in Redis: rejoin it with `socialark worker --redis URL`")
        if picked.get("processes", 1) > 1:
            raise click.UsageError("--processes runs its own private Redis; with --redis, start "
                                   "more `socialark worker --redis URL` processes instead")
    if picked.get("cookies"):
        picked["cookies"] = _cookies_path(picked["cookies"])
    if picked.get("profile"):
        _check_profile(picked["data_dir"], picked["profile"])
    _check_quality_rules(picked["settings"])
    recheck = ["ARCHIVE_RECHECK=1"] if kwargs.pop("recheck", False) else []
    picked["settings"] = (_browser_settings(kwargs, picked) + _provenance_settings(kwargs, picked)
                          + recheck + picked["settings"])
    return CrawlOptions(**picked)


def _provenance_settings(kwargs: dict[str, Any], picked: dict[str, Any]) -> list[str]:
    """``--sign-key`` / ``--tsa`` as ``ARCHIVE_SIGN_KEY`` / ``ARCHIVE_TSA_URL``; the key (or
    the collection's default key, when it exists) is loaded now, so a bad one is a usage error."""
    from storage.signing import SigningKeyError, default_key_path, load_key

    key, tsa = kwargs.pop("sign_key", None), kwargs.pop("tsa_url", None)
    default = default_key_path(picked["data_dir"], picked.get("collection") or "default")
    entries = []
    if key is not None or default.exists():
        try:
            load_key(key or default)
        except SigningKeyError as exc:
            raise click.BadParameter(str(exc), param_hint="--sign-key") from exc
    if key is not None:
        entries.append(f"ARCHIVE_SIGN_KEY={Path(key).resolve()}")
    if tsa is not None:
        entries.append(f"ARCHIVE_TSA_URL={http_base_url(tsa, '--tsa')}")
    return entries


BROWSER_HANDLER = "crawler.browser.handler.BrowserDownloadHandler"


def _check_quality_rules(settings: list[str]) -> None:
    """``-s ARCHIVE_QUALITY_RULES=FILE``: a readable list of valid rules, or a usage error."""
    from crawler.quality import QualityRulesError, load_rules

    for item in settings:
        key, _, value = item.partition("=")
        if key.strip() == "ARCHIVE_QUALITY_RULES" and value.strip():
            try:
                load_rules(value.strip())
            except QualityRulesError as exc:
                raise click.UsageError(str(exc)) from exc


def _check_profile(data_dir: Path, name: str) -> None:
    """``--profile``: a saved login that exists and can be read, or a usage error."""
    from crawler.profiles import ProfileError, load_state, profile_path

    try:
        path = profile_path(data_dir, name)
        if not path.exists():
            raise ProfileError(f"no saved login {name!r} in {path.parent}: run `socialark "
                               f"login URL --profile {name}` first")
        load_state(path)
    except ProfileError as exc:
        raise click.BadParameter(str(exc), param_hint="--profile") from exc


def _cookies_path(value: str) -> str:
    """``--cookies``: the absolute path of a readable Netscape cookies.txt, or a usage error."""
    from crawler.cookiefile import CookieFileError, load_cookies

    path = str(Path(value).resolve())
    try:
        load_cookies(path)
    except CookieFileError as exc:
        raise click.BadParameter(str(exc), param_hint="--cookies") from exc
    return path


def _browser_settings(kwargs: dict[str, Any], picked: dict[str, Any]) -> list[str]:
    """The browser options as ``ARCHIVE_BROWSER_*`` settings (``-s`` given later still wins)."""
    timeout = float(kwargs.pop("page_timeout", 60.0))
    if timeout < 1:
        raise click.BadParameter("must be at least 1s", param_hint="--page-timeout")
    scripts = [str(Path(p).resolve()) for p in kwargs.pop("behavior_scripts", ())]
    entries = [
        f"ARCHIVE_BROWSER_CONCURRENCY={kwargs.pop('browser_concurrency', 2)}",
        f"ARCHIVE_BROWSER_SCROLL_LIMIT={kwargs.pop('scroll_limit', 20)}",
        f"ARCHIVE_BROWSER_PAGE_TIMEOUT={timeout}",
        f"ARCHIVE_BROWSER_BEHAVIOR_SCRIPTS={json.dumps(scripts)}",
        f"ARCHIVE_BROWSER_LOAD_MORE={json.dumps(list(kwargs.pop('load_more', ())))}",
    ]
    if picked.get("browser"):
        from crawler.browser.config import browser_problem

        executable = None
        for item in picked["settings"]:
            key, _, value = item.partition("=")
            if key.strip() == "ARCHIVE_BROWSER_EXECUTABLE":
                executable = value.strip() or None
        problem = browser_problem(executable)
        if problem:
            raise click.UsageError(problem)
        # Rendering needs the browser download handler (it keeps the wire-recording one for
        # every request that is not rendered).
        handlers = {"http": BROWSER_HANDLER, "https": BROWSER_HANDLER}
        entries.append(f"DOWNLOAD_HANDLERS={json.dumps(handlers)}")
    return entries


RECHECK_SPIDERS = ("mastodon", "reddit", "telegram")  # spiders that revisit known posts


def execute(spider: str, spider_kwargs: dict[str, Any], options: Any) -> None:
    """Run the crawl, print the summary, exit with the contract's exit code."""
    from crawler.cli.summary import print_summary
    from crawler.run import CrawlPlan, run_crawl

    if "ARCHIVE_RECHECK=1" in options.settings and spider not in RECHECK_SPIDERS:
        raise click.UsageError(f"--recheck is supported by `crawl {'`, `crawl '.join(RECHECK_SPIDERS)}`"
                               f", not by `crawl {spider}` yet")
    console = current_console()
    result = run_crawl(CrawlPlan(spider, spider_kwargs, options), console)
    print_summary(result, options, console)
    sys.exit(int(result.exit_code))


def wrap_crawl_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from crawler.errors import CrawlConfigError
        from crawler.scope import ScopeError
        from storage.errors import StorageError

        try:
            return func(*args, **kwargs)
        except (ScopeError, CrawlConfigError) as exc:
            raise click.UsageError(str(exc)) from exc
        except StorageError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


__all__ = ["ExitCode", "crawl_options", "execute", "options_from_kwargs", "wrap_crawl_errors"]


# --- option values shared by the platform commands -------------------------------------------


def http_base_url(value: str | None, option: str) -> str | None:
    """An http(s) base URL without its trailing slash, or a usage error naming ``option``."""
    from urllib.parse import urlsplit

    if value is None:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"expected an http(s) URL, got {value!r}", param_hint=option)
    return value.strip().rstrip("/")


def since_iso(value: str | None, option: str = "--since") -> str | None:
    """``--since`` as an ISO 8601 UTC timestamp (a date or date-time; UTC if no zone given)."""
    from datetime import UTC, datetime

    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"expected a date like 2024-09-01 or 2024-09-01T12:00:00Z, "
                                 f"got {value!r}", param_hint=option) from exc
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def checked(values: tuple[str, ...], parse: Callable[[str], Any], option: str, *,
            keep_raw: bool = False) -> list[Any]:
    """Each value through ``parse`` (a ValueError becomes a usage error naming ``option``).

    Returns the parsed values, or the values as given with ``keep_raw`` (validation only).
    """
    out = []
    for value in values:
        try:
            parsed = parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=option) from exc
        out.append(value if keep_raw else parsed)
    return out
