"""FTS5 options side by side (issue 17): index size and query latency per variant.

Builds (or reuses) a synthetic posts index (``bench_posts.build_index``), then creates one
external-content FTS5 table per variant over the same ``posts`` rows and times the benchmark's
query classes against each: rank over every match, rank over a bounded candidate window (the
``--window`` newest-indexed matches), time-ordered retrieval by rowid, and bm25 with column weights.

    python benchmarks/bench_search_options.py --posts 100000
    python benchmarks/bench_search_options.py --db /tmp/posts.db   # an index built earlier
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_posts import build_index

VARIANTS = {
    "full (before m007)": "detail=full",
    "full + prefix 3-6 (m007)": "detail=full, prefix='3 4 5 6'",
    "column": "detail=column",
    "none": "detail=none",
}
QUERIES = {
    "common word": ["archive", "harbour", "station", "winter"],
    "two words": ["archive term3", "museum term12", "river term40"],
    "phrase OR word": ['"term3 archive" OR archive', '"museum term12" OR museum'],
    "prefix": ["arc*", "mus*", "sta*", "archi*"],
    "rare": ["term150", "term220", "term97"],
}


def make_variant(conn: sqlite3.Connection, name: str, options: str) -> float:
    start = time.perf_counter()
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.execute(f"CREATE VIRTUAL TABLE {name} USING fts5(text, author, content='posts',"
                 f" content_rowid='id', tokenize='unicode61', {options})")
    conn.execute(f"INSERT INTO {name}({name}) VALUES ('rebuild')")
    conn.commit()
    return time.perf_counter() - start


def size_mb(conn: sqlite3.Connection, name: str) -> float:
    data = conn.execute(f"SELECT sum(length(block)) FROM {name}_data").fetchone()[0] or 0
    return data / 1e6


def timed(conn: sqlite3.Connection, sql: str, args: list, repeat: int) -> float | None:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return None  # e.g. phrase queries on detail=column/none
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def probe_us(conn: sqlite3.Connection, sql: str, query: str, total: int) -> float | None:
    """Mean cost of one ``MATCH ? AND rowid = ?`` lookup (what a time-ordered walk does per post)."""
    rng = random.Random(5)
    ids = [rng.randrange(1, total + 1) for _ in range(200)]
    start = time.perf_counter()
    try:
        for rowid in ids:
            conn.execute(sql, [query, rowid]).fetchall()
    except sqlite3.OperationalError:
        return None
    return (time.perf_counter() - start) / len(ids) * 1e6


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--db", type=Path, help="reuse this index (variants are added to it)")
    ap.add_argument("--window", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "index.db"
        if not args.db:
            build_index(path, args.posts)
        conn = sqlite3.connect(path)
        total = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
        print(f"{total} posts; median ms per query class (window = {args.window} newest-indexed"
              " matches)\n")
        print("| variant | build s | index MB | class | rank all | rank window | rowid desc | "
              "bm25(1, 0.5) | one probe µs |")
        print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
        for i, (label, options) in enumerate(VARIANTS.items()):
            name = f"bench_fts{i}"
            built = make_variant(conn, name, options)
            mb = size_mb(conn, name)
            for cls, qs in QUERIES.items():
                cols: list[list[float | None]] = [[], [], [], [], []]
                for q in qs:
                    try:
                        nth = conn.execute(f"SELECT rowid FROM {name} WHERE {name} MATCH ? ORDER"
                                           " BY rowid DESC LIMIT 1 OFFSET ?", [q, args.window - 1]
                                           ).fetchone()
                    except sqlite3.OperationalError:
                        nth = None  # phrases on detail=column/none: every column says n/a
                    bound = nth[0] if nth else 0
                    base = f"SELECT rowid FROM {name} WHERE {name} MATCH ?"
                    cols[0].append(timed(conn, base + " ORDER BY rank LIMIT 20", [q], args.repeat))
                    cols[1].append(timed(conn, base + " AND rowid >= ? ORDER BY rank LIMIT 20",
                                         [q, bound], args.repeat))
                    cols[2].append(timed(conn, base + " ORDER BY rowid DESC LIMIT 20", [q],
                                         args.repeat))
                    cols[3].append(timed(conn, base + f" ORDER BY bm25({name}, 1.0, 0.5) LIMIT 20",
                                         [q], args.repeat))
                    cols[4].append(probe_us(conn, base + " AND rowid = ?", q, total))
                cells = ["n/a" if None in c else f"{statistics.median(c):.1f}" for c in cols]
                print(f"| {label} | {built:.1f} | {mb:.0f} | {cls} | " + " | ".join(cells) + " |")
            conn.execute(f"DROP TABLE {name}")
            conn.commit()


if __name__ == "__main__":
    main()
