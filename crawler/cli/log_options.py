"""``-v/--verbose`` and ``--log-format``: how much of a crawl's log the terminal shows.

The values travel in the click context (not in ``CrawlOptions``: they change what is printed,
not what is crawled, so they stay out of the crawl config recorded in WARCs and the index).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from crawler.logsetup import ConsoleOptions

_KEY = "socialark.console"


def _store(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        ctx.meta.setdefault(_KEY, {})[name] = value

    return callback


verbose_option = click.option(
    "-v", "--verbose", count=True, expose_value=False, callback=_store("verbose"),
    help="Show Scrapy's whole log on the terminal too (start-up settings, middlewares, "
         "stats); -vv: at DEBUG, one line per request, in the log file as well. Without it "
         "the terminal shows socialark's own lines; the crawl's log file (path in the "
         "summary) has everything.")
log_format_option = click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
    expose_value=False, callback=_store("log_format"),
    help="json: one JSON object per event on stderr (start, progress, warnings, summary), "
         "for machines.")


def log_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a command that runs a crawl with ``-v`` and ``--log-format``."""
    return verbose_option(log_format_option(func))


def current_console() -> ConsoleOptions:
    """The console options of the running command (defaults outside a click context)."""
    ctx = click.get_current_context(silent=True)
    values = ctx.meta.get(_KEY, {}) if ctx is not None else {}
    return ConsoleOptions(verbose=int(values.get("verbose") or 0),
                          log_format=values.get("log_format") or "text")


__all__ = ["current_console", "log_format_option", "log_options", "verbose_option"]
