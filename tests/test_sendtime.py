"""Rate limits are enforced when a request is sent: a surprise 429 window on every platform.

Each emulator serves a burst normally (its usual counting-down rate-limit headers), then answers
429 in its own real shape to everything for a few seconds (``Faults.surprise_429``). The crawl
runs with the default delay and ``--concurrency 16``. The emulator's request log is the
evidence: apart from requests already on the wire when the first 429 came back (the window's
first 0.5 s), nothing arrives inside the window; the crawl then completes with the platform's
ground truth.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import socialark
from tests.emulators._base import Emulator
from tests.emulators.bluesky import BlueskyEmulator
from tests.emulators.discourse import DiscourseEmulator
from tests.emulators.mastodon import MastodonEmulator
from tests.emulators.reddit import RedditEmulator
from tests.emulators.telegram import TelegramEmulator

pytestmark = pytest.mark.serial  # timing windows: run alone (scripts/test.sh)

GRACE = 0.5  # requests already on the wire when the 429 arrived may land this late


@dataclass
class Case:
    """One platform: its emulator, the crawl command for one target, and its ground truth."""

    make: Callable[[], Emulator]
    args: Callable[[Emulator], list[str]]
    truth: Callable[[Emulator], set[str]]
    after: int  # requests served before the window opens (the middle of the burst)
    seconds: float  # how long the window lasts
    limit: int  # the announced budget per 5 minutes (generous: the crawl never spends it)


def _mastodon_args(emu: Emulator) -> list[str]:
    assert isinstance(emu, MastodonEmulator)
    return ["mastodon", "--instance", emu.base_url, "--status", emu.dataset.thread_root_id]


def _mastodon_truth(emu: Emulator) -> set[str]:
    assert isinstance(emu, MastodonEmulator)
    ds = emu.dataset
    return {ds.thread_root_id, *ds.thread_chain_ids, *ds.thread_wide_ids}


def _bluesky_args(emu: Emulator) -> list[str]:
    assert isinstance(emu, BlueskyEmulator)
    return ["bluesky", "--actor", "dave.test", "--appview", emu.appview_url, "--plc", emu.plc_url]


def _bluesky_truth(emu: Emulator) -> set[str]:
    from tests.emulators.bluesky_data import POST

    assert isinstance(emu, BlueskyEmulator)
    dave = emu.dataset.actor("dave.test")
    assert dave is not None
    return {r.uri for r in dave.records if r.collection == POST}


def _reddit_args(emu: Emulator) -> list[str]:
    assert isinstance(emu, RedditEmulator)
    deep = emu.dataset.posts[emu.dataset.deep_post_id]
    return ["reddit", "--post", f"https://old.reddit.com{deep.permalink}", "--base-url",
            emu.base_url]


def _reddit_truth(emu: Emulator) -> set[str]:
    assert isinstance(emu, RedditEmulator)
    ds = emu.dataset
    deep = ds.posts[ds.deep_post_id]
    return {deep.fullname} | {c.fullname for c in ds.comments_of(deep.id)}


def _discourse_args(emu: Emulator) -> list[str]:
    assert isinstance(emu, DiscourseEmulator)
    return ["discourse", "--forum", emu.base_url, "--topic", str(emu.dataset.big_topic_id)]


def _discourse_truth(emu: Emulator) -> set[str]:
    from tests.test_discourse import pid, visible_posts

    assert isinstance(emu, DiscourseEmulator)
    return {pid(emu, p) for p in visible_posts(emu.dataset, [emu.dataset.big_topic_id])}


def _telegram_args(emu: Emulator) -> list[str]:
    assert isinstance(emu, TelegramEmulator)
    return ["telegram", "--channel", "tinychan", "--base-url", emu.base_url]


def _telegram_truth(emu: Emulator) -> set[str]:
    from tests.test_telegram import channel

    assert isinstance(emu, TelegramEmulator)
    return {f"tinychan/{i}" for i in channel(emu.dataset, "tinychan").visible_ids}


CASES = {
    # Mastodon: 429 JSON, X-RateLimit-Remaining 0 and an ISO 8601 reset, no Retry-After.
    "mastodon": Case(lambda: MastodonEmulator(seed=3), _mastodon_args, _mastodon_truth,
                     after=20, seconds=3.0, limit=300),
    # Bluesky: XRPC RateLimitExceeded, RateLimit-* with an epoch reset and a policy.
    "bluesky": Case(lambda: BlueskyEmulator(seed=1), _bluesky_args, _bluesky_truth,
                    after=8, seconds=3.0, limit=3000),
    # Reddit: JSON 429, x-ratelimit-used/remaining (float)/reset (seconds until).
    "reddit": Case(lambda: RedditEmulator(seed=1), _reddit_args, _reddit_truth,
                   after=4, seconds=3.0, limit=1000),
    # Discourse: text/plain 429 with Retry-After and Discourse-Rate-Limit-Error-Code.
    "discourse": Case(lambda: DiscourseEmulator(seed=1), _discourse_args, _discourse_truth,
                      after=10, seconds=3.0, limit=300),
    # Telegram: a bare HTML 429, no headers at all: the crawler can only back off (1 s, the
    # production default, then one probe), so the window is shorter than that first backoff.
    "telegram": Case(lambda: TelegramEmulator(seed=2), _telegram_args, _telegram_truth,
                     after=8, seconds=1.0, limit=300),
}


def posts(data_dir: Path) -> set[str]:
    with sqlite3.connect(data_dir / "index.db") as conn:
        return {r[0] for r in conn.execute("SELECT post_id FROM posts")}


@pytest.mark.parametrize("platform", sorted(CASES))
def test_nothing_is_sent_inside_a_surprise_429_window(platform: str, tmp_path: Path) -> None:
    case = CASES[platform]
    with case.make() as emu:
        emu.faults.surprise_429(after=case.after, seconds=case.seconds, limit=case.limit)
        proc = socialark("crawl", *case.args(emu), "--concurrency", "16",
                         "-s", "ARCHIVE_RATELIMIT_BACKOFF=1.0", data_dir=tmp_path, timeout=240)
        start, end = emu.faults.surprise_start, emu.faults.surprise_end
        assert start is not None and end is not None, "the burst never reached the window"
        times = [r.time for r in emu.requests]
        late = [round(t - start, 3) for t in times if start + GRACE <= t < end]
        assert late == [], f"requests reached the host inside the 429 window: {late}"
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert emu.faults.throttled >= 1
        assert sum(1 for t in times if t >= end) >= 3  # the crawl went on after the window
        assert posts(tmp_path) == case.truth(emu)


def test_a_paused_host_does_not_hold_up_another(tmp_path: Path) -> None:
    """127.0.0.1 answers 429 for 15 s with 30 of its URLs waiting; meanwhile 127.0.0.2 (a whole
    site, more pages than ``--concurrency``) is crawled: the held requests take no concurrency."""
    import time

    from tests.sites.core_site import CoreSite

    with MastodonEmulator(seed=3) as paused, CoreSite(host="127.0.0.2",
                                                       second_host="127.0.0.3") as site:
        ids = sorted(paused.dataset.statuses)[:30]
        urls = [f"{paused.base_url}/api/v1/statuses/{i}" for i in ids]
        paused.faults.surprise_429(after=2, seconds=15.0)
        proc = socialark("crawl", "site", *urls, site.base_url, "--scope", "host",
                         "--concurrency", "4", "--delay", "0", data_dir=tmp_path, timeout=240)
        assert proc.returncode in (0, 1), proc.stderr[-3000:]
        start, end = paused.faults.surprise_start, paused.faults.surprise_end
        assert start is not None and end is not None
        end_wall = time.time() - (time.monotonic() - end)
        late = [t for t, *_ in paused.requests if start + GRACE <= t < end]
        assert late == []
        other = [r.time for r in site.requests if r.host.startswith("127.0.0.2")]
        assert len(other) > 20  # more than the concurrency, so held requests would have blocked
        assert max(other) < end_wall - 1  # all of it while the first host was paused
        api = {p for _, _, p, _ in paused.requests if p.startswith("/api/v1/statuses/")}
        assert api == {f"/api/v1/statuses/{i}" for i in ids}  # nothing lost on the paused host
