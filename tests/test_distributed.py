"""Distributed crawls through a real redis-server: workers share the frontier, leases survive
``kill -9``, crawl-status/crawl-stop, and the central index built from the bucket.

Every process is real: redis-server on loopback, ``socialark crawl ... --redis`` and
``socialark worker`` subprocesses, a threaded HTTP server counting every request it serves.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from benchmarks.static_site import generate
from storage.reader import CorruptRecord, iter_records
from tests.conftest import ROOT, socialark

if TYPE_CHECKING:
    from tests.redisserver import RedisServer
    from tests.s3server import MotoS3Server

pytest_plugins = ["tests.redisserver", "tests.s3server"]  # redis_server, s3_server fixtures

PAGES = 2000
FAST = ["-s", "ARCHIVE_REDIS_POLL_INTERVAL=0.2", "-s", "ARCHIVE_PROGRESS=off"]


class CountingHandler(SimpleHTTPRequestHandler):
    """Serves the static site; records every request path (and can slow responses down)."""

    counts: Counter[str]
    lock: threading.Lock
    delay: float = 0.0

    def do_GET(self) -> None:
        with self.lock:
            self.counts[self.path] += 1
        if self.delay:
            time.sleep(self.delay)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


class Site:
    def __init__(self, root: Path, paths: list[str], delay: float = 0.0) -> None:
        self.paths = paths
        self.counts: Counter[str] = Counter()
        handler = type("Handler", (CountingHandler,), {
            "counts": self.counts, "lock": threading.Lock(), "delay": delay,
        })
        self.server = ThreadingHTTPServer(("127.0.0.1", 0),
                                          functools.partial(handler, directory=str(root)))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def page_urls(self) -> set[str]:
        return {self.base + p for p in self.paths}

    def fetched(self) -> Counter[str]:
        return Counter({self.base + p.lstrip("/"): n for p, n in self.counts.items()})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def site_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("site")
    paths = generate(root, pages=PAGES)
    return root, paths


def _site(site_root: tuple[Path, list[str]], delay: float = 0.0) -> Iterator[Site]:
    site = Site(site_root[0], site_root[1], delay)
    try:
        yield site
    finally:
        site.close()


@pytest.fixture
def site(site_root: tuple[Path, list[str]]) -> Iterator[Site]:
    yield from _site(site_root)


@pytest.fixture
def slow_site(site_root: tuple[Path, list[str]]) -> Iterator[Site]:
    """Each response takes 20 ms, so workers always have requests in flight."""
    yield from _site(site_root, delay=0.02)


@pytest.fixture
def slower_site(site_root: tuple[Path, list[str]]) -> Iterator[Site]:
    """Each response takes 300 ms: the crawl (≥ 25 s at 24 requests in flight) outlasts a second
    worker's start-up even on a busy box, so it is stopped with work still queued."""
    yield from _site(site_root, delay=0.3)


def _popen(*args: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "crawler.cli", *args], cwd=ROOT, env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def _seed(site: Site, redis: RedisServer, data_dir: Path, log: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``crawl site --redis`` and wait until the crawl is registered; return its id."""
    proc = _popen("crawl", "site", site.base + "index.html", "--redis", redis.url,
                  "--data-dir", str(data_dir), "--delay", "0", "--ignore-robots",
                  "--concurrency", "8", *FAST, *extra, log=log)
    client = redis.client()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ids = client.zrange("socialark:crawls", 0, -1)
        if ids:
            return proc, ids[0].decode()
        if proc.poll() is not None:
            raise AssertionError(f"seeding crawl exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("crawl never registered in Redis")


def _worker(redis: RedisServer, data_dir: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    return _popen("worker", "--redis", redis.url, "--data-dir", str(data_dir), *extra, log=log)


def _wait(proc: subprocess.Popen[bytes], log: Path, timeout: float = 150) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"process did not finish:\n{log.read_text()[-3000:]}") from None


def _warc_responses(data_dir: Path) -> Counter[str]:
    """Response URLs in every WARC of ``data_dir``, including one left ``.open`` by kill -9."""
    urls: Counter[str] = Counter()
    for path in sorted((data_dir / "warcs").rglob("*.warc.gz*")):
        for rec in iter_records(path):
            if not isinstance(rec, CorruptRecord) and rec.type == "response":
                urls[rec.get("WARC-Target-URI") or ""] += 1
    return urls


def _indexed_urls(data_dir: Path) -> Counter[str]:
    with sqlite3.connect(data_dir / "index.db") as db:
        rows = db.execute("SELECT url FROM captures WHERE record_type = 'response'").fetchall()
    return Counter(url for (url,) in rows)


def test_two_workers_capture_every_page_exactly_once(
    site: Site, redis_server: RedisServer, tmp_path: Path,
) -> None:
    seed, crawl_id = _seed(site, redis_server, tmp_path / "a", tmp_path / "a.log")
    worker = _worker(redis_server, tmp_path / "b", tmp_path / "b.log", "--concurrency", "8")
    assert _wait(seed, tmp_path / "a.log") == 0, (tmp_path / "a.log").read_text()[-3000:]
    assert _wait(worker, tmp_path / "b.log") == 0, (tmp_path / "b.log").read_text()[-3000:]

    fetched = site.fetched()
    assert site.page_urls() <= set(fetched), "some pages were never requested"
    twice = {u: n for u, n in fetched.items() if n > 1}
    assert not twice, f"fetched more than once: {list(twice.items())[:5]}"

    a, b = _indexed_urls(tmp_path / "a"), _indexed_urls(tmp_path / "b")
    assert a and b, "both processes should have done part of the crawl"
    assert not set(a) & set(b), "a URL was captured by both workers"
    assert set(a) | set(b) == set(fetched)
    assert max((a + b).values()) == 1
    # Each worker wrote its own WARCs, named after its host and pid.
    names = [p.name for d in ("a", "b") for p in (tmp_path / d / "warcs").rglob("*.warc.gz")]
    assert len({n.rsplit("-", 1)[1] for n in names}) == 2
    # ... and its own log file under its data dir (docs/logging.md), named in its summary.
    (seed_log,) = (tmp_path / "a" / "state" / "default" / "logs").glob(f"{crawl_id}.log")
    (worker_log,) = (tmp_path / "b" / "state" / "default" / "logs").glob(f"{crawl_id}-worker-*.log")
    assert f"  log: {worker_log}" in (tmp_path / "b.log").read_text()
    assert "Worker joining crawl " + crawl_id in worker_log.read_text()
    assert "Starting crawl " + crawl_id in seed_log.read_text()

    status = json.loads(socialark("crawl-status", "--redis", redis_server.url, "--json",
                                  check=True).stdout)
    assert status["crawl_id"] == crawl_id
    assert status["state"] == "finished"
    assert (status["queued"], status["in_flight"], status["workers_alive"]) == (0, 0, 0)
    assert status["pages"] == len(fetched)


def test_killed_worker_loses_nothing(
    slow_site: Site, redis_server: RedisServer, tmp_path: Path,
) -> None:
    ttl = ["-s", "ARCHIVE_REDIS_LEASE_TTL=2"]
    seed, crawl_id = _seed(slow_site, redis_server, tmp_path / "a", tmp_path / "a.log", *ttl)
    victim = _worker(redis_server, tmp_path / "b", tmp_path / "b.log", "--concurrency", "8")
    client = redis_server.client()
    base = f"socialark:crawl:{crawl_id}"
    held = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not held:
        for wid, _ in client.zrange(f"{base}:workers", 0, -1, withscores=True):
            info = client.hgetall(f"{base}:worker:{wid.decode()}")
            if info.get(b"role") == b"worker" and int(info.get(b"pages", 0)) >= 100:
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait()
                held = client.hlen(f"{base}:leases:{wid.decode()}")
                break
        time.sleep(0.05)
    assert victim.returncode == -signal.SIGKILL, "the worker was never seen working"
    assert held > 0, "the killed worker held no lease: nothing to recover"

    assert _wait(seed, tmp_path / "a.log") == 0, (tmp_path / "a.log").read_text()[-3000:]
    captured = _warc_responses(tmp_path / "a") + _warc_responses(tmp_path / "b")
    missing = slow_site.page_urls() - set(captured)
    assert not missing, f"{len(missing)} pages lost with the killed worker: {sorted(missing)[:5]}"
    assert int(client.get(f"{base}:requeued")) >= held
    assert int(client.get(f"{base}:lost-workers")) == 1
    log = (tmp_path / "a.log").read_text()
    assert "stopped sending heartbeats" in log


def test_status_and_graceful_stop(
    slower_site: Site, redis_server: RedisServer, tmp_path: Path,
) -> None:
    slow_site = slower_site
    seed, crawl_id = _seed(slow_site, redis_server, tmp_path / "a", tmp_path / "a.log")
    worker = _worker(redis_server, tmp_path / "b", tmp_path / "b.log", "--crawl", crawl_id)
    status: dict[str, object] = {}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = json.loads(socialark("crawl-status", "--redis", redis_server.url, "--crawl",
                                      crawl_id, "--json", check=True).stdout)
        if status["workers_alive"] == 2 and all(w["pages"] for w in status["workers"]):
            break
        if status["state"] not in ("seeding", "running"):
            break
        time.sleep(0.2)
    assert status["state"] == "running"
    assert status["workers_alive"] == 2
    assert status["queued"] > 0 and status["pages"] > 0
    text = socialark("crawl-status", "--redis", redis_server.url, check=True).stdout
    assert f"crawl {crawl_id} (site): running" in text and "workers alive: 2" in text

    stop = socialark("crawl-stop", "--redis", redis_server.url, check=True)
    assert "Stopping crawl" in stop.stdout
    assert _wait(seed, tmp_path / "a.log") == 3
    assert _wait(worker, tmp_path / "b.log") == 3
    for d in ("a", "b"):
        assert not list((tmp_path / d / "warcs").rglob("*.open")), "a WARC was left open"
        assert list((tmp_path / d / "warcs").rglob("*.warc.gz"))
    after = json.loads(socialark("crawl-status", "--redis", redis_server.url, "--crawl",
                                 crawl_id, "--json", check=True).stdout)
    assert after["state"] == "stopped" and after["reason"] == "shutdown"
    assert after["in_flight"] == 0 and after["queued"] > 0
    # Nothing in flight was dropped: every fetched page is in a WARC of one of the two.
    captured = _warc_responses(tmp_path / "a") + _warc_responses(tmp_path / "b")
    assert set(slow_site.fetched()) <= set(captured)

    again = socialark("worker", "--redis", redis_server.url, "--data-dir", str(tmp_path / "c"))
    assert again.returncode == 2 and "no running crawl" in again.stderr


def test_crawl_wide_page_limit(site: Site, redis_server: RedisServer, tmp_path: Path) -> None:
    seed, _ = _seed(site, redis_server, tmp_path / "a", tmp_path / "a.log", "--max-pages", "150")
    worker = _worker(redis_server, tmp_path / "b", tmp_path / "b.log")
    assert _wait(seed, tmp_path / "a.log") == 0
    assert _wait(worker, tmp_path / "b.log") == 0
    total = sum(site.fetched().values())
    # In-flight requests finish after the limit is hit: at most concurrency (8+16) more.
    assert 150 <= total <= 150 + 24
    assert "stopped at --max-pages" in (tmp_path / "a.log").read_text()


def test_usage_errors(redis_server: RedisServer, tmp_path: Path) -> None:
    bad = socialark("crawl", "site", "http://127.0.0.1:9/", "--redis", "http://x", data_dir=tmp_path)
    assert bad.returncode == 2 and "redis://HOST:PORT/DB" in bad.stderr
    down = socialark("crawl-status", "--redis", "redis://127.0.0.1:1/0")
    assert down.returncode == 2 and "cannot reach Redis" in down.stderr
    assert "Traceback" not in down.stderr
    none = socialark("crawl-stop", "--redis", redis_server.url)
    assert none.returncode == 2 and "no running crawl" in none.stderr
    resume = socialark("crawl", "site", "http://127.0.0.1:9/", "--redis", redis_server.url,
                       "--resume", data_dir=tmp_path)
    assert resume.returncode == 2 and "socialark worker" in resume.stderr


def _captures(data_dir: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(data_dir / "index.db") as db:
        cols = [r[1] for r in db.execute("PRAGMA table_info(captures)") if r[1] != "id"]
        return sorted(db.execute(f"SELECT {', '.join(cols)} FROM captures").fetchall(),
                      key=repr)


def test_central_index_from_the_bucket_matches_a_local_one(
    site: Site, redis_server: RedisServer, s3_server: MotoS3Server, tmp_path: Path,
) -> None:
    s3_server.create_bucket("archive")
    mirror = ["--mirror", "s3://archive/crawls", "--endpoint-url", s3_server.endpoint_url]
    seed, _ = _seed(site, redis_server, tmp_path / "a", tmp_path / "a.log", *mirror,
                    "--max-pages", "400", "--warc-size", "150KB")
    worker = _worker(redis_server, tmp_path / "b", tmp_path / "b.log")  # mirror from the crawl
    assert _wait(seed, tmp_path / "a.log") == 0, (tmp_path / "a.log").read_text()[-3000:]
    assert _wait(worker, tmp_path / "b.log") == 0, (tmp_path / "b.log").read_text()[-3000:]
    local_files = [p for d in ("a", "b") for p in (tmp_path / d / "warcs").rglob("*.warc.gz")]
    listed = s3_server.client().list_objects_v2(Bucket="archive", Prefix="crawls/")["Contents"]
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in listed) == sorted(p.name for p in local_files)
    assert len(local_files) > 2

    # One file indexed, then the rest: the second run reads only what is new.
    socialark("index", str(local_files[0]), data_dir=tmp_path / "first", check=True)
    first = s3_server.client()
    first.create_bucket(Bucket="partial")
    first.upload_file(str(local_files[0]), "partial", f"x/default/{local_files[0].name}")
    remote = ["--endpoint-url", s3_server.endpoint_url]
    central = tmp_path / "central"
    socialark("index", "s3://partial/x", *remote, data_dir=central, check=True)
    for p in local_files[1:]:
        first.upload_file(str(p), "partial", f"x/default/{p.name}")
    run = socialark("index", "s3://partial/x", *remote, data_dir=central, check=True)
    assert f"Indexed {len(local_files) - 1} new or changed file(s)" in run.stdout
    assert "(1 unchanged)" in run.stdout
    again = socialark("index", "s3://archive/crawls", *remote, data_dir=tmp_path / "c2", check=True)
    assert f"Indexed {len(local_files)} new" in again.stdout

    local = tmp_path / "local"
    socialark("index", str(tmp_path / "a" / "warcs"), str(tmp_path / "b" / "warcs"),
              data_dir=local, check=True)
    assert _captures(central) == _captures(local) == _captures(tmp_path / "c2")
    assert len(_captures(local)) >= 400
    with sqlite3.connect(central / "index.db") as db:
        paths = [p for (p,) in db.execute("SELECT path FROM warc_files")]
    assert paths and all(p.startswith("s3://partial/x/default/") for p in paths)

    bad = socialark("index", "s3://archive/crawls", str(tmp_path), *remote, data_dir=central)
    assert bad.returncode == 2 and "cannot be mixed" in bad.stderr


def _posts(data_dir: Path) -> dict[str, tuple[object, ...]]:
    with sqlite3.connect(data_dir / "index.db") as db:
        rows = db.execute("SELECT post_id, author_id, created_at, text, reply_to_id, "
                          "repost_of_id FROM posts").fetchall()
    return {r[0]: r[1:] for r in rows}


def test_mastodon_account_split_across_two_workers(redis_server: RedisServer,
                                                   tmp_path: Path) -> None:
    from tests.emulators.mastodon import MastodonEmulator

    with MastodonEmulator(flavor="mastodon", seed=1) as emu:
        args = ["crawl", "mastodon", "--instance", emu.base_url, "--delay", "0",
                "--account", "alice"]
        socialark(*args, data_dir=tmp_path / "single", check=True, timeout=240)
        seed = _popen(*args, "--data-dir", str(tmp_path / "a"), "--redis", redis_server.url,
                      *FAST, log=tmp_path / "a.log")
        client = redis_server.client()
        deadline = time.monotonic() + 60
        while not client.zrange("socialark:crawls", 0, -1) and time.monotonic() < deadline:
            time.sleep(0.05)
        worker = _worker(redis_server, tmp_path / "b", tmp_path / "b.log")
        assert _wait(seed, tmp_path / "a.log") == 0, (tmp_path / "a.log").read_text()[-3000:]
        assert _wait(worker, tmp_path / "b.log") == 0, (tmp_path / "b.log").read_text()[-3000:]
    single = _posts(tmp_path / "single")
    a, b = _posts(tmp_path / "a"), _posts(tmp_path / "b")
    assert len(single) > 250
    assert {**a, **b} == single


def test_leases_requeue_hand_over_and_finish(redis_server: RedisServer) -> None:
    """The Lua steps one by one on a real Redis: pop leases, expiry requeues, handover."""
    from scrapy import Request

    from crawler.distributed.keys import CrawlKeys
    from crawler.distributed.queue import LEASE_META, LeasedPriorityQueue
    from crawler.distributed.registry import mark_running, register_crawl, request_stop
    from crawler.distributed.scripts import Scripts
    from spiders.site import SiteSpider

    register_crawl(redis_server.url, "c1", {"spider": "site"}, max_pages=0, max_time=0)
    client, keys = redis_server.client(), CrawlKeys("c1")
    spider = SiteSpider(seeds=["http://example.org/"])
    scripts = Scripts(client)

    def queue(worker: str, ttl_ms: int) -> LeasedPriorityQueue:
        q = LeasedPriorityQueue(client, spider, keys.queue)
        q.configure(keys, worker, ttl_ms)
        return q

    def finish_check() -> bytes:
        return scripts.finish_check(keys=[keys.meta, keys.queue, keys.workers],
                                    args=[keys.lease_prefix])

    w1, w2 = queue("w1", 1), queue("w2", 60_000)
    page = Request("http://example.org/a", callback=spider.parse_page, cb_kwargs={"depth": 2},
                   priority=5)
    assert w1.push(page, fingerprint="fp-a") and not w1.push(page, fingerprint="fp-a")
    mark_running(client, "c1")
    popped = w1.pop()
    assert popped is not None and popped.url == page.url and popped.cb_kwargs == {"depth": 2}
    assert popped.meta[LEASE_META] and w1.held() == 1 and len(w1) == 0
    assert w2.pop() is None
    assert finish_check() == b"running"  # w1 is alive and holds a lease

    time.sleep(0.01)  # w1's 1 ms lease has expired: reaping puts its request back
    dead, requeued = scripts.reap(
        keys=[keys.workers, keys.queue, keys.requeued, keys.lost_workers],
        args=[keys.lease_prefix, keys.info_prefix])
    assert (dead, requeued) == (1, 1) and w1.held() == 0
    again = w2.pop()
    assert again is not None and again.url == page.url and again.priority == 5

    # A retry/redirect carrying the lease token hands it over when queued.
    retry = again.replace(url="http://example.org/b")
    assert w2.push(retry, fingerprint="fp-b", handover=again.meta[LEASE_META])
    assert w2.held() == 0 and len(w2) == 1
    assert finish_check() == b"running"  # the queue is not empty
    done = w2.pop()
    assert done is not None
    w2.release(done.meta[LEASE_META])
    assert finish_check() == b"finished"
    assert not request_stop(client, "c1")  # already finished


def test_one_round_trip_carries_children_releases_pages_and_a_batched_pop(
    redis_server: RedisServer,
) -> None:
    """``WorkerContext.flush``: pushes, deferred releases, the page count and a lease of up
    to ``take`` requests go in one pipeline, in that order, and a batch never leases more than
    ``--max-pages`` still allows."""
    from scrapy import Request

    from crawler.distributed.context import WorkerContext
    from crawler.distributed.keys import CrawlKeys
    from crawler.distributed.queue import LeasedPriorityQueue
    from crawler.distributed.registry import mark_running, register_crawl
    from crawler.distributed.scripts import Scripts
    from spiders.site import SiteSpider

    register_crawl(redis_server.url, "c2", {"spider": "site"}, max_pages=5, max_time=0)
    client, keys = redis_server.client(), CrawlKeys("c2")
    mark_running(client, "c2")
    ctx = WorkerContext(url=redis_server.url, keys=keys, worker_id="w1", role="worker",
                        lease_ttl=60, poll_interval=1, client=client, scripts=Scripts(client))
    spider = SiteSpider(seeds=["http://example.org/"])
    queue = LeasedPriorityQueue(client, spider, keys.queue)
    queue.configure(keys, "w1", 60_000)
    for i in range(10):
        req = Request(f"http://example.org/{i}", callback=spider.parse_page, priority=-i)
        ctx.add_push(f"fp-{i}", -req.priority, queue.encode(req), "")
    ctx.add_push("fp-0", 0, b"ignored: already seen", "")

    first = ctx.flush(take=4)
    assert (ctx.queued, ctx.duplicates) == (10, 1)
    assert [queue.leased(t, d).url for t, d in first] == [f"http://example.org/{i}"
                                                          for i in range(4)]
    assert client.hlen(keys.leases("w1")) == 4 and client.zcard(keys.queue) == 6

    ctx.release(first[0][0])
    ctx.release(first[1][0])
    ctx.pending_pages = 3
    assert client.hlen(keys.leases("w1")) == 4, "a release waits for the next flush"
    second = ctx.flush(take=10)
    assert len(second) == 2, "5 pages allowed, 3 done: 2 more leased, not 10"
    assert int(client.get(keys.pages)) == 3
    assert client.hlen(keys.leases("w1")) == 4 and client.zcard(keys.queue) == 4
    ctx.pending_pages = 2
    assert ctx.flush(take=10) == []  # the limit is reached: the crawl stops
    assert client.hget(keys.meta, "state") == b"stopping"
