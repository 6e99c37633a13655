"""A dead worker's data dir is not lost: ``socialark mirror`` repairs the WARC it left open,
indexes it and uploads it (verified) with the rest.

Real processes only: redis-server, a seeding ``crawl site --redis`` and a ``socialark worker``
killed with ``kill -9`` mid-crawl, then ``socialark mirror`` to moto's S3 server.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from benchmarks.static_site import generate
from tests.conftest import socialark
from tests.test_distributed import Site, _indexed_urls, _seed, _wait, _warc_responses, _worker
from tests.test_mirror import remote_sha256

if TYPE_CHECKING:
    from tests.redisserver import RedisServer
    from tests.s3server import MotoS3Server

pytest_plugins = ["tests.redisserver", "tests.s3server"]

BUCKET = "evacuated"


@pytest.fixture
def slow_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("site")
    site = Site(root, generate(root, pages=600), delay=0.02)
    try:
        yield site
    finally:
        site.close()


def test_mirror_repairs_and_uploads_a_killed_workers_open_warc(
    slow_site: Site, redis_server: RedisServer, s3_server: MotoS3Server, tmp_path: Path,
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    seed, crawl_id = _seed(slow_site, redis_server, a, tmp_path / "a.log",
                           "-s", "ARCHIVE_REDIS_LEASE_TTL=2")
    victim = _worker(redis_server, b, tmp_path / "b.log", "--concurrency", "8")
    client = redis_server.client()
    base = f"socialark:crawl:{crawl_id}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and victim.returncode is None:
        for wid in client.zrange(f"{base}:workers", 0, -1):
            info = client.hgetall(f"{base}:worker:{wid.decode()}")
            if info.get(b"role") == b"worker" and int(info.get(b"pages", 0)) >= 50:
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait()
                break
        time.sleep(0.05)
    assert victim.returncode == -signal.SIGKILL, "the worker was never seen working"
    assert _wait(seed, tmp_path / "a.log") == 0, (tmp_path / "a.log").read_text()[-3000:]

    left_open = list((b / "warcs").rglob("*.warc.gz.open"))
    assert left_open, "the killed worker left no open WARC"
    in_open_file = _warc_responses(b)  # complete records of the .open file
    assert sum(in_open_file.values()) >= 40

    s3_server.create_bucket(BUCKET)
    url = f"s3://{BUCKET}/crawls"
    mirror = socialark("mirror", url, "--endpoint-url", s3_server.endpoint_url, data_dir=b)
    assert mirror.returncode == 0, mirror.stderr[-3000:]
    assert "left open by a dead process" in mirror.stderr
    assert not list((b / "warcs").rglob("*.open"))

    closed = sorted((b / "warcs").rglob("*.warc.gz"))
    assert [p.name for p in closed] == [p.name[: -len(".open")] for p in left_open]
    s3 = s3_server.client()
    for path in closed:
        key = f"crawls/{path.parent.name}/{path.name}"
        assert remote_sha256(s3, BUCKET, key) == hashlib.sha256(path.read_bytes()).hexdigest()
    # Every complete capture of the open file is indexed (and so replayable) now.
    assert _indexed_urls(b) == in_open_file == _warc_responses(b)
    # Nothing of the crawl is lost: what the worker did not finish, the seed did.
    assert slow_site.page_urls() <= set(_warc_responses(a)) | set(in_open_file)

    again = socialark("mirror", url, "--endpoint-url", s3_server.endpoint_url, data_dir=b)
    assert again.returncode == 0 and "dead process" not in again.stderr
    assert "already mirrored" in again.stdout
