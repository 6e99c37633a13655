"""``socialark crawl telegram``: public channels through the ``t.me/s/NAME`` web preview."""

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
from spiders.telegram import parsers


def _channels(values: tuple[str, ...]) -> list[str]:
    out = []
    for value in values:
        try:
            out.append(parsers.normalize_channel(value))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--channel") from exc
    return list(dict.fromkeys(out))


@crawl.command("telegram")
@click.option("--channel", "channels", multiple=True, metavar="NAME",
              help="Public channel to archive: NAME, @NAME or https://t.me/NAME (repeatable).")
@click.option("--base-url", default=parsers.DEFAULT_BASE, show_default=True, metavar="URL",
              help="Where the web preview is served (a mirror or a test server).")
@click.option("--since", default=None, metavar="DATE",
              help="Only messages from this date on (ISO 8601, UTC if no zone).")
@click.option("--max-posts", type=click.IntRange(min=0), default=0,
              help="At most this many messages per channel, newest first (0 = no limit).")
@crawl_options
@wrap_crawl_errors
def crawl_telegram(channels: tuple[str, ...], base_url: str, since: str | None, max_posts: int,
                   **kwargs: Any) -> None:
    """Archive public Telegram channels from their web preview (t.me/s/NAME).

    For each --channel: the landing page, every page of the preview back to the first
    message (?before=ID), and for each message its post page, its embed widget, album
    members' pages, photos, video files and thumbnails and link-preview images. Gaps in the
    message ids are checked: deleted messages ("Post not found") and channels without a
    public preview (private, or no such name) are listed in the summary, not fatal.

    \b
    Example:
        socialark crawl telegram --channel durov
        socialark crawl telegram --channel @durov --channel https://t.me/telegram --max-posts 200
        socialark crawl telegram --channel durov --since 2024-09-01
    """
    options = options_from_kwargs(kwargs)
    if not channels and not options.resume:
        raise click.UsageError("give at least one --channel (or --resume)")
    spider_kwargs: dict[str, Any] = {
        "channels": _channels(channels), "base_url": http_base_url(base_url, "--base-url"),
        "since": since_iso(since), "max_posts": max_posts,
    }
    if options.resume and not channels:
        spider_kwargs = {}
    execute("telegram", spider_kwargs, options)


COMMANDS: list[click.Command] = []  # attached to the ``crawl`` group above
