"""``socialark browse``: explore the index in Datasette (replay links, canned queries)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import tempfile
import webbrowser
from pathlib import Path

import click

from crawler.browse import (
    PROJECT_ROOT,
    browse_metadata,
    datasette_argv,
    last_error,
    wait_until_serving,
    wal_in_use,
)
from crawler.cli.common import data_dir_option, friendly_errors, index_path
from crawler.errors import ExitCode
from storage.db import open_database
from storage.search import DEFAULT_REPLAY_BASE


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops Datasette too, as Ctrl-C does


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@click.command("browse")
@data_dir_option
@click.option("--port", type=click.IntRange(1, 65535), default=8001, show_default=True,
              help="Port for Datasette.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (0.0.0.0 to serve other machines).")
@click.option("--replay-base", default=DEFAULT_REPLAY_BASE, show_default=True, metavar="URL",
              help="Replay server the per-row links point to (where `socialark replay` runs).")
@click.option("--no-open", is_flag=True, help="Do not open a web browser.")
@click.option("-v", "--verbose", is_flag=True, help="Show Datasette's own log (every request).")
@click.option("--metadata-only", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the generated Datasette metadata to FILE and exit.")
@friendly_errors
def browse(data_dir: Path, port: int, host: str, replay_base: str, no_open: bool, verbose: bool,
           metadata_only: Path | None) -> None:
    """Explore the index in Datasette: posts with replay links, canned queries, facets, search.

    Opens on the posts table; each post's post_id and source_url link to the replay of the
    capture it came from (start `socialark replay` for them to answer). Canned queries: most
    active authors, posts per day, deleted posts, media by type. The index is opened immutable
    (read-only) and never written. Needs the optional extra: pip install 'socialark[browse]'.
    Stop with Ctrl-C.

    \b
    Example:
        socialark browse
        socialark browse --port 8002 --no-open --replay-base http://127.0.0.1:8090
        socialark browse --metadata-only metadata.json
    """
    db_path = index_path(data_dir)
    db = open_database(db_path, readonly=True)  # exit 2 with a clear line if there is no index
    try:
        metadata = browse_metadata(db, db_path.stem, replay_base)
    finally:
        db.conn.close()
    if metadata_only:
        metadata_only.write_text(json.dumps(metadata, indent=2), encoding="utf-8")
        click.echo(f"Wrote {metadata_only}")
        return
    if importlib.util.find_spec("datasette") is None:
        raise click.ClickException("Datasette is not installed: pip install 'socialark[browse]'")
    immutable = not wal_in_use(db_path)
    if not immutable:
        click.echo("note: the index has an active write-ahead log (a crawl running?): "
                   "opening it read-only instead of immutable", err=True)
    url = f"http://{_url_host(host)}:{port}/{db_path.stem}/posts"
    with tempfile.TemporaryDirectory(prefix="socialark-browse-") as tmp:
        meta_path = Path(tmp) / "metadata.json"
        meta_path.write_text(json.dumps(metadata, indent=2), encoding="utf-8")
        argv = datasette_argv(db_path, meta_path, host, port, immutable=immutable)
        _serve(argv, url, f"http://{_url_host(host)}:{port}/-/versions.json",
               log=None if verbose else Path(tmp) / "datasette.log", open_browser=not no_open)


def _open_browser(url: str) -> None:
    """Open ``url`` in a graphical browser; never a console one (lynx, w3m would take the terminal)."""
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        browser = None
    console = isinstance(browser, webbrowser.GenericBrowser) and not isinstance(
        browser, webbrowser.BackgroundBrowser)
    if browser is None or console or not browser.open(url):
        click.echo("(no graphical web browser here: open the URL above yourself)", err=True)


def _serve(argv: list[str], url: str, ready_url: str, *, log: Path | None, open_browser: bool) -> None:
    """Run Datasette until it exits, Ctrl-C or SIGTERM; its own log goes to ``log`` if given."""
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)}
    signal.signal(signal.SIGTERM, _interrupt)
    out = log.open("wb") if log else None
    child = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT if out else None)
    try:
        # a cheap page: the posts table of a large index can take seconds to render
        if not wait_until_serving(ready_url, lambda: child.poll() is None):
            why = last_error(log) if log else None
            raise click.ClickException(f"Datasette did not start on {ready_url.split('/')[2]}: "
                                       f"{why or f'exit code {child.poll()}'}")
        click.echo(f"Browse: {url}")
        click.echo("Press Ctrl-C to stop.", err=True)
        if open_browser:
            _open_browser(url)
        if child.wait() != 0:
            why = last_error(log) if log else None
            click.echo(f"Error: Datasette stopped: {why or f'exit code {child.returncode}'}", err=True)
            raise SystemExit(ExitCode.FINISHED_WITH_ERRORS)
    except KeyboardInterrupt:
        pass
    finally:
        _stop(child)
        if out:
            out.close()


COMMANDS = [browse]
