"""The options every ``socialark crawl <platform>`` command shares, and running the crawl."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from crawler.cli.common import ExitCode, data_dir_option
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
        click.option("--collection", default="default", show_default=True,
                     help="Collection to crawl into (warcs/<collection>/)."),
        data_dir_option,
        click.option("--browser/--no-browser", default=False, show_default=True,
                     help="Render pages in Chromium and capture every network exchange."),
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
        click.option("--mirror", metavar="s3://BUCKET/PREFIX", default=None,
                     help="Upload and verify each WARC in S3-compatible storage as it closes."),
        click.option("--endpoint-url", metavar="URL", default=None,
                     help="S3 endpoint for --mirror (MinIO, R2, B2, ...). Env: AWS_ENDPOINT_URL."),
        click.option("--redis", metavar="URL", default=None,
                     help="Share the frontier through Redis (many machines; not available yet)."),
        click.option("--resume", is_flag=True,
                     help="Continue the last interrupted crawl of this collection."),
        click.option("-s", "--set", "settings", multiple=True, metavar="KEY=VALUE",
                     help="Override a Scrapy/ARCHIVE_* setting (repeatable)."),
    ]
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
        raise click.UsageError("--redis (distributed crawls) is not available in this version yet")
    if picked.get("browser"):
        raise click.UsageError("--browser is not available in this version yet")
    return CrawlOptions(**picked)


def execute(spider: str, spider_kwargs: dict[str, Any], options: Any) -> None:
    """Run the crawl, print the summary, exit with the contract's exit code."""
    from crawler.cli.summary import print_summary
    from crawler.run import CrawlPlan, run_crawl

    result = run_crawl(CrawlPlan(spider, spider_kwargs, options))
    print_summary(result, options)
    sys.exit(int(result.exit_code))


def wrap_crawl_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from crawler.scope import ScopeError
        from storage.errors import StorageError

        try:
            return func(*args, **kwargs)
        except ScopeError as exc:
            raise click.UsageError(str(exc)) from exc
        except StorageError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


__all__ = ["ExitCode", "crawl_options", "execute", "options_from_kwargs", "wrap_crawl_errors"]
