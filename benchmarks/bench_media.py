"""Huge media in bounded memory: peak RSS and time of socialark archiving large files vs curl.

Serves incompressible "video/mp4" files from a local server on 127.0.0.1
(``tests/sites/media_site.py``, streamed from disk) and, per scenario:

* **idle**: ``socialark crawl site`` of a 1 KB file (the crawl's own footprint);
* **one 1 GiB file**: socialark archiving it (``--scope page``), and ``curl -o`` of the same URL;
* **16 x 100 MiB at once**: socialark crawling a page that links 16 files (``--concurrency 16``),
  and 16 ``curl -o`` transfers in parallel (``curl --parallel --parallel-max 16``).

Reports wall seconds and the peak RSS of the crawl's whole process tree (sampled from /proc
every 0.1 s), its excess over the idle crawl (budget: < 300 MiB), and checks that each file's
record holds the served bytes (index row digest == sha256 of the file).

    python -m benchmarks.bench_media [--big-mib 1024] [--many 16] [--many-mib 100] [--tree DIR]

``--tree DIR`` runs the crawls from another source tree (e.g. ``/work/main``, to measure the code
before spooling; beware: that holds each body in memory several times). Not a test: figures
depend on the machine. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make "benchmarks" importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_crawl import PeakSampler
from tests.sites.media_site import MediaSite

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
BUDGET = 300 * MIB


@dataclass
class Run:
    scenario: str
    tool: str
    seconds: float
    peak_rss: int
    exit_code: int
    note: str = ""


def run_measured(cmd: list[str], env: dict[str, str] | None = None, log: Path | None = None,
                 cwd: Path = ROOT) -> tuple[float, int, int]:
    start = time.monotonic()
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=out)
    sampler = PeakSampler(proc.pid)
    sampler.start()
    code = proc.wait()
    seconds = time.monotonic() - start
    peak = sampler.stop()
    if log:
        out.close()  # type: ignore[union-attr]
    return seconds, peak, code


def crawl(url: str, data_dir: Path, tree: Path, log: Path, *extra: str) -> tuple[float, int, int]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "crawler.cli", "crawl", "site", url, "--data-dir", str(data_dir),
           "--delay", "0", "--ignore-robots", "--no-browser", *extra]
    return run_measured(cmd, env=env, log=log, cwd=tree)  # cwd first on sys.path with -m


def check_archived(data_dir: Path, site: MediaSite, names: list[str]) -> str:
    """'ok' when every file has a response row whose digest is the served file's sha256."""
    db = sqlite3.connect(data_dir / "index.db")
    rows = dict(db.execute(
        "SELECT url, digest FROM captures WHERE record_type = 'response'").fetchall())
    db.close()
    bad = []
    for name in names:
        want = "sha256:" + base64.b32encode(bytes.fromhex(site.sha256[name])).decode()
        if rows.get(site.url(name)) != want:
            bad.append(name)
    return "ok" if not bad else f"MISSING/WRONG: {', '.join(bad[:4])}"


def curl(urls: list[str], dest: Path, log: Path) -> tuple[float, int, int]:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = ["curl", "-s", "-S", "--fail"]
    if len(urls) > 1:
        cmd += ["--parallel", "--parallel-max", str(len(urls))]
    for i, url in enumerate(urls):
        cmd += ["-o", str(dest / f"f{i}"), url]
    return run_measured(cmd, log=log)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--many", type=int, default=16)
    ap.add_argument("--many-mib", type=int, default=100)
    ap.add_argument("--tree", type=Path, default=ROOT, help="source tree to run socialark from")
    ap.add_argument("--skip", default="", help="comma list of scenarios to skip: big,many")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    if not shutil.which("curl"):
        print("curl not found: apt-get install -y curl", file=sys.stderr)
        return 2
    skip = set(filter(None, args.skip.split(",")))
    work = Path(tempfile.mkdtemp(prefix="bench-media-"))
    files = {"tiny.json": 1000}
    if "big" not in skip:
        files["video.mp4"] = args.big_mib * MIB
    many = [f"clip{i:02d}.mp4" for i in range(args.many)] if "many" not in skip else []
    files.update({n: args.many_mib * MIB for n in many})
    runs: list[Run] = []
    try:
        print(f"generating {sum(files.values()) / MIB:.0f} MiB of random media in {work} ...", flush=True)
        with MediaSite(work / "files", files) as site:
            s, idle, code = crawl(site.url("tiny.json"), work / "idle", args.tree, work / "idle.log",
                                  "--scope", "page")
            runs.append(Run("idle (1 KB file)", "socialark", s, idle, code))
            if "big" not in skip:
                s, peak, code = crawl(site.url("video.mp4"), work / "big", args.tree,
                                      work / "big.log", "--scope", "page")
                note = check_archived(work / "big", site, ["video.mp4"])
                runs.append(Run(f"1 x {args.big_mib} MiB", "socialark", s, peak, code, note))
                shutil.rmtree(work / "big", ignore_errors=True)
                s, peak, code = curl([site.url("video.mp4")], work / "curl-big", work / "curl-big.log")
                runs.append(Run(f"1 x {args.big_mib} MiB", "curl -o", s, peak, code))
                shutil.rmtree(work / "curl-big", ignore_errors=True)
            if many:
                s, peak, code = crawl(site.base_url + "/files", work / "many", args.tree,
                                      work / "many.log", "--scope", "host", "--concurrency",
                                      str(args.many), "--exclude", r"video\.mp4|tiny\.json")
                note = check_archived(work / "many", site, many)
                runs.append(Run(f"{args.many} x {args.many_mib} MiB at once", "socialark", s, peak,
                                code, note))
                shutil.rmtree(work / "many", ignore_errors=True)
                s, peak, code = curl([site.url(n) for n in many], work / "curl-many",
                                     work / "curl-many.log")
                runs.append(Run(f"{args.many} x {args.many_mib} MiB at once", "curl --parallel",
                                s, peak, code))
                shutil.rmtree(work / "curl-many", ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_table(runs, idle)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2))
    return 0


def print_table(runs: list[Run], idle: int) -> None:
    print("\n| scenario | tool | seconds | peak RSS | above idle crawl | exit | archived |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in runs:
        above = ""
        if r.tool == "socialark" and not r.scenario.startswith("idle"):
            extra = r.peak_rss - idle
            above = f"{extra / MIB:+.0f} MiB " + ("(within budget)" if extra < BUDGET else "(OVER budget)")
        print(f"| {r.scenario} | {r.tool} | {r.seconds:.1f} | {r.peak_rss / MIB:.0f} MiB | {above} "
              f"| {r.exit_code} | {r.note} |")


if __name__ == "__main__":
    sys.exit(main())
