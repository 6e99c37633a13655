"""CDX server benchmark: a generated index of N captures, every match type x time range.

Builds ``index.db`` with N synthetic captures (default 1,000,000; one ``executemany`` in one
transaction), starts ``socialark serve`` as a subprocess, times queries of each match type
(exact / prefix / host / domain) under each time range over HTTP, checks every answer's count
against an independent computation over the generated data (structured host/path/time facts,
not SURT key ranges), and prints a markdown table of p50/p95 latency.

    python benchmarks/bench_cdx.py                 # 1,000,000 captures
    python benchmarks/bench_cdx.py --captures 20000 --queries 10

The generator and the independent counter are also used by tests/test_cdx.py and
tests/test_cdx_server.py on a small index.
"""

from __future__ import annotations

import argparse
import bisect
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.db import open_database
from storage.surt import surt

TLDS = ("com", "org", "net")
SUBDOMAINS = ("", "", "", "sub1.", "sub2.", "a.sub1.")
START = 1546300800  # 2019-01-01T00:00:00Z
SPAN = 6 * 365 * 86400  # to the end of 2024
TIME_RANGES: dict[str, tuple[str | None, str | None]] = {
    "all time": (None, None),
    "one year (2021)": ("2021", "2021"),
    "three months (2022-03..05)": ("202203", "202205"),
}


@dataclass(slots=True)
class GenUrl:
    """One canonical URL of the generated data, described by facts independent of SURT."""

    domain: str  # registered host, e.g. site7.org or 10.0.3.1
    host: str  # canonical host (no www), e.g. sub1.site7.org
    port: int | None
    path: str
    query: tuple[tuple[str, str], ...]  # sorted
    written: str  # host + port + path + query as written in captures (www, case, order vary)
    urlkey: str = ""
    timestamps: list[str] = field(default_factory=list)  # sorted


@dataclass
class Dataset:
    urls: list[GenUrl]
    by_domain: dict[str, list[GenUrl]]
    domains: list[str]

    @property
    def captures(self) -> int:
        return sum(len(u.timestamps) for u in self.urls)


def _domain(index: int) -> str:
    if index % 10 == 9:
        return f"10.0.{index // 10}.1"  # an IP host: no subdomains
    return f"site{index}.{TLDS[index % 3]}"


def _new_url(rnd: random.Random, domain: str) -> GenUrl:
    is_ip = domain[0].isdigit()
    sub = "" if is_ip else rnd.choice(SUBDOMAINS)
    host = sub + domain
    port = 8080 if rnd.random() < 0.05 else None
    path = f"/p{rnd.randrange(20)}/item{rnd.randrange(60)}"
    params = [(k, str(rnd.randrange(5))) for k in rnd.sample("abcd", rnd.choice((0, 0, 1, 2)))]
    query = tuple(sorted(params))
    shown_host = host
    if not sub and not is_ip and rnd.random() < 0.5:
        shown_host = "www." + host
    if rnd.random() < 0.2:
        shown_host = shown_host.upper()
    written = shown_host + (f":{port}" if port else "") + path
    if params:
        written += "?" + "&".join(f"{k}={v}" for k, v in params)  # unsorted: surt sorts
    return GenUrl(domain, host, port, path, query, written)


def generate(captures: int, seed: int = 20261129) -> Dataset:
    """About ``captures`` captures of ``captures // 5`` distinct URLs over ``urls // 1000`` domains."""
    rnd = random.Random(seed)
    n_urls = max(captures // 5, 1)
    n_domains = max(n_urls // 1000, 10)
    seen: set[tuple[object, ...]] = set()
    urls: list[GenUrl] = []
    while len(urls) < n_urls:
        url = _new_url(rnd, _domain(len(urls) % n_domains))
        ident = (url.host, url.port, url.path, url.query)
        if ident in seen:
            continue
        seen.add(ident)
        url.urlkey = surt("http://" + url.written)
        urls.append(url)
    for i in range(captures):
        url = urls[i % n_urls] if i < n_urls else urls[rnd.randrange(n_urls)]
        url.timestamps.append(
            time.strftime("%Y%m%d%H%M%S", time.gmtime(START + rnd.randrange(SPAN)))
        )
    by_domain: dict[str, list[GenUrl]] = defaultdict(list)
    for url in urls:
        url.timestamps.sort()
        by_domain[url.domain].append(url)
    return Dataset(urls, dict(by_domain), sorted(by_domain))


def rows(data: Dataset, collection: str = "bench") -> Iterator[tuple[object, ...]]:
    """``captures`` rows; each capture picks http or https at random (same urlkey)."""
    rnd = random.Random(7)
    n = 0
    for url in sorted(data.urls, key=lambda u: u.urlkey):  # index order: inserts stay fast
        for ts in url.timestamps:
            full = rnd.choice(("http://", "https://")) + url.written
            date = f"{ts[0:4]}-{ts[4:6]}-{ts[6:8]}T{ts[8:10]}:{ts[10:12]}:{ts[12:14]}Z"
            status = 200 if n % 10 else 404
            yield (collection, url.urlkey, full, ts, date, status, "text/html", f"sha1:{n:032d}",
                   1000 + n % 500, n * 2000, f"bench-{n // 10000:05d}.warc.gz", "response",
                   f"<urn:uuid:{n:032x}>")  # fmt: skip
            n += 1


def build_index(path: Path, data: Dataset) -> int:
    """Write ``data`` into a fresh index at ``path`` in one transaction; return the row count."""
    db = open_database(path)
    with db.conn:
        db.conn.executemany(
            "INSERT INTO captures (collection, urlkey, url, timestamp, warc_date, status, mime, "
            "digest, length, offset, filename, record_type, record_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(data),
        )
    count = db.execute("SELECT count(*) FROM captures").fetchone()[0]
    db.conn.close()
    return count


# --- the independent check: counts from the generated facts ------------------------------------


def _in_range(url: GenUrl, from_ts: str | None, to_ts: str | None) -> int:
    """How many of the URL's captures fall in [from, to], compared as year/month numbers."""
    lo = bisect.bisect_left(url.timestamps, (from_ts or "0").ljust(14, "0"))
    if to_ts is None:
        hi = len(url.timestamps)
    else:  # every timestamp whose first len(to_ts) digits are <= to_ts
        hi = bisect.bisect_right(url.timestamps, to_ts.ljust(14, "9"))
    return max(hi - lo, 0)


@dataclass(frozen=True)
class Case:
    """A query (CDX API parameters) and the set of generated URLs it must return."""

    match_type: str
    url: str
    select: Callable[[GenUrl], bool]
    domain: str


def cases(data: Dataset, per_type: int, seed: int = 1) -> dict[str, list[Case]]:
    rnd = random.Random(seed)
    out: dict[str, list[Case]] = defaultdict(list)
    for _ in range(per_type):
        u = rnd.choice(data.urls)
        scheme = rnd.choice(("http://", "https://"))
        out["exact"].append(Case("exact", scheme + u.written, lambda g, u=u: g is u, u.domain))
        prefix = u.path.rsplit("/", 1)[0] + "/"
        port = f":{u.port}" if u.port else ""
        out["prefix"].append(Case(
            "prefix", f"{scheme}{u.host}{port}{prefix}",
            lambda g, u=u, p=prefix: g.host == u.host and g.port == u.port and g.path.startswith(p),
            u.domain,
        ))  # fmt: skip
        out["host"].append(Case(
            "host", f"{scheme}{u.host}/", lambda g, u=u: g.host == u.host and g.port is None, u.domain
        ))  # fmt: skip
        d = rnd.choice(data.domains)
        out["domain"].append(Case(
            "domain", rnd.choice((d, "*." + d)) if not d[0].isdigit() else d,
            # as in pywb, a port on the host itself is outside the range, on a subdomain inside
            lambda g, d=d: (g.host == d and g.port is None) or g.host.endswith("." + d), d,
        ))  # fmt: skip
    return out


def expected_count(data: Dataset, case: Case, from_ts: str | None, to_ts: str | None) -> int:
    return sum(_in_range(g, from_ts, to_ts) for g in data.by_domain[case.domain] if case.select(g))


# --- the benchmark ------------------------------------------------------------------------------


SERVE = [sys.executable, "-c", "from crawler.cli import main; main()", "serve"]


def start_server(data_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``socialark serve`` on a free port; return the process and its ``/cdx`` endpoint."""
    proc = subprocess.Popen(
        [*SERVE, "--port", "0", "--quiet", "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("Serving CDX API on "):
        proc.kill()
        raise RuntimeError(f"socialark serve did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1]


def fetch(endpoint: str, params: dict[str, str]) -> tuple[int, bytes]:
    url = endpoint + "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=120) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def params_for(case: Case, from_ts: str | None, to_ts: str | None) -> dict[str, str]:
    params = {"url": case.url}
    if not case.url.startswith("*."):
        params["matchType"] = case.match_type
    if from_ts:
        params["from"] = from_ts
    if to_ts:
        params["to"] = to_ts
    return params


def run(captures: int, per_type: int, workdir: Path) -> str:
    t0 = time.perf_counter()
    data = generate(captures)
    t1 = time.perf_counter()
    count = build_index(workdir / "index.db", data)
    t2 = time.perf_counter()
    print(f"generated {count:,} captures of {len(data.urls):,} URLs over {len(data.domains)} domains "
          f"in {t1 - t0:.1f}s; indexed in {t2 - t1:.1f}s", file=sys.stderr)  # fmt: skip
    proc, endpoint = start_server(workdir)
    lines = [
        f"CDX server on {count:,} captures ({per_type} queries per cell; counts checked)",
        "",
        "| match type | time range | p50 ms | p95 ms | mean rows |",
        "|---|---|---:|---:|---:|",
    ]
    try:
        for match_type, todo in cases(data, per_type).items():
            for label, (from_ts, to_ts) in TIME_RANGES.items():
                latencies, sizes = [], []
                for case in todo:
                    start = time.perf_counter()
                    status, body = fetch(endpoint, params_for(case, from_ts, to_ts))
                    latencies.append((time.perf_counter() - start) * 1000)
                    got = body.count(b"\n")
                    want = expected_count(data, case, from_ts, to_ts)
                    if status != 200 or got != want:
                        raise AssertionError(
                            f"{case.url} {match_type} {label}: got {status}/{got}, want {want}"
                        )
                    sizes.append(got)
                q = statistics.quantiles(latencies, n=20, method="inclusive")
                lines.append(f"| {match_type} | {label} | {statistics.median(latencies):.1f} | {q[18]:.1f} "
                             f"| {statistics.mean(sizes):,.0f} |")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--captures", type=int, default=1_000_000)
    parser.add_argument(
        "--queries", type=int, default=30, help="queries per match type x time range"
    )
    parser.add_argument("--keep", type=Path, help="build the index in this directory and keep it")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        print(run(args.captures, args.queries, args.keep))
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(run(args.captures, args.queries, Path(tmp)))


if __name__ == "__main__":
    main()
