"""``socialark replay``: pywb over the archive (``socialark browse`` lives in cmd_browse.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from crawler.cli.common import (
    check_collection_option,
    check_endpoint_option,
    data_dir_option,
    friendly_errors,
    index_path,
)
from crawler.replay import ReplayError, default_venv, ensure_venv, pywb_replay
from storage.db import open_database
from storage.offload import RemoteReader, absent_files, locations


def replay_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """ReplayError → one-line message, exit 2 (on top of ``friendly_errors`` for StorageError)."""
    wrapped = friendly_errors(func)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return wrapped(*args, **kwargs)
        except ReplayError as exc:
            raise click.ClickException(str(exc)) from exc

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM ends replay like Ctrl-C does, so the pywb subprocess is stopped on the way out.
    raise KeyboardInterrupt


def _wait_forever(server_process: subprocess.Popen[bytes]) -> None:
    try:
        server_process.wait()
    except KeyboardInterrupt:
        pass


@click.command("replay")
@data_dir_option
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="Port for pywb on 127.0.0.1.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (0.0.0.0 to serve other machines).")
@click.option("--collection", "collections", callback=check_collection_option, multiple=True, metavar="NAME",
              help="Collection to serve (repeatable; default: every collection).")
@click.option("--venv", type=click.Path(file_okay=False, path_type=Path),
              help="pywb virtual environment (default: $SOCIALARK_PYWB_VENV or "
                   "~/.cache/socialark/pywb-venv).")
@click.option("--setup", is_flag=True,
              help="Only create the pywb virtual environment (needs the package index once), then exit.")
@click.option("--endpoint-url", metavar="URL", callback=check_endpoint_option, default=None,
              help="S3 endpoint to read offloaded WARCs from (MinIO, R2, ...). Env: AWS_ENDPOINT_URL.")
@replay_errors
def replay(data_dir: Path, port: int, host: str, collections: tuple[str, ...], venv: Path | None,
           setup: bool, endpoint_url: str | None) -> None:
    """Replay the archive in pywb: browse captured pages as they were.

    pywb runs from its own virtual environment (it pins old dependencies), created on first
    use and reused offline afterwards. The WARC files are read where they are; only a sorted
    CDXJ and a file-path index are generated under DATA_DIR/state/pywb. Stop with Ctrl-C.
    WARCs offloaded by `mirror --delete-after-verify` are read straight from the bucket
    (presigned URLs, valid 7 days; AWS credentials and endpoint as for `mirror`); if the
    bucket cannot be read, replay refuses to start (exit 2) and says which files and where.

    \b
    Example:
        socialark replay --setup
        socialark replay --port 8090 --collection news
        # then open http://127.0.0.1:8090/news/<timestamp>/<url>
    """
    venv = venv or default_venv()
    if setup:
        exe = ensure_venv(venv, echo=lambda m: click.echo(m, err=True))
        click.echo(f"pywb ready: {exe}")
        return
    db = open_database(index_path(data_dir), readonly=True)
    absent = absent_files(db)
    if absent:
        click.echo(f"note: {len(absent)} WARC file(s) are not on this machine "
                   f"({locations(absent)}): pywb will read them from there", err=True)
    remote = RemoteReader(endpoint_url=endpoint_url)
    with pywb_replay(db, data_dir, port, list(collections) or None, venv=venv, host=host,
                     remote=remote) as server:
        for name in server.collections:
            click.echo(f"Replay: {server.collection_url(name)}")
        click.echo("Press Ctrl-C to stop.", err=True)
        sys.stdout.flush()
        signal.signal(signal.SIGTERM, _interrupt)
        _wait_forever(server.process)


COMMANDS = [replay]
