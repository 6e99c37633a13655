"""``socialark index``: (re)build the index from WARC files, ours or any tool's."""

from __future__ import annotations

from pathlib import Path

import click

from crawler.cli.common import data_dir_option, friendly_errors, index_path


def _rebuild_targets(db, data_dir: Path) -> list[Path]:  # type: ignore[no-untyped-def]
    """Every WARC the index should know: the data dir's own plus foreign files indexed before."""
    paths = [data_dir / "warcs"] if (data_dir / "warcs").exists() else []
    for (path,) in db.execute("SELECT path FROM warc_files WHERE state = 'foreign'").fetchall():
        if Path(path).exists():
            paths.append(Path(path))
    return paths


def _reextract(db, *, rebuild: bool, collection: str | None, report) -> int:  # type: ignore[no-untyped-def]
    """Re-extract posts/accounts/media with the platform parsers (same code as live crawls)."""
    from crawler.extraction import reextract

    if rebuild:
        return reextract(db)
    if report.files == 0:
        return 0
    collections = {collection} if collection else {
        c for (c,) in db.execute("SELECT DISTINCT collection FROM warc_files").fetchall()
    }
    return sum(reextract(db, collection=c) for c in collections)


@click.command("index")
@click.argument("paths", nargs=-1, type=str)
@click.option("--rebuild", is_flag=True,
              help="Drop the capture index and rebuild it from the WARC files alone.")
@click.option("--collection", default=None,
              help="Collection for the files (default: from the WARC's warcinfo, else the directory name).")
@click.option("--endpoint-url", metavar="URL", default=None,
              help="S3 endpoint for s3:// paths (MinIO, R2, B2, ...). Env: AWS_ENDPOINT_URL.")
@data_dir_option
@friendly_errors
def index_cmd(paths: tuple[str, ...], rebuild: bool, collection: str | None,
              endpoint_url: str | None, data_dir: Path) -> None:
    """Index existing WARC files (from socialark, wget, Browsertrix, Heritrix, ...).

    PATHs may be files or directories (searched for *.warc and *.warc.gz). Corrupt records
    are reported and skipped; the rest of the file is still indexed. Indexing a file again
    replaces its rows. --rebuild first repairs WARCs left open by a crash, then rebuilds
    every row from the WARCs of the data dir (and foreign files indexed earlier).

    An s3://BUCKET/PREFIX path indexes the WARCs in a bucket (e.g. mirrored by many
    workers) by streaming them, without copying them to disk; objects indexed before with
    the same ETag and size are skipped, so re-running only reads new uploads.

    \b
    Example:
        socialark index ~/crawls/wget-run.warc.gz --collection old-site
        socialark index --rebuild
        socialark index s3://archive-bucket/crawls --endpoint-url http://minio:9000
    """
    from storage.db import open_database
    from storage.index import index_paths
    from storage.warc import find_open_files, repair_open_file

    if not paths and not rebuild:
        raise click.UsageError("give WARC files or directories to index, or --rebuild")
    remote = [p for p in paths if p.startswith("s3://")]
    if remote:
        if rebuild or len(remote) != len(paths):
            raise click.UsageError("s3:// paths cannot be mixed with local paths or --rebuild")
        _index_remote(remote, collection, endpoint_url, data_dir)
        return
    db = open_database(index_path(data_dir))
    targets = [Path(p) for p in paths]
    if rebuild:
        for open_file in find_open_files(data_dir / "warcs"):
            result = repair_open_file(open_file)
            click.echo(f"repaired {result.path.name}: {result.records} records kept, "
                       f"{result.removed_bytes} bytes of an incomplete record removed", err=True)
        targets += _rebuild_targets(db, data_dir)
        with db.conn:
            db.execute("DELETE FROM captures")
    if not targets:
        raise click.UsageError(f"no WARC files found under {data_dir / 'warcs'}")

    def progress(path: Path, result) -> None:  # type: ignore[no-untyped-def]
        click.echo(f"  {path.name}: {len(result.rows)} captures from {result.records} records", err=True)

    report = index_paths(db, targets, collection=collection, progress=progress)
    for path, corrupt in report.corrupt:
        click.echo(f"corrupt record skipped in {path} at offset {corrupt.offset}: {corrupt.error}", err=True)
    for path, why in report.skipped:
        click.echo(f"skipped {path}: {why}", err=True)
    items = _reextract(db, rebuild=rebuild, collection=collection, report=report)
    click.echo(f"Indexed {report.files} file(s), {report.records} records, {report.rows} captures "
               f"({items} posts/accounts/media extracted) into {index_path(data_dir)}")
    if report.skipped and not report.files:
        raise click.ClickException("nothing could be indexed")


def _index_remote(urls: list[str], collection: str | None, endpoint_url: str | None,
                  data_dir: Path) -> None:
    from storage.db import open_database
    from storage.remote_index import index_bucket

    db = open_database(index_path(data_dir))

    def progress(obj, result) -> None:  # type: ignore[no-untyped-def]
        click.echo(f"  {obj.key}: {len(result.rows)} captures from {result.records} records",
                   err=True)

    for url in urls:
        report = index_bucket(db, url, endpoint_url=endpoint_url, collection=collection,
                              progress=progress)
        for uri, corrupt in report.corrupt:
            click.echo(f"corrupt record skipped in {uri} at offset {corrupt.offset}: "
                       f"{corrupt.error}", err=True)
        for uri, why in report.skipped:
            click.echo(f"skipped {uri}: {why}", err=True)
        click.echo(f"Indexed {report.files} new or changed file(s) from {url} "
                   f"({report.unchanged} unchanged), {report.records} records, "
                   f"{report.rows} captures into {index_path(data_dir)}")


COMMANDS = [index_cmd]
