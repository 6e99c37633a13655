"""``socialark crawl discourse``: a Discourse forum's public topics, posts, uploads and pages."""

from __future__ import annotations

from typing import Any

import click

from crawler.cli.cmd_crawl import crawl
from crawler.cli.crawl_options import (
    checked,
    crawl_options,
    execute,
    options_from_kwargs,
    wrap_crawl_errors,
)
from spiders.discourse import parsers


@crawl.command("discourse")
@click.option("--forum", default=None, metavar="URL",
              help="The forum's base URL, e.g. https://meta.discourse.org (required).")
@click.option("--topic", "topics", multiple=True, metavar="ID_OR_URL",
              help="Only this topic: an id or a topic URL (repeatable).")
@click.option("--category", "categories", multiple=True, metavar="SLUG[/ID]",
              help="Every topic of this category: SLUG/ID as in /c/SLUG/ID, or SLUG alone "
                   "(repeatable).")
@crawl_options
@wrap_crawl_errors
def crawl_discourse(forum: str | None, topics: tuple[str, ...], categories: tuple[str, ...],
                    **kwargs: Any) -> None:
    """Archive a Discourse forum: topics, every post, uploads and the topics' HTML pages.

    Without --topic or --category, every topic listed by /latest.json (all pages). For each
    topic: /t/ID.json, the rest of its post stream through /t/ID/posts.json?post_ids[]=...
    in batches of 20, every uploaded image and attachment, the posters' avatars and each
    page of the server-rendered topic (/t/SLUG/ID?page=N). Both kinds of Discourse 429
    (Retry-After, and a JSON extras.wait_seconds) pause the host; nothing is lost. Private
    categories and deleted topics (403/404) are listed in the summary, not fatal.

    \b
    Example:
        socialark crawl discourse --forum https://forum.example.org
        socialark crawl discourse --forum https://forum.example.org --topic 4711 --topic 4712
        socialark crawl discourse --forum https://forum.example.org --category general/1
    """
    options = options_from_kwargs(kwargs)
    if not forum and not options.resume:
        raise click.UsageError("give the forum with --forum URL (or --resume)")
    spider_kwargs: dict[str, Any] = {}
    if forum:
        try:
            base = parsers.normalize_forum(forum)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--forum") from exc
        checked(categories, parsers.parse_category, "--category")
        spider_kwargs = {
            "forum": base, "topics": checked(topics, parsers.parse_topic_ref, "--topic"),
            "categories": [c.strip() for c in categories],
        }
    execute("discourse", spider_kwargs, options)


COMMANDS: list[click.Command] = []  # attached to the ``crawl`` group above
