"""``socialark crawl x``: profiles, posts and searches of X through a logged-in browser."""

from __future__ import annotations

from typing import Any

import click

from crawler.cli.cmd_crawl import crawl
from crawler.cli.crawl_options import (
    crawl_options,
    execute,
    http_base_url,
    options_from_kwargs,
    since_iso,
    wrap_crawl_errors,
)


@crawl.command("x")
@click.option("--user", "users", multiple=True, metavar="HANDLE",
              help="Profile to archive, with every post of its timeline (repeatable).")
@click.option("--post", "posts", multiple=True, metavar="URL",
              help="A post (https://x.com/HANDLE/status/ID) and its thread (repeatable).")
@click.option("--search", "searches", multiple=True, metavar="QUERY",
              help="Latest results of a search (repeatable).")
@click.option("--base-url", metavar="URL", default=None,
              help="Site to crawl instead of https://x.com (a mirror, or a test emulator).")
@click.option("--since", metavar="DATE", help="Open no post pages for posts older than DATE.")
@click.option("--max-posts", type=click.IntRange(min=0), default=0,
              help="Open at most this many post pages per target (0 = no limit).")
@crawl_options
@wrap_crawl_errors
def crawl_x(users: tuple[str, ...], posts: tuple[str, ...], searches: tuple[str, ...],
            base_url: str | None, since: str | None, max_posts: int, **kwargs: Any) -> None:
    """Archive X (Twitter) profiles, posts and searches in a logged-in Chromium.

    X shows almost nothing to logged-out visitors: pass your session with --cookies FILE
    (cookies.txt exported from a browser where you are logged in; it needs auth_token and ct0).
    Every page is rendered and every GraphQL answer it loads is archived; posts (text, long
    posts, replies, reposts, quotes, counts, media) are parsed from those answers. Each post's
    page is opened for its thread; images are fetched at name=orig, videos as their best mp4.

    \b
    Example:
        socialark crawl x --user jack --cookies x-cookies.txt
        socialark crawl x --post https://x.com/jack/status/20 --search "#archive" \\
            --cookies x-cookies.txt --max-posts 200
    """
    from crawler.browser.config import browser_problem

    kwargs["browser"] = True
    options = options_from_kwargs(kwargs)
    if not options.resume and not (users or posts or searches):
        raise click.UsageError("give at least one --user, --post or --search")
    problem = browser_problem(None)
    if problem:
        raise click.UsageError(problem)
    base = http_base_url(base_url, "--base-url") or "https://x.com"
    for post in posts:
        if "/status/" not in post:
            raise click.BadParameter(f"expected a post URL like {base}/HANDLE/status/ID, "
                                     f"got {post!r}", param_hint="--post")
    spider_kwargs: dict[str, Any] = {}
    if users or posts or searches:
        spider_kwargs = {"base_url": base, "users": list(users), "posts": list(posts),
                         "searches": list(searches), "since": since_iso(since),
                         "max_posts": max_posts}
    execute("x", spider_kwargs, options)


COMMANDS: list[click.Command] = []
