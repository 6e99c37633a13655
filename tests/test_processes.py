"""``crawl site --processes N``: N local processes on one shared frontier (a private
redis-server socialark starts and stops), with the guarantees of one process.

Real everything: the ``socialark`` CLI in a subprocess, a threaded HTTP server counting every
request it serves, ``kill -9`` of the parent, SIGINT, and a look at /proc to check that no
child process (crawl process or redis-server) outlives the crawl.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.static_site import generate
from tests.conftest import ROOT, socialark
from tests.sites.core_site import CoreSite
from tests.test_distributed import Site, _indexed_urls, _warc_responses

PAGES = 240
QUIET = ["-s", "ARCHIVE_PROGRESS=off", "--delay", "0", "--ignore-robots"]


@pytest.fixture(scope="module")
def site_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("site")
    return root, generate(root, pages=PAGES)


def _serve(site_root: tuple[Path, list[str]], delay: float) -> Iterator[Site]:
    site = Site(site_root[0], site_root[1], delay)
    try:
        yield site
    finally:
        site.close()


@pytest.fixture
def site(site_root: tuple[Path, list[str]]) -> Iterator[Site]:
    yield from _serve(site_root, 0.0)


@pytest.fixture
def slow_site(site_root: tuple[Path, list[str]]) -> Iterator[Site]:
    """Each response takes 50 ms: with 2 x 4 requests in flight the crawl lasts ≥ 1.5 s, so it
    can be interrupted mid-way even on a busy machine."""
    yield from _serve(site_root, 0.05)


def _crawl(site: Site, data_dir: Path, *extra: str, env: dict[str, str] | None = None,
           ) -> subprocess.CompletedProcess[str]:
    return socialark("crawl", "site", site.base + "index.html", "--processes", "2", *QUIET,
                     *extra, data_dir=data_dir, env=env)


def _start(site: Site, data_dir: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "crawl", "site", site.base + "index.html",
         "--processes", "2", "--concurrency", "4", *QUIET, "--data-dir", str(data_dir), *extra],
        cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
    )


def _processes_using(data_dir: Path) -> list[int]:
    """Pids of live processes whose command line names ``data_dir`` (children, redis-server)."""
    needle = str(data_dir).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().split(") ", 1)[1][:1]
        except OSError:
            continue
        if needle in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def _wait_none_left(data_dir: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _processes_using(data_dir):
            return
        time.sleep(0.1)
    raise AssertionError(f"processes outlived the crawl: {_processes_using(data_dir)}")


def _wait_pages(site: Site, n: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while sum(site.counts.values()) < n:
        if proc.poll() is not None:
            raise AssertionError(f"crawl exited {proc.returncode} early:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"crawl never reached {n} pages:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def _warc_pids(data_dir: Path) -> set[str]:
    return {p.name.split(".warc.gz")[0].rsplit("-", 1)[1]
            for p in (data_dir / "warcs").rglob("*.warc.gz")}


@pytest.mark.serial  # on a loaded machine one process may take every request before the other starts
def test_two_processes_capture_every_page_exactly_once(site: Site, tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = _crawl(site, data)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stderr.count("Crawl finished (exit 0)") == 1, "one summary for the crawl"

    fetched = site.fetched()
    assert site.page_urls() <= set(fetched)
    twice = {u: n for u, n in fetched.items() if n > 1}
    assert not twice, f"fetched more than once: {list(twice.items())[:5]}"
    indexed = _indexed_urls(data)
    assert set(indexed) == set(fetched) and max(indexed.values()) == 1
    assert _warc_responses(data) == indexed
    # Two processes ran (each keeps its own log file); each writes its own WARC files, though
    # on a site this small the first may take every request before the second asks.
    children = list((data / "state").rglob("*-worker-*.log"))
    assert len(children) == 2, children
    assert 1 <= len(_warc_pids(data)) <= 2, "each process writes its own WARC files"
    assert not list((data / "warcs").rglob("*.open"))
    with sqlite3.connect(data / "index.db") as db:
        (code, stats), = db.execute("SELECT exit_code, stats FROM crawls").fetchall()
    assert code == 0 and '"local/processes": 2' in stats
    _wait_none_left(data)


def test_max_pages_is_crawl_wide(site: Site, tmp_path: Path) -> None:
    proc = _crawl(site, tmp_path / "data", "--max-pages", "60", "--concurrency", "4")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "stopped at --max-pages" in proc.stderr
    total = sum(site.fetched().values())
    # Requests already in flight when the limit is reached finish: 2 processes x 4.
    assert 60 <= total <= 60 + 8, total
    assert max(_indexed_urls(tmp_path / "data").values()) == 1


@pytest.mark.serial
def test_sigint_stops_every_process_within_5s_and_resume_finishes(
    slow_site: Site, tmp_path: Path,
) -> None:
    data, log = tmp_path / "data", tmp_path / "crawl.log"
    proc = _start(slow_site, data, log)
    _wait_pages(slow_site, 40, proc, log)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(log.read_text()[-3000:]) from None
    took = time.monotonic() - sent
    text = log.read_text()
    assert code == 3, text[-3000:]
    assert took < 5, f"stopping took {took:.1f}s"
    assert text.count("Crawl interrupted") == 1, text[-3000:]
    assert not _processes_using(data), "a child outlived the interrupted crawl"
    before = set(slow_site.fetched())
    assert len(before) < PAGES, "the crawl finished before the signal"

    again = socialark("crawl", "site", "--resume", "--processes", "2", *QUIET,
                      data_dir=data)
    assert again.returncode == 0, again.stderr[-4000:]
    captured = _warc_responses(data)
    assert slow_site.page_urls() <= set(captured)
    # A stop cancels what was waiting: those pages were never received, so never captured twice.
    assert max(captured.values()) == 1, [u for u, n in captured.items() if n > 1][:5]


@pytest.mark.serial
def test_kill_9_of_the_parent_then_resume(slow_site: Site, tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "crawl.log"
    proc = _start(slow_site, data, log)
    _wait_pages(slow_site, 60, proc, log)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_none_left(data)  # the children and redis-server die with their parent
    fetched_before = Counter(slow_site.fetched())
    assert sum(fetched_before.values()) < PAGES

    again = socialark("crawl", "site", "--resume", "--processes", "2", "--concurrency", "4",
                      *QUIET, data_dir=data)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "nothing to resume" not in again.stderr
    captured = _warc_responses(data)
    missing = slow_site.page_urls() - set(captured)
    assert not missing, f"{len(missing)} pages lost: {sorted(missing)[:5]}"
    # Only what was leased at the kill may be fetched again: per process, the requests in
    # flight (4) and those done whose lease release had not reached Redis yet (releases ride
    # on the next pop; crawler/distributed/context.py), so 2 x 2 x 4 at most.
    refetched = sum(n - 1 for n in slow_site.fetched().values() if n > 1)
    assert refetched <= 16, refetched
    assert not list((data / "warcs").rglob("*.open"))
    _wait_none_left(data)


@pytest.mark.serial
def test_kill_9_of_one_process_loses_nothing(slow_site: Site, tmp_path: Path) -> None:
    """One crawl process dies (kill -9, as the OOM killer would): its leases go back to the
    queue at once, a new process takes its place, its open WARC is repaired and indexed."""
    data, log = tmp_path / "data", tmp_path / "crawl.log"
    proc = _start(slow_site, data, log)
    _wait_pages(slow_site, 40, proc, log)
    children = [pid for pid in _processes_using(data)
                if b"crawler.local.child" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(children) == 2, children
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the victim: a process with a WARC open
        writing = [pid for pid in children
                   if list((data / "warcs").rglob(f"*-{pid}.warc.gz.open"))]
        if writing:
            break
        time.sleep(0.05)
    assert writing, "no crawl process had a WARC open"
    victim = writing[-1]
    os.kill(victim, signal.SIGKILL)
    try:
        code = proc.wait(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(log.read_text()[-3000:]) from None
    text = log.read_text()
    assert code == 1, text[-3000:]  # finished, but a process died: the summary says so
    assert f"(pid {victim}) died (exit -9)" in text
    assert "Repaired WARC left open by" in text  # by the replacement, or at the end
    assert not list((data / "warcs").rglob("*.open"))
    captured = _warc_responses(data)
    missing = slow_site.page_urls() - set(captured)
    assert not missing, f"{len(missing)} pages lost: {sorted(missing)[:5]}"
    assert slow_site.page_urls() <= set(_indexed_urls(data))
    refetched = sum(n - 1 for n in slow_site.fetched().values() if n > 1)
    assert refetched <= 8, refetched  # what the dead process held: in flight + unreleased
    _wait_none_left(data)


def test_usage_errors(tmp_path: Path) -> None:
    both = socialark("crawl", "site", "http://127.0.0.1:9/", "--processes", "2", "--redis",
                     "redis://127.0.0.1:1/0", data_dir=tmp_path)
    assert both.returncode == 2 and "--processes runs its own private Redis" in both.stderr
    zero = socialark("crawl", "site", "http://127.0.0.1:9/", "--processes", "0",
                     data_dir=tmp_path)
    assert zero.returncode == 2 and "--processes" in zero.stderr
    nothing = socialark("crawl", "site", "--resume", "--processes", "2", data_dir=tmp_path)
    assert nothing.returncode == 2 and "nothing to resume" in nothing.stderr


def test_resume_of_a_one_process_crawl_with_processes_is_refused(tmp_path: Path) -> None:
    first = socialark("crawl", "site", "http://127.0.0.1:9/", *QUIET, data_dir=tmp_path)
    assert first.returncode in (0, 1), first.stderr[-2000:]
    again = socialark("crawl", "site", "--resume", "--processes", "2", data_dir=tmp_path)
    assert again.returncode == 2 and "resume it without --processes" in again.stderr


def test_without_redis_server_it_crawls_in_one_process(site: Site, tmp_path: Path) -> None:
    """A fresh machine without redis-server: one warning, then the crawl as one process."""
    data = tmp_path / "data"
    proc = _crawl(site, data, env={"PATH": str(tmp_path / "empty-path")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "needs redis-server (not found on PATH): crawling with one process" in proc.stderr
    assert site.page_urls() <= set(site.fetched())
    assert max(_indexed_urls(data).values()) == 1
    assert len(_warc_pids(data)) == 1


@pytest.mark.serial  # two full crawls side by side; fetched a Disallow-ed page before crawler/middlewares/robots.py
def test_core_site_same_captures_and_exit_code_as_one_process(core_site: CoreSite,
                                                               tmp_path: Path) -> None:
    """The core site (robots.txt, redirects, traps, cross-host requisites, a 500 page): two
    processes capture what one does, with the same exit code. Two known differences, both
    documented (docs/scaling.md §8): each process fetches robots.txt itself, and link-trap
    bounds are counted per process, so a few more trap URLs may be followed."""
    runs = {}
    for name, extra in (("one", ()), ("two", ("--processes", "2"))):
        proc = socialark("crawl", "site", core_site.base_url, "--scope", "host", "--delay", "0",
                         *extra, data_dir=tmp_path / name)
        with sqlite3.connect(tmp_path / name / "index.db") as db:
            urls = Counter(u for (u,) in db.execute(
                "SELECT url FROM captures WHERE record_type IN ('response', 'revisit')"))
        runs[name] = (proc.returncode, urls, proc.stderr)
    (code_one, one, _), (code_two, two, log_two) = runs["one"], runs["two"]
    assert code_one == code_two == 1, log_two[-3000:]  # the site's /error answers 500
    assert set(one) <= set(two)
    extra = set(two) - set(one)
    assert all(core_site.is_trap(u) for u in extra), sorted(extra)
    robots = {u for u in two if u.endswith("/robots.txt")}
    for url, n in two.items():
        assert n == one.get(url, 1) or (url in robots and n <= 2), (url, n, one.get(url))
