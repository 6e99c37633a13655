"""``socialark crawl <platform>``: the crawl group and ``crawl site``."""

from __future__ import annotations

from typing import Any

import click

from crawler.cli.crawl_options import crawl_options, execute, options_from_kwargs, wrap_crawl_errors


@click.group("crawl")
def crawl() -> None:
    """Capture a website or a platform into WARC files and the index.

    Exit codes: 0 finished, 1 finished with errors, 2 usage/config error,
    3 interrupted (run the same command with --resume to continue).
    """


@crawl.command("site")
@click.argument("urls", nargs=-1, required=False, metavar="URL...")
@click.option("--scope", type=click.Choice(["page", "prefix", "host", "domain"]), default="prefix",
              show_default=True, help="Which links to follow, relative to the seed URLs.")
@click.option("--depth", type=click.IntRange(min=0), default=0,
              help="Follow links at most this many hops from a seed (0 = no limit).")
@click.option("--exclude", "excludes", multiple=True, metavar="REGEX",
              help="Never follow page URLs matching this regex (repeatable).")
@click.option("--max-query-variants", type=click.IntRange(min=1), default=20, show_default=True,
              help="Trap bound: distinct query strings followed per URL path.")
@crawl_options
@wrap_crawl_errors
def crawl_site(urls: tuple[str, ...], scope: str, depth: int, excludes: tuple[str, ...],
               max_query_variants: int, **kwargs: Any) -> None:
    """Archive websites: pages within the scope plus every page requisite.

    Page requisites (images, CSS, JS, fonts, media, frames) of in-scope pages are captured
    even when hosted elsewhere. Link traps (calendars, ever-growing paths or query strings)
    are bounded. robots.txt is obeyed unless --ignore-robots.

    \b
    Example:
        socialark crawl site https://example.org/blog/ --scope prefix --max-pages 500
        socialark crawl site https://example.org/ --scope domain --exclude '/tag/' --resume
    """
    from crawler.scope import Scope, validate_seeds

    options = options_from_kwargs(kwargs)
    if not urls and not options.resume:
        raise click.UsageError("give at least one URL (or --resume)")
    seeds = validate_seeds(urls)
    Scope(scope, seeds, list(excludes))  # validate scope and regexes before starting Scrapy
    spider_kwargs = {
        "seeds": seeds, "scope": scope, "depth": depth, "excludes": list(excludes),
        "max_query_variants": max_query_variants,
    }
    if options.resume and not urls:
        spider_kwargs = {}
    execute("site", spider_kwargs, options)


COMMANDS = [crawl]
