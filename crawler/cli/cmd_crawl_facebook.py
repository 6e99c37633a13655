"""``socialark crawl facebook``: a Facebook page's timeline through a logged-in browser."""

from __future__ import annotations

from typing import Any

import click

from crawler.cli.cmd_crawl import crawl
from crawler.cli.crawl_options import (
    crawl_options,
    execute,
    http_base_url,
    options_from_kwargs,
    wrap_crawl_errors,
)


@crawl.command("facebook")
@click.option("--page", "pages", multiple=True, metavar="NAME",
              help="Page to archive (facebook.com/NAME), scrolled to its end (repeatable).")
@click.option("--post", "posts", multiple=True, metavar="URL",
              help="One post's permalink page (repeatable).")
@click.option("--base-url", metavar="URL", default=None,
              help="Site to crawl instead of https://www.facebook.com (e.g. a test emulator).")
@click.option("--max-posts", type=click.IntRange(min=0), default=0,
              help="Keep at most this many posts per page (0 = no limit).")
@crawl_options
@wrap_crawl_errors
def crawl_facebook(pages: tuple[str, ...], posts: tuple[str, ...], base_url: str | None,
                   max_posts: int, **kwargs: Any) -> None:
    """Archive Facebook pages in a logged-in Chromium.

    Facebook shows a "You must log in" dialog over pages after a few posts: pass your session
    with --cookies FILE (cookies.txt exported from a logged-in browser; it needs c_user and
    xs). The page is scrolled to its end; every exchange (the POST /api/graphql/ calls behind
    the scrolling included) is archived, and each post ([role=article]: author, text,
    permalink, time, images, reaction and comment counts) is indexed.

    \b
    Example:
        socialark crawl facebook --page nasa --cookies fb-cookies.txt --scroll-limit 100
    """
    from crawler.browser.config import browser_problem

    kwargs["browser"] = True
    options = options_from_kwargs(kwargs)
    if not options.resume and not (pages or posts):
        raise click.UsageError("give at least one --page or --post")
    problem = browser_problem(None)
    if problem:
        raise click.UsageError(problem)
    base = http_base_url(base_url, "--base-url") or "https://www.facebook.com"
    spider_kwargs: dict[str, Any] = {}
    if pages or posts:
        spider_kwargs = {"base_url": base, "pages": [p.strip("/") for p in pages],
                         "posts": list(posts), "max_posts": max_posts}
    execute("facebook", spider_kwargs, options)


COMMANDS: list[click.Command] = []
