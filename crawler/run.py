"""Running a crawl: settings from CLI options, resume state, the Scrapy process, the summary.

Everything a ``socialark crawl <platform>`` command shares lives here, so each platform command
only declares its own options and spider arguments.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from crawler.errors import CrawlConfigError, ExitCode
from crawler.logsetup import ConsoleOptions, apply_log_settings, log_file_path
from storage.db import open_database
from storage.errors import StorageError
from storage.names import CollectionNameError, check_collection
from storage.redact import redact_config, words_from


@dataclass
class CrawlOptions:
    """Options common to every crawl command (DESIGN.md "common crawl options")."""

    collection: str = "default"
    data_dir: Path = Path("./archive")
    browser: bool = False
    max_pages: int = 0
    max_bytes: int = 0
    max_time: float = 0.0
    concurrency: int = 16
    delay: float | None = None
    ignore_robots: bool = False
    warc_size: int = 1_000_000_000
    max_record_size: int = 20_000_000_000
    mirror: str | None = None
    endpoint_url: str | None = None
    redis: str | None = None
    processes: int = 1  # --processes N: local processes on one shared frontier (crawler/local/)
    resume: bool = False
    cookies: str | None = None  # --cookies FILE: only the path is kept (crawls.config)
    profile: str | None = None  # --profile NAME: only the name is kept
    settings: list[str] = field(default_factory=list)


@dataclass
class CrawlPlan:
    spider: str
    spider_kwargs: dict[str, Any]
    options: CrawlOptions
    crawl_id: str = ""
    started: str = ""  # 14-digit UTC start of the crawl (kept across --resume)

    def config(self) -> dict[str, Any]:
        opts = asdict(self.options)
        opts["data_dir"] = str(self.options.data_dir)
        return {"spider": self.spider, "args": self.spider_kwargs, "options": opts}


WRITE_FAILED = "archive_write_failed"  # crawler.write_failure.REASON (kept Scrapy-free here)


def new_crawl_id(spider: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return f"{spider}-{stamp}-{uuid.uuid4().hex[:6]}"


def state_dir(data_dir: Path, collection: str) -> Path:
    return data_dir / "state" / collection


def check_data_dir(data_dir: Path) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CrawlConfigError(f"data dir {data_dir} is not writable: {exc.strerror or exc}") from exc


def _last_crawl_file(data_dir: Path, collection: str, spider: str) -> Path:
    return state_dir(data_dir, collection) / f"last-{spider}-crawl.json"


def check_plan_paths(opts: CrawlOptions) -> None:
    """The collection name rule and a usable data dir, before anything is written."""
    try:
        check_collection(opts.collection)
    except CollectionNameError as exc:
        raise CrawlConfigError(str(exc)) from None
    check_data_dir(opts.data_dir)


def prepare_plan(plan: CrawlPlan) -> CrawlPlan:
    """Assign a crawl id, or reload the interrupted crawl for ``--resume``."""
    opts = plan.options
    check_plan_paths(opts)
    last = _last_crawl_file(opts.data_dir, opts.collection, plan.spider)
    if opts.resume:
        if not last.exists():
            raise CrawlConfigError(
                f"nothing to resume: no earlier {plan.spider!r} crawl in collection "
                f"{opts.collection!r} under {opts.data_dir}"
            )
        saved = json.loads(last.read_text())
        plan.crawl_id = saved["crawl_id"]
        plan.started = saved.get("started") or plan.started
        if not any(plan.spider_kwargs.get(k) for k in plan.spider_kwargs):
            plan.spider_kwargs = saved["args"]
        else:
            plan.spider_kwargs = {**saved["args"], **{k: v for k, v in plan.spider_kwargs.items() if v}}
    else:
        plan.crawl_id = new_crawl_id(plan.spider)
        plan.started = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    if opts.redis:
        from crawler.distributed import register_plan

        register_plan(plan)
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_text(json.dumps({"crawl_id": plan.crawl_id, "args": plan.spider_kwargs,
                                "started": plan.started}, default=str))
    return plan


def build_settings(plan: CrawlPlan) -> Any:
    from scrapy.settings import Settings
    from scrapy.utils.project import get_project_settings

    opts = plan.options
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    settings: Settings = get_project_settings()
    data_dir = opts.data_dir.resolve()
    values: dict[str, Any] = {
        "ARCHIVE_DATA_DIR": str(data_dir),
        "ARCHIVE_COLLECTION": opts.collection,
        "ARCHIVE_CRAWL_ID": plan.crawl_id,
        "ARCHIVE_CRAWL_STARTED": plan.started,
        "ARCHIVE_STATE_DIR": str(state_dir(data_dir, opts.collection)),
        "ARCHIVE_INDEX_PATH": str(data_dir / "index.db"),
        "ARCHIVE_CRAWL_CONFIG": json.dumps(plan.config(), sort_keys=True, default=str),
        "ARCHIVE_WARC_MAX_SIZE": opts.warc_size,
        "ARCHIVE_MAX_RECORD_SIZE": opts.max_record_size,
        "ARCHIVE_MAX_BYTES": opts.max_bytes,
        "CLOSESPIDER_PAGECOUNT": opts.max_pages,
        "CLOSESPIDER_TIMEOUT": opts.max_time,
        "CONCURRENT_REQUESTS": opts.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": opts.concurrency,
        "ROBOTSTXT_OBEY": not opts.ignore_robots,
        "ARCHIVE_BROWSER_ENABLED": opts.browser,
    }
    if opts.delay is not None:
        values["DOWNLOAD_DELAY"] = opts.delay
    if opts.cookies:
        values["ARCHIVE_COOKIES_FILE"] = opts.cookies
    if opts.profile:
        from crawler.profiles import profile_path

        values["ARCHIVE_BROWSER_PROFILE"] = str(profile_path(data_dir, opts.profile))
    if opts.mirror:
        values["ARCHIVE_MIRROR_URL"] = opts.mirror
    if opts.endpoint_url:
        values["ARCHIVE_MIRROR_ENDPOINT_URL"] = opts.endpoint_url
    settings.setdict(values, priority="cmdline")
    if opts.redis:
        from crawler.distributed import apply_plan_settings

        apply_plan_settings(settings, plan)
    for item in opts.settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CrawlConfigError(f"-s expects KEY=VALUE, got {item!r}")
        settings.set(key.strip(), value, priority="cmdline")
    try:  # -s ARCHIVE_COLLECTION=... too
        check_collection(settings.get("ARCHIVE_COLLECTION"))
    except CollectionNameError as exc:
        raise CrawlConfigError(str(exc)) from None
    # Written to warcinfo, the crawls table and logs: secrets out (storage/redact.py).
    words = words_from(settings.get("ARCHIVE_REDACT_NAMES"))
    settings.set("ARCHIVE_CRAWL_CONFIG", json.dumps(redact_config(plan.config(), words),
                                                    sort_keys=True, default=str), priority="cmdline")
    return settings


@dataclass
class CrawlResult:
    exit_code: ExitCode
    reason: str
    stats: dict[str, Any]
    log_file: Path | None = None  # everything the crawl logged (crawler/logsetup.py)


def use_bundled_public_suffix_list() -> None:
    """Keep Scrapy's cookie middleware from downloading the public suffix list.

    tldextract fetches the list from the internet on first use; a crawler should talk to the
    sites it archives and nothing else, so we use the snapshot tldextract ships.
    """
    from scrapy.downloadermiddlewares import cookies
    from tldextract import TLDExtract

    cookies._split_domain = TLDExtract(suffix_list_urls=(), include_psl_private_domains=True)


def run_spider(plan: CrawlPlan, settings: Any, console: ConsoleOptions | None = None,
               role: str = "crawl") -> dict[str, Any]:
    """Run ``plan``'s spider in this process until it ends or is stopped; its stats.

    The spider class is found by name by Scrapy's spider loader (``SPIDER_MODULES``). The
    crawler is an ``ArchiveCrawler``: Ctrl-C / SIGTERM stop it within
    ``ARCHIVE_STOP_TIMEOUT`` (crawler/extensions/stop.py). Scrapy logs to ``LOG_FILE``; the
    terminal gets what ``console`` asks for (crawler/logsetup.py).
    """
    from scrapy.crawler import AsyncCrawlerProcess

    from crawler.extensions.stop import ArchiveCrawler
    from crawler.logredact import install_log_redaction
    from crawler.logsetup import install_console
    from crawler.stop import LateSignalGuard, quiet_stop_tracebacks

    words = words_from(settings.get("ARCHIVE_REDACT_NAMES"))
    install_log_redaction(words)
    install_console(console or ConsoleOptions(), settings, words)
    process = AsyncCrawlerProcess(settings)
    log_start(plan, role, settings)
    spidercls = process.spider_loader.load(plan.spider)
    crawler = ArchiveCrawler(spidercls, process.settings)
    process.crawl(crawler, **plan.spider_kwargs)
    quiet_stop_tracebacks()
    late_signals = LateSignalGuard()
    late_signals.install()
    process.start()
    late_signals.crawl_returned()
    return dict(crawler.stats.get_stats()) if crawler.stats else {}


def log_start(plan: CrawlPlan, role: str, settings: Any) -> None:
    """The first line of a crawl: what it starts, into which collection, where (and the log)."""
    import logging

    opts = plan.options
    resumed = opts.resume and role == "crawl"
    verb = {"crawl": "Resuming crawl" if resumed else "Starting crawl",
            "worker": "Worker joining crawl"}.get(role, "Starting crawl")
    targets = describe_targets(plan.spider_kwargs)
    fields = {"crawl_id": plan.crawl_id, "spider": plan.spider, "role": role,
              "resumed": resumed, "collection": settings.get("ARCHIVE_COLLECTION"),
              "targets": plan.spider_kwargs, "data_dir": settings.get("ARCHIVE_DATA_DIR"),
              "log_file": settings.get("LOG_FILE")}
    logging.getLogger("socialark").info(
        "%s %s (%s) into collection %s; %s; data dir %s", verb, plan.crawl_id, plan.spider,
        fields["collection"], targets or "no targets given", fields["data_dir"],
        extra={"event": "start", "fields": fields})


def describe_targets(spider_kwargs: dict[str, Any], shown: int = 3) -> str:
    """``seeds: http://a/ http://b/ (+3 more), scope: host`` from a spider's arguments."""
    from storage.redact import REDACTED, is_secret_name

    parts = []
    for key, value in spider_kwargs.items():
        if value in (None, "", [], (), {}, False, 0):
            continue
        if is_secret_name(key):
            value = REDACTED
        if isinstance(value, list | tuple):
            more = f" (+{len(value) - shown} more)" if len(value) > shown else ""
            value = " ".join(str(v) for v in value[:shown]) + more
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return ", ".join(parts)


def run_plan(plan: CrawlPlan, *, role: Literal["crawl", "worker"] = "crawl",
             console: ConsoleOptions | None = None) -> CrawlResult:
    """The one crawl runner, for ``crawl`` (``role="crawl"``: a new or resumed crawl, seeding
    the shared queue with ``--redis``) and ``worker`` (``role="worker"``: joins a crawl already
    registered in Redis, seeds nothing). Runs the spider to its end (or to Ctrl-C/SIGTERM) in
    this process and turns how it ended into the exit code."""
    if role == "crawl" and ((plan.options.processes > 1 and not plan.options.redis)
                            or _resumes_shared_crawl(plan)):
        from crawler.local.supervisor import run_processes

        return run_processes(plan)
    use_bundled_public_suffix_list()
    if role == "crawl":
        plan = prepare_plan(plan)
    settings = build_settings(plan)  # Redis settings included for both roles
    if role == "worker":
        settings.set("ARCHIVE_REDIS_ROLE", "worker", priority="cmdline")
    console = console or ConsoleOptions()
    # Not ARCHIVE_STATE_DIR: a --redis crawl blanks it (no local frontier) but keeps a local log.
    logs_under = state_dir(Path(settings.get("ARCHIVE_DATA_DIR")), settings.get("ARCHIVE_COLLECTION"))
    default_log = log_file_path(logs_under, plan.crawl_id, role)
    log_file = apply_log_settings(settings, console, default_log)
    # SIGTERM: a prompt stop, exit 3 (leases requeued)
    stats = run_spider(plan, settings, console, role)
    reason = str(stats.get("finish_reason", "unknown"))
    code = exit_code_for(reason, stats)
    if role == "crawl":
        _record_exit(plan, code)
    return CrawlResult(code, reason, stats, log_file)


def _resumes_shared_crawl(plan: CrawlPlan) -> bool:
    from crawler.local.supervisor import resumes_shared_crawl

    return resumes_shared_crawl(plan)


def run_crawl(plan: CrawlPlan, console: ConsoleOptions | None = None) -> CrawlResult:
    """Run a ``crawl`` command's plan (see ``run_plan``)."""
    return run_plan(plan, role="crawl", console=console)


def exit_code_for(reason: str, stats: dict[str, Any]) -> ExitCode:
    """The exit code of a crawl process (``crawl`` and ``worker`` alike) from how it ended."""
    if reason == WRITE_FAILED:
        return ExitCode.FINISHED_WITH_ERRORS  # resumable once space is freed
    if reason in ("shutdown", "cancelled", "unknown"):
        return ExitCode.INTERRUPTED
    if _error_count(stats):
        return ExitCode.FINISHED_WITH_ERRORS
    return ExitCode.OK


def _error_count(stats: dict[str, Any]) -> int:
    failed = sum(
        v for k, v in stats.items()
        if k.startswith("archive/failed/") and not k.endswith("IgnoreRequest")
    )
    # Targets the capture-quality gate left blocked (login walls, challenges...): not captured.
    failed += sum(v for k, v in stats.items() if k.startswith("quality/blocked/"))
    return int(failed + stats.get("log_count/ERROR", 0))


def _record_exit(plan: CrawlPlan, code: ExitCode) -> None:
    try:
        db = open_database(plan.options.data_dir / "index.db")
        with db.conn:
            db.execute("UPDATE crawls SET exit_code = ? WHERE crawl_id = ?", [int(code), plan.crawl_id])
        db.conn.close()
    except (StorageError, sqlite3.Error):
        pass  # e.g. the disk is still full: the crawl's own record says how it ended
