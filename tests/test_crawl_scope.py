"""Scope, depth, excludes, robots.txt, limits and link-trap bounding behave as documented."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import socialark
from tests.sites.core_site import CoreSite


@pytest.fixture
def site() -> Iterator[CoreSite]:
    with CoreSite() as s:
        yield s


def _crawl(site: CoreSite, tmp_path: Path, *args: str, seed: str = "/") -> tuple[set[str], int]:
    data_dir = tmp_path / "archive"
    proc = socialark("crawl", "site", site.url(seed), "--delay", "0", *args, data_dir=data_dir)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    with sqlite3.connect(data_dir / "index.db") as conn:
        urls = {u for (u,) in conn.execute("SELECT url FROM captures")}
    return urls, proc.returncode


def _html_pages(site: CoreSite, urls: set[str]) -> set[str]:
    return urls & site.html_pages


def test_host_scope_gets_every_page_and_cross_host_requisites(site: CoreSite, tmp_path: Path) -> None:
    urls, _ = _crawl(site, tmp_path, "--scope", "host")
    assert site.html_pages <= urls
    assert site.requisite_urls <= urls  # incl. the font and image on the second host
    assert not any(u.startswith(site.second_base_url) and u.endswith(".html") for u in urls)


def test_robots_txt_is_obeyed_unless_ignored(site: CoreSite, tmp_path: Path) -> None:
    urls, _ = _crawl(site, tmp_path, "--scope", "host")
    assert not any(site.is_disallowed(u) for u in urls)
    assert not any(r.target.startswith("/private/") for r in site.requests)
    site.clear_requests()
    urls2, _ = _crawl(site, tmp_path / "2", "--scope", "host", "--ignore-robots")
    assert any(site.is_disallowed(u) for u in urls2)


def test_page_scope_takes_only_the_seed_and_its_requisites(site: CoreSite, tmp_path: Path) -> None:
    urls, _ = _crawl(site, tmp_path, "--scope", "page")
    assert _html_pages(site, urls) == {site.base_url}
    assert site.url("/static/site.css") in urls


def test_prefix_scope_stays_under_the_seed_path(site: CoreSite, tmp_path: Path) -> None:
    urls, _ = _crawl(site, tmp_path, "--scope", "prefix", seed="/section/a/")
    pages = _html_pages(site, urls)
    assert pages and all(urlsplit(u).path.startswith("/section/a/") for u in pages)
    assert {p for p in site.html_pages if urlsplit(p).path.startswith("/section/a/")} <= pages


def test_depth_limit(site: CoreSite, tmp_path: Path) -> None:
    urls, _ = _crawl(site, tmp_path, "--scope", "host", "--depth", "1")
    pages = _html_pages(site, urls)
    index_links = {site.url(p) for p in ("/section/a/", "/about.html")}
    assert site.base_url in pages
    assert index_links <= pages
    assert site.url("/section/a/page-1.html") not in pages  # two hops away


def test_exclude_regex(site: CoreSite, tmp_path: Path) -> None:
    urls, _ = _crawl(site, tmp_path, "--scope", "host", "--exclude", "/section/b/")
    assert not any("/section/b/" in u for u in _html_pages(site, urls))
    assert any("/section/a/" in u for u in urls)


def test_link_traps_are_bounded(site: CoreSite, tmp_path: Path) -> None:
    urls, _ = _crawl(site, tmp_path, "--scope", "host", "--max-query-variants", "5")
    calendar = [u for u in urls if "/calendar" in u]
    sessions = [u for u in urls if "/session" in u]
    traps = [u for u in urls if "/trap/" in u]
    assert 1 <= len(calendar) <= 5
    assert 1 <= len(sessions) <= 5
    assert max(urlsplit(u).path.count("/x") for u in traps) <= 3


def test_max_pages_stops_the_crawl(site: CoreSite, tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    proc = socialark("crawl", "site", site.base_url, "--scope", "host", "--delay", "0",
                     "--concurrency", "1", "--max-pages", "10", "--exclude", "/error$",
                     data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "stopped at --max-pages" in proc.stderr
    with sqlite3.connect(data_dir / "index.db") as conn:
        n = conn.execute("SELECT COUNT(*) FROM captures").fetchone()[0]
    assert 10 <= n <= 12


def test_max_bytes_stops_the_crawl(site: CoreSite, tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    proc = socialark("crawl", "site", site.base_url, "--scope", "host", "--delay", "0",
                     "--concurrency", "1", "--max-bytes", "300KB", "--exclude", "/error$",
                     data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "stopped at --max-bytes" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["crawl", "site", "not a url"], "not an absolute http(s) URL"),
        (["crawl", "site", "ftp://example.org/"], "not an absolute http(s) URL"),
        (["crawl", "site", "http://x.test/", "--scope", "galaxy"], "Invalid value for '--scope'"),
        (["crawl", "site", "http://x.test/", "--warc-size", "big"], "not a size"),
        (["crawl", "site", "http://x.test/", "--max-time", "soon"], "not a duration"),
        (["crawl", "site", "http://x.test/", "--exclude", "(unclosed"], "bad --exclude regex"),
        (["crawl", "site"], "give at least one URL"),
    ],
)
def test_bad_input_is_a_clear_usage_error(args: list[str], message: str, tmp_path: Path) -> None:
    proc = socialark(*args, data_dir=tmp_path / "a")
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unwritable_data_dir_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = socialark("crawl", "site", "http://127.0.0.1:9/", data_dir=blocker / "sub")
    assert proc.returncode == 2
    assert "not writable" in proc.stderr
    assert "Traceback" not in proc.stderr
