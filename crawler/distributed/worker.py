"""``socialark worker``: join a crawl registered in Redis and work its queue until it ends."""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from crawler.distributed.registry import RegistryError, connect, pick_crawl
from crawler.distributed.trust import UntrustedPlanError, check_options, check_spider
from storage.redact import REDACTED

# Options that belong to the machine running the worker, not to the crawl.
LOCAL_OPTIONS = ("data_dir", "mirror", "endpoint_url", "redis", "resume", "concurrency")


@dataclass
class WorkerOptions:
    redis: str
    crawl_id: str | None
    data_dir: Path
    mirror: str | None = None
    endpoint_url: str | None = None
    concurrency: int | None = None


def plan_for_worker(wopts: WorkerOptions) -> Any:
    """The crawl's plan as seeded, with this machine's data dir, mirror and concurrency."""
    from crawler.run import CrawlOptions, CrawlPlan, check_data_dir

    client = connect(wopts.redis)
    record = pick_crawl(client, wopts.crawl_id)
    if record.state not in ("seeding", "running"):
        raise RegistryError(f"crawl {record.crawl_id!r} is {record.state} ({record.reason}): "
                            "nothing to join")
    config = record.config
    try:  # everything in Redis is data written by whoever can reach it: check before use
        spider, args = check_spider(config.get("spider"), config.get("args") or {})
        seeded = check_options(dict(config.get("options") or {}))
    except UntrustedPlanError as exc:
        raise RegistryError(f"crawl {record.crawl_id!r} in Redis is refused: {exc}") from None
    known = {f.name for f in fields(CrawlOptions)}
    values = {k: v for k, v in seeded.items() if k in known and k not in LOCAL_OPTIONS}
    values["settings"] = [s for s in seeded["settings"] if REDACTED not in s]  # secrets stay local
    dropped = [s.partition("=")[0] for s in seeded["settings"] if REDACTED in s]
    if dropped:
        print(f"Not applied (redacted in Redis, secrets stay on the seeding machine): "
              f"{', '.join(dropped)}", file=sys.stderr)
    values["redis"] = wopts.redis
    values["data_dir"] = wopts.data_dir
    values["mirror"] = wopts.mirror or seeded.get("mirror")
    values["endpoint_url"] = wopts.endpoint_url or seeded.get("endpoint_url")
    values["concurrency"] = wopts.concurrency or seeded.get("concurrency") or 16
    check_data_dir(wopts.data_dir)
    return CrawlPlan(spider, dict(args), CrawlOptions(**values),
                     crawl_id=record.crawl_id)


def run_worker(plan: Any, console: Any = None) -> Any:
    """Run the spider of ``plan`` as a worker (no seeding) in this process."""
    from crawler.run import run_plan

    return run_plan(plan, role="worker", console=console)
