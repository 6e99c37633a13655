"""``socialark crawl bluesky``: actors and posts from the AppView, repositories from the PDS."""

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
from spiders.bluesky import parsers

DEFAULT_APPVIEW = "https://public.api.bsky.app"
DEFAULT_PLC = "https://plc.directory"


@crawl.command("bluesky")
@click.option("--actor", "actors", multiple=True, metavar="HANDLE_OR_DID",
              help="Account to archive: profile, whole author feed, threads, repository CAR, "
                   "blobs, images and post pages (repeatable).")
@click.option("--post", "posts", multiple=True, metavar="AT_URI_OR_URL",
              help="Post to archive with its whole thread: at://... or a bsky.app post URL "
                   "(repeatable).")
@click.option("--appview", default=DEFAULT_APPVIEW, show_default=True, metavar="URL",
              help="AppView base URL (XRPC app.bsky.* and resolveHandle).")
@click.option("--plc", default=DEFAULT_PLC, show_default=True, metavar="URL",
              help="PLC directory for did:plc documents (PDS discovery).")
@click.option("--pds", default=None, metavar="URL",
              help="Use this PDS for every actor instead of the one in its DID document.")
@click.option("--web", default=None, metavar="URL",
              help="Base of the post page URLs captured [default: https://bsky.app for "
                   "Bluesky's AppView, else the --appview origin].")
@click.option("--since", default=None, metavar="DATE",
              help="Only feed items (posts, reposts) from this date on (ISO 8601, UTC if no zone).")
@click.option("--max-posts", type=click.IntRange(min=0), default=0,
              help="At most this many author-feed items per actor (0 = no limit).")
@crawl_options
@wrap_crawl_errors
def crawl_bluesky(actors: tuple[str, ...], posts: tuple[str, ...], appview: str, plc: str,
                  pds: str | None, web: str | None, since: str | None, max_posts: int,
                  **kwargs: Any) -> None:
    """Archive Bluesky (AT Protocol) accounts and threads.

    For each --actor: resolveHandle, the DID document (PDS discovery), getProfile, every
    page of getAuthorFeed, getPostThread for each post with replies, the repository as a
    CAR file (com.atproto.sync.getRepo: the signed records), every blob of the profile and
    posts (com.atproto.sync.getBlob), the CDN images and the page of each post. For each
    --post: its thread, pages and images. Taken-down, deactivated, deleted or unknown
    targets (Bluesky's 400 errors) are archived, listed in the summary and skipped.

    \b
    Example:
        socialark crawl bluesky --actor alice.bsky.social --actor did:plc:ewvi7nxzyoun6zhxrhs64oiz
        socialark crawl bluesky --post https://bsky.app/profile/alice.bsky.social/post/3l6oveex3ii2l
        socialark crawl bluesky --actor alice.bsky.social --since 2024-09-01 --max-posts 500
    """
    options = options_from_kwargs(kwargs)
    if not actors and not posts and not options.resume:
        raise click.UsageError("give at least one --actor or --post (or --resume)")
    spider_kwargs: dict[str, Any] = {
        "actors": checked(actors, parsers.normalize_actor, "--actor", keep_raw=True),
        "posts": checked(posts, parsers.parse_post_ref, "--post", keep_raw=True),
        "appview": http_base_url(appview, "--appview"), "plc": http_base_url(plc, "--plc"),
        "pds": http_base_url(pds, "--pds"), "web": http_base_url(web, "--web"),
        "since": since_iso(since), "max_posts": max_posts,
    }
    if options.resume and not actors and not posts:
        spider_kwargs = {}
    execute("bluesky", spider_kwargs, options)


COMMANDS: list[click.Command] = []  # attached to the ``crawl`` group above
