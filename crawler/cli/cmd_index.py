"""``socialark index``: (re)build the index from WARC files, ours or any tool's."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from crawler.cli.common import (
    ExitCode,
    check_collection_option,
    check_endpoint_option,
    data_dir_option,
    friendly_errors,
    index_path,
)


def _reextract(db, *, rebuild: bool, collection: str | None, report, source) -> int:  # type: ignore[no-untyped-def]
    """Re-extract posts/accounts/media with the platform parsers (same code as live crawls)."""
    from crawler.extraction import reextract
    from storage.rebuild import indexed_collections

    if rebuild:
        return reextract(db, source=source)
    if report.files == 0:
        return 0
    collections = {collection} if collection else indexed_collections(db)
    return sum(reextract(db, collection=c, source=source) for c in collections)


def _say_kept(kept, *, rebuild: bool) -> None:  # type: ignore[no-untyped-def]
    """One line per (location, reason): which files kept their rows, and why."""
    groups: dict[tuple[str, str], int] = {}
    for f, why in kept:
        groups[(f.location, why)] = groups.get((f.location, why), 0) + 1
    for (where, why), n in sorted(groups.items()):
        if rebuild:
            click.echo(f"kept the index rows of {n} WARC file(s) not on this machine "
                       f"({where}): {why}; run `socialark index --rebuild` again once they can "
                       "be read", err=True)
        else:
            click.echo(f"kept the index rows of {n} WARC file(s) not on this machine ({where})",
                       err=True)


@click.command("index")
@click.argument("paths", nargs=-1, type=str)
@click.option("--rebuild", is_flag=True,
              help="Drop the capture index and rebuild it from the WARC files alone.")
@click.option("--collection", callback=check_collection_option, default=None,
              help="Collection for the files (default: from the WARC's warcinfo, else the directory name).")
@click.option("--recompress", is_flag=True,
              help="First write a per-record gzip copy of each PATH (a WARC/ARC gzipped or "
                   "zstd-compressed as a whole) beside it, named *-recompressed.warc.gz, and "
                   "index the copy instead.")
@click.option("--endpoint-url", metavar="URL", callback=check_endpoint_option, default=None,
              help="S3 endpoint for s3:// paths and offloaded WARCs (MinIO, R2, B2, ...). "
                   "Env: AWS_ENDPOINT_URL.")
@data_dir_option
@friendly_errors
def index_cmd(paths: tuple[str, ...], rebuild: bool, collection: str | None,
              recompress: bool, endpoint_url: str | None, data_dir: Path) -> None:
    """Index existing WARC files (from socialark, wget, Browsertrix, Heritrix, ...).

    PATHs may be files or directories (searched for *.warc, *.arc, their .gz and .zst forms).
    WARC 0.17 to 1.1 and ARC v1 are read, uncompressed, gzipped per record or
    zstd-compressed per record (with or without a dictionary, as Wget-AT writes them). A
    file compressed as a whole is refused: --recompress writes a per-record copy and
    indexes that. Corrupt records are reported and skipped, the rest of the file is still
    indexed, and the command exits with 1. Indexing a file again replaces its rows. --rebuild first repairs WARCs left open by a crash, then rebuilds
    every row from the WARCs of the data dir (and foreign files indexed earlier).

    WARCs no longer on this machine (offloaded by `mirror --delete-after-verify`, or indexed
    from a bucket) keep their rows: --rebuild streams them from the bucket when the AWS
    credentials and endpoint allow, else keeps their rows, says so and exits with 1.

    An s3://BUCKET/PREFIX path indexes the WARCs in a bucket (e.g. mirrored by many
    workers) by streaming them, without copying them to disk; objects indexed before with
    the same ETag and size are skipped, so re-running only reads new uploads. An
    http(s)://.../NAME.warc.gz URL indexes one object on a web server the same way. Posts,
    accounts and media are then extracted from remote files as from local ones, reading
    single records by range; replay and export read them there too (a server without HTTP
    range support can be indexed, but its records cannot be read back: exit 1, one line).

    \b
    Example:
        socialark index ~/crawls/wget-run.warc.gz --collection old-site
        socialark index --recompress whole-file.warc.gz
        socialark index --rebuild
        socialark index s3://archive-bucket/crawls --endpoint-url http://minio:9000
        socialark index https://archive.org/download/ITEM/grab.warc.gz --collection grab
    """
    from storage.db import open_database
    from storage.index import IndexReport, index_paths
    from storage.offload import RecordSource, absent_files
    from storage.rebuild import drop_captures_except, rebuild_targets, repair_crashed

    if not paths and not rebuild:
        raise click.UsageError("give WARC files or directories to index, or --rebuild")
    remote = [p for p in paths if _is_remote(p)]
    if remote:
        if rebuild or len(remote) != len(paths):
            raise click.UsageError("s3:// and http(s):// URLs cannot be mixed with local paths "
                                   "or --rebuild")
        _index_remote(remote, collection, endpoint_url, data_dir)
        return
    targets = [Path(p) for p in paths]
    if recompress:
        if rebuild:
            raise click.UsageError("--recompress takes files, not --rebuild")
        targets = _recompress(targets)
    db = open_database(index_path(data_dir))
    absent = []
    if rebuild:
        for result in repair_crashed(data_dir):
            click.echo(f"repaired {result.path.name}: {result.records} records kept, "
                       f"{result.removed_bytes} bytes of an incomplete record removed", err=True)
        targets += rebuild_targets(db, data_dir)
        absent = absent_files(db)
        drop_captures_except(db, {f.name for f in absent})
    if not targets and not absent:
        raise click.UsageError(f"no WARC files found under {data_dir / 'warcs'}")

    def progress(path: Path, result) -> None:  # type: ignore[no-untyped-def]
        click.echo(f"  {path.name}: {len(result.rows)} captures from {result.records} records", err=True)

    report = index_paths(db, targets, collection=collection, progress=progress) if targets \
        else IndexReport()
    for path, corrupt in report.corrupt:
        click.echo(f"corrupt record skipped in {path} at offset {corrupt.offset}: {corrupt.error}", err=True)
    for path, why in report.skipped:
        click.echo(f"skipped {path}: {why}", err=True)
    kept = []
    if rebuild:
        kept, source = _rebuild_absent(db, absent, endpoint_url, collection, report)
    else:
        source = RecordSource(db)
    items = _reextract(db, rebuild=rebuild, collection=collection, report=report, source=source)
    if items:
        # One FTS segment after a bulk import: time-ordered searches probe ~40x faster
        # (benchmarks/RESULTS.md, "Search API and speed"); ~7.5 s per million posts.
        from storage.search import optimize_search_index

        optimize_search_index(db)
    click.echo(f"Indexed {report.files} file(s), {report.records} records, {report.rows} captures "
               f"({items} posts/accounts/media extracted) into {index_path(data_dir)}")
    if not rebuild and report.files:
        kept = [(f, "") for f in absent_files(db, collection)]
    _say_kept(kept, rebuild=rebuild)
    for name, why in sorted(source.failed.items()):
        click.echo(f"could not read records of {name} to extract posts: {why}", err=True)
    if report.skipped and not report.files:
        raise click.ClickException("nothing could be indexed")
    if report.corrupt or report.skipped or (rebuild and (kept or source.failed)):
        sys.exit(ExitCode.FINISHED_WITH_ERRORS)


def _recompress(paths: list[Path]) -> list[Path]:
    """Per-record gzip copies of ``paths`` (written beside them), to index instead."""
    from storage.errors import StorageError
    from storage.index import expand_paths
    from storage.reader import recompress

    out = []
    for path in expand_paths(paths):
        try:
            result = recompress(path)
        except OSError as exc:
            raise StorageError(f"cannot write a recompressed copy of {path}: {exc}") from None
        click.echo(f"recompressed {path} to {result.path.name}: {result.records} records, one "
                   "gzip member each", err=True)
        for corrupt in result.corrupt:
            click.echo(f"corrupt record left out of {result.path.name} (at offset "
                       f"{corrupt.offset} of the uncompressed data): {corrupt.error}", err=True)
        out.append(result.path)
    return out


def _rebuild_absent(db, absent, endpoint_url, collection, report):  # type: ignore[no-untyped-def]
    """Stream the files that are only in a bucket; return (kept files, record source)."""
    from storage.rebuild import rebuild_offloaded

    def streamed(f, result) -> None:  # type: ignore[no-untyped-def]
        click.echo(f"  {f.name}: {len(result.rows)} captures from {result.records} records "
                   f"(streamed from {f.uri})", err=True)

    done = rebuild_offloaded(db, absent, report, endpoint_url=endpoint_url,
                             collection=collection, progress=streamed)
    return done.kept, done.source


def _is_remote(path: str) -> bool:
    return path.startswith("s3://") or path.lower().startswith(("http://", "https://"))


def _index_remote(urls: list[str], collection: str | None, endpoint_url: str | None,
                  data_dir: Path) -> None:
    """Stream each URL's objects into the index, then extract posts/accounts/media from them
    with the platform parsers (records read back by range: S3 GetObject Range, HTTP Range)."""
    from crawler.extraction import reextract_files
    from storage.db import open_database
    from storage.offload import RecordSource, RemoteReader
    from storage.remote_index import index_bucket, index_http

    db = open_database(index_path(data_dir))

    def progress(obj, result) -> None:  # type: ignore[no-untyped-def]
        click.echo(f"  {obj.name if obj.key.startswith('http') else obj.key}: "
                   f"{len(result.rows)} captures from {result.records} records", err=True)

    reader = RemoteReader(endpoint_url=endpoint_url)
    failed = False
    for url in urls:
        if url.startswith("s3://"):
            report = index_bucket(db, url, endpoint_url=endpoint_url, collection=collection,
                                  progress=progress)
        else:
            report = index_http(db, url, collection=collection, progress=progress)
        for uri, corrupt in report.corrupt:
            click.echo(f"corrupt record skipped in {uri} at offset {corrupt.offset}: "
                       f"{corrupt.error}", err=True)
        for uri, why in report.skipped:
            click.echo(f"skipped {uri}: {why}", err=True)
        source = RecordSource(db, reader)
        items = reextract_files(db, report.indexed, source=source)
        click.echo(f"Indexed {report.files} new or changed file(s) from {url} "
                   f"({report.unchanged} unchanged), {report.records} records, "
                   f"{report.rows} captures ({items} posts/accounts/media extracted) "
                   f"into {index_path(data_dir)}")
        for name, why in sorted(source.failed.items()):
            click.echo(f"could not read records of {name} to extract posts: {why}", err=True)
        failed = failed or bool(report.skipped or source.failed)
    if failed:
        sys.exit(ExitCode.FINISHED_WITH_ERRORS)


COMMANDS = [index_cmd]
