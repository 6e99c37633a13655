"""Distributed crawls: many worker processes on many machines share one frontier in Redis.

scrapy-redis provides the shared priority queue and seen-URL set; this package adds leases
(nothing lost when a worker dies), a crawl registry (workers learn the spider, targets and
options from Redis), crawl-wide limits, ``crawl-status``/``crawl-stop`` and finishing.
See docs/scaling.md.
"""

from __future__ import annotations

from typing import Any


def register_plan(plan: Any) -> None:
    """Store a new crawl in Redis (``crawl ... --redis``) before its process starts."""
    from crawler.distributed.registry import RegistryError, register_crawl
    from crawler.distributed.trust import UntrustedPlanError, check_settings
    from crawler.errors import CrawlConfigError
    from storage.redact import SECRET_WORDS, is_secret_name, redact_config

    opts = plan.options
    try:
        # Secret-named settings never reach Redis (redacted), so they need no whitelist.
        check_settings([s for s in opts.settings
                        if not is_secret_name(s.partition("=")[0], SECRET_WORDS)
                        and not s.startswith("ARCHIVE_REDACT_NAMES=")])
    except UntrustedPlanError as exc:
        raise CrawlConfigError(f"{exc}; pass it to each worker's machine instead") from None
    try:
        # Secrets never go to Redis: workers drop the redacted settings (docs/security.md).
        register_crawl(opts.redis, plan.crawl_id, redact_config(plan.config()),
                       max_pages=opts.max_pages, max_time=opts.max_time)
    except RegistryError as exc:
        raise CrawlConfigError(str(exc)) from exc


def apply_plan_settings(settings: Any, plan: Any, role: str = "seed") -> None:
    """Make ``settings`` (from ``crawler.run.build_settings``) use the crawl's Redis frontier."""
    from crawler.distributed.settings import apply_redis_settings

    apply_redis_settings(settings, plan.options.redis, plan.crawl_id, role)
