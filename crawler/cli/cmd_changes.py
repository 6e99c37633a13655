"""``socialark changes``: posts new, edited or deleted across re-crawls (docs/changes.md)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import click

from crawler.cli.common import check_collection_option, data_dir_option, friendly_errors, index_path

CSV_COLUMNS = ["change", "changed_at", "collection", "platform", "post_id", "author", "url",
               "text", "deleted_at", "deleted_replay_url", "version_count", "replay_urls"]


@click.command("changes")
@click.option("--collection", callback=check_collection_option, metavar="NAME",
              help="Only this collection (default: all).")
@click.option("--since", metavar="DATE",
              help="Only changes seen at or after DATE (YYYY[-MM[-DD[THH:MM:SS]]], UTC).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per change and line.")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl", "csv"]), default="text",
              show_default=True, help="Output format (--json is --format jsonl).")
@click.option("--replay-base", default="http://127.0.0.1:8080", show_default=True, metavar="URL",
              help="Replay server for the capture links (socialark replay).")
@data_dir_option
@friendly_errors
def changes(collection: str | None, since: str | None, as_json: bool, fmt: str,
            replay_base: str, data_dir: Path) -> None:
    """List posts new, edited or deleted since the first crawl of their collection.

    A re-crawl (`--recheck` revisits every archived post, `--full` re-reads every listing)
    records each distinct version of a post with the capture it came from; a post whose URL
    answers 404/410 or a tombstone is deleted from the time it was first seen gone and keeps
    its last text. Each change lists every version with its replay link.

    \b
    Example:
        socialark crawl mastodon --instance https://example.social --account alice --recheck
        socialark changes --collection default --since 2024-06-01
        socialark changes --format csv > changes.csv
    """
    from storage.changes import list_changes
    from storage.db import open_database

    db = open_database(index_path(data_dir), readonly=True)
    if not _has_versions(db.conn):  # written by an older socialark: migrate it (m006) first
        db.conn.close()
        open_database(index_path(data_dir)).conn.close()
        db = open_database(index_path(data_dir), readonly=True)
    fmt = "jsonl" if as_json else fmt
    rows = list_changes(db.conn, collection=collection, since=since, replay_base=replay_base)
    n = _write(rows, fmt)
    if fmt == "text":
        click.echo(f"{n} change{'s' if n != 1 else ''}", err=True)


def _has_versions(conn: Any) -> bool:
    return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'post_versions'").fetchone())


def _write(rows: Any, fmt: str) -> int:
    out = sys.stdout
    writer = None
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
    n = 0
    for row in rows:
        n += 1
        if fmt == "jsonl":
            click.echo(json.dumps(row, ensure_ascii=False))
        elif writer is not None:
            writer.writerow({**row, "version_count": len(row["versions"]),
                             "replay_urls": " ".join(v["replay_url"] or "" for v in row["versions"])})
        else:
            _echo_text(row)
    return n


def _echo_text(row: dict[str, Any]) -> None:
    click.echo(f"{row['change']:<8} {row['changed_at']}  [{row['platform']} {row['post_id']}]"
               f"  @{row['author'] or '?'}  {row['url'] or ''}")
    for v in row["versions"]:
        label = "tombstone" if v["tombstone"] else f"v{v['version']}"
        text = " ".join((v["text"] or "").split())
        click.echo(f"  {label:<9} {v['first_seen']}  {text[:100]}")
        if v["replay_url"]:
            click.echo(f"            {v['replay_url']}")
    if row["change"] == "deleted" and row["deleted_replay_url"]:
        click.echo(f"  gone      {row['deleted_at']}  {row['deleted_replay_url']}")


COMMANDS = [changes]
