"""``--cookies`` and the capture-quality gate, against a walled site on loopback (real crawls,
wire and browser)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crawler.cookiefile import CookieFileError, parse_cookies_txt
from crawler.quality import QualityRulesError, judge, load_rules
from tests.conftest import socialark
from tests.sites.walled_site import AUTH_TOKEN, SESSION, WalledSite
from tests.warc_checks import closed_warcs, read_records

FAST_GATE = ("-s", "ARCHIVE_QUALITY_PAUSE=0.2")


def _cookie_file(path: Path) -> Path:
    path.write_text("# Netscape HTTP Cookie File\n"
                    f"127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\t{SESSION}\n"
                    f"#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\tauth_token\t{AUTH_TOKEN}\n"
                    "127.0.0.1\tFALSE\t/\tFALSE\t1000\texpired\tgone\n")
    return path


def _flags(data_dir: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "index.db") as conn:
        return conn.execute("SELECT url, final_url, kind, rule, attempt, outcome"
                            " FROM quality_flags ORDER BY id").fetchall()


def _blocked(data_dir: Path) -> dict[str, str]:
    return {u.rsplit("/", 1)[1]: k for u, _, k, _, _, o in _flags(data_dir) if o == "blocked"}


def _response_urls(data_dir: Path) -> list[str]:
    return [r.headers["WARC-Target-URI"] for p in closed_warcs(data_dir) for r in read_records(p)
            if r.type in ("response", "revisit")]


def _warc_bytes(data_dir: Path) -> bytes:
    import gzip

    return b"".join(gzip.open(p).read() for p in closed_warcs(data_dir))


@pytest.fixture
def site() -> Iterator[WalledSite]:
    with WalledSite(busy_times=2) as s:
        yield s


# --- the pure parts ---------------------------------------------------------------------------


def test_cookies_txt_parsing() -> None:
    cookies = parse_cookies_txt("# comment\n\n"
                                ".x.com\tTRUE\t/\tTRUE\t1900000000\tct0\tabc\n"
                                "#HttpOnly_.x.com\tTRUE\t/\tTRUE\t1900000000\tauth_token\tt\n"
                                "x.com\tFALSE\t/i\tFALSE\t0\tempty\n")
    assert [(c.name, c.value, c.http_only, c.include_subdomains) for c in cookies] == [
        ("ct0", "abc", False, True), ("auth_token", "t", True, True), ("empty", "", False, False)]
    pw = cookies[1].to_playwright()
    assert pw == {"name": "auth_token", "value": "t", "domain": ".x.com", "path": "/",
                  "secure": True, "httpOnly": True, "expires": 1900000000.0}
    assert "expires" not in cookies[2].to_playwright()
    with pytest.raises(CookieFileError, match="line 1"):
        parse_cookies_txt("name=value; other=1\n")


@pytest.mark.parametrize(("asked", "final", "status", "body", "kind"), [
    ("https://x.com/alice", "https://x.com/i/flow/login", 200, "<title>X</title>", "login_wall"),
    ("https://www.facebook.com/page", "https://www.facebook.com/page", 200,
     "<div role=dialog>You must log in to continue.</div><div>" + "post " * 1000 + "</div>",
     "login_wall"),
    ("https://a.org/x", "https://a.org/account?next=/x", 200,
     '<h1>Sign in</h1><form><input type="password"></form>', "login_wall"),
    ("https://a.org/x", "https://a.org/x", 503,
     "<html><head><title>Just a moment...</title></head></html>", "challenge"),
    ("https://a.org/x", "https://a.org/x", 200,
     "<p>Verify you are human by completing the action below.</p>", "challenge"),
    ("https://a.org/x", "https://a.org/x", 200,
     '<div class="g-recaptcha" data-sitekey="k"></div>', "challenge"),
    ("https://x.com/a", "https://x.com/a", 200, "Something went wrong. Try reloading.",
     "rate_limited"),
    ("https://a.org/x", "https://a.org/x", 200, "<h1>429 Too Many Requests</h1>", "rate_limited"),
    ("https://a.org/x", "https://a.org/x", 200, "<h1>Oops! Page not found</h1>", "soft_404"),
    ("https://x.com/nobody", "https://x.com/nobody", 200, "This account doesn\u2019t exist",
     "soft_404"),
])
def test_rules_flag_walls(asked: str, final: str, status: int, body: str, kind: str) -> None:
    verdict = judge(asked, final, status, "text/html", body.encode())
    assert verdict is not None and verdict.kind == kind, verdict


@pytest.mark.parametrize(("asked", "final", "status", "ctype", "body"), [
    # a login page that was asked for is the content
    ("https://a.org/login", "https://a.org/login", 200, "text/html",
     '<h1>Log in</h1><form><input type="password"></form>'),
    # a long article that mentions walls is not one
    ("https://a.org/essay", "https://a.org/essay", 200, "text/html",
     "<article>" + "Servers answer too many requests with 429; page not found. " * 80
     + "</article>"),
    # a real 404 is an outcome, not a soft 404; JSON is never judged
    ("https://a.org/gone", "https://a.org/gone", 404, "text/html", "<h1>Page not found</h1>"),
    ("https://a.org/api", "https://a.org/api", 200, "application/json",
     '{"error": "rate limit exceeded"}'),
])
def test_rules_leave_content_alone(asked: str, final: str, status: int, ctype: str,
                                   body: str) -> None:
    assert judge(asked, final, status, ctype, body.encode()) is None


def test_user_rules_come_first_and_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([{"name": "paywall", "kind": "login_wall",
                                 "text": r"subscribe to (continue|read)", "max_text": 500}]))
    rules = load_rules(path)
    verdict = judge("https://n.com/a", "https://n.com/a", 200, "text/html",
                    b"<p>Subscribe to continue reading</p>", rules)
    assert verdict is not None and verdict.rule == "paywall"
    path.write_text(json.dumps([{"name": "bad", "kind": "nonsense", "text": "x"}]))
    with pytest.raises(QualityRulesError, match="kind"):
        load_rules(path)


# --- real crawls ------------------------------------------------------------------------------


def test_walls_without_cookies_are_flagged_retried_and_reported(site: WalledSite,
                                                                tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    proc = socialark("crawl", "site", site.base_url, "--scope", "host", "--delay", "0",
                     *FAST_GATE, data_dir=data_dir)
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "login required: pass --cookies or --profile" in proc.stderr
    assert f"blocked {site.base_url}members: login wall (redirected_to_login)" in proc.stderr
    assert _blocked(data_dir) == {"members": "login_wall", "cf": "challenge", "gone": "soft_404"}
    flags = _flags(data_dir)
    # walls and challenges: 2 retries after a pause, then blocked; a soft 404 is not retried
    assert [f[4:] for f in flags if f[0].endswith("/members")] == [
        (0, "retried"), (1, "retried"), (2, "blocked")]
    assert [f[4:] for f in flags if f[0].endswith("/gone")] == [(0, "blocked")]
    assert all(f[1] == f"{site.base_url}login?next=/members" for f in flags
               if f[0].endswith("/members"))
    # the rate-limit page was retried later and then captured: not blocked
    assert [f[4:] for f in flags if f[0].endswith("/busy")] == [(0, "retried"), (1, "retried")]
    assert site.hits["/busy"] == 3 and site.hits["/members"] == 3
    assert site.hits["/gone"] == 1
    # the walls stay in the WARC as evidence; the asked-for login page and the article are
    # content, never flagged
    urls = _response_urls(data_dir)
    assert f"{site.base_url}cf" in urls and f"{site.base_url}login?next=/members" in urls
    assert not any(f[0].endswith(("/login", "/about")) for f in flags)
    status = socialark("status", data_dir=data_dir)
    assert f"blocked: {site.base_url}cf: challenge (cloudflare_challenge)" in status.stdout
    assert "flagged by the capture-quality gate" in status.stdout


def test_cookies_open_the_wall_and_never_reach_the_archive(site: WalledSite,
                                                           tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    cookies = _cookie_file(tmp_path / "cookies.txt")
    proc = socialark("crawl", "site", site.base_url, "--scope", "host", "--delay", "0",
                     "--cookies", str(cookies), *FAST_GATE, data_dir=data_dir)
    assert proc.returncode == 1, proc.stderr[-4000:]  # the challenge and the soft 404 remain
    assert "login required" not in proc.stderr
    assert _blocked(data_dir) == {"cf": "challenge", "gone": "soft_404"}
    assert site.cookies_seen["/members"] == [{"session": SESSION, "auth_token": AUTH_TOKEN}]
    assert "expired" not in site.cookies_seen["/"][0]
    raw = _warc_bytes(data_dir)
    assert b"Members-only post" in raw
    assert SESSION.encode() not in raw and AUTH_TOKEN.encode() not in raw
    assert b"Cookie: [redacted by socialark]" in raw
    with sqlite3.connect(data_dir / "index.db") as conn:
        (config,) = conn.execute("SELECT config FROM crawls").fetchone()
    assert json.loads(config)["options"]["cookies"] == str(cookies.resolve())
    assert SESSION not in config and AUTH_TOKEN not in config


def test_user_rules_apply_to_a_crawl_and_bad_ones_stop_it(site: WalledSite,
                                                          tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"name": "essay_wall", "kind": "login_wall",
                                  "text": "an essay about servers", "url": "/about$"}]))
    data_dir = tmp_path / "archive"
    proc = socialark("crawl", "site", site.base_url, "--scope", "host", "--delay", "0",
                     "--cookies", str(_cookie_file(tmp_path / "c.txt")), *FAST_GATE,
                     "-s", f"ARCHIVE_QUALITY_RULES={rules}", data_dir=data_dir)
    assert proc.returncode == 1
    assert _blocked(data_dir)["about"] == "login_wall"
    assert f"blocked {site.base_url}about: login wall (essay_wall)" in proc.stderr
    rules.write_text(json.dumps([{"name": "bad", "kind": "login_wall", "text": "("}]))
    proc = socialark("crawl", "site", site.base_url, "-s", f"ARCHIVE_QUALITY_RULES={rules}",
                     data_dir=tmp_path / "other")
    assert proc.returncode == 2 and "rule 'bad'" in proc.stderr and "Traceback" not in proc.stderr


def test_a_bad_cookies_file_is_a_usage_error(site: WalledSite, tmp_path: Path) -> None:
    bad = tmp_path / "cookies.txt"
    bad.write_text("session=s3cret\n")
    proc = socialark("crawl", "site", site.base_url, "--cookies", str(bad),
                     data_dir=tmp_path / "archive")
    assert proc.returncode == 2
    assert "expected 7 TAB-separated fields" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_browser_wall_without_and_with_cookies(site: WalledSite, tmp_path: Path) -> None:
    """An X-like app navigates to /i/flow/login without ``auth_token``; with the cookie file
    the browser context sends it (HttpOnly included) and the timeline renders."""
    app = f"{site.base_url}app"
    walled = tmp_path / "walled"
    proc = socialark("crawl", "site", app, "--scope", "page", "--delay", "0", "--browser",
                     "--page-timeout", "30s", *FAST_GATE, data_dir=walled)
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "login required: pass --cookies or --profile" in proc.stderr
    assert _blocked(walled) == {"app": "login_wall"}
    assert {f[3] for f in _flags(walled)} == {"x_login_flow"}

    opened = tmp_path / "opened"
    cookies = _cookie_file(tmp_path / "cookies.txt")
    proc = socialark("crawl", "site", app, "--scope", "page", "--delay", "0", "--browser",
                     "--page-timeout", "30s", "--cookies", str(cookies), *FAST_GATE,
                     data_dir=opened)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert _flags(opened) == []
    assert site.cookies_seen["/api/me"][-1] == {"session": SESSION, "auth_token": AUTH_TOKEN}
    with sqlite3.connect(opened / "index.db") as conn:
        texts = [t for (t,) in conn.execute("SELECT text FROM pages")]
    assert texts == ["Timeline of alice: first post, second post"]
    raw = _warc_bytes(opened)
    assert AUTH_TOKEN.encode() not in raw and SESSION.encode() not in raw


def test_a_body_the_browser_never_finishes_is_recorded_as_missed(site: WalledSite,
                                                                 tmp_path: Path) -> None:
    """Every body read has a deadline: an answer that stalls is written with an empty body and
    ``WARC-Truncated: time``, and the crawl goes on (it would otherwise wait forever)."""
    import time

    data_dir = tmp_path / "archive"
    started = time.monotonic()
    proc = socialark("crawl", "site", f"{site.base_url}stallpage", "--scope", "page",
                     "--delay", "0", "--browser", "--page-timeout", "30s",
                     "-s", "ARCHIVE_BROWSER_BODY_TIMEOUT=2", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert time.monotonic() - started < 120
    stalled = [r for p in closed_warcs(data_dir) for r in read_records(p)
               if r.type == "response" and r.headers["WARC-Target-URI"].endswith("/stall")]
    assert len(stalled) == 1
    assert stalled[0].headers.get("WARC-Truncated") == "time"
    assert stalled[0].payload == b""


def test_login_saves_a_private_profile_that_crawls_use(site: WalledSite, tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    proc = socialark("login", f"{site.base_url}signin", "--profile", "walled", "--headless",
                     "--until-cookie", "session", "--timeout", "60s", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = data_dir / "profiles" / "walled.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    assert (data_dir / "profiles").stat().st_mode & 0o777 == 0o700
    proc = socialark("crawl", "site", f"{site.base_url}members", "--scope", "page",
                     "--delay", "0", "--profile", "walled", *FAST_GATE, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert site.cookies_seen["/members"][-1].get("session") == SESSION
    raw = _warc_bytes(data_dir)
    assert b"Members-only post" in raw and SESSION.encode() not in raw
    with sqlite3.connect(data_dir / "index.db") as conn:
        (config,) = conn.execute("SELECT config FROM crawls").fetchone()
    assert json.loads(config)["options"]["profile"] == "walled" and SESSION not in config
    # the browser context gets the profile too
    proc = socialark("crawl", "site", f"{site.base_url}members", "--scope", "page",
                     "--delay", "0", "--browser", "--profile", "walled", *FAST_GATE,
                     data_dir=tmp_path / "browser")
    assert proc.returncode == 2 and "no saved login 'walled'" in proc.stderr  # other data dir
    proc = socialark("crawl", "site", f"{site.base_url}members", "--scope", "page",
                     "--delay", "0", "--browser", "--profile", "walled", *FAST_GATE,
                     "--collection", "browser", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert site.cookies_seen["/members"][-1].get("session") == SESSION
