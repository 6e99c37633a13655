"""Attacks through a shared Redis (issue 14, point 1): a real redis-server, real workers.

Whoever can write to Redis plants a crawl or queue entry; a worker must not run code from it
(no pickle), must not take settings that write files (``FEEDS``) or a collection that is a path,
must not loop on a malformed plan, and must keep secrets out of Redis. AUTH works with a
``requirepass`` server and its password never appears in messages.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import sqlite3
from pathlib import Path

import pytest
from scrapy import Request

from crawler.distributed.keys import CrawlKeys
from crawler.distributed.registry import mark_running, register_crawl
from tests.conftest import socialark
from tests.redisserver import RedisServer
from tests.security._http import Site, html

FAST = ["-s", "ARCHIVE_REDIS_POLL_INTERVAL=0.2", "-s", "ARCHIVE_PROGRESS=off"]


class Boom:
    """Unpickling this runs ``touch <marker>``: what an attacker plants in the queue."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _plant(url: str, crawl_id: str, base: str, **options: object) -> None:
    config = {
        "spider": "site",
        "args": {"seeds": [base], "scope": "host", "depth": 0, "excludes": [],
                 "max_query_variants": 20},
        "options": {"collection": "default", "ignore_robots": True, "delay": 0.0,
                    "settings": ["ARCHIVE_REDIS_POLL_INTERVAL=0.2", "ARCHIVE_PROGRESS=off"],
                    **options},
    }
    register_crawl(url, crawl_id, config, max_pages=0, max_time=0)


def test_pickled_queue_entry_never_runs(redis_server: RedisServer, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with Site({"/": html("<p>hello</p>")}) as site:
        _plant(redis_server.url, "evil", site.base)
        client = redis_server.client()
        mark_running(client, "evil")
        good = json.dumps({  # the JSON queue format (crawler/distributed/serializer.py)
            "url": site.base, "callback": None, "errback": None, "headers": {},
            "body": {"$b": ""}, "cookies": {}, "meta": {}, "encoding": "utf-8", "flags": [],
            "cb_kwargs": {}, "dont_filter": False, "method": "GET", "priority": 0,
        }).encode()
        client.zadd(CrawlKeys("evil").queue, {pickle.dumps(Boom(marker)): -100, good: 0})
        proc = socialark("worker", "--redis", redis_server.url, "--crawl", "evil",
                         "--data-dir", str(tmp_path / "data"), timeout=120)
    assert not marker.exists(), "a pickled entry from Redis ran code in the worker"
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    assert "Dropped an invalid entry from the Redis queue" in proc.stderr
    assert any(path == "/" for path, _ in site.requests), "the valid entry was not crawled"
    assert client.zcard(CrawlKeys("evil").queue) == 0
    from crawler.distributed import serializer

    assert serializer.loads(good) == serializer.loads(
        serializer.dumps(Request(site.base).to_dict()))


@pytest.mark.parametrize(("options", "needle"), [
    ({"settings": ['FEEDS={"file:///%(tmp)s/feed.json": {"format": "json"}}']}, "FEEDS"),
    ({"settings": ["ARCHIVE_DATA_DIR=/%(tmp)s/elsewhere"]}, "ARCHIVE_DATA_DIR"),
    ({"settings": ['ARCHIVE_BROWSER_BEHAVIOR_SCRIPTS=["/etc/passwd"]']},
     "ARCHIVE_BROWSER_BEHAVIOR_SCRIPTS"),
    ({"collection": "../../outside/coll"}, "invalid collection name"),
    ({"collection": "/%(tmp)s/abs"}, "invalid collection name"),
    ({"concurrency": "lots"}, "concurrency"),
    ({"settings": "DOWNLOAD_DELAY=1"}, "settings"),
    ({"settings": ["DOWNLOAD_DELAY=__import__('os')"]}, "DOWNLOAD_DELAY"),
])
def test_worker_refuses_a_hostile_plan(redis_server: RedisServer, tmp_path: Path,
                                       options: dict[str, object], needle: str) -> None:
    tmp = str(tmp_path).lstrip("/")
    options = json.loads(json.dumps(options).replace("%(tmp)s", tmp))
    with Site({"/": html("<p>hello</p>")}) as site:
        _plant(redis_server.url, "evil", site.base, **options)
        mark_running(redis_server.client(), "evil")
        data = tmp_path / "deep" / "er" / "data"
        proc = socialark("worker", "--redis", redis_server.url, "--crawl", "evil",
                         "--data-dir", str(data), timeout=60)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and "refused" in lines[0], proc.stderr
    assert not site.requests, "the worker crawled with a refused plan"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["redis"]  # nothing created
    assert not (tmp_path / "feed.json").exists() and not (tmp_path / "elsewhere").exists()


def test_seeding_refuses_settings_workers_would_refuse(redis_server: RedisServer,
                                                       tmp_path: Path) -> None:
    proc = socialark("crawl", "site", "http://127.0.0.1:9/", "--redis", redis_server.url,
                     "-s", "FEEDS={}", data_dir=tmp_path / "data")
    assert proc.returncode == 2 and "FEEDS" in proc.stderr and "Traceback" not in proc.stderr
    assert redis_server.client().zcard("socialark:crawls") == 0


def _everything_written(data_dir: Path) -> str:
    """Every byte the crawl left: WARCs (decompressed), the index, state files."""
    parts = []
    for path in sorted(data_dir.rglob("*")):
        if not path.is_file() or path.suffix in (".db", ".db-wal", ".db-shm"):
            continue
        raw = path.read_bytes()
        if ".warc.gz" in path.name:
            raw = gzip.decompress(raw)
        parts.append(raw.decode("latin-1"))
    conn = sqlite3.connect(data_dir / "index.db")
    parts.extend(conn.iterdump())
    conn.close()
    return "\n".join(parts)


@pytest.mark.parametrize("acl_user", ["", "socialark"])
def test_auth_and_no_secret_left_anywhere(tmp_path: Path, acl_user: str) -> None:
    """``requirepass`` (default user) or an ACL user limited to ``socialark:*`` keys without
    dangerous commands, as docs/scaling.md shows: a whole crawl works, nothing leaks."""
    secrets = ("hunter2pw", "tok-123456", "Bearer sekrit-1", "k3y-value")
    server = RedisServer(tmp_path / "redis", password="hunter2pw")
    server.start()
    url = server.url
    if acl_user:
        server.client().execute_command("ACL", "SETUSER", acl_user, "on", ">hunter2pw",
                                        "~socialark:*", "+@all", "-@dangerous")
        url = url.replace("redis://:", f"redis://{acl_user}:")
    try:
        headers = json.dumps({"Authorization": "Bearer sekrit-1", "X-Api-Key": "k3y-value"})
        with Site({"/": html('<a href="/b">b</a>'), "/b": html("<p>b</p>")}) as site:
            data = tmp_path / "data"
            proc = socialark("crawl", "site", site.base, "--redis", url, "--delay", "0",
                             "--ignore-robots", *FAST, "-s", "MY_API_TOKEN=tok-123456",
                             "-s", f"DEFAULT_REQUEST_HEADERS={headers}", data_dir=data,
                             timeout=120)
            assert proc.returncode == 0, proc.stderr[-3000:]
            sent = [h for p, h in site.requests if p == "/b"]
            assert sent and sent[0].get("Authorization") == "Bearer sekrit-1"  # used...
        written = _everything_written(data)  # ...but stored nowhere
        status = socialark("status", data_dir=data)
        client = server.client()
        stored = [str(client.dump(k)) for k in client.keys("*")]
        wrong = socialark("crawl-status", "--redis",
                          f"redis://:wrongpass99@127.0.0.1:{server.port}/0")
        noauth = socialark("crawl-status", "--redis", f"redis://127.0.0.1:{server.port}/0")
    finally:
        server.stop()
    assert "[redacted]" in written and "X-Api-Key: [redacted by socialark]" in written
    for where, text in (("WARCs/index", written), ("crawl log", proc.stderr + proc.stdout),
                        ("status", status.stdout + status.stderr), ("Redis", "".join(stored)),
                        ("AUTH error", wrong.stderr + noauth.stderr)):
        for secret in (*secrets, "wrongpass99"):
            assert secret not in text, f"{secret!r} stored in clear in {where}"
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1
    assert noauth.returncode == 2 and "Traceback" not in noauth.stderr
