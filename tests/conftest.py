"""Shared fixtures: the core test site, running the real CLI, reading WARCs back."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sites.core_site import CoreSite

ROOT = Path(__file__).resolve().parent.parent


# The core site's /error always answers 500; with the production backoff (1 s, doubled) the
# crawl would wait ~15 s for it. Tests of other behaviour use a short backoff instead.
FAST_RETRY = ("-s", "ARCHIVE_RATELIMIT_BACKOFF=0.05")


def socialark(*args: str, data_dir: Path | None = None, timeout: float = 300,
              check: bool = False, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``socialark`` CLI in a subprocess (its own reactor, real signals).

    Crawl commands get ``FAST_RETRY`` unless the test sets ``ARCHIVE_RATELIMIT_BACKOFF`` itself.
    """
    cmd = [sys.executable, "-m", "crawler.cli", *args]
    if args[:1] == ("crawl",) and "--help" not in args and not any(
        "ARCHIVE_RATELIMIT_BACKOFF" in a for a in args
    ):
        cmd += list(FAST_RETRY)
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"socialark {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session")
def core_site() -> Iterator[CoreSite]:
    with CoreSite() as site:
        yield site


@pytest.fixture(scope="session")
def core_crawl(core_site: CoreSite, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One full crawl of the core site (host scope), shared by read-only tests."""
    data_dir = tmp_path_factory.mktemp("core-crawl")
    proc = socialark("crawl", "site", core_site.base_url, "--scope", "host", "--delay", "0",
                     "--warc-size", "1MB", data_dir=data_dir)
    assert proc.returncode in (0, 1), proc.stderr[-4000:]
    return data_dir


# --- no silent skips ------------------------------------------------------------------------
# scripts/test.sh (and so CI) sets SOCIALARK_TESTS_REQUIRE_ALL=1: there a test that would skip
# because a dependency (Chromium, redis-server, pywb, cbor2, wget…) is missing fails instead, so
# a run that tested less than it reports cannot pass. A plain `pytest` run still skips.
REQUIRE_ALL_ENV = "SOCIALARK_TESTS_REQUIRE_ALL"


def _require_all() -> bool:
    return os.environ.get(REQUIRE_ALL_ENV, "") not in ("", "0")


def _skip_reason(report: pytest.BaseReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail_skip(report: pytest.BaseReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail") and _require_all():
        reason = _skip_reason(report)
        report.outcome = "failed"
        report.longrepr = f"skipped under {REQUIRE_ALL_ENV}=1 (a missing dependency?): {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report = yield
    _fail_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> pytest.CollectReport:
    report = yield
    _fail_skip(report)
    return report
