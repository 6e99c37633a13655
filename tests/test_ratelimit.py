"""The rate-limit middleware: a host is paused through its limited window, nothing is lost.

Real crawls of the Mastodon emulator with scripted rate limits and errors; the emulator's own
request log is the evidence.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from crawler.middlewares.ratelimit import parse_int, parse_reset, read_rate_info
from tests.emulators.mastodon import MastodonEmulator
from tests.test_mastodon import Crawl, crawl

pytestmark = pytest.mark.serial  # timing windows: run alone (scripts/test.sh)


def windows(times: list[float], window: float) -> list[list[float]]:
    """Replay the emulator's fixed-window counter over request arrival times."""
    out: list[list[float]] = []
    for t in sorted(times):
        if not out or t >= out[-1][0] + window:
            out.append([t])
        else:
            out[-1].append(t)
    return out


def thread_ids(emu: MastodonEmulator) -> set[str]:
    ds = emu.dataset
    return {ds.thread_root_id, *ds.thread_chain_ids, *ds.thread_wide_ids}


def test_no_request_reaches_the_server_inside_a_limited_window(tmp_path: Path) -> None:
    limit, window = 25, 1.0
    with MastodonEmulator(seed=3) as emu:
        emu.faults.rate_limit(after=limit, window=window)
        result = crawl(emu, tmp_path, "--status", emu.dataset.thread_root_id)
        assert result.returncode == 0, result.stderr[-3000:]
        assert emu.faults.throttled == 0  # the server never had to refuse a request
        spans = windows([t for t, *_ in emu.requests], window)
        assert len(spans) >= 4  # the limit really bound the crawl
        assert all(len(s) <= limit for s in spans)
        assert set(result.posts()) == thread_ids(emu)


def test_429_and_5xx_are_retried_past_retry_times(tmp_path: Path) -> None:
    with MastodonEmulator(seed=3) as emu:
        ds = emu.dataset
        root = ds.thread_root_id
        # 429 without Retry-After or rate-limit headers, and 503s: more than RETRY_TIMES (2)
        emu.faults.server_error(rf"/api/v1/statuses/{root}/context", times=4, status=429)
        emu.faults.server_error(rf"/api/v1/statuses/{ds.thread_chain_ids[14]}/context", times=5, status=503)
        result = crawl(emu, tmp_path, "--status", root, "-s", "ARCHIVE_RATELIMIT_BACKOFF=0.05")
        assert result.returncode == 0, result.stderr[-3000:]
        assert set(result.posts()) == thread_ids(emu)
        statuses = result.captured(f"{emu.base_url}/api/v1/statuses/{root}/context")
        assert sorted(statuses) == [200, 429, 429, 429, 429]  # every answer archived


def test_persistent_errors_are_reported_as_failed(tmp_path: Path) -> None:
    with MastodonEmulator(seed=3) as emu:
        ds = emu.dataset
        page = f"/@alice/{ds.thread_root_id}"
        emu.faults.server_error(rf"^{page}$", times=None, status=500)
        result: Crawl = crawl(emu, tmp_path, "--status", ds.thread_root_id,
                              "-s", "ARCHIVE_RATELIMIT_BACKOFF=0.01", "-s", "RETRY_TIMES=0")
        assert result.returncode == 1  # finished, with errors
        assert "http_500: 1" in result.stderr
        # a 5xx that announces no wait: ARCHIVE_RATELIMIT_SERVER_ERROR_ATTEMPTS (8) tries
        assert len([p for _, _, p, _ in emu.requests if p == page]) == 8
        assert set(result.posts()) == thread_ids(emu)  # everything else still archived


def test_reset_header_forms() -> None:
    now = time.time()
    iso = datetime.fromtimestamp(now + 30, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert abs(parse_reset(iso, now) - 30) < 0.01  # Mastodon: ISO 8601
    assert parse_reset(str(int(now) + 30), int(now)) == 30  # Bluesky: epoch seconds
    assert parse_reset("30", now) == 30  # Reddit reset / Retry-After: seconds
    http_date = format_datetime(datetime.fromtimestamp(int(now), UTC) + timedelta(seconds=30), usegmt=True)
    assert abs(parse_reset(http_date, int(now)) - 30) < 1  # Retry-After: HTTP date
    assert parse_reset("soon", now) is None
    assert (parse_int("598.0"), parse_int("3000;w=300"), parse_int("x")) == (598, 3000, None)
    info = read_rate_info({"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(now) + 5),
                           "RateLimit-Limit": "3000;w=300"}, now=int(now))
    assert (info.remaining, info.limit, info.reset_in, info.retry_after) == (0, 3000, 5, None)


def test_only_the_limited_host_is_paused(tmp_path: Path) -> None:
    """Two hosts (127.0.0.1 and localhost): while the first waits out its window, the second
    is crawled."""
    from tests.conftest import socialark
    from tests.test_mastodon import ratelimit_args

    with MastodonEmulator(seed=3) as limited, MastodonEmulator(seed=4) as free:
        limited.faults.rate_limit(after=1, window=3.0)
        free_url = free.base_url.replace("127.0.0.1", "localhost")
        proc = socialark("crawl", "site", f"{limited.base_url}/@alice", f"{free_url}/@alice",
                         "--scope", "page", "--delay", "0", *ratelimit_args(), data_dir=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert limited.faults.throttled == 0
        first, second = (t for t, *_ in limited.requests)  # robots.txt, then the page
        free_times = [t for t, *_ in free.requests]
        assert [p for _, _, p, _ in free.requests] == ["/robots.txt", "/@alice"]
        assert second - first >= 2.0  # the limited host waited for its window to end...
        assert max(free_times) < second  # ...while the other host was crawled
