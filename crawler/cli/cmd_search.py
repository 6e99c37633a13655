"""``socialark search QUERY``: full-text search over archived posts (FTS5, bm25 ranking)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from crawler.cli.common import check_collection_option, data_dir_option, friendly_errors, index_path
from storage.search import SORTS


def post_filter_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--platform/--author/--since/--until/--collection and --replay-base (search, export posts)."""
    options = [
        click.option("--platform", metavar="P", help="Only posts of this platform (mastodon, bluesky, ...)."),
        click.option("--author", metavar="A", help="Only posts by this author (handle or account id)."),
        click.option("--since", metavar="DATE",
                     help="Only posts created at or after DATE (YYYY[-MM[-DD[THH:MM:SS]]], UTC)."),
        click.option("--until", metavar="DATE", help="Only posts created at or before DATE (inclusive)."),
        click.option("--collection", callback=check_collection_option, metavar="NAME", help="Only this collection (default: all)."),
        click.option("--replay-base", default="http://127.0.0.1:8080", show_default=True, metavar="URL",
                     help="Replay server for the capture links (socialark replay)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def make_post_filter(kwargs: dict[str, Any]) -> Any:
    from storage.search import PostFilter

    return PostFilter(platform=kwargs.get("platform"), author=kwargs.get("author"),
                      since=kwargs.get("since"), until=kwargs.get("until"),
                      collection=kwargs.get("collection"))


@click.command("search")
@click.argument("query")
@post_filter_options
@click.option("--limit", type=click.IntRange(1, 1_000_000_000), default=20, show_default=True, help="Most results to show.")
@click.option("--sort", type=click.Choice(SORTS), default="relevance", show_default=True,
              help="relevance: best bm25 first; newest/oldest: by created_at.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of text.")
@data_dir_option
@friendly_errors
def search(query: str, limit: int, sort: str, as_json: bool, data_dir: Path, replay_base: str,
           **kwargs: Any) -> None:
    """Search archived posts; best matches first (bm25) or by date, matches highlighted.

    QUERY uses SQLite FTS5 syntax: words (all must match), "a phrase", OR, NOT,
    prefix*, NEAR(a b), and author:NAME to match the author column only.
    Each result links to its replayable API capture and page capture.

    \b
    Example:
        socialark search archive
        socialark search '"harbour photos" OR café' --author alice --since 2024-01-01
        socialark search 'arch*' --platform mastodon --json --limit 100
        socialark search election --sort newest --since 2024-11-01

    On a large index a query matching more than 5,000 posts is ranked among its 5,000 most
    recently indexed matches (docs/search.md); newest and oldest are always exact.
    """
    from storage.db import open_database
    from storage.search import search_posts

    db = open_database(index_path(data_dir), readonly=True)
    marks = ("<mark>", "</mark>") if as_json else ("\x1b[1m", "\x1b[0m") if _tty() else ("[", "]")
    n = 0
    for row in search_posts(db, query, make_post_filter(kwargs), limit=limit, sort=sort,
                            replay_base=replay_base, marks=marks):
        n += 1
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
            continue
        score = f"  score {-row['rank']:.2f}" if row.get("rank") is not None else ""
        click.echo(f"{row['created_at'] or '?'}  @{row['author'] or '?'}  "
                   f"[{row['platform']} {row['post_id']}]{score}")
        click.echo("  " + " ".join((row["snippet"] or "").split()))
        for label, key in (("post", "url"), ("page", "page_replay_url"), ("api ", "api_replay_url")):
            if row.get(key):
                click.echo(f"  {label}: {row[key]}")
    if not as_json:
        click.echo(f"{n} result{'s' if n != 1 else ''}", err=True)


def _tty() -> bool:
    return click.get_text_stream("stdout").isatty()


COMMANDS = [search]
