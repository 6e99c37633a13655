"""Browse benchmark: ``socialark browse`` start-up and page latency on a synthetic index.

Builds a temporary index of N synthetic posts (default 1,000,000; 2,000 authors over a year,
each with ~1.5 KB of raw JSON like real posts; media rows for one post in five; ``deleted_at``
set on one in a hundred, column and index added as migration m006 does where the schema predates
it), starts ``socialark browse --no-open`` and reports the time until it answers, then the
latency of the posts page (HTML and JSON) and of each canned query (HTML: render_cell runs on
every shown row): the first (cold) request and the median of R.

    python benchmarks/bench_browse.py
    python benchmarks/bench_browse.py --posts 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.db import open_database

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["posts", "posts.json", "most_active_authors", "posts_per_day", "deleted_posts",
         "media_by_type"]


def build_index(path: Path, n: int, seed: int = 7, raw_bytes: int = 1500) -> None:
    rng = random.Random(seed)
    open_database(path).conn.close()  # the schema, migrations applied
    conn = sqlite3.connect(path)
    if "deleted_at" not in {r[1] for r in conn.execute("PRAGMA table_info(posts)")}:
        conn.execute("ALTER TABLE posts ADD COLUMN deleted_at TEXT")  # as m006 does
    conn.execute("CREATE INDEX IF NOT EXISTS posts_deleted_at ON posts(deleted_at)")
    raw = '{"content": "' + "x" * raw_bytes + '"}'  # posts carry their JSON: scans are costly
    authors = [f"user{i}" for i in range(2000)]
    posts_sql = ("INSERT INTO posts (collection, platform, post_id, url, author, author_id, created_at,"
                 " text, media, raw, source_url, source_timestamp, deleted_at)"
                 " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")
    media_sql = ("INSERT INTO media (collection, platform, url, post_id, media_type, description,"
                 " source_url, source_timestamp) VALUES (?,?,?,?,?,?,?,?)")
    posts: list[tuple] = []
    media: list[tuple] = []
    with conn:
        for i in range(n):
            author = rng.choice(authors)
            day = i * 365 // n
            created = time.strftime("%Y-%m-%dT12:00:00.000Z", time.gmtime(1704067200 + day * 86400))
            api = f"https://x.example/api/v1/statuses/{i}"
            posts.append(("bench", "mastodon", str(10**17 + i), f"https://x.example/@{author}/{i}",
                          author, author, created, f"post {i} by {author}", "[]", raw, api,
                          "20250101000000", "2025-06-01T00:00:00Z" if i % 100 == 0 else None))
            if i % 5 == 0:
                media.append(("bench", "mastodon", f"https://x.example/m/{i}.jpg", str(10**17 + i),
                              rng.choice(["image", "image", "video", "gifv", "audio"]),
                              "alt" if rng.random() < 0.4 else None, api, "20250101000000"))
            if len(posts) >= 20_000:
                conn.executemany(posts_sql, posts)
                conn.executemany(media_sql, media)
                posts.clear()
                media.clear()
        conn.executemany(posts_sql, posts)
        conn.executemany(media_sql, media)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def fetch(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as resp:
        resp.read()
    return time.perf_counter() - start


def bench(data_dir: Path, repeat: int) -> None:
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "crawler.cli", "browse", "--data-dir", str(data_dir),
                             "--port", str(port), "--no-open"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/index/"
    try:
        start = time.perf_counter()
        while True:
            try:
                fetch(base + "posts.json?_size=1")
                break
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit(f"browse exited with {proc.returncode}") from None
                time.sleep(0.1)
        print(f"ready (first JSON answer): {time.perf_counter() - start:.2f} s")
        for page in PAGES:
            times = [fetch(base + page) for _ in range(repeat)]
            print(f"{page:22s} cold {times[0] * 1000:8.0f} ms   median {statistics.median(times) * 1000:8.0f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--posts", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--raw-bytes", type=int, default=1500, help="size of each post's raw JSON")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        start = time.perf_counter()
        build_index(data_dir / "index.db", args.posts, raw_bytes=args.raw_bytes)
        print(f"built {args.posts:,} posts in {time.perf_counter() - start:.1f} s")
        bench(data_dir, args.repeat)


if __name__ == "__main__":
    main()
