"""Crawl throughput benchmark: socialark vs plain Scrapy vs wget on one static site.

Generates a deterministic N-page site (``benchmarks/static_site.py``), serves it with nginx on
loopback (a fresh server and access log per tool; Python's ThreadingHTTPServer when nginx is
missing), then runs each tool once and reports wall time, HTML pages fetched (200 responses from
the server's access log, plus the tool's own count), pages/s and the peak RSS of the tool's
whole process tree (sampled from /proc every 0.1 s).

    python -m benchmarks.bench_crawl [--pages 2000] [--concurrency 16] [--processes 2]
        [--tools socialark,socialark-procs,scrapy,wget]

``socialark-procs`` is ``crawl site --processes N`` (issue 12 target: >= 1.6x plain Scrapy's
pages/s, each page fetched once: the report counts HTML pages fetched more than once).

Not a test: figures depend on the machine. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make "benchmarks" importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.static_site import generate

TARGET_RATIO = 0.80
PROCS_TOOL = "socialark-procs"  # socialark crawl site --processes N (issue 12: >= 1.6x Scrapy)
PROCS_TARGET_RATIO = 1.6
LOG_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------- web server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"web server did not start on port {port}")


class WebServer:
    """nginx (daemon off, 1 worker) with a private config, or the Python fallback."""

    def __init__(self, root: Path, workdir: Path, prefer: str = "nginx") -> None:
        self.root = root
        self.workdir = workdir
        self.nginx = shutil.which("nginx") or next(
            (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
        )
        if prefer == "python":
            self.nginx = None
            self.kind = "python ThreadingHTTPServer (--server python)"
        else:
            self.kind = "nginx" if self.nginx else "python ThreadingHTTPServer (nginx not found)"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = workdir / "access.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = free_port()
        if self.nginx:
            conf = self._nginx_conf()
            cmd = [self.nginx, "-c", str(conf), "-p", str(self.workdir)]
            self.proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        else:
            # http.server logs '"GET /path HTTP/1.1" 200 -' to stderr: same parser as nginx.
            self._stderr = log_path.open("wb")
            cmd = [
                sys.executable,
                "-m",
                "http.server",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--directory",
                str(self.root),
            ]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._stderr)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None
        if not self.nginx:
            self._stderr.close()

    def _nginx_conf(self) -> Path:
        tmp = self.workdir / "nginx-tmp"
        tmp.mkdir(exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the temp dir
        conf = self.workdir / "nginx.conf"
        conf.write_text(
            textwrap.dedent(f"""\
            {user}worker_processes 1;
            daemon off;
            pid {self.workdir}/nginx.pid;
            error_log {self.workdir}/nginx-error.log;
            events {{ worker_connections 1024; }}
            http {{
                log_format bench '"$request" $status $body_bytes_sent';
                access_log {self.log_path} bench;
                types {{ text/html html; text/css css; image/png png; }}
                default_type application/octet-stream;
                client_body_temp_path {tmp}/body;
                proxy_temp_path {tmp}/proxy;
                fastcgi_temp_path {tmp}/fastcgi;
                uwsgi_temp_path {tmp}/uwsgi;
                scgi_temp_path {tmp}/scgi;
                keepalive_requests 100000;
                server {{
                    listen 127.0.0.1:{self.port};
                    root {self.root};
                    index index.html;
                }}
            }}
            """)
        )
        return conf


@dataclass
class LogCounts:
    requests: int = 0
    ok: int = 0
    html_ok: int = 0
    unique_html: set[str] = field(default_factory=set)
    exact_html: set[str] = field(default_factory=set)  # request paths as sent
    repeated_html: int = 0  # 200 HTML answers to a path already answered: fetched twice


def read_access_log(path: Path) -> LogCounts:
    counts = LogCounts()
    if not path.exists():
        return counts
    for line in path.read_text(errors="replace").splitlines():
        m = LOG_LINE.search(line)
        if not m:
            continue
        counts.requests += 1
        if m["status"] != "200":
            continue
        counts.ok += 1
        req_path = m["path"].split("?", 1)[0]
        if req_path.endswith((".html", "/")):
            counts.html_ok += 1
            if req_path in counts.exact_html:
                counts.repeated_html += 1
            counts.exact_html.add(req_path)
            counts.unique_html.add(req_path + "index.html" if req_path.endswith("/") else req_path)
    return counts


# --------------------------------------------------------------------------- process tree RSS


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            pass
        stack.extend(children.get(pid, []))
    return total


class PeakSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


# --------------------------------------------------------------------------- tools


SCRAPY_SCRIPT = '''\
"""Plain Scrapy baseline: a minimal CrawlSpider, no archiving, HTTP cache off."""
import json
import sys
from urllib.parse import urlsplit

from scrapy.crawler import CrawlerProcess
from scrapy.linkextractors import LinkExtractor
from scrapy.spiders import CrawlSpider, Rule

url, concurrency, stats_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class BenchSpider(CrawlSpider):
    name = "bench"
    allowed_domains = [urlsplit(url).hostname]
    start_urls = [url]
    rules = (Rule(LinkExtractor(), callback="parse_page", follow=True),)

    def parse_page(self, response):
        return None


process = CrawlerProcess(settings={
    "CONCURRENT_REQUESTS": concurrency,
    "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
    "DOWNLOAD_DELAY": 0,
    "ROBOTSTXT_OBEY": False,
    "HTTPCACHE_ENABLED": False,
    "AUTOTHROTTLE_ENABLED": False,
    "TELNETCONSOLE_ENABLED": False,
    "LOG_LEVEL": "WARNING",
})
crawler = process.create_crawler(BenchSpider)
process.crawl(crawler)
process.start()
with open(stats_path, "w") as f:
    json.dump(crawler.stats.get_stats(), f, default=str)
'''


Commander = Callable[[str], list[str]]  # site URL -> argv


@dataclass
class Result:
    tool: str
    make_command: Commander | None  # None: the tool is not available
    command: list[str] = field(default_factory=list)
    wall: float = 0.0
    peak_rss: int = 0
    returncode: int | None = None
    log: LogCounts = field(default_factory=LogCounts)
    reported: int | None = None  # the tool's own count of 200 HTML pages
    note: str = ""

    @property
    def pages_per_s(self) -> float:
        return len(self.log.unique_html) / self.wall if self.wall else 0.0


def socialark_command() -> list[str] | None:
    exe = shutil.which("socialark")
    cmd = [exe] if exe else [sys.executable, "-c", "from crawler.cli import main; main()"]
    probe = subprocess.run([*cmd, "crawl", "site", "--help"], capture_output=True, check=False)
    return cmd if probe.returncode == 0 else None


def count_index_pages(db_path: Path) -> int | None:
    if not db_path.exists():
        return None
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT count(*) FROM captures WHERE status = 200 AND mime = 'text/html'"
            " AND record_type IN ('response', 'revisit')"
        ).fetchone()
    return int(row[0])


def run_tool(result: Result, server: WebServer, workdir: Path, timeout: float) -> Result:
    assert result.make_command is not None
    server.start(workdir / f"access-{result.tool}.log")  # fresh server, port and access log
    result.command = result.make_command(server.url)
    started = time.monotonic()
    try:
        with subprocess.Popen(
            result.command,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=(workdir / f"{result.tool}.stderr").open("wb"),
        ) as proc:
            sampler = PeakSampler(proc.pid)
            sampler.start()
            try:
                result.returncode = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                result.returncode = proc.wait()
                result.note = f"killed after {timeout:.0f} s"
            result.wall = time.monotonic() - started
            result.peak_rss = sampler.stop()
    finally:
        server.stop()
    result.log = read_access_log(server.log_path)
    return result


def plan(workdir: Path, concurrency: int, tools: list[str], processes: int = 2,
         ) -> list[Result]:
    runs = []
    variants = [("socialark", "socialark-data", [])]
    if processes > 1:
        variants.append((PROCS_TOOL, "socialark-procs-data", ["--processes", str(processes)]))
    cmd = socialark_command() if {v[0] for v in variants} & set(tools) else None
    for tool, data_name, extra in variants:
        if tool not in tools:
            continue
        if cmd is None:
            runs.append(Result(tool, None, note="skipped: `socialark crawl site` not available"))
            continue
        data_dir = workdir / data_name
        runs.append(Result(tool, lambda url, d=data_dir, x=extra: [
            *cmd, "crawl", "site", url, "--data-dir", str(d), "--concurrency", str(concurrency),
            "--delay", "0", "--ignore-robots", "--max-pages", "100000", *x,
        ]))
    if "scrapy" in tools:
        script = workdir / "scrapy_baseline.py"
        script.write_text(SCRAPY_SCRIPT)
        stats = workdir / "scrapy-stats.json"
        runs.append(
            Result(
                "scrapy",
                lambda url: [sys.executable, str(script), url, str(concurrency), str(stats)],
            )
        )
    if "wget" in tools:
        wget = shutil.which("wget")
        out = workdir / "wget"
        if wget is None:
            runs.append(Result("wget", None, note="skipped: wget not installed"))
        else:
            out.mkdir()
            runs.append(
                Result(
                    "wget",
                    lambda url: [
                        wget,
                        f"--warc-file={out / 'bench'}",
                        "-r",
                        "-l",
                        "inf",
                        "-np",
                        "-q",
                        f"--directory-prefix={out}",
                        url,
                    ],
                )
            )
    return runs


def tool_count(result: Result, workdir: Path) -> int | None:
    if result.tool == "socialark":
        return count_index_pages(workdir / "socialark-data" / "index.db")
    if result.tool == PROCS_TOOL:
        return count_index_pages(workdir / "socialark-procs-data" / "index.db")
    if result.tool == "scrapy":
        stats_path = workdir / "scrapy-stats.json"
        if stats_path.exists():
            stats = json.loads(stats_path.read_text())
            return int(stats.get("downloader/response_status_count/200", 0))
        return None
    return None  # wget: the access log is its count


# --------------------------------------------------------------------------- report


def median_run(runs: list[Result]) -> Result:
    """The run with the median wall time (the lower middle one for an even count)."""
    done = sorted((r for r in runs if r.make_command is not None), key=lambda r: r.wall)
    return done[(len(done) - 1) // 2] if done else runs[0]


def table(runs: dict[str, list[Result]], expected_pages: int) -> str:
    rows = [
        "| tool | exit | wall s (median) | wall s (all runs) | HTML pages (200, unique) "
        "| all 200s | tool's own count | pages/s | peak RSS MiB | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    results = []
    for tool_runs in runs.values():
        r = median_run(tool_runs)
        results.append(r)
        if r.make_command is None:
            rows.append(f"| {r.tool} | - | - | - | - | - | - | - | - | {r.note} |")
            continue
        own = "-" if r.reported is None else str(r.reported)
        walls = ", ".join(f"{x.wall:.1f}" for x in tool_runs)
        peak = max(x.peak_rss for x in tool_runs)
        rows.append(
            f"| {r.tool} | {r.returncode} | {r.wall:.2f} | {walls}"
            f" | {len(r.log.unique_html)}/{expected_pages} | {r.log.ok} | {own}"
            f" | {r.pages_per_s:.1f} | {peak / 2**20:.0f} | {r.note} |"
        )
    by_tool = {r.tool: r for r in results if r.wall}
    lines = ["\n".join(rows), ""]
    if "socialark" in by_tool and "scrapy" in by_tool and by_tool["scrapy"].pages_per_s:
        ratio = by_tool["socialark"].pages_per_s / by_tool["scrapy"].pages_per_s
        verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
        lines.append(
            f"socialark / scrapy throughput: {ratio:.2f} ({verdict} target >= {TARGET_RATIO:.2f})"
        )
    if PROCS_TOOL in by_tool and "scrapy" in by_tool and by_tool["scrapy"].pages_per_s:
        procs = by_tool[PROCS_TOOL]
        ratio = procs.pages_per_s / by_tool["scrapy"].pages_per_s
        verdict = "meets" if ratio >= PROCS_TARGET_RATIO else "BELOW"
        lines.append(f"{PROCS_TOOL} / scrapy throughput: {ratio:.2f} ({verdict} target >= "
                     f"{PROCS_TARGET_RATIO:.2f}); HTML pages fetched more than once: "
                     f"{procs.log.repeated_html}")
    peaks = {tool: max(x.peak_rss for x in tool_runs) for tool, tool_runs in runs.items()}
    if "socialark" in by_tool and "scrapy" in by_tool and peaks["scrapy"]:
        lines.append(
            f"socialark / scrapy peak RSS (max of runs): {peaks['socialark'] / peaks['scrapy']:.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Crawl benchmark: socialark vs Scrapy vs wget")
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--tools",
        default=f"socialark,{PROCS_TOOL},scrapy,wget",
        help=f"comma-separated subset of socialark,{PROCS_TOOL},scrapy,wget",
    )
    parser.add_argument("--processes", type=int, default=2,
                        help=f"processes of the {PROCS_TOOL} run (crawl site --processes N)")
    parser.add_argument("--timeout", type=float, default=1800, help="per-tool limit, seconds")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per tool, interleaved; the median is reported"
    )
    parser.add_argument("--server", choices=["nginx", "python"], default="nginx")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, WARCs)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]

    workdir = Path(tempfile.mkdtemp(prefix="socialark-bench-"))
    try:
        site = workdir / "site"
        pages = generate(site, args.pages)
        server = WebServer(site, workdir, args.server)
        print(
            f"site: {len(pages)} HTML pages; server: {server.kind}; "
            f"concurrency {args.concurrency}; python {sys.version.split()[0]}",
            flush=True,
        )
        runs: dict[str, list[Result]] = {}
        for rep in range(1, args.repeat + 1):
            repdir = workdir / f"run-{rep}"  # fresh data dirs: no resume, no cross-run dedup
            repdir.mkdir()
            for result in plan(repdir, args.concurrency, tools, args.processes):
                runs.setdefault(result.tool, []).append(result)
                if result.make_command is None:
                    continue
                print(f"run {rep}: {result.tool} ...", file=sys.stderr, flush=True)
                run_tool(result, server, repdir, args.timeout)
                result.reported = tool_count(result, repdir)
        print(table(runs, len(pages)))
        if args.json:
            every = [_as_json(r) for tool_runs in runs.values() for r in tool_runs]
            args.json.write_text(json.dumps(every, indent=2))
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _as_json(r: Result) -> dict[str, object]:
    return {
        "tool": r.tool,
        "command": r.command,
        "returncode": r.returncode,
        "wall_s": r.wall,
        "html_pages": len(r.log.unique_html),
        "ok_responses": r.log.ok,
        "requests": r.log.requests,
        "tool_count": r.reported,
        "pages_per_s": r.pages_per_s,
        "peak_rss_bytes": r.peak_rss,
        "note": r.note,
    }


if __name__ == "__main__":
    raise SystemExit(main())
