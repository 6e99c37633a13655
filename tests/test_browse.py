"""``socialark browse``: Datasette over a real crawl's index, clicked through in real Chromium.

A real ``crawl mastodon`` of the emulator builds the index; ``socialark browse`` serves it (a
subprocess, immutable), pywb serves the replay; Chromium opens ``/``, lands on ``posts``, checks
each row's replay link, runs the canned queries from the posts page and follows a replay link to
the archived API response that holds the post. Expectations come from SQL on the same index.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from crawler.browse import canned_queries, replay_sql
from crawler.browser.config import default_executable
from crawler.replay import pywb_replay
from storage.db import open_database
from storage.search import ReplayLinks, replay_url
from tests.conftest import ROOT, socialark
from tests.emulators.mastodon import MastodonEmulator
from tests.procs import free_port, stop_process

DELETED_AT = "2026-11-30T12:00:00Z"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@dataclass
class Archive:
    data_dir: Path
    deleted_post_id: str

    @property
    def index(self) -> Path:
        return self.data_dir / "index.db"

    def query(self, sql: str, *args: object) -> list[sqlite3.Row]:
        with sqlite3.connect(f"file:{self.index}?mode=ro", uri=True) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    data_dir = tmp_path_factory.mktemp("browse") / "archive"
    with MastodonEmulator(seed=2) as emu:
        proc = socialark("crawl", "mastodon", "--instance", emu.base_url, "--account", "alice",
                         "--delay", "0", "--collection", "masto", data_dir=data_dir)
        assert proc.returncode == 0, proc.stderr[-3000:]
    # Mark one post deleted, as a re-crawl would (posts.deleted_at: migration m006). Where this
    # tree's schema predates m006, the column is added to this test index only.
    with sqlite3.connect(data_dir / "index.db") as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(posts)")}
        if "deleted_at" not in columns:
            conn.execute("ALTER TABLE posts ADD COLUMN deleted_at TEXT")
        (post_id,) = conn.execute(
            "SELECT post_id FROM posts WHERE author = 'alice' AND text != '' ORDER BY created_at LIMIT 1"
        ).fetchone()
        conn.execute("UPDATE posts SET deleted_at = ? WHERE post_id = ?", [DELETED_AT, post_id])
    conn.close()
    return Archive(data_dir, post_id)


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"socialark browse exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout:.0f}s")


@contextmanager
def _browse(archive: Archive, *extra: str) -> Iterator[tuple[str, str]]:
    """(browse URL, replay base): ``socialark browse`` running on the archive."""
    port = free_port()
    replay_base = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "browse", "--data-dir", str(archive.data_dir),
         "--port", str(port), "--no-open", "--replay-base", replay_base, *extra],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_http(f"http://127.0.0.1:{port}/index/posts", proc)
        yield f"http://127.0.0.1:{port}", replay_base
    finally:
        stop_process(proc)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.browser
def test_browse_in_chromium_replay_links_and_canned_queries(archive: Archive) -> None:
    from playwright.sync_api import sync_playwright

    assert not (archive.data_dir / "index.db-wal").exists()  # so browse opens it immutable
    before = _sha256(archive.index)
    posts = {r["post_id"]: r for r in archive.query("SELECT * FROM posts")}
    authors = [(r["author"], r["n"]) for r in archive.query(
        "SELECT author, count(*) AS n FROM posts GROUP BY author ORDER BY n DESC, author")]
    assert len(posts) > 100 and len(authors) >= 2
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=default_executable() or None, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            with _browse(archive) as (base, replay_base):
                # "/" opens on the posts table
                page.goto(base + "/", wait_until="load", timeout=60_000)
                assert page.url == f"{base}/index/posts"
                rows = page.locator("table.rows-and-columns tbody tr")
                assert rows.count() == min(100, len(posts))  # Datasette's page size
                with sqlite3.connect(f"file:{archive.index}?mode=ro", uri=True) as conn:
                    links_of = ReplayLinks(conn, replay_base)
                    page_ts = {p: links_of.page_timestamp(r["collection"], r["url"]) for p, r in posts.items()}
                conn.close()
                pages_linked = 0
                for i in range(rows.count()):
                    post_id = rows.nth(i).locator("td.col-post_id").inner_text().strip()
                    row = posts[post_id]
                    expected = replay_url(replay_base, row["collection"], row["source_timestamp"],
                                          row["source_url"])
                    links = rows.nth(i).locator("a.socialark-replay")
                    assert links.count() == 2  # post_id and source_url
                    assert {links.nth(j).get_attribute("href") for j in range(2)} == {expected}
                    page_link = rows.nth(i).locator("td.col-url a.socialark-page-replay")
                    if page_ts[post_id]:
                        pages_linked += 1
                        assert page_link.get_attribute("href") == replay_url(
                            replay_base, row["collection"], page_ts[post_id], row["url"])
                    else:
                        assert page_link.count() == 0
                assert pages_linked > 0, "the crawl captured post pages"

                # a canned query, clicked from the posts page
                page.get_by_role("link", name="Most active authors").click()
                page.wait_for_url(f"{base}/index/most_active_authors", timeout=30_000)
                shown = [(r.locator("td.col-author").inner_text().strip(),
                          int(r.locator("td.col-posts").inner_text().strip()))
                         for r in page.locator("table.rows-and-columns tbody tr").all()]
                assert shown == authors

                page.go_back()
                page.get_by_role("link", name="Deleted posts").click()
                page.wait_for_url(f"{base}/index/deleted_posts", timeout=30_000)
                deleted = page.locator("table.rows-and-columns tbody tr").all()
                assert len(deleted) == 1
                assert deleted[0].locator("td.col-post_id").inner_text().strip() == archive.deleted_post_id
                assert deleted[0].locator("td.col-deleted_at").inner_text().strip() == DELETED_AT
                gone = posts[archive.deleted_post_id]
                gone_replay = replay_url(replay_base, gone["collection"], gone["source_timestamp"],
                                         gone["source_url"])
                assert deleted[0].locator("td.col-replay_url a").get_attribute("href") == gone_replay

                page.go_back()
                page.get_by_role("link", name="Media by type").click()
                page.wait_for_url(f"{base}/index/media_by_type", timeout=30_000)
                media = [(r["media_type"], r["n"]) for r in archive.query(
                    "SELECT media_type, count(*) AS n FROM media GROUP BY 1 ORDER BY n DESC")]
                assert media, "the crawl found media"
                shown = [(r.locator("td.col-media_type").inner_text().strip(),
                          int(r.locator("td.col-files").inner_text().strip()))
                         for r in page.locator("table.rows-and-columns tbody tr").all()]
                assert shown == media

                page.go_back()
                page.get_by_role("link", name="Posts per day").click()
                page.wait_for_url(f"{base}/index/posts_per_day", timeout=30_000)
                days = archive.query("SELECT substr(created_at, 1, 10) AS day, count(*) AS n FROM posts"
                                     " WHERE created_at IS NOT NULL GROUP BY day ORDER BY day DESC")
                shown = [(r.locator("td.col-day").inner_text().strip(),
                          int(r.locator("td.col-posts").inner_text().strip()))
                         for r in page.locator("table.rows-and-columns tbody tr").all()]
                assert shown == [(d["day"], d["n"]) for d in days]

                # follow a post's replay link: pywb serves the API response the post came from
                page.goto(f"{base}/index/posts", wait_until="load")
                first = page.locator("table.rows-and-columns tbody tr").first
                post_id = first.locator("td.col-post_id").inner_text().strip()
                href = first.locator("td.col-post_id a").get_attribute("href")
                db = open_database(archive.index, readonly=True)
                port = int(replay_base.rsplit(":", 1)[1])
                with pywb_replay(db, archive.data_dir, port):
                    first.locator("td.col-post_id a").click()
                    page.wait_for_load_state("load", timeout=60_000)
                    assert page.url == href
                    text = _frames_text(page, post_id)
                    # and a post's archived page (a Mastodon JS shell) from its url cell
                    page.goto(f"{base}/index/posts", wait_until="load")
                    with_page = page.locator("table.rows-and-columns tbody tr",
                                             has=page.locator("a.socialark-page-replay")).first
                    paged_id = with_page.locator("td.col-post_id").inner_text().strip()
                    link = with_page.locator("td.col-url a.socialark-page-replay")
                    page_href = link.get_attribute("href")
                    link.click()
                    page.wait_for_load_state("load", timeout=60_000)
                    assert page.url == page_href
                    html = _frame_html(page, "mp_/" + posts[paged_id]["url"])
                    assert f"/api/v1/statuses/{paged_id}" in html, html[:2000]
                assert post_id in text, text[:2000]
                assert posts[post_id]["author_id"] in text
        finally:
            browser.close()
    assert _sha256(archive.index) == before  # browsing never writes the index


def _frames_text(page, needle: str, timeout: float = 60) -> str:  # type: ignore[no-untyped-def]
    """Text of every frame (pywb's banner is the top frame, the archived response an iframe)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        texts = []
        for frame in page.frames:
            try:
                texts.append(frame.inner_text("body", timeout=2000))
            except Exception:  # a frame still blank or navigating
                continue
        text = "\n".join(texts)
        if needle in text:
            return text
        page.wait_for_timeout(500)
    return text


def test_replay_column_sql_gives_the_search_replay_url(archive: Archive) -> None:
    """The canned queries' ``replay_url`` is exactly ``storage.search.replay_url`` (also with a quote)."""
    for base in ("http://127.0.0.1:8080", "http://replay.example/it's/"):
        rows = archive.query(f"SELECT collection, source_timestamp, source_url, {replay_sql(base)} AS r"
                             " FROM posts")
        assert rows
        for row in rows:
            assert row["r"] == replay_url(base, row["collection"], row["source_timestamp"],
                                          row["source_url"])


def test_canned_queries_run_on_the_index(archive: Archive, tmp_path: Path) -> None:
    db = open_database(archive.index, readonly=True)
    queries = canned_queries(db, "http://127.0.0.1:8080")
    assert set(queries) == {"most_active_authors", "posts_per_day", "deleted_posts", "media_by_type"}
    for name, query in queries.items():
        assert archive.query(query["sql"]), name
    # an index without posts.deleted_at (before migration m006) gets no deleted-posts query
    fresh = open_database(tmp_path / "index.db")
    has_column = "deleted_at" in {c.name for c in fresh["posts"].columns}
    assert ("deleted_posts" in canned_queries(fresh, "http://x")) == has_column


def _run(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "crawler.cli", *args]
    return subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)


def test_browse_errors_are_one_line_exit_2(archive: Archive, tmp_path: Path) -> None:
    proc = _run("browse", "--data-dir", str(tmp_path / "nothing"), "--no-open")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"Error: no index at {tmp_path / 'nothing' / 'index.db'} (run a crawl or `socialark index` first)"]
    # Datasette not installed: Python's own way to make a module unimportable (sys.modules[x] = None)
    block = ("import sys; sys.modules['datasette'] = None; sys.argv[0] = 'socialark'; "
             "from crawler.cli import main; main()")
    proc = _run("browse", "--data-dir", str(archive.data_dir), "--no-open", code=block)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "Error: Datasette is not installed: pip install 'socialark[browse]'"]
    # the port is taken: Datasette cannot bind, browse says so instead of hanging
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _run("browse", "--data-dir", str(archive.data_dir), "--no-open", "--port", str(port))
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()  # Datasette's own log stays out of the way
    assert line.startswith(f"Error: Datasette did not start on 127.0.0.1:{port}: ")
    assert line.endswith("address already in use"), line


def test_browse_sees_a_running_crawls_rows(archive: Archive, tmp_path: Path) -> None:
    """With un-checkpointed WAL frames (a writer still open) browse opens read-only, not immutable."""
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(archive.index, live / "index.db")
    writer = sqlite3.connect(live / "index.db")
    try:
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("INSERT INTO posts (collection, platform, post_id, author, text)"
                       " VALUES ('masto', 'mastodon', 'written-while-browsing', 'zed', 'live')")
        writer.commit()
        assert (live / "index.db-wal").stat().st_size > 0
        with _browse(Archive(live, archive.deleted_post_id)) as (base, _):
            with urllib.request.urlopen(f"{base}/index/posts.json?post_id=written-while-browsing"
                                        "&_shape=array", timeout=30) as resp:
                rows = json.load(resp)
        assert [r["author"] for r in rows] == ["zed"]
    finally:
        writer.close()


def _frame_html(page, url_part: str, timeout: float = 60) -> str:  # type: ignore[no-untyped-def]
    """HTML of pywb's replay iframe whose URL contains ``url_part``, once it has loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for frame in page.frames:
            if url_part in frame.url:
                try:
                    return frame.content()
                except Exception:  # still navigating
                    break
        page.wait_for_timeout(500)
    raise AssertionError(f"no frame at {url_part}: {[f.url for f in page.frames]}")


def test_datasette_killed_under_browse_is_reported(archive: Archive) -> None:
    """kill -9 of the Datasette process: browse exits 1 and says so (it does not hang or exit 0)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "browse", "--data-dir", str(archive.data_dir),
         "--port", str(port), "--no-open"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]  # printed once Datasette answers
        assert first.startswith(f"Browse: http://127.0.0.1:{port}/index/posts"), first
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)],
                                  capture_output=True, text=True).stdout.split()
        assert len(children) == 1
        os.kill(int(children[0]), signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        stop_process(proc)  # type: ignore[arg-type]
    assert proc.returncode == 1, err
    assert err.strip().splitlines()[-1] == "Error: Datasette stopped: exit code -9"
