"""Issue 17 part 1: ``socialark serve``'s ``GET /search`` over real HTTP, ``search --sort``, the
search plans for common words (more matches than ``CANDIDATES``), the FTS triggers, and m007 on an
index written before it.

Every expectation is computed from the generated posts in Python (tokens, dates, authors),
independently of the engine.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from storage.db import open_database
from storage.schema import migrations
from storage.search import CANDIDATES, PostFilter, plan_search, search_posts
from tests.conftest import ROOT, socialark

WORDS = "river mountain museum night train station market garden".split()
COMMON = CANDIDATES + 1200  # posts with the word "common": more than the relevance window


@dataclass(frozen=True)
class Post:
    id: int
    collection: str
    platform: str
    post_id: str
    author: str
    author_id: str
    created_at: str | None
    text: str

    def tokens(self) -> list[str]:
        return re.findall(r"\w+", self.text.lower())


def _posts() -> list[Post]:
    rng = random.Random(17)
    authors = [("alice", "1001"), ("bob", "1002"), ("Carol", "1003"), ("dave", "1004")]
    out: list[Post] = []
    for i in range(COMMON + 400):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 9))]
        if i < COMMON:
            words.insert(rng.randrange(len(words) + 1), "common")
        if i % 50 == 7:
            words += ["harbour", "photos"]  # the phrase
        elif i % 50 == 21:
            words += ["photos", "of", "the", "harbour"]  # both words, not the phrase
        if i % 97 == 3:
            words.append("rareword")
        author, author_id = authors[i % 4] if i % 13 else authors[3]
        day = rng.randrange(366)
        created = None if i % 211 == 5 else (
            f"2024-{1 + day // 31 % 12:02d}-{1 + day % 28:02d}T{rng.randrange(24):02d}:00:00.000Z")
        out.append(Post(i + 1, "main" if i % 5 else "other", "bluesky" if i % 7 == 0 else "mastodon",
                        str(10**6 + i), author, author_id, created, " ".join(words)))
    rng.shuffle(out)  # ids no longer follow dates: the time order must come from created_at
    return [Post(n + 1, *(getattr(p, f) for f in ("collection", "platform", "post_id", "author",
                                                   "author_id", "created_at", "text")))
            for n, p in enumerate(out)]


POSTS = _posts()


def _insert(conn: sqlite3.Connection, posts: list[Post]) -> None:
    conn.executemany(
        "INSERT INTO posts (id, collection, platform, post_id, url, author, author_id, created_at,"
        " text, source_url, source_timestamp) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        [(p.id, p.collection, p.platform, p.post_id, f"https://x.example/@{p.author}/{p.post_id}",
          p.author, p.author_id, p.created_at, p.text,
          f"https://x.example/api/v1/statuses/{p.post_id}", "20240601000000") for p in posts])
    conn.commit()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("search-api")
    db = open_database(path / "index.db")
    _insert(db.conn, POSTS)
    db.conn.close()
    return path


@pytest.fixture(scope="module")
def base(data_dir: Path) -> Iterator[str]:
    """``socialark serve --port 0`` as a subprocess; yields ``http://127.0.0.1:PORT``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "serve", "--port", "0", "--quiet",
         "--replay-base", "http://replay.test", "--data-dir", str(data_dir)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()  # type: ignore[union-attr]
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert "Serving post search on http://127.0.0.1:" in line, (
            line, proc.stderr.read() if proc.poll() is not None else "")  # type: ignore[union-attr]
        yield line.split(" on ", 1)[1].strip().removesuffix("/search")
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # reads the pipes: a full stderr pipe cannot block the exit


def get(base: str, params: dict[str, str] | list[tuple[str, str]]) -> tuple[int, dict]:
    url = f"{base}/search?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            assert resp.headers["Content-Type"].startswith("application/json")
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        body = exc.read().decode()
        assert "Traceback" not in body
        return exc.code, json.loads(body)


def matching(word: str, flt: PostFilter | None = None) -> list[Post]:
    flt = flt or PostFilter()
    out = []
    for p in POSTS:
        if word not in p.tokens():
            continue
        if flt.author and flt.author.lower() not in (p.author.lower(), p.author_id):
            continue
        if flt.platform and p.platform != flt.platform:
            continue
        if flt.collection and p.collection != flt.collection:
            continue
        if flt.since and (p.created_at is None or p.created_at < flt.since):
            continue
        if flt.until and (p.created_at is None or p.created_at[:len(flt.until)] > flt.until):
            continue
        out.append(p)
    return out


def time_order(posts: list[Post], newest: bool) -> list[str]:
    dated = sorted((p for p in posts if p.created_at), key=lambda p: (p.created_at, p.id), reverse=newest)
    undated = sorted((p for p in posts if not p.created_at), key=lambda p: p.id, reverse=newest)
    return [p.post_id for p in dated + undated]


def test_the_common_word_takes_the_fast_plans(data_dir: Path) -> None:
    db = open_database(data_dir / "index.db", readonly=True)
    assert plan_search(db.conn, "common", PostFilter(), sort="relevance", limit=20).kind == "window"
    assert plan_search(db.conn, "common", PostFilter(), sort="newest", limit=20).kind == "walk"
    assert plan_search(db.conn, "rareword", PostFilter(), sort="newest", limit=20).kind == "exact"
    narrowed = plan_search(db.conn, "common", PostFilter(author="1002"), sort="relevance", limit=20)
    assert narrowed.kind == "exact" and 'author:"bob"' in narrowed.match


@pytest.mark.parametrize("sort", ["newest", "oldest"])
@pytest.mark.parametrize("flt", [PostFilter(), PostFilter(platform="bluesky"),
                                 PostFilter(collection="other", since="2024-03", until="2024-06"),
                                 PostFilter(author="carol")], ids=["all", "platform", "coll+dates", "author"])
def test_time_sorted_results_are_exact(base: str, sort: str, flt: PostFilter) -> None:
    params = {"q": "common", "sort": sort, "limit": "37"}
    params.update({k: v for k, v in vars(flt).items() if v})
    status, body = get(base, params)
    assert status == 200, body
    want = time_order(matching("common", flt), newest=sort == "newest")[:37]
    assert len(want) == 37 and [r["post_id"] for r in body["results"]] == want
    assert body["count"] == 37 and body["sort"] == sort


@pytest.mark.parametrize(("query", "plan"), [("comm*", "walk"), ("co*", "exact"), ("commo*", "walk")])
def test_prefix_queries_with_and_without_a_prefix_index(base: str, data_dir: Path, query: str,
                                                        plan: str) -> None:
    """3-6 characters have a prefix index (m007): walked; others are sorted exactly."""
    db = open_database(data_dir / "index.db", readonly=True)
    assert plan_search(db.conn, query, PostFilter(), sort="newest", limit=30).kind == plan
    stem = query.rstrip("*")
    want = time_order([p for p in POSTS if any(t.startswith(stem) for t in p.tokens())], newest=True)
    status, body = get(base, {"q": query, "sort": "newest", "limit": "30"})
    assert status == 200 and [r["post_id"] for r in body["results"]] == want[:30]


def test_time_sort_puts_undated_posts_last(base: str) -> None:
    want = time_order(matching("common"), newest=True)
    status, body = get(base, {"q": "common", "sort": "newest", "limit": "1000"})
    assert status == 200 and [r["post_id"] for r in body["results"]] == want[:1000]
    # a limit past every dated match reaches the undated ones (created_at NULL)
    dated = sum(1 for p in matching("rareword") if p.created_at)
    status, body = get(base, {"q": "rareword", "sort": "oldest", "limit": "1000"})
    assert [r["post_id"] for r in body["results"]] == time_order(matching("rareword"), newest=False)
    assert body["results"][dated - 1]["created_at"] is not None
    assert all(r["created_at"] is None for r in body["results"][dated:])


def _bm25_reference(db_path: Path, query: str, window: int | None, limit: int,
                    where: str = "") -> list[float]:
    """Scores of the best ``limit`` matches, ranked by a plain ``ORDER BY bm25`` (optionally
    among the ``window`` highest-rowid matches): an independent formulation of the contract."""
    conn = sqlite3.connect(db_path)
    inner = ("SELECT rowid FROM posts_fts WHERE posts_fts MATCH :q ORDER BY rowid DESC LIMIT :w"
             if window else "SELECT rowid FROM posts_fts WHERE posts_fts MATCH :q")
    rows = conn.execute(
        "SELECT bm25(posts_fts) FROM posts_fts JOIN posts p ON p.id = posts_fts.rowid"
        f" WHERE posts_fts MATCH :q AND posts_fts.rowid IN ({inner})"
        + where + " ORDER BY bm25(posts_fts) LIMIT :n", {"q": query, "w": window, "n": limit}
    ).fetchall()
    conn.close()
    return [round(-r[0], 6) for r in rows]


def test_relevance_ranks_by_bm25(base: str, data_dir: Path) -> None:
    # selective query: exact bm25 over every match
    status, body = get(base, {"q": "harbour", "limit": "15"})
    assert status == 200
    assert [round(r["score"], 6) for r in body["results"]] == _bm25_reference(
        data_dir / "index.db", "harbour", None, 15)
    assert all("<mark>harbour</mark>" in r["snippet"].lower() for r in body["results"])
    # common word: bm25 over the CANDIDATES most recently indexed matches
    status, body = get(base, {"q": "common", "limit": "25"})
    scores = [round(r["score"], 6) for r in body["results"]]
    assert scores == _bm25_reference(data_dir / "index.db", "common", CANDIDATES, 25)
    ids = {p.post_id for p in matching("common")}
    assert {r["post_id"] for r in body["results"]} <= ids


def test_relevance_with_a_filter_never_loses_results(base: str, data_dir: Path) -> None:
    """Filters leaving fewer than `limit` results inside the window: every match is ranked."""
    flt = PostFilter(author="bob", platform="bluesky")
    want = {p.post_id for p in matching("common", flt)}
    assert 0 < len(want) < 1000
    status, body = get(base, {"q": "common", "author": "bob", "platform": "bluesky", "limit": "1000"})
    assert status == 200 and {r["post_id"] for r in body["results"]} == want
    # the author narrowing (author:"bob" added to the FTS query) leaves every score as it was
    assert [round(r["score"], 6) for r in body["results"]] == _bm25_reference(
        data_dir / "index.db", "common", None, 1000,
        " AND p.author = 'bob' AND p.platform = 'bluesky'")


def test_a_window_too_narrow_for_the_filters_doubles_until_it_holds_limit(data_dir: Path) -> None:
    """A filter keeping ~1 match in 5 (collection "other") and a 1,000-match window: 300 results
    need a 2,000-match window, not every match. Scores equal bm25 over that window."""
    db = open_database(data_dir / "index.db", readonly=True)
    flt = PostFilter(collection="other")
    in_first = len(_bm25_reference(data_dir / "index.db", "common", 1000, 10_000,
                                   " AND p.collection = 'other'"))
    assert in_first < 300  # the first window is not enough
    rows = list(search_posts(db, "common", flt, limit=300, candidates=1000))
    want = _bm25_reference(data_dir / "index.db", "common", 2000, 300, " AND p.collection = 'other'")
    assert len(want) == 300
    assert [round(-r["rank"], 6) for r in rows] == want
    assert {r["collection"] for r in rows} == {"other"}
    with sqlite3.connect(data_dir / "index.db") as conn:
        window = {r[0] for r in conn.execute(
            "SELECT p.post_id FROM posts p WHERE p.id IN (SELECT rowid FROM posts_fts WHERE"
            " posts_fts MATCH 'common' ORDER BY rowid DESC LIMIT 2000)")}
    assert {r["post_id"] for r in rows} <= window  # not ranked among every match


def test_author_filter_by_name_any_case_or_account_id(base: str) -> None:
    want = {p.post_id for p in matching("rareword", PostFilter(author="carol"))}
    assert want
    for author in ("carol", "CAROL", "@Carol", "1003"):
        status, body = get(base, {"q": "rareword", "author": author, "limit": "1000"})
        assert status == 200 and {r["post_id"] for r in body["results"]} == want, author


def test_phrases_are_phrases(base: str) -> None:
    status, body = get(base, {"q": '"harbour photos"', "limit": "1000"})
    want = {p.post_id for p in POSTS if "harbour photos" in p.text}
    both = {p.post_id for p in POSTS if {"harbour", "photos"} <= set(p.tokens())}
    assert status == 200 and want and both - want
    assert {r["post_id"] for r in body["results"]} == want


def test_limit_and_result_fields(base: str) -> None:
    status, body = get(base, {"q": "common", "limit": "3", "sort": "newest"})
    assert status == 200 and body["count"] == 3 and len(body["results"]) == 3
    r = body["results"][0]
    post = next(p for p in POSTS if p.post_id == r["post_id"])
    assert (r["platform"], r["author"], r["created_at"], r["collection"]) == (
        post.platform, post.author, post.created_at, post.collection)
    assert r["url"] == f"https://x.example/@{post.author}/{post.post_id}"
    assert r["api_replay_url"] == (f"http://replay.test/{post.collection}/20240601000000/"
                                   f"https://x.example/api/v1/statuses/{post.post_id}")
    assert "page_replay_url" in r and "<mark>common</mark>" in r["snippet"]
    assert get(base, {"q": "nosuchwordanywhere"}) == (200, {
        "query": "nosuchwordanywhere", "sort": "relevance", "limit": 20, "count": 0, "results": []})


@pytest.mark.parametrize(("params", "message"), [
    ({}, "missing q"),
    ({"q": "  "}, "missing q"),
    ({"q": "common", "limit": "0"}, "invalid limit"),
    ({"q": "common", "limit": "abc"}, "invalid limit"),
    ({"q": "common", "limit": "1001"}, "invalid limit"),
    ({"q": "common", "limit": "99999999999999999999"}, "invalid limit"),
    ({"q": "common", "sort": "best"}, "invalid sort"),
    ({"q": "common", "since": "last week"}, "invalid date"),
    ({"q": "common", "until": "2024-13-45x"}, "invalid date"),
    ({"q": "common AND ("}, "invalid search query"),
    ({"q": '"unterminated'}, "invalid search query"),
    ({"q": "nosuchcolumn:word"}, "invalid search query"),
    ({"q": "NEAR(common river, x)"}, "invalid search query"),
    ({"q": "*"}, "invalid search query"),
    ({"q": "common", "author": "bob", "sort": "newest", "until": "yesterday"}, "invalid date"),
    ({"q": "common", "collection": "../etc"}, "collection"),
    ({"q": "common", "autor": "bob"}, "unknown parameter"),
    ([("q", "common"), ("q", "other")], "given 2 times"),
])
def test_bad_parameters_are_400_with_a_json_error(base: str, params: dict, message: str) -> None:
    status, body = get(base, params)
    assert status == 400, body
    assert set(body) == {"error"} and message in body["error"] and "\n" not in body["error"]


def test_search_cli_sort_matches_the_api(base: str, data_dir: Path) -> None:
    proc = socialark("search", "common", "--sort", "oldest", "--collection", "main", "--limit", "12",
                     "--json", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    cli = [json.loads(line)["post_id"] for line in proc.stdout.splitlines()]
    assert cli == time_order(matching("common", PostFilter(collection="main")), newest=False)[:12]
    _, body = get(base, {"q": "common", "sort": "oldest", "collection": "main", "limit": "12"})
    assert [r["post_id"] for r in body["results"]] == cli
    text = socialark("search", "common", "--sort", "newest", "--limit", "2", data_dir=data_dir)
    assert text.returncode == 0 and "2 results" in text.stderr and "score" not in text.stdout
    bad = socialark("search", "common", "--sort", "best", data_dir=data_dir)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_a_search_past_its_deadline_is_a_503_and_the_server_goes_on(data_dir: Path) -> None:
    """A query over its deadline (``--query-timeout``) is stopped inside SQLite and answered 503
    with a JSON error; the pooled connection serves the next request normally."""
    import threading

    from storage.cdx_server import make_server

    server = make_server(data_dir / "index.db", quiet=True, query_timeout=1e-6)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        # every match sorted: far more than SQLite's 10,000-step progress-handler period
        status, body = get(base, {"q": "common OR river", "sort": "newest", "limit": "1000"})
        assert status == 503, body
        assert set(body) == {"error"} and "took longer than" in body["error"]
        assert "--author" in body["error"]  # search advice, not the CDX one
        server.query_timeout = None
        status, body = get(base, {"q": "rareword", "limit": "5"})
        assert status == 200 and body["count"] == 5
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_serve_stops_on_a_signal_with_requests_in_flight(data_dir: Path, sig: str) -> None:
    """Ctrl-C or SIGTERM while searches run: the server says "stopped" and exits 0 at once
    (it used to raise KeyboardInterrupt wherever the main thread was, and then wait for every
    request thread)."""
    import signal
    import threading
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "serve", "--port", "0", "--quiet",
         "--data-dir", str(data_dir)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.readline()  # type: ignore[union-attr]
    base = proc.stdout.readline().split(" on ", 1)[1].strip().removesuffix("/search")  # type: ignore[union-attr]
    statuses: list[int] = []

    def search() -> None:
        try:
            statuses.append(get(base, {"q": "common OR river", "sort": "newest",
                                       "limit": "1000"})[0])
        except OSError:
            statuses.append(0)  # cut by the stop: fine, the point is the exit

    clients = [threading.Thread(target=search) for _ in range(6)]
    for t in clients:
        t.start()
    time.sleep(0.05)
    started = time.monotonic()
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "stopped" in err and "Traceback" not in err, err[-2000:]
    assert time.monotonic() - started < 5
    for t in clients:
        t.join(timeout=30)


def test_the_index_follows_posts_written_with_plain_sql(tmp_path: Path) -> None:
    """Rows inserted, edited and deleted behind socialark's back (sqlite3, Datasette) are found
    as they are now: the triggers keep posts_fts in step."""
    open_database(tmp_path / "index.db").conn.close()
    conn = sqlite3.connect(tmp_path / "index.db")
    _insert(conn, POSTS[:50])
    target = POSTS[0]
    conn.execute("UPDATE posts SET text = 'zebra crossing' WHERE id = ?", [target.id])
    conn.execute("DELETE FROM posts WHERE id = ?", [POSTS[1].id])
    conn.commit()
    conn.close()
    db = open_database(tmp_path / "index.db", readonly=True)
    assert [r["post_id"] for r in search_posts(db, "zebra", PostFilter())] == [target.post_id]
    old_word = target.tokens()[0]
    still = {r["post_id"] for r in search_posts(db, old_word, PostFilter(), limit=1000)}
    assert target.post_id not in still and POSTS[1].post_id not in still


def test_m007_upgrades_an_index_written_before_it(tmp_path: Path) -> None:
    old = tmp_path / "index.db"
    conn = sqlite3.connect(old)
    from sqlite_utils import Database

    migrations.apply(Database(conn), stop_before="m007_search_index")
    _insert(conn, POSTS[:300])
    lost = POSTS[7]  # an FTS row lost behind the triggers' back: the rebuild brings it back
    conn.execute("INSERT INTO posts_fts(posts_fts, rowid, text, author) VALUES ('delete', ?, ?, ?)",
                 [lost.id, lost.text, lost.author])
    conn.commit()
    assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'posts_author_id'").fetchone()
    word = lost.tokens()[0]
    conn.close()
    # an old index still serves searches read-only (no migration), then upgrades on open
    before = socialark("search", word, "--limit", "1000", "--json", data_dir=tmp_path)
    assert before.returncode == 0 and lost.post_id not in before.stdout
    db = open_database(old)
    names = {m.name for m in migrations.applied(db)}
    assert "m007_search_index" in names
    assert db.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'posts_author_id'").fetchone()
    [fts_sql] = db.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'posts_fts'").fetchone()
    assert "prefix='3 4 5 6'" in fts_sql and "content='posts'" in fts_sql
    assert db.conn.execute("SELECT v FROM posts_fts_config WHERE k = 'automerge'").fetchone() == (2,)
    db.conn.execute("INSERT INTO posts_fts(posts_fts, rank) VALUES ('integrity-check', 1)")
    db.conn.close()
    after = socialark("search", word, "--limit", "1000", "--json", "--author", lost.author_id,
                      data_dir=tmp_path)
    assert after.returncode == 0, after.stderr
    got = {json.loads(line)["post_id"] for line in after.stdout.splitlines()}
    assert got == {p.post_id for p in POSTS[:300]
                   if word in p.tokens() and p.author_id == lost.author_id}
    assert lost.post_id in got
