"""``socialark mirror s3://BUCKET/PREFIX``: copy every closed WARC to object storage, verified."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from crawler.cli.common import (
    ExitCode,
    check_collection_option,
    check_endpoint_option,
    check_mirror_option,
    data_dir_option,
    friendly_errors,
    index_path,
)
from storage.db import open_database
from storage.mirror import FileResult, Mirror, MirrorConfigError, S3Target
from storage.units import parse_size

_VERB = {
    "uploaded": "uploaded+verified", "repaired": "REPAIRED", "verified": "verified",
    "skipped": "already mirrored", "would-upload": "would upload", "would-verify": "would verify",
    "failed": "FAILED",
}


def _ia_headers(pairs: tuple[str, ...]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--ia-meta")
        headers[f"x-archive-meta-{key.strip().lower()}"] = value
    if headers:
        headers["x-amz-auto-make-bucket"] = "1"  # IA: create the item on first upload
    return headers


def _size(value: str) -> int:
    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--part-size") from exc


def _progress(result: FileResult, done: int, total: int) -> None:
    width = len(str(total))
    extra = f" ({result.parts} parts)" if result.multipart else ""
    if result.deleted:
        extra += ", local copy deleted"
    if result.error:
        extra += f": {result.error}"
    click.echo(f"[{done:>{width}}/{total}] {_VERB.get(result.status, result.status)} "
               f"{result.name} {result.size / 1e6:.1f} MB{extra}", err=True)


@click.command("mirror")
@click.argument("url", metavar="s3://BUCKET/PREFIX", callback=check_mirror_option)
@click.option("--endpoint-url", metavar="URL", callback=check_endpoint_option,
              help="S3 endpoint (MinIO, R2, B2, IA). Default: AWS_ENDPOINT_URL or AWS S3.")
@click.option("--collection", callback=check_collection_option, metavar="NAME", help="Only this collection (default: all).")
@click.option("--verify", is_flag=True,
              help="Re-check every remote copy; re-upload any that is missing or differs.")
@click.option("--delete-after-verify", is_flag=True,
              help="Delete local WARCs whose remote copy was verified during this run.")
@click.option("--dry-run", is_flag=True, help="Show what would be done; change nothing.")
@click.option("--with-index", is_flag=True,
              help="Also upload a consistent snapshot of index.db under PREFIX/index/.")
@click.option("--ia-meta", "ia_meta", multiple=True, metavar="KEY=VALUE",
              help="Internet Archive item metadata, sent as x-archive-meta-KEY headers "
                   "(repeatable).")
@click.option("--part-size", default="8MiB", show_default=True, metavar="SIZE",
              help="Multipart part size; files at least this big go multipart.")
@click.option("--jobs", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Files uploaded in parallel.")
@click.option("--retries", default=4, show_default=True, type=click.IntRange(0, 20),
              help="Retries per file (backoff 1s, 2s, 4s... up to 30s).")
@data_dir_option
@friendly_errors
def mirror_command(url: str, endpoint_url: str | None, collection: str | None, verify: bool,
                   delete_after_verify: bool, dry_run: bool, with_index: bool,
                   ia_meta: tuple[str, ...], part_size: str, jobs: int, retries: int,
                   data_dir: Path) -> None:
    """Upload every closed WARC not yet verified in s3://BUCKET/PREFIX, and verify it.

    WARCs a dead crawl process left open (``.warc.gz.open``, e.g. a worker killed with
    kill -9) are repaired first: cut after their last complete record, closed, indexed, and
    uploaded with the rest.

    Objects are stored as PREFIX/<collection>/<warc name>. A file counts as mirrored only once
    the remote SHA-256 matches the local one; interrupted multipart uploads are resumed. Running
    it twice uploads nothing the second time. Credentials, region and profile come from the
    standard AWS chain (env vars, AWS_PROFILE, ~/.aws/*). Exit 0: all verified; 1: some files
    failed (they stay unmirrored, run again); 2: configuration error.

    \b
    Example:
        socialark mirror s3://my-archive/crawls
        socialark mirror s3://my-archive/crawls --verify --delete-after-verify
        socialark mirror s3://warcs --endpoint-url http://127.0.0.1:9000 --with-index
        socialark mirror s3://my-ia-item --endpoint-url https://s3.us.archive.org \\
            --ia-meta mediatype=web --ia-meta title="My crawl"
    """
    target = S3Target.parse(url)
    headers = _ia_headers(ia_meta)
    idx = index_path(data_dir)
    if not idx.exists():
        raise click.ClickException(f"no index at {idx} (run a crawl first, or pass --data-dir)")
    _repair_leftovers(data_dir, collection, dry_run)
    db = open_database(idx)
    mirror = Mirror.connect(
        target, endpoint_url=endpoint_url, db=db, extra_headers=headers or None,
        part_size=_size(part_size), multipart_threshold=_size(part_size), file_workers=jobs,
        retries=retries,
    )
    if not dry_run:
        try:
            mirror.check_bucket()
        except MirrorConfigError:
            raise
        except Exception as exc:  # unreachable after botocore's retries
            click.echo(f"Error: {exc}; nothing was mirrored", err=True)
            sys.exit(ExitCode.FINISHED_WITH_ERRORS)
    try:
        report = mirror.sync(collection, verify=verify, delete_after_verify=delete_after_verify,
                             dry_run=dry_run, progress=_progress)
    except KeyboardInterrupt:
        click.echo("Interrupted: verified files are recorded; run the same command to resume.",
                   err=True)
        sys.exit(ExitCode.INTERRUPTED)
    if with_index and not dry_run:
        key = mirror.snapshot_index(idx)
        click.echo(f"index snapshot: {target.uri(key)}", err=True)
    _summary(report.results, report.bytes_sent, report.deleted, target.url, dry_run)
    if report.failed:
        sys.exit(ExitCode.FINISHED_WITH_ERRORS)


def _repair_leftovers(data_dir: Path, collection: str | None, dry_run: bool) -> None:
    """Close, index and re-extract the WARCs dead crawl processes left ``.open`` (a killed
    worker's data dir), so they are mirrored like any other (crawler/leftovers.py)."""
    from crawler.leftovers import collections_with_leftovers, repair_collection

    names = [c for c in collections_with_leftovers(data_dir) if collection in (None, c)]
    for name in names:
        if dry_run:
            click.echo(f"would repair the WARCs of collection {name} left open by a dead "
                       "process", err=True)
            continue
        report = repair_collection(data_dir, name)
        for file in report.repaired:
            click.echo(f"repaired {file} (left open by a dead process): closed and indexed",
                       err=True)
        if report.items:
            click.echo(f"re-extracted {report.items} posts/accounts/media from repaired WARCs",
                       err=True)


def _summary(results: list[FileResult], sent: int, deleted: int, url: str, dry_run: bool) -> None:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    parts = [f"{n} {_VERB.get(s, s)}" for s, n in sorted(counts.items())] or ["nothing to do"]
    line = f"{url}: {len(results)} WARC files: " + ", ".join(parts)
    if not dry_run:
        line += f"; {sent / 1e6:.1f} MB sent"
        if deleted:
            line += f"; {deleted} local copies deleted"
    click.echo(line)


COMMANDS = [mirror_command]
