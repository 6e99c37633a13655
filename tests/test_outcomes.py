"""One outcome logic for every platform (issue 11, point 8; spiders/_outcomes.py).

Against each platform emulator, one target the server keeps answering 503 (retries exhausted)
and one deleted target: the first must count as ``failed`` (exit 1, "not captured"), never as
``missing``; the second as ``missing`` ("gone from the platform"), with the same stats keys and
the same summary lines on every platform.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spiders._outcomes import Outcome, classify
from tests.conftest import socialark
from tests.emulators.discourse import DiscourseEmulator
from tests.emulators.mastodon import MastodonEmulator
from tests.emulators.reddit import RedditEmulator

FAST_GIVE_UP = ("-s", "ARCHIVE_RATELIMIT_SERVER_ERROR_ATTEMPTS=2", "-s",
                "ARCHIVE_RATELIMIT_BACKOFF=0.05", "--delay", "0")


def _mastodon(emu: Any) -> tuple[str, list[str]]:
    deleted = f"{emu.base_url}/@alice/{emu.dataset.deleted_ids[0]}"
    emu.faults.server_error(r"/api/v1/accounts/lookup\?acct=alice", times=None, status=503)
    return "mastodon", ["--instance", emu.base_url, "--account", "alice", "--status", deleted]


def _reddit(emu: Any) -> tuple[str, list[str]]:
    post = next(p for p in emu.dataset.posts.values() if p.subreddit == "harbourtown")
    emu.faults.server_error(rf"/comments/{post.id}", times=None, status=503)
    return "reddit", ["--base-url", emu.base_url, "--post", post.id, "--post", "zzzzzz1"]


def _discourse(emu: Any) -> tuple[str, list[str]]:
    ds = emu.dataset
    public = next(t for t in ds.topics if ds.public(t))
    emu.faults.server_error(rf"/t/{public}\b", times=None, status=503)
    return "discourse", ["--forum", emu.base_url, "--topic", str(public),
                         "--topic", str(max(ds.topics) + 1)]


PLATFORMS: dict[str, tuple[Callable[[], Any], Callable[[Any], tuple[str, list[str]]]]] = {
    "mastodon": (lambda: MastodonEmulator(flavor="mastodon", seed=1), _mastodon),
    "reddit": (lambda: RedditEmulator(seed=1), _reddit),
    "discourse": (lambda: DiscourseEmulator(seed=1), _discourse),
}


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_5xx_exhausted_is_failed_and_deleted_is_missing(platform: str, tmp_path: Path) -> None:
    make, arm = PLATFORMS[platform]
    with make() as emu:
        name, args = arm(emu)
        proc = socialark("crawl", name, *args, *FAST_GIVE_UP, data_dir=tmp_path, timeout=180)
    assert proc.returncode == 1, proc.stderr[-3000:]  # failures are errors; missing is not
    with sqlite3.connect(tmp_path / "index.db") as conn:
        stats = json.loads(conn.execute("SELECT stats FROM crawls").fetchone()[0])
    assert stats.get("archive/failed/http_503", 0) >= 1, stats
    assert not [k for k in stats if k.startswith("archive/missing/") and "503" in k], stats
    missing = {k: v for k, v in stats.items() if k.startswith("archive/missing/")}
    assert missing, stats
    assert "  not captured: " in proc.stderr
    assert "  gone from the platform (archived as evidence): " in proc.stderr
    assert "(missing)" in proc.stderr and "(failed)" in proc.stderr


def test_classification_table() -> None:
    assert classify(200) is Outcome.OK
    assert classify(404) is Outcome.MISSING and classify(410) is Outcome.MISSING
    for status in (401, 403, 451):
        assert classify(status) is Outcome.BLOCKED
    for reason in ("private", "suspended", "quarantined", "AccountTakedown"):
        assert classify(404, reason) is Outcome.BLOCKED
    assert classify(200, "post_not_found") is Outcome.MISSING  # a tombstone answered 200
    for status in (429, 500, 503):
        assert classify(status, "NotFound") is Outcome.FAILED  # never "missing"
