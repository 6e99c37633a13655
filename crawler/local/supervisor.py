"""``crawl ... --processes N``: run one crawl as N local processes on one shared frontier.

The frontier is the distributed mode's (crawler/distributed/: a Redis priority queue, a
seen-set, leases, crawl-wide ``--max-pages``/``--max-time``) on a private ``redis-server``
this process starts on a Unix socket and stops at the end (crawler/local/private_redis.py).
Its append-only file lives in the collection's state dir, so ``--resume`` works as on one
process. Without ``redis-server`` on PATH the crawl runs in one process, with a warning.

The supervisor itself crawls nothing: it registers (or reopens) the crawl, repairs what
dead processes left, starts the N children (crawler/local/child.py, child 0 seeds), forwards
Ctrl-C/SIGTERM to them, and adds their stats up into one result (one summary, one exit code).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from crawler.errors import CrawlConfigError, ExitCode
from crawler.local.orphans import die_with_parent
from crawler.local.private_redis import PrivateRedis, PrivateRedisError, redis_server_path
from crawler.local.shared_crawl import crawl_state_now, forget_crawl, reopen_crawl
from storage.errors import StorageError

FRONTIER_DIR = "shared-frontier"
# Which close reason wins when the processes ended differently (first = strongest).
REASON_ORDER = ("archive_write_failed", "shutdown", "cancelled", "unknown",
                "closespider_timeout", "closespider_pagecount", "archive_max_bytes", "finished")
MAX_KEYS = ("elapsed_time_seconds",)
CHILD_ROLES = ("seed", "worker")


def marker_path(data_dir: Path, collection: str, spider: str) -> Path:
    """Names the last crawl of ``spider`` that ran on the shared frontier (for --resume)."""
    from crawler.run import state_dir

    return state_dir(data_dir, collection) / f"last-{spider}-crawl.processes"


def resumes_shared_crawl(plan: Any) -> bool:
    """Is ``plan`` a ``--resume`` of a crawl that ran with ``--processes``? (Its frontier is in
    the private Redis, so it resumes there, whatever ``--processes`` says now.)"""
    opts = plan.options
    if not opts.resume or opts.redis:
        return False
    from crawler.run import _last_crawl_file

    marker = marker_path(opts.data_dir, opts.collection, plan.spider)
    last = _last_crawl_file(opts.data_dir, opts.collection, plan.spider)
    try:
        return marker.read_text().strip() == json.loads(last.read_text())["crawl_id"]
    except (OSError, ValueError, KeyError):
        return False


def run_processes(plan: Any) -> Any:
    """Run ``plan`` on ``plan.options.processes`` processes; a ``CrawlResult``."""
    from crawler.run import CrawlResult, run_plan

    opts = plan.options
    if opts.resume and not resumes_shared_crawl(plan):
        from crawler.run import _last_crawl_file

        if _last_crawl_file(opts.data_dir, opts.collection, plan.spider).exists():
            raise CrawlConfigError(f"the last {plan.spider!r} crawl of collection "
                                   f"{opts.collection!r} ran in one process: resume it "
                                   "without --processes")
    executable = redis_server_path()
    if executable is None:
        if opts.resume:
            raise CrawlConfigError("this crawl ran with --processes and its frontier needs "
                                   "redis-server to resume: install redis-server")
        print(f"Warning: --processes {opts.processes} needs redis-server (not found on PATH): "
              "crawling with one process", file=sys.stderr)
        opts.processes = 1
        return run_plan(plan)
    opts.processes = max(1, opts.processes)
    server = _start_server(plan, executable)
    try:
        return _run_on(server, plan, CrawlResult)
    finally:
        server.stop()


def _start_server(plan: Any, executable: str) -> PrivateRedis:
    from crawler.run import check_plan_paths, state_dir

    opts = plan.options
    check_plan_paths(opts)
    server = PrivateRedis(state_dir(opts.data_dir.resolve(), opts.collection) / FRONTIER_DIR,
                          executable)
    try:
        server.start()
    except PrivateRedisError as exc:
        raise CrawlConfigError(f"--processes: {exc}") from None
    return server


def _run_on(server: PrivateRedis, plan: Any, result_cls: Any) -> Any:
    import redis

    from crawler.distributed.registry import register_crawl
    from crawler.run import build_settings, prepare_plan
    from storage.redact import redact_config

    opts = plan.options
    resume = opts.resume
    plan = prepare_plan(plan)  # crawl id (new or resumed); opts.redis is still unset here
    opts.redis = server.url
    build_settings(plan)  # a bad -s is a usage error here, not in N children
    client = redis.Redis.from_url(server.url, socket_timeout=30)
    seed = True
    if resume:
        before = reopen_crawl(client, plan.crawl_id, max_pages=opts.max_pages,
                              max_time=opts.max_time)
        if before == "":
            raise CrawlConfigError(f"nothing to resume: crawl {plan.crawl_id} is not in the "
                                   f"shared frontier under {server.state_dir}")
        seed = before == "seeding"  # seeding was cut short: seed again (seen URLs are skipped)
    else:
        register_crawl(server.url, plan.crawl_id, redact_config(plan.config()),
                       max_pages=opts.max_pages, max_time=opts.max_time)
        marker_path(opts.data_dir, opts.collection, plan.spider).write_text(plan.crawl_id)
    _repair_leftovers(opts.data_dir, opts.collection)
    _prepare_index(opts.data_dir)
    children = Children(plan, server.state_dir, seed)
    children.run()
    _repair_leftovers(opts.data_dir, opts.collection)  # a child killed mid-crawl
    result = children.result(result_cls)
    if crawl_state_now(client, plan.crawl_id) == "finished" and result.exit_code != 3:
        forget_crawl(client, plan.crawl_id)
    client.close()
    _record(plan, result)
    return result


def _repair_leftovers(data_dir: Path, collection: str) -> None:
    from crawler.leftovers import collections_with_leftovers, repair_collection

    if collection in collections_with_leftovers(data_dir):
        for name in repair_collection(data_dir, collection).repaired:
            print(f"Repaired WARC left open by a dead process: {name}", file=sys.stderr)


def _prepare_index(data_dir: Path) -> None:
    """Create/migrate index.db once, before N processes open it at the same moment."""
    from storage.db import open_database

    open_database(data_dir / "index.db").conn.close()


class Children:
    """The N crawl processes: started, signalled together, waited for, their stats read."""

    def __init__(self, plan: Any, work_dir: Path, seed: bool) -> None:
        from crawler.local.child import plan_to_json

        self.plan = plan
        self.n = plan.options.processes
        self.work_dir = work_dir
        self.plan_file = work_dir / f"{plan.crawl_id}.plan.json"
        # The plan holds the -s settings as given (secrets included): readable by us only.
        fd = os.open(self.plan_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(plan_to_json(plan))
        self.seed = seed
        self.procs: list[subprocess.Popen[bytes]] = []
        self.interrupted = False
        self.lost = 0  # processes that died without a result
        self.replacements = 0

    def stats_file(self, i: int) -> Path:
        return self.work_dir / f"{self.plan.crawl_id}.stats-{i}.json"

    def run(self) -> None:
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, self._forward)
        try:
            for i in range(self.n):
                role = CHILD_ROLES[0] if i == 0 and self.seed else CHILD_ROLES[1]
                self.procs.append(self._spawn(i, role))
            self._wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _spawn(self, i: int, role: str) -> subprocess.Popen[bytes]:
        self.stats_file(i).unlink(missing_ok=True)
        return subprocess.Popen(
            [sys.executable, "-m", "crawler.local.child", str(self.plan_file), role,
             str(self.stats_file(i)), str(os.getpid())],
            stdin=subprocess.DEVNULL, preexec_fn=die_with_parent,
            start_new_session=True,  # Ctrl-C reaches them once, through _forward
        )

    def _forward(self, signum: int, _frame: Any) -> None:
        self.interrupted = True
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    proc.send_signal(signum)
                except ProcessLookupError:
                    pass

    def _wait(self) -> None:
        stopped = False
        handled: set[int] = set()
        while [p.poll() for p in self.procs].count(None):
            if not stopped and self._seed_failed():
                stopped = True
                self._stop_crawl()
            for i, proc in enumerate(list(self.procs)):
                if proc.returncode is not None and i not in handled:
                    handled.add(i)
                    if proc.returncode not in (0, 1, 2, 3) and not self.interrupted:
                        self._replace(i, proc)
            time.sleep(0.1)

    def _replace(self, i: int, dead: subprocess.Popen[bytes]) -> None:
        """A process died (kill -9, OOM, crash): its leases go back to the queue now, and a
        new worker takes its place (at most N replacements per run), so no core idles."""
        import redis

        from crawler.local.shared_crawl import requeue_dead_process

        self.lost += 1
        client = redis.Redis.from_url(self.plan.options.redis, socket_timeout=10)
        try:
            back = requeue_dead_process(client, self.plan.crawl_id, dead.pid)
            seeding = crawl_state_now(client, self.plan.crawl_id) == "seeding"
        finally:
            client.close()
        print(f"Crawl process {i + 1} (pid {dead.pid}) died (exit {dead.returncode}): "
              f"{back} requests put back in the queue", file=sys.stderr)
        if self.replacements >= self.n:
            return
        self.replacements += 1
        # The seeder died before it was done: its replacement seeds again (seen URLs skipped).
        role = CHILD_ROLES[0] if i == 0 and self.seed and seeding else CHILD_ROLES[1]
        self.procs.append(self._spawn(len(self.procs), role))

    def _seed_failed(self) -> bool:
        """The seeding process refused its plan (exit 2): the others would wait for seeds
        forever, and a replacement would refuse it too."""
        first = self.procs[0]
        return self.seed and first.returncode == 2

    def _stop_crawl(self) -> None:
        import redis

        from crawler.distributed.registry import request_stop

        client = redis.Redis.from_url(self.plan.options.redis, socket_timeout=10)
        request_stop(client, self.plan.crawl_id)
        client.close()

    def result(self, result_cls: Any) -> Any:
        from crawler.run import exit_code_for

        reasons, parts, lost = [], [], 0
        for i, proc in enumerate(self.procs):
            try:
                data = json.loads(self.stats_file(i).read_text())
            except (OSError, ValueError):
                lost += 1
                if proc.returncode in (0, 1, 2, 3) or self.interrupted:
                    print(f"Crawl process {i + 1} ended without a result "
                          f"(exit {proc.returncode})", file=sys.stderr)
                continue
            reasons.append(str(data.get("reason") or "unknown"))
            parts.append(data.get("stats") or {})
            self.stats_file(i).unlink(missing_ok=True)
        self.plan_file.unlink(missing_ok=True)
        if self.interrupted:
            reasons.append("shutdown")
        reason = min(reasons or ["unknown"],
                     key=lambda r: REASON_ORDER.index(r) if r in REASON_ORDER else 3)
        stats = merge_stats(parts)
        stats["finish_reason"] = reason
        stats["local/processes"] = self.n
        if lost:
            stats["local/processes_lost"] = lost
        code = exit_code_for(reason, stats)
        if lost and code == ExitCode.OK:
            code = ExitCode.FINISHED_WITH_ERRORS
        return result_cls(code, reason, stats)


def merge_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The processes' Scrapy stats as one crawl's: counts add up, times take the longest,
    lists are joined, other values keep the first process's."""
    out: dict[str, Any] = {}
    for stats in parts:
        for key, value in stats.items():
            have = out.get(key)
            if have is None:
                out[key] = list(value) if isinstance(value, list) else value
            elif isinstance(value, bool) or not isinstance(value, int | float | list):
                continue
            elif isinstance(value, list) and isinstance(have, list):
                have.extend(value)
            elif key in MAX_KEYS and isinstance(have, int | float):
                out[key] = max(have, value)
            elif isinstance(have, int | float) and not isinstance(value, list):
                out[key] = have + value
    return out


def _record(plan: Any, result: Any) -> None:
    """The crawl's row in index.db: the whole crawl's exit code and stats (each process
    wrote its own stats there when it closed; the last one would otherwise win)."""
    from storage.db import open_database

    try:
        db = open_database(plan.options.data_dir / "index.db")
        with db.conn:
            db.execute("UPDATE crawls SET exit_code = ?, stats = ? WHERE crawl_id = ?",
                       [int(result.exit_code), json.dumps(result.stats, sort_keys=True,
                                                          default=str), plan.crawl_id])
        db.conn.close()
    except (StorageError, sqlite3.Error):
        pass  # e.g. the disk is still full: each process's row says how it ended
