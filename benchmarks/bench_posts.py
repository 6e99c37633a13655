"""Posts benchmark: archiving throughput from the Mastodon emulator, and FTS search latency.

1. Crawl: starts the Mastodon emulator, runs ``socialark crawl mastodon --account alice``
   (API + media + pages, no browser, --delay 0) as a subprocess, and reports posts archived per
   second (rows in ``posts``), responses per second and WARC bytes.
2. Search: builds a temporary index of N synthetic posts (default 1,000,000; ``executemany`` in
   batches, FTS5 kept by the schema's triggers), then runs Q queries (default 200: single
   common words matching ~10% of posts, rarer terms, AND, OR + phrase, prefixes; some with an
   author filter) through
   ``storage.search.search_posts`` (limit 20, replay links included) and prints p50/p95.

    python benchmarks/bench_posts.py
    python benchmarks/bench_posts.py --posts 100000 --queries 50 --skip-crawl
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.db import open_database
from storage.search import PostFilter, search_posts

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("archive harbour photo server closes saving museum library river mountain winter "
         "summer election protest music festival record history city night train station "
         "market garden forest ocean bridge school street letter paper signal voice").split()
RARE = [f"term{i}" for i in range(20_000)]  # a long tail, Zipf-like: most queries are selective


def word(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return rng.choice(WORDS)
    return RARE[min(int(rng.paretovariate(1.1)) - 1, len(RARE) - 1)]


def bench_crawl(concurrency: int) -> dict[str, float]:
    from tests.emulators.mastodon import MastodonEmulator

    with MastodonEmulator(seed=1) as emu, tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "crawler.cli", "crawl", "mastodon", "--instance", emu.base_url,
               "--account", "alice", "--delay", "0", "--concurrency", str(concurrency),
               "--data-dir", tmp, "-s", "LOG_LEVEL=WARNING"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"crawl failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        with sqlite3.connect(Path(tmp) / "index.db") as conn:
            posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
            responses, size = conn.execute("SELECT count(*), sum(length) FROM captures").fetchone()
    return {"seconds": elapsed, "posts": posts, "responses": responses, "bytes": size or 0}


def build_index(path: Path, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    db = open_database(path)
    authors = [f"user{i}" for i in range(2000)]
    sql = ("INSERT INTO posts (collection, platform, post_id, url, author, author_id, created_at,"
           " text, media, raw, source_url, source_timestamp) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")
    batch: list[tuple] = []
    with db.conn:
        for i in range(n):
            author = rng.choice(authors)
            text = " ".join(word(rng) for _ in range(rng.randint(8, 30)))
            day = 1 + i * 365 // n
            created = f"2024-{1 + (day - 1) // 31 % 12:02d}-{1 + (day - 1) % 28:02d}T12:00:00.000Z"
            batch.append(("bench", "mastodon", str(10**17 + i), f"https://x.example/@{author}/{i}",
                          author, author, created, text, "[]", "{}",
                          f"https://x.example/api/v1/statuses/{i}", "20240101000000"))
            if len(batch) >= 20_000:
                db.conn.executemany(sql, batch)
                batch.clear()
        if batch:
            db.conn.executemany(sql, batch)
    db.conn.close()


def queries(q: int, seed: int = 11) -> list[tuple[str, str | None]]:
    rng = random.Random(seed)
    out: list[tuple[str, str | None]] = []
    for i in range(q):
        a, b = rng.choice(WORDS), RARE[rng.randrange(1, 300)]
        query = [a, f"{a} {b}", b, f"{a[:3]}*", f'"{b} {a}" OR {a}'][i % 5]
        out.append((query, f"user{rng.randrange(2000)}" if i % 7 == 0 else None))
    return out


def bench_search(path: Path, q: int) -> dict[str, float]:
    db = open_database(path, readonly=True)
    times, empty = [], 0
    for query, author in queries(q):
        start = time.perf_counter()
        rows = list(search_posts(db, query, PostFilter(author=author), limit=20))
        times.append(time.perf_counter() - start)
        empty += not rows
    times.sort()
    return {"p50_ms": statistics.median(times) * 1000, "empty": empty,
            "p95_ms": times[int(len(times) * 0.95) - 1] * 1000, "queries": len(times)}


def bench_export(data_dir: Path, fmt: str) -> dict[str, float]:
    """Run ``socialark export posts`` over the index in ``data_dir``; wall time and peak RSS."""
    import resource
    import subprocess
    import sys

    out = data_dir / f"posts.{fmt}"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "crawler.cli", "export", "posts", "--format", fmt,
                           "-o", str(out), "--data-dir", str(data_dir)],
                          capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    # ru_maxrss of waited-for children: the largest child so far, so run the small case first
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    size = out.stat().st_size
    out.unlink()
    return {"seconds": elapsed, "peak_mib": peak_kib / 1024, "mb": size / 1e6}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--posts", type=int, default=1_000_000, help="synthetic posts in the search index")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--skip-crawl", action="store_true")
    ap.add_argument("--export", action="store_true",
                    help="also measure `export posts` peak memory at 10%% and 100%% of --posts")
    args = ap.parse_args(argv)
    if not args.skip_crawl:
        c = bench_crawl(args.concurrency)
        print(f"crawl: {c['posts']} posts, {c['responses']} captures, {c['bytes'] / 1e6:.1f} MB "
              f"in {c['seconds']:.1f}s -> {c['posts'] / c['seconds']:.1f} posts/s, "
              f"{c['responses'] / c['seconds']:.1f} captures/s (incl. process start-up)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index.db"
        start = time.perf_counter()
        build_index(path, args.posts)
        print(f"index: {args.posts} posts built in {time.perf_counter() - start:.1f}s")
        s = bench_search(path, args.queries)
        print(f"search: {s['queries']} queries, p50 {s['p50_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms "
              f"({s['empty']} without results)")
    if args.export:
        # Constant memory: exporting 10x more posts must not need (much) more memory.
        for n in (args.posts // 10, args.posts):
            with tempfile.TemporaryDirectory() as tmp:
                build_index(Path(tmp) / "index.db", n)
                for fmt in ("jsonl", "csv"):
                    e = bench_export(Path(tmp), fmt)
                    print(f"export posts --format {fmt}: {n} posts, {e['mb']:.0f} MB in "
                          f"{e['seconds']:.1f}s, peak RSS so far {e['peak_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
