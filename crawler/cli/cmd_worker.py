"""``socialark worker``, ``crawl-status`` and ``crawl-stop``: distributed crawls through Redis."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from crawler.cli.common import check_endpoint_option, check_mirror_option, data_dir_option
from crawler.cli.log_options import current_console, log_options

redis_option = click.option(
    "--redis", "redis_url", metavar="URL", required=True, envvar="SOCIALARK_REDIS",
    help="Redis holding the crawl: redis://HOST:PORT/DB. Env: SOCIALARK_REDIS.",
)
crawl_option = click.option(
    "--crawl", "crawl_id", metavar="ID", default=None,
    help="Crawl id (default: the only running crawl in this Redis).",
)


def registry_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Registry problems (no crawl, Redis down) are user-fixable: message and exit 2."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from crawler.distributed.keys import CrawlIdError
        from crawler.distributed.registry import RegistryError
        from crawler.errors import CrawlConfigError

        try:
            return func(*args, **kwargs)
        except (RegistryError, CrawlIdError, CrawlConfigError) as exc:
            raise click.ClickException(str(exc)) from None  # one line, exit 2

    return wrapper


@click.command("worker")
@redis_option
@crawl_option
@data_dir_option
@click.option("--mirror", metavar="s3://BUCKET/PREFIX", default=None, callback=check_mirror_option,
              help="Upload and verify each WARC as it closes (default: the crawl's --mirror).")
@click.option("--endpoint-url", metavar="URL", callback=check_endpoint_option, default=None,
              help="S3 endpoint for --mirror (MinIO, R2, B2, ...). Env: AWS_ENDPOINT_URL.")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Concurrent requests of this worker (default: the crawl's).")
@log_options
@registry_errors
def worker_cmd(redis_url: str, crawl_id: str | None, data_dir: Path, mirror: str | None,
               endpoint_url: str | None, concurrency: int | None) -> None:
    """Join a running distributed crawl and work its shared queue until it ends.

    The spider, targets, scope and options come from Redis (stored by `socialark crawl ...
    --redis URL`). This worker writes its own WARCs (host and pid in their names) and local
    index under --data-dir, and mirrors them to the bucket. Start and stop workers at any
    time: a worker that dies has its in-flight requests put back in the queue once its
    heartbeat expires. Exits 0 when the crawl is finished, 3 after `socialark crawl-stop`.

    \b
    Example:
        socialark worker --redis redis://10.0.0.5:6379/0 --data-dir /srv/archive \\
            --mirror s3://archive-bucket/crawls
        socialark worker --redis redis://10.0.0.5:6379/0 --crawl site-20260101120000-ab12cd
    """
    from crawler.cli.summary import print_summary
    from crawler.distributed.worker import WorkerOptions, plan_for_worker, run_worker

    plan = plan_for_worker(WorkerOptions(redis_url, crawl_id, data_dir, mirror, endpoint_url,
                                         concurrency))
    console = current_console()
    result = run_worker(plan, console)  # its first line: "Worker joining crawl ID (spider)"
    print_summary(result, plan.options, console)
    sys.exit(int(result.exit_code))


@click.command("crawl-status")
@redis_option
@crawl_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@registry_errors
def crawl_status_cmd(redis_url: str, crawl_id: str | None, as_json: bool) -> None:
    """Show a distributed crawl: queue, in flight, pages done, live workers and their rates.

    Without --crawl, shows the only running crawl (or, when none runs, every crawl known).

    \b
    Example:
        socialark crawl-status --redis redis://10.0.0.5:6379/0
        watch -n 5 socialark crawl-status --redis redis://10.0.0.5:6379/0
        socialark crawl-status --redis redis://10.0.0.5:6379/0 --crawl ID --json
    """
    from crawler.distributed.registry import (
        RegistryError,
        all_crawls,
        connect,
        pick_crawl,
    )
    from crawler.distributed.status import crawl_status, format_status

    client = connect(redis_url)
    try:
        records = [pick_crawl(client, crawl_id)]
    except RegistryError:
        if crawl_id:
            raise
        records = all_crawls(client)
        if not records:
            raise
    statuses = [crawl_status(client, r) for r in records]
    if as_json:
        payload: Any = [s.to_dict() for s in statuses]
        click.echo(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2))
        return
    click.echo("\n".join(format_status(s) for s in statuses))


@click.command("crawl-stop")
@redis_option
@crawl_option
@registry_errors
def crawl_stop_cmd(redis_url: str, crawl_id: str | None) -> None:
    """Stop a distributed crawl gracefully on every machine.

    Each worker finishes the requests it has in flight, closes (and mirrors) its WARCs and
    exits with code 3. What is still queued stays in Redis, visible to crawl-status.

    \b
    Example:
        socialark crawl-stop --redis redis://10.0.0.5:6379/0
        socialark crawl-stop --redis redis://10.0.0.5:6379/0 --crawl site-20260101120000-ab12cd
    """
    from crawler.distributed.registry import connect, pick_crawl, request_stop

    client = connect(redis_url)
    record = pick_crawl(client, crawl_id)
    if request_stop(client, record.crawl_id):
        click.echo(f"Stopping crawl {record.crawl_id}: workers finish their in-flight "
                   "requests and exit")
    else:
        click.echo(f"Crawl {record.crawl_id} is already {record.state}")


COMMANDS = [worker_cmd, crawl_status_cmd, crawl_stop_cmd]
