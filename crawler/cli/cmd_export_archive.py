"""``socialark export cdxj`` and ``socialark export wacz``: derived archive formats from the index."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from crawler import __version__
from crawler.cli.common import (
    ExitCode,
    check_collection_option,
    check_endpoint_option,
    data_dir_option,
    friendly_errors,
    index_path,
)
from crawler.cli.groups import export_group
from crawler.cli.offload_notes import note_absent
from storage.cdxj import CaptureFilter, parse_bound, warc_paths, write_cdxj
from storage.db import open_database
from storage.offload import RemoteReader, RemoteUnavailable, locations
from storage.wacz import write_wacz


def filter_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--until", metavar="DATE",
                        help="Only captures at or before DATE (YYYY[-MM[-DD[THH:MM:SS]]] or digits).")(func)
    func = click.option("--since", metavar="DATE",
                        help="Only captures at or after DATE (YYYY[-MM[-DD[THH:MM:SS]]] or digits).")(func)
    func = click.option("--collection", callback=check_collection_option, metavar="NAME",
                        help="Only this collection (default: all collections).")(func)
    return func


def make_filter(collection: str | None, since: str | None, until: str | None) -> CaptureFilter:
    return CaptureFilter(
        collection=collection,
        since=parse_bound(since, upper=False) if since else None,
        until=parse_bound(until, upper=True) if until else None,
    )


@export_group.command("cdxj")
@data_dir_option
@filter_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to FILE instead of standard output.")
@friendly_errors
def export_cdxj(data_dir: Path, collection: str | None, since: str | None, until: str | None,
                output: Path | None) -> None:
    """Export the capture index as sorted CDXJ (the form pywb and WACZ readers expect).

    Lines are `urlkey timestamp {json}` exactly as cdxj-indexer writes them, sorted by raw
    bytes. Records in WARC files still being written are left out.

    \b
    Example:
        socialark export cdxj --collection news -o news.cdxj
        socialark export cdxj --since 2024-01-01 --until 2024-01-31 > jan.cdxj
    """
    flt = make_filter(collection, since, until)
    db = open_database(index_path(data_dir), readonly=True)
    if output:
        with output.open("w", encoding="utf-8") as out:
            count = write_cdxj(db, out, flt)
        click.echo(f"Wrote {count} CDXJ lines to {output}", err=True)
    else:
        write_cdxj(db, sys.stdout, flt)
    note_absent(db, "this CDXJ", names=warc_paths(db, flt))


@export_group.command("wacz")
@data_dir_option
@filter_options
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The .wacz file to write.")
@click.option("--title", help="Title recorded in datapackage.json.")
@click.option("--endpoint-url", metavar="URL", callback=check_endpoint_option, default=None,
              help="S3 endpoint to read offloaded WARCs from (MinIO, R2, ...). "
                   "Env: AWS_ENDPOINT_URL.")
@click.option("--sign", is_flag=True,
              help="Sign datapackage-digest.json (WACZ 1.1.1 signedData) with the collection's "
                   "default key, or --sign-key.")
@click.option("--sign-key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="Sign with this key (implies --sign).")
@click.option("--tsa", "tsa_url", metavar="URL", default=None,
              help="RFC 3161 timestamp authority: timestamp the datapackage hash.")
@friendly_errors
def export_wacz(data_dir: Path, collection: str | None, since: str | None, until: str | None,
                output: Path, title: str | None, endpoint_url: str | None, sign: bool,
                sign_key: Path | None, tsa_url: str | None) -> None:
    """Package captures as a WACZ 1.1.1 file for ReplayWeb.page and other WACZ readers.

    The WACZ holds the WARC files (stored uncompressed in the zip), a compressed CDXJ index,
    pages/pages.jsonl (from the pages and posts tables, or the captured HTML pages), and
    datapackage.json with the sha256 and size of every file. WARCs are streamed, not loaded.

    WARCs no longer on this machine (`mirror --delete-after-verify`) are streamed from the
    bucket into the WACZ (AWS credentials and endpoint as for `mirror`) and checked against
    the index's SHA-256. If the bucket cannot be read the export fails (exit 1, or 2 for a
    credentials problem) and writes nothing: a WACZ never silently lacks a WARC.

    \b
    Example:
        socialark export wacz --collection news -o news.wacz
        socialark export wacz --since 2024-01-01 -o recent.wacz --title "Recent captures"
    """
    if output.suffix != ".wacz":
        raise click.UsageError("the output file name must end in .wacz")
    flt = make_filter(collection, since, until)
    db = open_database(index_path(data_dir), readonly=True)
    remote = RemoteReader(endpoint_url=endpoint_url)
    absent = note_absent(db, "this export", names=warc_paths(db, flt))
    if absent:
        click.echo(f"streaming them from {locations(absent)} into the WACZ", err=True)
    try:
        result = write_wacz(db, output, flt, title=title, software=f"socialark {__version__}",
                            remote=remote,
                            sign=_signer(data_dir, collection, sign, sign_key, tsa_url))
    except RemoteUnavailable as exc:
        if exc.config:
            raise
        click.echo(f"Error: {exc}; no WACZ written (run again when the bucket can be read)",
                   err=True)
        sys.exit(ExitCode.FINISHED_WITH_ERRORS)
    click.echo(f"Wrote {result.path}: {result.captures} captures, {result.pages} pages, "
               f"{len(result.warcs)} WARC files")


def _signer(data_dir: Path, collection: str | None, sign: bool, key_path: Path | None,
            tsa_url: str | None) -> Callable[[str, str], dict[str, Any]] | None:
    """The ``datapackage-digest.json`` fields for --sign/--sign-key/--tsa (None: plain)."""
    from storage.signing import default_key_path, load_key
    from storage.wacz_sign import digest_fields

    if not (sign or key_path or tsa_url):
        return None
    key = None
    if sign or key_path:
        path = key_path or default_key_path(data_dir, collection or "default")
        if not path.exists():
            raise click.UsageError(f"no signing key at {path} (create one with "
                                   f"`socialark keys create`, or give --sign-key)")
        key = load_key(path)
    software = f"socialark {__version__}"
    return lambda digest, created: digest_fields(digest, created, software=software, key=key,
                                                 tsa_url=tsa_url)


COMMANDS: list[click.Command] = []  # both commands attach to the shared `export` group
