"""``socialark crawl reddit``: subreddits, users and posts from Reddit's public ``.json`` endpoints."""

from __future__ import annotations

from typing import Any

import click

from crawler.cli.cmd_crawl import crawl
from crawler.cli.crawl_options import (
    checked,
    crawl_options,
    execute,
    http_base_url,
    options_from_kwargs,
    since_iso,
    wrap_crawl_errors,
)
from spiders.reddit import parsers

DEFAULT_BASE = "https://old.reddit.com"


@crawl.command("reddit")
@click.option("--subreddit", "subreddits", multiple=True, metavar="NAME",
              help="Subreddit to archive: every post of /r/NAME/new with its comments, page "
                   "and media (repeatable; NAME, r/NAME or a subreddit URL).")
@click.option("--user", "users", multiple=True, metavar="NAME",
              help="User to archive: profile, submitted posts and comments, with their "
                   "threads (repeatable; NAME, u/NAME or a profile URL).")
@click.option("--post", "posts", multiple=True, metavar="URL",
              help="Post to archive with its whole comment tree: a post URL, a redd.it short "
                   "link, t3_ID or ID (repeatable).")
@click.option("--base-url", default=DEFAULT_BASE, show_default=True, metavar="URL",
              help="Where to fetch from (the .json endpoints and the post pages).")
@click.option("--since", default=None, metavar="DATE",
              help="Only listed posts/comments from this date on (ISO 8601, UTC if no zone).")
@click.option("--max-posts", type=click.IntRange(min=0), default=0,
              help="At most this many items per listing (subreddit, user posts, user comments; "
                   "0 = no limit).")
@crawl_options
@wrap_crawl_errors
def crawl_reddit(subreddits: tuple[str, ...], users: tuple[str, ...], posts: tuple[str, ...],
                 base_url: str, since: str | None, max_posts: int, **kwargs: Any) -> None:
    """Archive Reddit subreddits, users and posts (public .json endpoints, no login).

    For each --subreddit: about.json and every page of /r/NAME/new.json. For each --user:
    about.json, submitted.json and comments.json. For every post found (and each --post):
    /comments/ID.json with every "load more" (/api/morechildren) and "continue this thread"
    stub expanded, the post's HTML page, and its images, gallery and video. Private, banned
    and quarantined subreddits, suspended users and missing posts are archived, listed in
    the summary and skipped. x-ratelimit-* headers and 429s are honoured.

    \b
    Example:
        socialark crawl reddit --subreddit harbourtown
        socialark crawl reddit --user alice_archives --since 2024-09-01 --max-posts 500
        socialark crawl reddit --post https://old.reddit.com/r/harbourtown/comments/1f6abcd/x/
    """
    options = options_from_kwargs(kwargs)
    if not subreddits and not users and not posts and not options.resume:
        raise click.UsageError("give at least one --subreddit, --user or --post (or --resume)")
    spider_kwargs: dict[str, Any] = {
        "subreddits": checked(subreddits, parsers.normalize_subreddit, "--subreddit", keep_raw=True),
        "users": checked(users, parsers.normalize_user, "--user", keep_raw=True),
        "posts": checked(posts, parsers.parse_post_ref, "--post", keep_raw=True),
        "base_url": http_base_url(base_url, "--base-url"), "since": since_iso(since), "max_posts": max_posts,
    }
    if options.resume and not subreddits and not users and not posts:
        spider_kwargs = {}
    execute("reddit", spider_kwargs, options)


COMMANDS: list[click.Command] = []  # attached to the ``crawl`` group above
