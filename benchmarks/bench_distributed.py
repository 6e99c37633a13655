"""Distributed crawl benchmark: pages/s with 1, 2, 4 worker processes; Redis memory per URL.

1. Throughput: a deterministic 2,000-page static site (``benchmarks/static_site.py``) served by
   nginx on loopback (``bench_crawl.py``'s server; ``--server python`` for http.server), side
   by side in one run: plain single-process Scrapy, a local ``socialark crawl site`` (no
   Redis), then for each worker count a fresh ``redis-server``, one ``socialark crawl site
   --redis`` process (which also works) plus N-1 ``socialark worker`` processes. Wall time runs
   from the first process start to the last exit (process start-up included, as in real use);
   pages = unique HTML pages answered 200 in the server's access log. The ratios printed are
   the issue-12 targets: one Redis worker >= 0.95x the local crawl, two workers >= 1.6x Scrapy.
2. Memory: ``INFO memory`` of an empty Redis before and after queueing N requests (default
   1,000,000) exactly as the scheduler does (pickled ``Request.to_dict`` in the queue zset, a
   40-hex fingerprint in the seen set), reported per million URLs.

    python -m benchmarks.bench_distributed [--pages 2000] [--workers 1,2,4] [--urls 1000000]
        [--server nginx|python] [--repeat 1]

Not a test: figures depend on the machine (say how many cores it has when you quote them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make "benchmarks" importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_crawl import SCRAPY_SCRIPT, WebServer, read_access_log
from benchmarks.static_site import generate
from tests.redisserver import RedisServer

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "crawler.cli", *args], cwd=ROOT, env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def crawl_with(workers: int, base_url: str, work: Path, concurrency: int) -> float:
    """Wall seconds of a Redis crawl with ``workers`` processes (the seeding one included)."""
    redis = RedisServer(work / f"redis-{workers}")
    redis.start()
    try:
        client = redis.client()
        start = time.monotonic()
        procs = [_cli("crawl", "site", base_url + "index.html", "--redis", redis.url,
                      "--data-dir", str(work / f"w{workers}-0"), "--delay", "0",
                      "--ignore-robots", "--concurrency", str(concurrency),
                      "-s", "ARCHIVE_REDIS_POLL_INTERVAL=0.2", "-s", "ARCHIVE_PROGRESS=off",
                      log=work / f"w{workers}-0.log")]
        while not client.zrange("socialark:crawls", 0, -1):
            if procs[0].poll() is not None:
                raise RuntimeError((work / f"w{workers}-0.log").read_text()[-2000:])
            time.sleep(0.02)
        for i in range(1, workers):
            procs.append(_cli("worker", "--redis", redis.url, "--data-dir",
                              str(work / f"w{workers}-{i}"), log=work / f"w{workers}-{i}.log"))
        codes = [p.wait() for p in procs]
        elapsed = time.monotonic() - start
        if any(codes):
            raise RuntimeError(f"exit codes {codes}; see logs in {work}")
        return elapsed
    finally:
        redis.stop()


def crawl_local(base_url: str, work: Path, concurrency: int, tag: str) -> float:
    start = time.monotonic()
    proc = _cli("crawl", "site", base_url + "index.html", "--data-dir", str(work / tag),
                "--delay", "0", "--ignore-robots", "--concurrency", str(concurrency),
                "-s", "ARCHIVE_PROGRESS=off", log=work / f"{tag}.log")
    if proc.wait():
        raise RuntimeError(f"local crawl exited {proc.returncode}; see {work / tag}.log")
    return time.monotonic() - start


def crawl_scrapy(base_url: str, work: Path, concurrency: int) -> float:
    script = work / "scrapy_baseline.py"
    script.write_text(SCRAPY_SCRIPT)
    start = time.monotonic()
    subprocess.run([sys.executable, str(script), base_url + "index.html", str(concurrency),
                    str(work / "scrapy-stats.json")], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.monotonic() - start


def measure(label: str, run: Any, server: WebServer, work: Path) -> tuple[float, int]:
    """Run ``run(base_url)`` against a fresh server; wall seconds and unique HTML pages."""
    log = work / f"access-{label.replace(' ', '-')}.log"
    server.start(log)
    try:
        elapsed = run(server.url)
    finally:
        server.stop()
    return elapsed, len(read_access_log(log).unique_html)


def memory_per_million(urls: int, work: Path) -> tuple[float, float, float]:
    """Bytes of Redis memory per queued URL and per seen fingerprint, and per million both."""
    from scrapy import Request
    from scrapy_redis.dupefilter import RFPDupeFilter

    from crawler.distributed.queue import LeasedPriorityQueue
    from spiders.site import SiteSpider

    redis = RedisServer(work / "redis-mem")
    redis.start()
    try:
        client = redis.client()
        spider = SiteSpider(seeds=["https://example.org/"])
        queue = LeasedPriorityQueue(client, spider, "bench:queue")
        df = RFPDupeFilter(client, "bench:seen")

        def used() -> int:
            return int(client.info("memory")["used_memory"])

        before = used()
        pipe = client.pipeline(transaction=False)
        fingerprints = []
        for i in range(urls):
            req = Request(f"https://example.org/d{i % 20:02d}/page-{i:07d}.html",
                          callback=spider.parse_page, cb_kwargs={"depth": i % 7},
                          meta={"kind": "page"})
            pipe.execute_command("ZADD", queue.key, -req.priority, queue.encode(req))
            fingerprints.append(df.request_fingerprint(req))
            if len(pipe) >= 5000:
                pipe.execute()
        pipe.execute()
        after_queue = used()
        for i in range(0, len(fingerprints), 5000):
            client.sadd(df.key, *fingerprints[i:i + 5000])
        after_seen = used()
        per_queued = (after_queue - before) / urls
        per_seen = (after_seen - after_queue) / urls
        return per_queued, per_seen, (per_queued + per_seen) * 1_000_000
    finally:
        redis.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--server", choices=["nginx", "python"], default="nginx")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of every run, interleaved; the best pages/s is reported")
    ap.add_argument("--urls", type=int, default=1_000_000,
                    help="requests queued for the memory figure (0 = skip)")
    args = ap.parse_args(argv)
    if not shutil.which("redis-server"):
        sys.exit("redis-server is not installed")
    work = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    site = work / "site"
    generate(site, pages=args.pages)
    server = WebServer(site, work, args.server)
    c = args.concurrency
    runs: list[tuple[str, Any]] = [
        ("scrapy (1 process)", lambda url: crawl_scrapy(url, work, c)),
        ("socialark local", lambda url: crawl_local(url, work, c, f"local-{time.monotonic_ns()}")),
    ]
    for n in (int(x) for x in args.workers.split(",")):
        runs.append((f"redis x{n}", lambda url, n=n: crawl_with(n, url, work / f"r{n}-"
                                                                 f"{time.monotonic_ns()}", c)))
    print(f"machine: {os.cpu_count()} cores; site: {args.pages} pages; server: {server.kind}; "
          f"concurrency {c} per process; best of {args.repeat}")
    best: dict[str, tuple[float, int]] = {}
    for _ in range(args.repeat):
        for label, run in runs:
            elapsed, pages = measure(label, run, server, work)
            rate = pages / elapsed if elapsed else 0.0
            if label not in best or rate > best[label][1] / best[label][0]:
                best[label] = (elapsed, pages)
    print("| run | wall time (s) | HTML pages | pages/s | vs scrapy | vs socialark local |")
    print("|---|---:|---:|---:|---:|---:|")
    rate = {k: p / e if e else 0.0 for k, (e, p) in best.items()}
    for label, (elapsed, pages) in best.items():
        print(f"| {label} | {elapsed:.1f} | {pages} | {rate[label]:.0f} | "
              f"{rate[label] / rate['scrapy (1 process)']:.2f}x | "
              f"{rate[label] / rate['socialark local']:.2f}x |", flush=True)
    if "redis x1" in rate:
        ratio = rate["redis x1"] / rate["socialark local"]
        print(f"one Redis worker / local crawl: {ratio:.2f} (target >= 0.95: "
              f"{'meets' if ratio >= 0.95 else 'BELOW'})")
    if "redis x2" in rate:
        ratio = rate["redis x2"] / rate["scrapy (1 process)"]
        print(f"two Redis workers / plain Scrapy: {ratio:.2f} (target >= 1.60: "
              f"{'meets' if ratio >= 1.6 else 'BELOW'})")
    if args.urls:
        per_q, per_s, per_m = memory_per_million(args.urls, work)
        print(f"\nRedis memory, {args.urls:,} URLs: {per_q:.0f} B per queued request, "
              f"{per_s:.0f} B per seen fingerprint; {per_m / 2**20:.0f} MiB per million URLs "
              "queued and seen")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
