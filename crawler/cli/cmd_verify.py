"""``socialark verify``: check an archive end to end (files, manifest chain, signatures, index)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from crawler.cli.common import (
    ExitCode,
    check_collection_option,
    data_dir_option,
    friendly_errors,
    index_path,
)
from storage.db import open_database
from storage.signing import public_path
from storage.tsa import load_trusted
from storage.verify import collections_in, s3_objects, summarize, verify_collection


def _public_key(value: str | None) -> str | None:
    """``--public-key``: base64 DER, or a file holding it (a `.pub` from `keys create`)."""
    if not value:
        return None
    path = Path(value)
    if path.is_file():
        if path.suffix != ".pub" and public_path(path).is_file():
            path = public_path(path)
        return path.read_text(encoding="ascii").strip()
    return value.strip()


@click.command("verify")
@data_dir_option
@click.option("--collection", metavar="NAME", callback=check_collection_option, default=None,
              help="Only this collection [default: every collection under warcs/].")
@click.option("--remote", metavar="s3://BUCKET/PREFIX", default=None,
              help="Also hash every object of the collection in this bucket (the mirror's "
                   "layout: PREFIX/<collection>/<warc>).")
@click.option("--endpoint-url", metavar="URL", default=None,
              help="S3 endpoint for --remote (MinIO, R2, ...). Env: AWS_ENDPOINT_URL.")
@click.option("--wacz", "wacz_files", multiple=True, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Verify this WACZ (members, index, signature, timestamp); repeatable. "
                   "Alone, only the WACZ files are checked.")
@click.option("--public-key", metavar="KEY|FILE", default=None,
              help="Require signatures by this key (base64 DER, or the .pub file).")
@click.option("--tsa-cert", metavar="PEM", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Trusted TSA or CA certificate(s): timestamps must be signed by them.")
@click.option("--workers", type=click.IntRange(min=1), default=4, show_default=True,
              help="Files hashed in parallel.")
@friendly_errors
def verify(data_dir: Path, collection: str | None, remote: str | None,
           endpoint_url: str | None, wacz_files: tuple[Path, ...], public_key: str | None,
           tsa_cert: Path | None, workers: int) -> None:
    """Check that an archive is what its manifest, signatures and index say it is.

    Re-hashes every WARC (and every object in --remote), walks the manifest's hash chain,
    checks every signature and RFC 3161 timestamp, and compares the index's digests with the
    files. Exit 0 when everything holds; exit 1 naming each altered, missing or extra file and
    the first broken link of the chain.

    \b
    Example:
        socialark verify --collection news
        socialark verify --collection news --remote s3://bucket/archive --public-key news.pem.pub
        socialark verify --wacz news.wacz
    """
    key = _public_key(public_key)
    trusted = load_trusted(tsa_cert) if tsa_cert else None
    failed = False
    for wacz in wacz_files:
        failed |= _verify_wacz(wacz, key, trusted)
    if wacz_files and not collection and not remote:
        sys.exit(ExitCode.FINISHED_WITH_ERRORS if failed else ExitCode.OK)
    names = [collection] if collection else collections_in(data_dir)
    if not names:
        raise click.ClickException(f"no collections under {data_dir / 'warcs'}")
    db = open_database(index_path(data_dir), readonly=True) if index_path(data_dir).exists() else None
    reports = []
    for name in names:
        objects = s3_objects(remote, name, endpoint_url=endpoint_url) if remote else None
        rep = verify_collection(data_dir, name, db=db, workers=workers, public_key=key,
                                trusted_tsa=trusted, remote=objects)
        reports.append(rep)
        for note in rep.notes:
            click.echo(f"note: {note}", err=True)
        for problem in rep.problems:
            click.echo(f"FAIL {name}: {problem}")
        if rep.first_broken:
            click.echo(f"first broken link: {rep.first_broken}")
        failed |= not rep.ok
    for line in summarize(reports):
        click.echo(line, err=True)
    click.echo("verify: FAILED" if failed else "verify: OK")
    sys.exit(ExitCode.FINISHED_WITH_ERRORS if failed else ExitCode.OK)


def _verify_wacz(path: Path, key: str | None, trusted: list | None) -> bool:
    import zipfile

    from storage.wacz import verify_wacz
    from storage.wacz_sign import signature_problems

    problems = verify_wacz(path)
    if key or trusted:
        with zipfile.ZipFile(path) as zf:
            problems += [p for p in signature_problems(zf, public_key=key, trusted_tsa=trusted)
                         if p not in problems]
    for problem in problems:
        click.echo(f"FAIL {path.name}: {problem}")
    click.echo(f"verify {path.name}: {'FAILED' if problems else 'OK'}")
    return bool(problems)


COMMANDS: list[click.Command] = [verify]
