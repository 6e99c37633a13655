"""One crawl process of ``crawl --processes N`` (started by crawler/local/supervisor.py).

``python -m crawler.local.child PLAN.json ROLE STATS.json PARENT_PID``: runs the plan's spider
on the private Redis frontier as the seeding process (``seed``: runs the spider's start
requests) or a plain worker (``worker``), writes its stats and close reason to STATS.json for
the supervisor's one summary, and exits with the crawl exit code. It prints no summary.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from crawler.local.orphans import die_with_parent, parent_alive

LOCAL_POLL_INTERVAL = 0.1  # seconds (distributed workers default to 1 s)


def plan_to_json(plan: Any) -> str:
    from dataclasses import asdict

    options = asdict(plan.options)
    options["data_dir"] = str(plan.options.data_dir)
    return json.dumps({"spider": plan.spider, "args": plan.spider_kwargs, "options": options,
                       "crawl_id": plan.crawl_id, "started": plan.started}, default=str)


def plan_from_json(text: str) -> Any:
    from crawler.run import CrawlOptions, CrawlPlan

    raw = json.loads(text)
    options = dict(raw["options"])
    options["data_dir"] = Path(options["data_dir"])
    return CrawlPlan(raw["spider"], raw["args"], CrawlOptions(**options),
                     crawl_id=raw["crawl_id"], started=raw["started"])


def child_settings(plan: Any, role: str) -> Any:
    """The plan's settings on the shared frontier, with per-host politeness kept crawl-wide:
    N processes each wait N x the delay between requests to one host."""
    from crawler.run import build_settings

    settings = build_settings(plan)
    settings.set("ARCHIVE_REDIS_ROLE", role, priority="cmdline")
    # The private Redis is a Unix socket away: an idle process asks for work (and whether the
    # crawl is over) every 0.1 s instead of every second, so the second process starts as soon
    # as the first links are queued and all stop as soon as the last page is done.
    settings.set("ARCHIVE_REDIS_POLL_INTERVAL", LOCAL_POLL_INTERVAL, priority="project")
    processes = max(1, plan.options.processes)
    delay = settings.getfloat("DOWNLOAD_DELAY")
    if processes > 1 and delay > 0:
        settings.set("DOWNLOAD_DELAY", delay * processes, priority="cmdline")
    max_bytes = plan.options.max_bytes
    if max_bytes and processes > 1:  # --max-bytes is split between the processes
        settings.set("ARCHIVE_MAX_BYTES", max(1, max_bytes // processes), priority="cmdline")
    return settings


def main(argv: list[str]) -> int:
    plan_file, role, stats_file, parent = argv[0], argv[1], argv[2], int(argv[3])
    die_with_parent()
    if not parent_alive(parent):
        return 3  # the supervisor died before we were ready: nothing to do
    from crawler.logsetup import ConsoleOptions, apply_log_settings, log_file_path
    from crawler.run import exit_code_for, run_spider, state_dir, use_bundled_public_suffix_list

    plan = plan_from_json(Path(plan_file).read_text())
    use_bundled_public_suffix_list()
    settings = child_settings(plan, role)
    # Each process keeps its own log file beside the crawl's (crawler/logsetup.py).
    logs_under = state_dir(plan.options.data_dir, plan.options.collection)
    console = ConsoleOptions()
    apply_log_settings(settings, console, log_file_path(logs_under, plan.crawl_id, "worker"))
    stats = run_spider(plan, settings, console, "worker")
    reason = str(stats.get("finish_reason", "unknown"))
    code = int(exit_code_for(reason, stats))
    tmp = Path(stats_file + ".tmp")
    tmp.write_text(json.dumps({"reason": reason, "code": code, "stats": stats}, default=str))
    os.replace(tmp, stats_file)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
