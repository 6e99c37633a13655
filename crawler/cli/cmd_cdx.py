"""``socialark cdx`` (query the capture index) and ``socialark serve`` (the CDX server API)."""

from __future__ import annotations

import signal
import sys
import threading
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

import click

from crawler.cli.common import check_collection_option, data_dir_option, friendly_errors, index_path
from crawler.cli.offload_notes import note_absent
from storage.cdx import MATCH_TYPES, MAX_LIMIT, QUERY_TIMEOUT, format_line, parse_fields, query
from storage.cdx_server import MAX_THREADS, make_server
from storage.db import open_database
from storage.offload import absent_files


@click.command("cdx")
@click.argument("url")
@click.option(
    "--match",
    "match_type",
    type=click.Choice(MATCH_TYPES),
    help="exact (default), prefix (URL path prefix), host (one host), domain (host and its "
    "subdomains). Without it, *.example.com means domain and http://example.com/path* prefix.",
)
@click.option(
    "--from", "from_ts", metavar="TS", help="Earliest capture, 1-14 digits (2024 = 20240101000000)."
)
@click.option(
    "--to", "to_ts", metavar="TS", help="Latest capture, 1-14 digits (2024 = 20241231235959)."
)
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), metavar="N", help="At most N captures.")
@click.option(
    "--sort",
    type=click.Choice(["reverse", "closest"]),
    help="reverse: newest key/time first; closest: nearest to --closest first.",
)
@click.option(
    "--closest", metavar="TS", help="Order by distance in time to TS (implies --sort closest)."
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="EXPR",
    help="[!][=|~]field:expr; plain contains, = exact, ~ regex from the start, ! negates. "
    "Repeatable, e.g. --filter =status:200 --filter '!mime:image'.",
)
@click.option("--collection", callback=check_collection_option, metavar="NAME", help="Only this collection (default: all).")
@click.option(
    "--fields",
    metavar="LIST",
    help="Comma-separated fields to show, e.g. url,timestamp,status. Known: urlkey timestamp url "
    "mime status digest length offset filename method requestBody collection recordType.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (NDJSON).")
@click.option(
    "--cdxj",
    "as_cdxj",
    is_flag=True,
    help="CDXJ lines (urlkey timestamp {json}), as pywb reads them.",
)
@click.option("--timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              metavar="SECONDS", help="Stop a query that runs longer (exit 2).")
@data_dir_option
@friendly_errors
def cdx_command(
    url: str,
    match_type: str | None,
    from_ts: str | None,
    to_ts: str | None,
    limit: int | None,
    sort: str | None,
    closest: str | None,
    filters: tuple[str, ...],
    collection: str | None,
    fields: str | None,
    as_json: bool,
    as_cdxj: bool,
    timeout: float,
    data_dir: Path,
) -> None:
    """List the captures of URL in the index, like a CDX server query.

    Default output is one line per capture:
    `urlkey timestamp url mime status digest length offset filename` (`-` when absent).
    Nothing found: no output, a note on stderr, exit code 0.

    \b
    Example:
        socialark cdx https://example.org/
        socialark cdx example.org --match domain --from 2024 --to 202406 --json
        socialark cdx 'https://example.org/blog/*' --filter =status:200 --limit 10
        socialark cdx https://example.org/ --closest 20240315 --limit 1
    """
    if as_json and as_cdxj:
        raise click.UsageError("choose one of --json and --cdxj")
    output = "json" if as_json else "cdxj" if as_cdxj else "text"
    selected = parse_fields(fields)
    db = open_database(index_path(data_dir), readonly=True)
    rows = query(
        db,
        url,
        match_type=match_type,
        from_ts=from_ts,
        to_ts=to_ts,
        limit=limit,
        sort=sort,
        closest=closest,
        filters=filters,
        collection=collection,
        timeout=timeout,
    )
    count = 0
    per_file: Counter[str] = Counter()
    for row in rows:
        click.echo(format_line(row, output, selected))
        per_file[str(row["filename"])] += 1
        count += 1
    if count == 0:
        click.echo(f"no captures match {url}", err=True)
    elif absent := absent_files(db, names=per_file):
        note_absent(db, "these captures", names=per_file,
                    captures=sum(per_file[f.name] for f in absent))


def _stop_on_signals(server: Any) -> None:
    """SIGINT/SIGTERM end ``serve_forever`` from another thread (``shutdown`` must not run in
    the serving thread). Raising KeyboardInterrupt from the handler instead could land inside
    the server's locks or thread start-up and leave the process unable to exit."""
    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, name="serve-stop", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


@click.command("serve")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8090,
    show_default=True,
    help="Port to listen on (0 picks a free port).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind (0.0.0.0 for every interface).",
)
@click.option("--quiet", is_flag=True, help="Do not log each request to stderr.")
@click.option("--query-timeout", type=click.FloatRange(min=0.1), default=QUERY_TIMEOUT,
              show_default=True, metavar="SECONDS",
              help="Stop a query that runs longer (the client gets 503).")
@click.option("--max-threads", type=click.IntRange(1, 1024), default=MAX_THREADS,
              show_default=True, help="Requests served at once (more get 503 at once).")
@click.option("--replay-base", default="http://127.0.0.1:8080", show_default=True, metavar="URL",
              help="Replay server named in /search results' replay links (socialark replay).")
@data_dir_option
@friendly_errors
def serve_command(port: int, host: str, quiet: bool, query_timeout: float, max_threads: int,
                  replay_base: str, data_dir: Path) -> None:
    """Serve the capture index as a CDX server API (pywb and IA compatible) and the post
    search as a JSON API, until Ctrl-C.

    GET /cdx?url=... queries every collection (or &collection=NAME); GET /NAME/cdx?url=...
    one collection. Parameters: url, matchType, from, to, limit, sort=reverse|closest,
    closest, output=cdxj|json|text, filter (repeatable), fields (or fl). output=json is
    NDJSON (pywb); with fl= it is the Internet Archive's array of arrays.

    To replay with pywb, point a collection at it in config.yaml:

    \b
        collections:
          news:
            index: cdx+http://127.0.0.1:8090/news/cdx
            archive_paths: /path/to/archive/warcs/news/

    GET /search?q=... searches posts like `socialark search` and answers JSON: parameters
    q, limit (1-1000), sort=relevance|newest|oldest, collection, platform, author, since,
    until (docs/search.md). Bad parameters get 400 with {"error": "..."}.

    \b
    Example:
        socialark serve --port 8090
        curl 'http://127.0.0.1:8090/cdx?url=example.org&matchType=domain&output=json'
        curl 'http://127.0.0.1:8090/search?q=harbour&sort=newest&author=alice&limit=5'
    """
    try:
        server = make_server(index_path(data_dir), host, port, quiet=quiet,
                             query_timeout=query_timeout, max_threads=max_threads,
                             replay_base=replay_base)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from exc
    _stop_on_signals(server)
    click.echo(f"Serving CDX API on {server.url}")
    click.echo(f"Serving post search on {server.url.removesuffix('/cdx')}/search")
    sys.stdout.flush()
    try:
        server.serve_forever()
        click.echo("stopped", err=True)
    finally:
        server.server_close()


COMMANDS = [cdx_command, serve_command]
