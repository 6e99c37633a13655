"""``socialark status``: what the archive holds (collections, crawls, files, records, bytes),
and for a crawl still running, the hosts it is not sending to (rate-limit pauses)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from crawler.cli.common import data_dir_option, friendly_errors, index_path


def _blocked(db: Any, crawl_id: str) -> list[dict[str, Any]]:
    """Targets the capture-quality gate left blocked in this crawl (``quality_flags``)."""
    if "quality_flags" not in db.table_names():
        return []  # an index from before the gate, opened read-only (no migration)
    return [{"url": url, "kind": kind, "rule": rule, "final_url": final}
            for url, kind, rule, final in db.execute(
                "SELECT url, kind, rule, final_url FROM quality_flags"
                " WHERE crawl_id = ? AND outcome = 'blocked' ORDER BY id LIMIT 100",
                [crawl_id]).fetchall()]


def gather_status(db: Any) -> dict[str, Any]:
    collections: dict[str, dict[str, Any]] = {}
    for coll, files, size, open_files, mirrored in db.execute(
        "SELECT collection, COUNT(*), COALESCE(SUM(size), 0),"
        " SUM(state = 'open'), SUM(mirrored_at IS NOT NULL) FROM warc_files GROUP BY collection"
    ).fetchall():
        collections[coll] = {"files": files, "bytes": size, "open_files": open_files or 0,
                             "mirrored_files": mirrored or 0}
    for coll, records, urls in db.execute(
        "SELECT collection, COUNT(*), COUNT(DISTINCT urlkey) FROM captures GROUP BY collection"
    ).fetchall():
        collections.setdefault(coll, {}).update({"captures": records, "distinct_urls": urls})
    if "quality_flags" in db.table_names():
        for coll, flagged in db.execute(
            "SELECT collection, COUNT(*) FROM quality_flags GROUP BY collection"
        ).fetchall():
            collections.setdefault(coll, {})["flagged"] = flagged
    from storage.crawl_live import paused_hosts

    crawls, now = [], time.time()
    for row in db.execute(
        "SELECT crawl_id, collection, spider, state, started_at, ended_at, exit_code, stats"
        " FROM crawls ORDER BY started_at DESC LIMIT 20"
    ).fetchall():
        crawl = dict(zip(("crawl_id", "collection", "spider", "state", "started_at", "ended_at",
                          "exit_code"), row[:7], strict=True))
        crawl["paused_hosts"] = paused_hosts(row[7], now) if crawl["state"] == "running" else []
        crawl["blocked"] = _blocked(db, crawl["crawl_id"])
        crawls.append(crawl)
    open_files = [r[0] for r in db.execute("SELECT name FROM warc_files WHERE state = 'open'").fetchall()]
    return {"collections": collections, "crawls": crawls, "open_files": open_files}


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@data_dir_option
@friendly_errors
def status_cmd(as_json: bool, data_dir: Path) -> None:
    """Show collections, crawls, WARC files, records and bytes, and what is still open.

    \b
    Example:
        socialark status
        socialark status --json --data-dir /data/archive
    """
    from storage.db import open_database

    db = open_database(index_path(data_dir), readonly=True)
    status = gather_status(db)
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    from crawler.extensions.progress import human_bytes

    click.echo(f"Archive: {Path(data_dir).resolve()}")
    if not status["collections"]:
        click.echo("  (empty)")
    for name, c in sorted(status["collections"].items()):
        click.echo(f"  collection {name}: {c.get('files', 0)} WARC files, {human_bytes(c.get('bytes', 0))}, "
                   f"{c.get('captures', 0)} captures of {c.get('distinct_urls', 0)} URLs, "
                   f"{c.get('mirrored_files', 0)} mirrored, {c.get('open_files', 0)} open"
                   + (f", {c['flagged']} answers flagged by the capture-quality gate (not "
                      f"captures: see quality_flags)" if c.get("flagged") else ""))
    if status["crawls"]:
        click.echo("Recent crawls:")
        for cr in status["crawls"]:
            click.echo(f"  {cr['crawl_id']} [{cr['spider']} -> {cr['collection']}] {cr['state']}"
                       f" started {cr['started_at']} exit {cr['exit_code']}")
            for p in cr["paused_hosts"]:
                click.echo(f"    paused: {p['host']} ({p['reason']}) until {p['until_iso']}"
                           f" (in {max(p['until'] - time.time(), 0):.0f}s)")
            for b in cr["blocked"]:
                click.echo(f"    blocked: {b['url']}: {b['kind'].replace('_', ' ')} ({b['rule']})")
    if status["open_files"]:
        click.echo("Open (being written, or left by a crash — repaired on the next crawl or `index --rebuild`):")
        for name in status["open_files"]:
            click.echo(f"  {name}")


COMMANDS = [status_cmd]
