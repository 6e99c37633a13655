"""``socialark export posts`` and ``export captures``: streaming JSONL/CSV from the index."""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import click

from crawler.cli.cmd_search import make_post_filter, post_filter_options
from crawler.cli.common import check_collection_option, data_dir_option, friendly_errors, index_path
from crawler.cli.groups import export_group
from crawler.cli.offload_notes import note_absent
from storage.offload import absent_files

FORMATS = click.Choice(["jsonl", "csv"])


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    try:
        fh = open(path, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise click.UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    with fh:
        yield fh


def write_rows(rows: Iterator[dict[str, Any]], fmt: str, out: TextIO, columns: list[str]) -> int:
    """Write as rows arrive (constant memory). JSON-valued columns stay JSON text in CSV."""
    n = 0
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore") if fmt == "csv" else None
    if writer:
        writer.writeheader()
    for row in rows:
        if writer:
            writer.writerow(row)
        else:
            for key in ("media", "raw"):
                if isinstance(row.get(key), str):
                    row[key] = json.loads(row[key])
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        n += 1
    return n


@export_group.command("posts")
@click.option("--format", "fmt", type=FORMATS, required=True, help="jsonl (one post a line) or csv.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to FILE instead of standard output.")
@click.option("--query", metavar="FTS", help="Only posts matching this full-text query (FTS5 syntax).")
@post_filter_options
@data_dir_option
@friendly_errors
def export_posts(fmt: str, output: Path | None, query: str | None, data_dir: Path, replay_base: str,
                 **kwargs: Any) -> None:
    """Export archived posts with every column, oldest first, plus replay links.

    Streams from the index, so a million posts need no more memory than ten.
    Each post gets api_replay_url and page_replay_url (its captures in --replay-base).

    \b
    Example:
        socialark export posts --format csv -o posts.csv --author alice --since 2024-01-01
        socialark export posts --format jsonl --platform mastodon --query archive
    """
    from storage.db import open_database
    from storage.search import POST_COLUMNS, iter_posts

    db = open_database(index_path(data_dir), readonly=True)
    flt = make_post_filter(kwargs)
    rows = iter_posts(db, flt, query=query, replay_base=replay_base)
    columns = [*POST_COLUMNS, "api_replay_url", "page_replay_url"]
    with _output(output) as out:
        n = write_rows(rows, fmt, out, columns)
    if output:
        click.echo(f"{n} posts written to {output}", err=True)
    if n:
        note_absent(db, "the exported posts' collection(s) (their replay links)",
                    collection=flt.collection)


@export_group.command("captures")
@click.option("--format", "fmt", type=FORMATS, required=True, help="jsonl (one capture a line) or csv.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to FILE instead of standard output.")
@click.option("--collection", callback=check_collection_option, metavar="NAME", help="Only this collection (default: all).")
@click.option("--since", metavar="DATE", help="Only captures at or after DATE (YYYY[-MM[-DD[THH:MM:SS]]] or digits).")
@click.option("--until", metavar="DATE", help="Only captures at or before DATE (inclusive).")
@data_dir_option
@friendly_errors
def export_captures(fmt: str, output: Path | None, collection: str | None, since: str | None,
                    until: str | None, data_dir: Path) -> None:
    """Export rows of the captures table (one per WARC response/revisit/resource record).

    \b
    Example:
        socialark export captures --format csv -o captures.csv --collection default
        socialark export captures --format jsonl --since 2024-03-01 --until 2024-03-31
    """
    from storage.db import open_database
    from storage.search import CAPTURE_COLUMNS, iter_captures

    db = open_database(index_path(data_dir), readonly=True)
    per_file: Counter[str] = Counter()

    def counted(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            per_file[row["filename"]] += 1
            yield row

    rows = iter_captures(db, collection=collection, since=since, until=until)
    with _output(output) as out:
        n = write_rows(counted(rows), fmt, out, list(CAPTURE_COLUMNS))
    if output:
        click.echo(f"{n} captures written to {output}", err=True)
    if absent := absent_files(db, names=per_file):
        note_absent(db, "these captures", names=per_file,
                    captures=sum(per_file[f.name] for f in absent))


COMMANDS: list[click.Command] = []
