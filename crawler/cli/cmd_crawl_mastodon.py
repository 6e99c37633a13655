"""``socialark crawl mastodon``: accounts, hashtags and threads of a Mastodon-family server."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from crawler.cli.cmd_crawl import crawl
from crawler.cli.crawl_options import (
    crawl_options,
    execute,
    options_from_kwargs,
    wrap_crawl_errors,
)

FLAVORS = ("mastodon", "truthsocial", "gab", "pleroma")


def read_targets(path: Path) -> dict[str, list[str]]:
    """``--targets-file``: one target a line; ``#tag`` a hashtag, a URL/number a status, else an
    account (``@`` optional). Blank lines and lines starting with ``//`` are ignored."""
    out: dict[str, list[str]] = {"accounts": [], "hashtags": [], "statuses": []}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"cannot read --targets-file {path}: {exc}") from exc
    for line in lines:
        t = line.strip()
        if not t or t.startswith("//"):
            continue
        if t.startswith("#"):
            out["hashtags"].append(t[1:])
        elif t.startswith(("http://", "https://")) or t.isdigit():
            out["statuses"].append(t)
        else:
            out["accounts"].append(t.lstrip("@"))
    return out


def _check_instance(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.UsageError(f"--instance must be an http(s) URL like https://mastodon.social, got {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


@crawl.command("mastodon")
@click.option("--instance", metavar="URL", help="Server base URL (Mastodon, Truth Social, Gab, Pleroma/Akkoma).")
@click.option("--account", "accounts", multiple=True, metavar="ACCT",
              help="Account to archive: username or user@domain (repeatable).")
@click.option("--hashtag", "hashtags", multiple=True, metavar="TAG", help="Hashtag timeline to archive (repeatable).")
@click.option("--status", "statuses", multiple=True, metavar="URL_OR_ID",
              help="A post (URL or id) and its whole thread (repeatable).")
@click.option("--targets-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File with one target a line: @user, #tag, or a post URL.")
@click.option("--flavor", type=click.Choice(FLAVORS), default=None,
              help="Force the server flavour instead of detecting it from /api/v1/instance.")
@click.option("--since", metavar="DATE", help="Stop paging at posts older than DATE (YYYY-MM-DD[THH:MM:SS], UTC).")
@click.option("--max-posts", type=click.IntRange(min=0), default=0,
              help="Stop paging a listing after this many posts (0 = no limit).")
@click.option("--full", is_flag=True,
              help="Re-fetch everything; by default a re-crawl stops at posts already archived.")
@crawl_options
@wrap_crawl_errors
def crawl_mastodon(instance: str | None, accounts: tuple[str, ...], hashtags: tuple[str, ...],
                   statuses: tuple[str, ...], targets_file: Path | None, flavor: str | None,
                   since: str | None, max_posts: int, full: bool, **kwargs: Any) -> None:
    """Archive accounts, hashtags and threads from a Mastodon-API server.

    For each account: the account, every page of its posts (replies and boosts included),
    each post's thread (past the unauthenticated context caps), media files and previews,
    avatar and header, and each post's human-viewable page. Forks (Truth Social, Gab,
    Pleroma/Akkoma) are detected from /api/v1/instance. Rate-limit headers pause the host.

    \b
    Example:
        socialark crawl mastodon --instance https://mastodon.social --account Gargron
        socialark crawl mastodon --instance https://truthsocial.com --flavor truthsocial \\
            --account someone --since 2024-01-01 --max-posts 500
        socialark crawl mastodon --instance https://example.social --hashtag archive \\
            --status https://example.social/@alice/113000000000000001
    """
    from spiders.mastodon.parsers import parse_since

    options = options_from_kwargs(kwargs)
    targets = {"accounts": list(accounts), "hashtags": list(hashtags), "statuses": list(statuses)}
    if targets_file:
        for key, values in read_targets(targets_file).items():
            targets[key] += values
    has_targets = any(targets.values())
    if not options.resume and not instance:
        raise click.UsageError("give --instance URL (the server to crawl)")
    if not options.resume and not has_targets:
        raise click.UsageError("give at least one --account, --hashtag, --status or --targets-file")
    try:
        since_iso = parse_since(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    spider_kwargs: dict[str, Any] = {}
    if instance or has_targets:
        spider_kwargs = {
            "instance": _check_instance(instance or ""), **targets, "flavor": flavor,
            "since": since_iso, "max_posts": max_posts, "full": full,
        }
    execute("mastodon", spider_kwargs, options)


COMMANDS: list[click.Command] = []
