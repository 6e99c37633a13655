"""Browser crawl benchmark: pages/s and peak memory of ``crawl site --browser``.

Serves the SPA fixture (``tests/sites/spa_site.py``: every page an app shell whose posts come
from a gzip JSON API, with infinite scroll, lazy images, a POST, a font and a CSS background)
on loopback, then crawls ``--pages`` of its pages with each ``--concurrency`` value through the
real CLI. Reports, per run: exit code, pages rendered, wall time, pages/s (rendered pages over
Scrapy's elapsed time), and the peak memory of the crawler plus every browser process:

* ``peak RSS``: the sum of the resident sizes of the whole process tree (an upper bound:
  Chromium's processes share pages, counted once per process);
* ``peak PSS``: the proportional set size summed (shared pages split; closer to real use);
* ``RSS 1st/last quarter``: the peak tree RSS in the first and the last quarter of the run,
  which shows whether memory grows with the number of pages (context recycling bounds it).

    python -m benchmarks.bench_browser [--pages 200] [--concurrency 1,2,4] [--json out.json]
    python -m benchmarks.bench_browser --pages 1000 --concurrency 4      # the long run

Not a test: figures depend on the machine. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make "benchmarks" and "tests" importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.sites.spa_site import SpaSite

ROOT = Path(__file__).resolve().parent.parent
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            out.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    return out


def tree_memory(root: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes of ``root`` and all its descendants."""
    children, rss, pss, stack = _children(), 0, 0, [root]
    while stack:
        pid = stack.pop()
        try:
            rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
                    break
        except (OSError, IndexError, ValueError):
            pass
        stack.extend(children.get(pid, []))
    return rss, pss


class Sampler(threading.Thread):
    """Samples the tree's memory every ``interval`` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            rss, pss = tree_memory(self.pid)
            if rss:
                self.samples.append((time.monotonic(), rss, pss))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@dataclass
class Run:
    concurrency: int
    pages: int
    exit_code: int = -1
    rendered: int = 0
    wall: float = 0.0
    elapsed: float = 0.0
    peak_rss: int = 0
    peak_pss: int = 0
    rss_first_quarter: int = 0
    rss_last_quarter: int = 0
    stats: dict[str, object] = field(default_factory=dict)

    @property
    def pages_per_s(self) -> float:
        return self.rendered / self.elapsed if self.elapsed else 0.0


def crawl_stats(data_dir: Path) -> dict[str, object]:
    try:
        with sqlite3.connect(data_dir / "index.db") as conn:
            (raw,) = conn.execute("SELECT stats FROM crawls ORDER BY rowid DESC LIMIT 1").fetchone()
        return dict(json.loads(raw or "{}"))
    except (sqlite3.Error, TypeError):
        return {}


def run_once(pages: int, concurrency: int, workdir: Path, extra: list[str], timeout: float) -> Run:
    run = Run(concurrency, pages)
    data_dir = workdir / f"c{concurrency}"
    with SpaSite(page_count=pages - 1) as site:  # "/" plus /p/1../p/(pages-1)
        cmd = [sys.executable, "-m", "crawler.cli", "crawl", "site", site.base_url, "--scope", "host",
               "--delay", "0", "--browser", "--browser-concurrency", str(concurrency),
               "--load-more", "#load-more", "--data-dir", str(data_dir), *extra]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        started = time.monotonic()
        with open(workdir / f"c{concurrency}.log", "wb") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            sampler = Sampler(proc.pid)
            sampler.start()
            try:
                run.exit_code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                run.exit_code = proc.wait()
            sampler.stop()
        run.wall = time.monotonic() - started
    run.stats = crawl_stats(data_dir)
    run.rendered = int(run.stats.get("browser/pages", 0) or 0)
    run.elapsed = float(run.stats.get("elapsed_time_seconds", 0) or run.wall)
    if sampler.samples:
        run.peak_rss = max(s[1] for s in sampler.samples)
        run.peak_pss = max(s[2] for s in sampler.samples)
        quarter = max(1, len(sampler.samples) // 4)
        run.rss_first_quarter = max(s[1] for s in sampler.samples[:quarter])
        run.rss_last_quarter = max(s[1] for s in sampler.samples[-quarter:])
    return run


def mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


def table(runs: list[Run]) -> str:
    head = ("| pages at once | exit | pages rendered | wall s | pages/s | peak RSS | peak PSS "
            "| RSS 1st quarter | RSS last quarter | contexts | restarts |")
    lines = [head, "|" + "---|" * 11]
    for r in runs:
        lines.append(
            f"| {r.concurrency} | {r.exit_code} | {r.rendered}/{r.pages} | {r.wall:.1f} "
            f"| {r.pages_per_s:.2f} | {mb(r.peak_rss)} | {mb(r.peak_pss)} "
            f"| {mb(r.rss_first_quarter)} | {mb(r.rss_last_quarter)} "
            f"| {r.stats.get('browser/contexts', 0)} | {r.stats.get('browser/restarts', 0)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200, help="SPA pages to crawl (default 200)")
    parser.add_argument("--concurrency", default="1,2,4",
                        help="comma-separated --browser-concurrency values (default 1,2,4)")
    parser.add_argument("--timeout", type=float, default=3600, help="per-run limit in seconds")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    parser.add_argument("-s", "--set", dest="settings", action="append", default=[],
                        metavar="KEY=VALUE", help="extra setting for the crawls (repeatable)")
    args = parser.parse_args(argv)
    if args.pages < 2:
        parser.error("--pages must be at least 2")
    try:
        levels = [int(v) for v in args.concurrency.split(",") if v.strip()]
    except ValueError:
        parser.error("--concurrency takes numbers, e.g. 1,2,4")
    extra = [a for kv in args.settings for a in ("-s", kv)]
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as tmp:
        for level in levels:
            print(f"crawling {args.pages} SPA pages, {level} at once ...", flush=True)
            runs.append(run_once(args.pages, level, Path(tmp), extra, args.timeout))
    print(table(runs))
    if args.json:
        args.json.write_text(json.dumps(
            [{**asdict(r), "pages_per_s": r.pages_per_s} for r in runs], indent=2, default=str))
    return 0 if all(r.exit_code == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
