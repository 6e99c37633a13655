"""Indexing speed: ``socialark index`` vs ``cdxj-indexer`` on one generated WARC, three encodings.

Generates a WARC of mixed records (HTML, JSON API bodies, incompressible binary media, a large
video-like body now and then, request records, revisits, a warcinfo and metadata records) of
about ``--size`` MiB, and writes the same records three ways: per-record gzip (``.warc.gz``),
uncompressed (``.warc``) and one zstd frame per record (``.warc.zst``, as Wget-AT writes it
without a dictionary). Each file is indexed by each tool in a child process; wall time, MB/s
(file size on disk / wall time) and peak RSS (the tool process's ``ru_maxrss`` from ``wait4``,
taken by a small launcher so this process's own RSS does not leak into it) are
reported, with the number of index rows each produced. A tool that fails on a format is
reported with its exit code, not hidden.

    python -m benchmarks.bench_index --size 1024          # the issue's target: 1 GiB
    python -m benchmarks.bench_index --size 50 --json out.json
    python -m benchmarks.bench_index --size 200 --text-only  # many small records

``socialark index`` does more than cdxj-indexer (SQLite rows and post extraction);
``socialark-index-pass`` is its index pass alone (reader, capture rows, SQLite, file digest:
no CLI start-up, no post extraction), the part that does cdxj-indexer's job. Every run gets a
fresh output. The machine must be quiet for the figures to mean anything.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20


# --- the generated WARC ------------------------------------------------------------------


def _records(target_bytes: int, seed: int, text_only: bool = False) -> Iterator[bytes]:
    """Serialized uncompressed WARC records (warcio) until about ``target_bytes`` are made
    (``text_only``: HTML and JSON bodies only, many small records: per-record cost)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    rng = random.Random(seed)
    words = [f"word{i}" for i in range(2000)]
    made = 0

    factory = WARCWriter(io.BytesIO(), gzip=False, warc_version="WARC/1.1")

    def one(record) -> bytes:  # type: ignore[no-untyped-def]
        buf = io.BytesIO()
        WARCWriter(buf, gzip=False, warc_version="WARC/1.1").write_record(record)
        return buf.getvalue()

    yield one(factory.create_warcinfo_record("bench.warc", {"software": "bench_index"}))
    seen: list[tuple[str, str]] = []  # (url, payload digest) for revisits
    n = 0
    while made < target_bytes:
        n += 1
        kind = rng.random() * (0.75 if text_only else 1.0)
        url = f"https://site{n % 50}.example/{'p' if kind < 0.5 else 'api'}/{n}"
        if kind < 0.45:
            body = (("<html><body><p>" + " ".join(rng.choices(words, k=rng.randint(200, 2500)))
                     + "</p></body></html>").encode())
            ctype = "text/html; charset=utf-8"
        elif kind < 0.75:
            body = json.dumps([{"id": str(n * 100 + i), "text": " ".join(rng.choices(words, k=30))}
                               for i in range(rng.randint(5, 60))]).encode()
            ctype = "application/json"
        elif kind < 0.995:
            body = rng.randbytes(rng.randint(2_000, 120_000))
            ctype = "image/jpeg"
        else:
            body = rng.randbytes(rng.randint(2 * MiB, 8 * MiB))
            ctype = "video/mp4"
        if seen and rng.random() < 0.05:
            orig_url, digest = rng.choice(seen)
            rec = one(factory.create_revisit_record(
                url, digest=digest, refers_to_uri=orig_url, refers_to_date="2024-01-01T00:00:00Z",
                http_headers=StatusAndHeaders("200 OK", [("Content-Type", ctype)],
                                              protocol="HTTP/1.1")))
        else:
            head = StatusAndHeaders("200 OK", [("Content-Type", ctype),
                                               ("Content-Length", str(len(body)))],
                                    protocol="HTTP/1.1")
            rec = one(factory.create_warc_record(url, "response", payload=io.BytesIO(body),
                                                 http_headers=head))
            if len(seen) < 1000:
                digest = next((line.split(b":", 1)[1].strip().decode() for line in
                               rec.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
                               if line.lower().startswith(b"warc-payload-digest:")), "")
                seen.append((url, digest))
        yield rec
        req = one(factory.create_warc_record(url, "request", http_headers=StatusAndHeaders(
            f"GET /{n} HTTP/1.1", [("Host", f"site{n % 50}.example")], is_http_request=True)))
        yield req
        if n % 200 == 0:
            yield one(factory.create_warc_record(
                url, "metadata", payload=io.BytesIO(b"outlink: https://x.example/\r\n"),
                warc_content_type="application/warc-fields"))
        made += len(rec) + len(req)


def generate(out_dir: Path, size_mib: int, seed: int = 1, text_only: bool = False
             ) -> dict[str, Path]:
    """Write ``bench.warc``, ``bench.warc.gz`` and ``bench.warc.zst`` (same records)."""
    import zstandard

    paths = {"uncompressed": out_dir / "bench.warc", "gzip per record": out_dir / "bench.warc.gz",
             "zstd per record": out_dir / "bench.warc.zst"}
    cctx = zstandard.ZstdCompressor(level=3)
    with (paths["uncompressed"].open("wb") as raw, paths["gzip per record"].open("wb") as gz,
          paths["zstd per record"].open("wb") as zst):
        for rec in _records(size_mib * MiB, seed, text_only):
            raw.write(rec)
            gz.write(gzip.compress(rec, compresslevel=6, mtime=0))
            zst.write(cctx.compress(rec))
    return paths


# --- running the tools -------------------------------------------------------------------


@dataclass
class Run:
    tool: str
    encoding: str
    file_mib: float
    exit_code: int
    wall_s: float
    mb_per_s: float
    peak_rss_mib: float
    rows: int | None
    note: str = ""


TIMEOUT = 1800.0  # seconds per run (--timeout); a run killed at the limit is reported as such


# Linux keeps a process's peak RSS across exec: a tool started straight from this (large)
# process would report at least this process's RSS. A small launcher process starts the tool
# and reports the tool's own peak (wait4's ru_maxrss) in a file.
_LAUNCHER = """
import os, sys
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
os._exit(code if code >= 0 else 128 - code)
"""


def _run(cmd: list[str], cwd: Path, stdout: Path) -> tuple[int, float, float, str]:
    """(exit code, wall seconds, peak RSS MiB of the tool's process, stderr tail)."""
    import signal
    import threading

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rss_file = stdout.with_name(stdout.name + ".rss")
    rss_file.unlink(missing_ok=True)
    with stdout.open("wb") as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCHER, str(rss_file), *cmd],
                                cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True)
        timer = threading.Timer(TIMEOUT, lambda: os.killpg(proc.pid, signal.SIGKILL))
        timer.start()
        try:
            code = proc.wait()
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        rss = int(rss_file.read_text()) / 1024 if rss_file.exists() else float("nan")
        if wall >= TIMEOUT:
            return code, wall, rss, f"killed after {TIMEOUT:.0f}s"
        err.seek(0)
        lines = err.read()[-4000:].decode("utf-8", "replace").strip().splitlines()
    return code, wall, rss, _error_line(lines)


def _error_line(lines: list[str]) -> str:
    """The last error line of a child's stderr, printable and short (no binary excerpts)."""
    import re

    errors = [ln for ln in lines if re.match(r"^(Error|[\w.]*(Error|Exception|Failed))\b", ln)]
    line = (errors or lines or [""])[-1].split(", first line", 1)[0]
    return "".join(c for c in line if c.isprintable() and c.isascii())[:120]


def bench_socialark(path: Path, work: Path) -> tuple[int, float, float, int | None, str]:
    data_dir = work / f"sa-{path.name}"
    code, wall, rss, tail = _run([sys.executable, "-m", "crawler.cli", "index", str(path),
                                  "--collection", "bench", "--data-dir", str(data_dir)],
                                 ROOT, work / "sa.out")
    rows = None
    if (data_dir / "index.db").exists():
        import sqlite3

        with sqlite3.connect(data_dir / "index.db") as db:
            rows = db.execute("SELECT count(*) FROM captures").fetchone()[0]
    return code, wall, rss, rows, "" if code == 0 else tail


_INDEX_PASS = """
import sys
from pathlib import Path
from storage.db import open_database
from storage.index import index_paths
db = open_database(Path(sys.argv[2]) / "index.db")
index_paths(db, [Path(sys.argv[1])], collection="bench")
"""


def bench_socialark_index_pass(path: Path, work: Path) -> tuple[int, float, float, int | None, str]:
    """The index pass of ``socialark index`` alone (reader, capture rows, SQLite, file digest),
    without the CLI start-up and without post extraction: what cdxj-indexer's job compares to."""
    data_dir = work / f"sa-pass-{path.name}"
    data_dir.mkdir(parents=True, exist_ok=True)
    code, wall, rss, tail = _run([sys.executable, "-c", _INDEX_PASS, str(path), str(data_dir)],
                                 ROOT, work / "sa-pass.out")
    rows = None
    if (data_dir / "index.db").exists():
        import sqlite3

        with sqlite3.connect(data_dir / "index.db") as db:
            rows = db.execute("SELECT count(*) FROM captures").fetchone()[0]
    return code, wall, rss, rows, "" if code == 0 else tail


def bench_cdxj_indexer(path: Path, work: Path) -> tuple[int, float, float, int | None, str]:
    out = work / f"cdxj-{path.name}.cdxj"
    exe = [sys.executable, "-m", "cdxj_indexer.main"]
    code, wall, rss, tail = _run([*exe, str(path)], work, out)
    rows = sum(1 for _ in out.open("rb")) if out.exists() else None
    return code, wall, rss, rows, "" if code == 0 else tail


TOOLS = {"socialark": bench_socialark, "socialark-index-pass": bench_socialark_index_pass,
         "cdxj-indexer": bench_cdxj_indexer}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=1024, help="WARC size in MiB (default 1024)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--text-only", action="store_true",
                    help="HTML and JSON records only (no media): many small records")
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated: " + ", ".join(TOOLS))
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--keep", type=Path, help="generate into (and keep) this directory")
    ap.add_argument("--timeout", type=float, default=TIMEOUT,
                    help=f"kill a run after this many seconds (default {TIMEOUT:.0f})")
    args = ap.parse_args(argv)
    globals()["TIMEOUT"] = args.timeout
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-index-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    files = generate(work, args.size, args.seed, args.text_only)
    print(f"generated {args.size} MiB of records in {time.perf_counter() - t0:.1f}s: "
          + ", ".join(f"{p.name} {p.stat().st_size / MiB:.1f} MiB" for p in files.values()),
          file=sys.stderr)
    runs: list[Run] = []
    for encoding, path in files.items():
        mib = path.stat().st_size / MiB
        for tool in args.tools.split(","):
            code, wall, rss, rows, note = TOOLS[tool](path, work)
            runs.append(Run(tool, encoding, round(mib, 1), code, round(wall, 2),
                            round(mib * MiB / 1e6 / wall, 1), round(rss, 1), rows, note))
            print(f"  {tool:13} {encoding:16} exit {code} {wall:7.2f}s", file=sys.stderr)
    print(f"\n`python -m benchmarks.bench_index --size {args.size} --timeout {args.timeout:g}"
          f"{' --text-only' if args.text_only else ''}`\n")
    print("| encoding | file MiB | tool | exit | wall s | MB/s | peak RSS MiB | rows | note |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        speed = "-" if r.note.startswith("killed") else r.mb_per_s
        print(f"| {r.encoding} | {r.file_mib} | {r.tool} | {r.exit_code} | {r.wall_s} | "
              f"{speed} | {r.peak_rss_mib} | {r.rows if r.rows is not None else '-'} | "
              f"{r.note.replace('|', '/')[:120]} |")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
