"""Posts benchmark: archiving throughput from the Mastodon emulator, and search latency.

1. Crawl: starts the Mastodon emulator, runs ``socialark crawl mastodon --account alice``
   (API + media + pages, no browser, --delay 0) as a subprocess, and reports posts archived per
   second (rows in ``posts``), responses per second and WARC bytes.
2. Search: builds a temporary index of N synthetic posts (default 1,000,000; ``executemany`` in
   batches, FTS5 kept by the schema's triggers; ``--dates random`` gives each post a date
   unrelated to its row id, as re-crawls and several collections do), then runs Q queries
   (default 200) through ``storage.search.search_posts`` (limit 20, replay links included) and
   prints p50/p95/max per query class and overall. Classes: single common words (~15% of
   posts), common AND rarer word, rare words, 3-letter prefixes, "phrase" OR word; each with
   sort relevance, newest or oldest in turn, some with an author or a one-month date filter.
   ``--check N`` compares the first N queries' results with an independent SQL formulation
   (newest/oldest: every match sorted; relevance: ``ORDER BY bm25`` over the same candidates).
   ``--candidates 1000000000`` ranks every match (the engine before issue 17).

    python benchmarks/bench_posts.py
    python benchmarks/bench_posts.py --posts 100000 --queries 60 --skip-crawl --check 60
    python benchmarks/bench_posts.py --skip-crawl --posts 1000000 --keep /tmp/posts1m.db
    python benchmarks/bench_posts.py --skip-crawl --db /tmp/posts1m.db --candidates 1000000000
    python benchmarks/bench_posts.py --skip-crawl --db /tmp/posts1m.db --optimize
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
from storage.search import CANDIDATES, PostFilter, _where, optimize_search_index, search_posts

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


def build_index(path: Path, n: int, seed: int = 7, dates: str = "ordered") -> None:
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
            day = 1 + (i * 365 // n if dates == "ordered" else rng.randrange(365))
            created = (f"2024-{1 + (day - 1) // 31 % 12:02d}-{1 + (day - 1) % 28:02d}"
                       f"T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00.000Z")
            batch.append(("bench", "mastodon", str(10**17 + i), f"https://x.example/@{author}/{i}",
                          author, f"id{authors.index(author)}", created, text, "[]", "{}",
                          f"https://x.example/api/v1/statuses/{i}", "20240101000000"))
            if len(batch) >= 20_000:
                db.conn.executemany(sql, batch)
                batch.clear()
        if batch:
            db.conn.executemany(sql, batch)
    db.conn.close()


CLASSES = ("common word", "common AND rarer", "rare word", "prefix", "phrase OR word")
SORTS = ("relevance", "newest", "oldest")


def queries(q: int, seed: int = 11,
            day_ranges: bool = True) -> list[tuple[str, str, str, PostFilter]]:
    """(class, query, sort, filter): classes in turn, sorts in turn, some filtered."""
    rng = random.Random(seed)
    out = []
    for i in range(q):
        a, b = rng.choice(WORDS), RARE[rng.randrange(1, 300)]
        cls = CLASSES[i % 5]
        query = {"common word": a, "common AND rarer": f"{a} {b}", "rare word": b,
                 "prefix": f"{a[:3]}*", "phrase OR word": f'"{b} {a}" OR {a}'}[cls]
        flt = PostFilter()
        if i % 7 == 0:
            flt = PostFilter(author=f"user{rng.randrange(2000)}")
        elif i % 11 == 0:
            month = rng.randrange(1, 13)
            flt = PostFilter(since=f"2024-{month:02d}", until=f"2024-{month:02d}")
        elif i % 13 == 0 and day_ranges:  # one day: ~1/340 of the posts
            day = f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
            flt = PostFilter(since=day, until=day)
        out.append((cls, query, SORTS[(i // 5) % 3], flt))
    return out


def reference(conn: sqlite3.Connection, query: str, sort: str, flt: PostFilter,
              candidates: int, limit: int = 20) -> list:
    """The expected results, by a plain SQL formulation (slow; not timed)."""
    clauses, args = _where(flt)
    where = "".join(" AND " + c for c in clauses)
    if sort != "relevance":
        d = "DESC" if sort == "newest" else "ASC"
        return [r[0] for r in conn.execute(
            "SELECT p.post_id FROM posts p WHERE p.id IN (SELECT rowid FROM posts_fts WHERE"
            f" posts_fts MATCH ?){where} ORDER BY p.created_at IS NULL, p.created_at {d}, p.id {d}"
            " LIMIT ?", [query, *args, limit])]
    window = ("SELECT rowid FROM posts_fts WHERE posts_fts MATCH :q ORDER BY rowid DESC LIMIT"
              f" {candidates}")
    def ranked(inner: str) -> list:
        named = {f"a{i}": v for i, v in enumerate(args)}
        w = where
        for i in range(len(args)):
            w = w.replace("?", f":a{i}", 1)
        return [round(-r[0], 5) for r in conn.execute(
            "SELECT bm25(posts_fts, 1.0, :aw) FROM posts_fts JOIN posts p ON p.id = posts_fts.rowid"
            f" WHERE posts_fts MATCH :q AND posts_fts.rowid IN ({inner}){w}"
            " ORDER BY bm25(posts_fts, 1.0, :aw) LIMIT :n",
            {"q": query, "n": limit, "aw": 1.0, **named})]
    if flt.author:  # the engine narrows the FTS query by author: its few matches, all ranked
        return ranked("SELECT rowid FROM posts_fts WHERE posts_fts MATCH :q")
    total = conn.execute("SELECT count(*) FROM posts_fts WHERE posts_fts MATCH ?",
                         [query]).fetchone()[0]
    size = candidates
    while True:  # the engine doubles the window until the filters leave `limit` in it
        got = ranked(window.replace(f"LIMIT {candidates}", f"LIMIT {size}"))
        if len(got) >= limit or size >= total:
            return got
        size *= 2


def bench_search(path: Path, q: int, candidates: int = CANDIDATES, check: int = 0,
                 warmup: int = 0, day_ranges: bool = True) -> dict:
    db = open_database(path, readonly=True)
    cold = 0.0
    for _cls, query, sort, flt in queries(warmup, seed=99):
        # a server's connection after its first queries (other words than the timed ones)
        start = time.perf_counter()
        list(search_posts(db, query, flt, limit=20, sort=sort, candidates=candidates))
        cold = cold or time.perf_counter() - start
    per: dict[str, list[float]] = {}
    rows_total, empty, checked, wrong = 0, 0, 0, []
    for n, (cls, query, sort, flt) in enumerate(queries(q, day_ranges=day_ranges)):
        start = time.perf_counter()
        rows = list(search_posts(db, query, flt, limit=20, sort=sort, candidates=candidates))
        elapsed = time.perf_counter() - start
        per.setdefault(f"{cls} / {sort}", []).append(elapsed)
        per.setdefault("all", []).append(elapsed)
        rows_total += len(rows)
        empty += not rows
        if n < check:
            checked += 1
            want = reference(db.conn, query, sort, flt, candidates)
            got = ([r["post_id"] for r in rows] if sort != "relevance"
                   else [round(-r["rank"], 5) for r in rows])
            if got != want:
                wrong.append((query, sort, flt))
    stats = {}
    for key, times in per.items():
        times.sort()
        stats[key] = {"n": len(times), "p50_ms": statistics.median(times) * 1000,
                      "p95_ms": times[max(0, -(-len(times) * 95 // 100) - 1)] * 1000,
                      "max_ms": times[-1] * 1000}
    return {"classes": stats, "empty": empty, "rows": rows_total, "checked": checked,
            "wrong": wrong, "cold_ms": cold * 1000}


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
    ap.add_argument("--dates", choices=("random", "ordered"), default="random",
                    help="post dates unrelated to row ids (random) or rising with them")
    ap.add_argument("--db", type=Path, help="search this index instead of building one")
    ap.add_argument("--keep", type=Path, help="build the index here and keep it (for --db)")
    ap.add_argument("--candidates", type=int, default=CANDIDATES,
                    help="relevance window (1000000000: rank every match, as before issue 17)")
    ap.add_argument("--optimize", action="store_true",
                    help="merge posts_fts into one segment first (FTS5 optimize), as m007 does")
    ap.add_argument("--check", type=int, default=0, metavar="N",
                    help="verify the first N queries against a plain SQL formulation")
    ap.add_argument("--warmup", type=int, default=10, metavar="N",
                    help="untimed queries first (other words), as a running server has had;"
                         " the first one's time is printed as the cold start")
    ap.add_argument("--no-day-ranges", action="store_true",
                    help="the query set before one-day date ranges were added (1 in 13 queries)")
    ap.add_argument("--export", action="store_true",
                    help="also measure `export posts` peak memory at 10%% and 100%% of --posts")
    args = ap.parse_args(argv)
    if not args.skip_crawl:
        c = bench_crawl(args.concurrency)
        print(f"crawl: {c['posts']} posts, {c['responses']} captures, {c['bytes'] / 1e6:.1f} MB "
              f"in {c['seconds']:.1f}s -> {c['posts'] / c['seconds']:.1f} posts/s, "
              f"{c['responses'] / c['seconds']:.1f} captures/s (incl. process start-up)")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or args.keep or Path(tmp) / "index.db"
        if not args.db:
            start = time.perf_counter()
            build_index(path, args.posts, dates=args.dates)
            print(f"index: {args.posts} posts ({args.dates} dates) built in "
                  f"{time.perf_counter() - start:.1f}s")
        if args.optimize:
            start = time.perf_counter()
            db = open_database(path)
            optimize_search_index(db)
            db.conn.close()
            print(f"optimize: posts_fts merged into one segment in {time.perf_counter() - start:.1f}s")
        s = bench_search(path, args.queries, args.candidates, args.check, args.warmup,
                         not args.no_day_ranges)
        print(f"search ({args.queries} queries, limit 20, candidates {args.candidates}): "
              f"{s['rows']} rows, {s['empty']} queries without results; "
              f"{args.warmup} warm-up queries first (the first, cold: {s['cold_ms']:.1f} ms)")
        print("| class / sort | queries | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|---:|")
        for key in sorted(s["classes"], key=lambda k: (k == "all", k)):
            c = s["classes"][key]
            print(f"| {key} | {c['n']} | {c['p50_ms']:.1f} | {c['p95_ms']:.1f} | {c['max_ms']:.1f} |")
        if s["checked"]:
            print(f"checked {s['checked']} queries against plain SQL: {len(s['wrong'])} differ")
            for w in s["wrong"][:10]:
                print("  differs:", w)
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
