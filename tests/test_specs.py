"""Platform spec files (``crawl ids --spec``) and the Parler fire drill (issue 12).

The spec crawls run against the Parler-2021 emulator (tests/emulators/parler.py: four loopback
hosts). The drill (tests/firedrill.py) runs two workers on a real redis-server, mirrors to a
moto S3 server, kills one worker with SIGKILL mid-way, starts a replacement, takes the platform
down before the end, and is judged only from the bucket.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import socialark
from tests.emulators.parler import USERS, ParlerEmulator
from tests.firedrill import DrillConfig, run_drill

POST_COLUMNS = ("platform, post_id, url, author, author_id, created_at, text, repost_of_id, "
                "reply_count, repost_count, like_count, media")


def _posts(data_dir: Path) -> dict[str, tuple[object, ...]]:
    with sqlite3.connect(data_dir / "index.db") as db:
        return {r[1]: r for r in db.execute(f"SELECT {POST_COLUMNS} FROM posts")}


def _captured(data_dir: Path) -> set[str]:
    with sqlite3.connect(data_dir / "index.db") as db:
        return {u for (u,) in db.execute(
            "SELECT url FROM captures WHERE record_type IN ('response', 'revisit')")}


def _spec_args(emu: ParlerEmulator) -> list[str]:
    return ["--spec", "parler-2021"] + [a for v in emu.spec_vars for a in ("--var", v)]


def _expected_row(emu: ParlerEmulator, hex_id: str) -> tuple[object, ...]:
    from tests.emulators.parler import abbreviate

    n = emu.data.n_of(hex_id)
    assert n is not None
    p = emu.data.post(n)
    assert p is not None
    parent = emu.data.post(p.parent) if p.parent else None
    like = p.upvotes if p.upvotes < 1000 else round(float(abbreviate(p.upvotes)[:-1]) * 1000)
    media = [emu.image_url(p)] if p.image else []
    return ("parler", p.hex_id, f"{emu.url('web')}/post/{p.hex_id}", USERS[p.user][1],
            USERS[p.user][0], p.created_iso, p.body, parent.hex_id if parent else None,
            p.comments, p.reposts, like, media)


def test_parler_spec_crawl_archives_everything_and_fills_posts(tmp_path: Path) -> None:
    import json

    data_dir = tmp_path / "a"
    with ParlerEmulator(last_id=150, p_503=0.0) as emu:
        proc = socialark("crawl", "ids", *_spec_args(emu), "--range", "1-150", "--delay", "0",
                         "--concurrency", "8", data_dir=data_dir)
        assert proc.returncode == 0, proc.stderr[-3000:]
        served = emu.served_200()
        truth = emu.truth_posts()
    gone = [n for n in range(1, 151) if emu.data.post(n).state != "ok"]  # type: ignore[union-attr]
    assert gone, "the sample holds deleted posts"
    assert f"ids: {150 - len(gone)} hits, {len(gone)} misses" in proc.stderr

    # Every answer served with 200 is archived: lookups, API JSON, pages, images, videos.
    assert served <= _captured(data_dir)
    kinds = {"/uuidConversion/", "/v1/post?id=", "/post/", "_256", ".png", "_small.mp4"}
    assert all(any(k in u for u in served) for k in kinds)
    originals = {u for u in served if u.endswith(".mp4") and "_small" not in u}
    assert originals, "the original of each _small video rendition is fetched too"
    with sqlite3.connect(data_dir / "index.db") as db:
        redirects = {u for (u,) in db.execute("SELECT url FROM captures WHERE status = 302")}
    assert redirects and all("/l/v" in u for u in redirects)  # the shortlinks' 302s

    # posts: platform parler, hex id, author, ISO created_at, text; echoes with their parent.
    rows = _posts(data_dir)
    assert set(rows) == set(truth)
    assert any(r[7] for r in rows.values()), "the sample holds echoes"
    for hex_id, row in rows.items():
        expected = _expected_row(emu, hex_id)
        assert row[:11] == expected[:11] and json.loads(str(row[11])) == expected[11], row
    echo = next(r for r in rows.values() if r[7])
    assert echo[7] in rows and echo[6] == ""

    # The crawl records its spec: index --rebuild extracts the same posts from the WARCs alone.
    with sqlite3.connect(data_dir / "index.db") as db:
        (config,) = db.execute("SELECT config FROM crawls").fetchone()
    assert json.loads(config)["args"]["spec_name"] == "parler-2021 (built in)"
    socialark("index", "--rebuild", data_dir=data_dir, check=True)
    assert _posts(data_dir) == rows


def test_spec_file_with_templates_and_ids_file(tmp_path: Path) -> None:
    """A spec of one's own: no lookup (ids are the keys), a --var override, an --ids-file."""
    spec = tmp_path / "mini.toml"
    spec.write_text('''
[spec]
name = "mini"
platform = "miniparler"
ids = "hex"

[vars]
api = "https://api.invalid"

[item]
api = ["{api}/v1/post?id={id}"]

[media]
json = ["urls[*].long"]

[posts]
roots = ["post"]
post_id = "_id"
author = "$.users[id={creator}].name"
created_at = "createdAt"
created_at_format = "%Y%m%d%H%M%S"
text = "body"
''')
    with ParlerEmulator(last_id=40, p_503=0.0) as emu:
        wanted = [p.hex_id for n in range(1, 41) if (p := emu.data.post(n)) and p.state == "ok"
                  and p.image][:5]
        ids = tmp_path / "ids.txt"
        ids.write_text("\n".join(wanted) + "\n")
        proc = socialark("crawl", "ids", "--spec", str(spec), "--var", f"api={emu.url('api')}",
                         "--ids-file", str(ids), "--delay", "0", data_dir=tmp_path / "a")
        assert proc.returncode == 0, proc.stderr[-3000:]
        images = {u for u in emu.served_200() if u.endswith(".png")}
    rows = _posts(tmp_path / "a")
    assert set(rows) == set(wanted)
    for hex_id, row in rows.items():
        p = emu.data.post(emu.data.n_of(hex_id) or 0)
        assert p is not None
        assert row[0] == "miniparler" and row[3] == USERS[p.user][2] and row[5] == p.created_iso
    assert len(images) == len(wanted)  # media from the JSON paths only


BAD_SPECS = [
    ("[spec]\nname = 'x'\n", "spec.platform", "missing"),
    ("[spec]\nname = 'x'\nplatform = 'x'\n", "[item]", "missing table"),
    ("[spec]\nname='x'\nplatform='x'\n[item]\napi=['{apii}/p/{id}']\n", "item.api",
     "unknown placeholder {apii}"),
    ("[spec]\nname='x'\nplatform='x'\n[item]\napi=['https://h/{key}']\n", "item.api",
     "unknown placeholder {key}"),
    ("[spec]\nname='x'\nplatform='x'\n[lookup]\nurl='https://h/{id}'\nregex='[0-9a-f]+'\n"
     "[item]\napi=['https://h/p/{key}']\n", "lookup.regex", "capturing group"),
    ("[spec]\nname='x'\nplatform='x'\n[item]\napi=['https://h/{id}']\n[posts]\npost_id='a[x]'\n",
     "posts.post_id", "bad JSON path"),
    ("[spec]\nname='x'\nplatform='x'\n[item]\npage='ftp://h/{id}'\n", "item.page",
     "not an http(s) URL"),
    ("[spec]\nname='x'\nplatform='x'\n[item]\napi=['https://h/{id}']\n[politeness]\n"
     "'h' = { delay = -1 }\n", "politeness.'h'.delay", ">= 0"),
    ("[spec]\nname='x'\nplatform='x'\n[item]\napi=['https://h/{id}']\n[deleted]\nbody=['(']\n",
     "deleted.body", "bad regex"),
    ("[spec]\nname='x'\nplatform='x'\n[itme]\n", "[itme]", "unknown table"),
    ("[spec\nname='x'\n", "-", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "key", "problem"), BAD_SPECS)
def test_spec_errors_are_one_line_with_file_key_and_problem(
    tmp_path: Path, text: str, key: str, problem: str,
) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    proc = socialark("crawl", "ids", "--spec", str(spec), "--range", "1-3",
                     data_dir=tmp_path / "a")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(f"Error: spec {spec}: {key}: "), proc.stderr
    assert problem in lines[0]
    assert not (tmp_path / "a" / "warcs").exists()


def test_spec_usage_errors(tmp_path: Path) -> None:
    for args, message in (
        (["--spec", "no-such-platform", "--range", "1-3"], "built in: parler-2021"),
        (["--spec", "parler-2021", "--var", "nope=1", "--range", "1-3"],
         "--var nope: the spec has no such variable"),
        (["--spec", "parler-2021"], "give --range"),
        (["--var", "api=http://x", "--url-template", "http://x/{id}", "--range", "1-3"],
         "--var needs --spec"),
    ):
        proc = socialark("crawl", "ids", *args, data_dir=tmp_path / "a")
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


@pytest.mark.serial
def test_fire_drill_loses_nothing_that_was_served(tmp_path: Path) -> None:
    """300 ids, two workers on Redis (the seeding crawl works too), --mirror to S3, one worker
    killed with -9 at 40% and replaced, 503s under load, 429 bursts, the platform gone at 90%."""
    r = run_drill(tmp_path, DrillConfig(ids=300, burst_every=250), timeout=400)
    logs = f"(logs in {r.logs})"
    assert r.exits["victim"] == -9 and r.killed_with_leases, (r.exits, r.notes, logs)
    assert r.exits["seed"] in (0, 1) and r.exits["replacement"] in (0, 1), (r.exits, logs)
    assert r.exits["victim-rebuild"] == 0 and r.exits["victim-mirror"] == 0, logs
    assert r.exits["central-index"] == 0, logs
    assert r.bucket_files >= 3 and r.unverified == [], (r.unverified, logs)  # as each worker wrote
    assert len(r.served) > 400 and r.windows >= 1, (len(r.served), r.windows)
    assert not r.lost, f"{len(r.lost)} served items not in the bucket: {sorted(r.lost)[:5]} {logs}"
    assert r.in_windows == [], f"requests inside 429 windows: {r.in_windows} {logs}"
    assert set(r.truth_posts) <= set(r.posts), sorted(set(r.truth_posts) - set(r.posts))[:5]
    for hex_id, post in r.truth_posts.items():
        platform, author, created_at, text, repost_of = r.posts[hex_id]
        assert (platform, author, created_at, text) == (
            "parler", USERS[post.user][1], post.created_iso, post.body)
        if post.parent:
            assert repost_of in r.posts


def test_spec_crawl_resumes_after_kill_9(tmp_path: Path) -> None:
    """`crawl ids --resume` continues a spec crawl: the spec comes back from the saved crawl."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    data_dir = tmp_path / "a"
    with ParlerEmulator(last_id=200, p_503=0.0) as emu:
        cmd = [sys.executable, "-m", "crawler.cli", "crawl", "ids", *_spec_args(emu),
               "--range", "1-200", "--delay", "0.01", "--concurrency", "2",
               "--data-dir", str(data_dir)]
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while emu.lookups < 60:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first = emu.lookups
        resumed = socialark("crawl", "ids", "--resume", "--delay", "0", data_dir=data_dir)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        served = emu.served_200()
        truth = emu.truth_posts()
    assert emu.lookups - first < 200 - 40, "the resumed run does not walk the id space again"
    socialark("index", "--rebuild", data_dir=data_dir, check=True)  # closes the killed .open
    assert served <= _captured(data_dir)
    assert set(_posts(data_dir)) == set(truth)


def test_spec_politeness_spaces_requests_per_host(tmp_path: Path) -> None:
    """[politeness] sets a host's delay and concurrency (Scrapy download slots)."""
    import itertools

    from crawler.spec.model import read_spec

    text = read_spec("parler-2021")[1].replace(
        '"{api}" = { delay = 0.0, concurrency = 8 }', '"{api}" = { delay = 0.4, concurrency = 1 }')
    assert "delay = 0.4" in text
    spec = tmp_path / "slow-parler.toml"
    spec.write_text(text)
    with ParlerEmulator(last_id=8, p_503=0.0) as emu:
        proc = socialark("crawl", "ids", "--spec", str(spec),
                         *[a for v in emu.spec_vars for a in ("--var", v)],
                         "--range", "1-8", "--delay", "0", "--concurrency", "8",
                         data_dir=tmp_path / "a")
        assert proc.returncode == 0, proc.stderr[-3000:]
        api = sorted(r.time for r in emu.hosts["api"].requests if r.path != "/robots.txt")
    assert len(api) >= 10
    # Scrapy randomizes a slot's delay between 0.5x and 1.5x: never closer than 0.2 s.
    assert min(b - a for a, b in itertools.pairwise(api)) >= 0.19


def test_lookup_by_json_path(tmp_path: Path) -> None:
    spec = tmp_path / "json-lookup.toml"
    spec.write_text('''
[spec]
name = "json-lookup"
platform = "parler"

[vars]
api = "https://api.invalid"

[lookup]
url = "{api}/v3/uuidConversion/post/{id}?format=json"
json = "conversion.post"

[item]
api = ["{api}/v1/post?id={key}"]

[posts]
roots = ["post"]
post_id = "_id"
text = "body"
''')
    with ParlerEmulator(last_id=30, p_503=0.0) as emu:
        proc = socialark("crawl", "ids", "--spec", str(spec), "--var", f"api={emu.url('api')}",
                         "--range", "1-30", "--delay", "0", data_dir=tmp_path / "a")
        assert proc.returncode == 0, proc.stderr[-3000:]
    ok = {p.hex_id: p.body for n in range(1, 31) if (p := emu.data.post(n)) and p.state == "ok"}
    assert {k: v[6] for k, v in _posts(tmp_path / "a").items()} == ok


def test_paths_counts_and_times() -> None:
    """The pure pieces a spec is made of (crawler/spec/jsonpath.py, extract.py)."""
    from crawler.spec.extract import parse_count, parse_time
    from crawler.spec.jsonpath import JsonPath

    doc = {"post": {"_id": "a", "creator": "u1", "links": ["x", "y"]},
           "users": [{"id": "u1", "username": "bob"}, {"id": "u2", "username": "eve"}],
           "urls": [{"_id": "x", "long": "L1"}, {"_id": "y", "long": None}, {"_id": "z", "long": "L3"}]}
    post = doc["post"]
    assert JsonPath.parse("$.users[id={creator}].username").select(post, doc) == ["bob"]
    assert JsonPath.parse("$.urls[_id={links[*]}].long").select(post, doc) == ["L1"]
    assert JsonPath.parse("users[1].username").select(doc) == ["eve"]
    assert JsonPath.parse("users[id=u2].username").select(doc) == ["eve"]
    assert JsonPath.parse("nothing.here[*]").select(doc) == []
    for bad in ("a..b", "a[x]", "a[", "a]"):
        with pytest.raises(ValueError, match=r"bad|unbalanced"):
            JsonPath.parse(bad)
    assert [parse_count(v) for v in (57, "57", "3.3k", "1.2m", "2b", "", None, "n/a", True)] == \
        [57, 57, 3300, 1_200_000, 2_000_000_000, None, None, None, None]
    assert parse_time("20210106183012", "%Y%m%d%H%M%S") == "2021-01-06T18:30:12Z"
    assert parse_time("2021-01-06T19:30:12+01:00", "iso") == "2021-01-06T18:30:12Z"
    assert parse_time(1609957812000, "epoch_ms") == "2021-01-06T18:30:12Z"
    assert parse_time("garbage", "iso") is None


@pytest.mark.browser
def test_spec_crawl_with_the_browser_renders_the_pages(tmp_path: Path) -> None:
    """--browser renders each item's page in Chromium; lookups and API answers stay plain."""
    from crawler.browser.config import browser_problem

    assert browser_problem(None) is None, browser_problem(None)
    with ParlerEmulator(last_id=6, p_503=0.0) as emu:
        proc = socialark("crawl", "ids", *_spec_args(emu), "--range", "1-6", "--delay", "0",
                         "--browser", "--scroll-limit", "0", data_dir=tmp_path / "a")
        assert proc.returncode == 0, proc.stderr[-3000:]
        truth = emu.truth_posts()
    with sqlite3.connect(tmp_path / "a" / "index.db") as db:
        pages = {u for (u,) in db.execute("SELECT url FROM pages")}
    ok = [emu.data.post(n) for n in range(1, 7)]
    assert pages == {f"{emu.url('web')}/post/{p.hex_id}" for p in ok if p and p.state == "ok"}
    assert set(_posts(tmp_path / "a")) == set(truth)
