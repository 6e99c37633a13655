"""A site behind walls, for ``--cookies`` and the capture-quality gate (real HTTP on loopback).

* ``/members``: the content with cookie ``session=s3cret``, else a 302 to ``/login?next=...``
  (a login form: a generic login wall);
* ``/login``: the same form reached by a link (not a wall: it is what was asked for);
* ``/cf``: a Cloudflare "Just a moment…" challenge served with 200, always;
* ``/busy``: a "Rate limit exceeded" page with 200 the first ``busy_times`` times, then content;
* ``/gone``: "Page not found" with 200 (a soft 404);
* ``/about``: a long article that mentions "too many requests" and "log in" (no wall);
* ``/signin``: sets ``session`` from its script (a login by hand, for ``socialark login``);
* ``/stallpage``: a script fetches ``/stall``, which sends its headers and 10 of 1000 promised
  bytes, then stalls until the site closes (Playwright's ``response.body()`` would wait forever);
* ``/app``: an X-like shell whose script asks ``/api/me`` (needs cookie ``auth_token=tok123``)
  and navigates to ``/i/flow/login`` when refused; with the cookie it renders the timeline.

Every request's ``Cookie`` header is logged per path (``cookies_seen``).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

SESSION = "s3cret"
AUTH_TOKEN = "tok123"

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body>{body}</body></html>"""
LOGIN_FORM = PAGE.format(title="Log in", body="""<h1>Log in to Walled</h1>
<form method="post" action="/login"><input name="user"> <input type="password" name="pw">
<button>Sign in</button></form>""")
CHALLENGE = """<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>
<div id="cf-content">Checking your browser before accessing the site.</div>
<script src="/cdn-cgi/challenge-platform/h/b/orchestrate/jsch/v1"></script></body></html>"""
RATE_LIMITED = PAGE.format(title="Error", body="<h1>Rate limit exceeded</h1><p>Try again later.</p>")
SOFT_404 = PAGE.format(title="Walled", body="<h1>Page not found</h1><p>Sorry.</p>")
ARTICLE_TEXT = ("An essay about servers. When clients send too many requests, a server answers "
                "429; some sites ask you to log in first. ") * 40
APP_SHELL = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Home / Walled</title></head>
<body><main id="timeline">Loading…</main><script>
fetch('/api/me', {credentials: 'include'}).then(r => {
  if (r.status !== 200) { location.replace('/i/flow/login'); return null; }
  return r.json();
}).then(me => { if (me) document.getElementById('timeline').textContent =
  'Timeline of ' + me.screen_name + ': first post, second post'; });
</script></body></html>"""
STALL_PAGE = PAGE.format(title="Stall", body="""<p>A page whose script never reads an answer</p>
<script>fetch('/stall').then(() => { document.body.dataset.headers = 'yes'; });</script>""")
X_LOGIN = """<!DOCTYPE html><html><head><title>Log in to X / X</title></head><body>
<div id="react-root">Sign in to X <input autocomplete="username"></div></body></html>"""


def _cookies(header: str | None) -> dict[str, str]:
    out = {}
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            out[name] = value
    return out


class WalledSite:
    def __init__(self, busy_times: int = 2) -> None:
        self.busy_times = busy_times
        self.hits: dict[str, int] = defaultdict(int)
        self.cookies_seen: dict[str, list[dict[str, str]]] = defaultdict(list)
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                site._serve(self)

        self.closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WalledSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        path = urlsplit(h.path).path
        cookies = _cookies(h.headers.get("Cookie"))
        with self._lock:
            self.hits[path] += 1
            self.cookies_seen[path].append(cookies)
            hits = self.hits[path]
        status, ctype, body, extra = 200, "text/html; charset=utf-8", "", {}
        if path == "/":
            links = "".join(f'<a href="/{p}">{p}</a> ' for p in
                            ("members", "login", "cf", "busy", "gone", "about"))
            body = PAGE.format(title="Walled home", body=links)
        elif path == "/robots.txt":
            ctype, body = "text/plain", "User-agent: *\nAllow: /\n"
        elif path == "/members":
            if cookies.get("session") == SESSION:
                body = PAGE.format(title="Members", body="<article>Members-only post</article>")
            else:
                status, extra = 302, {"Location": "/login?next=/members"}
        elif path == "/login":
            body = LOGIN_FORM
        elif path == "/cf":
            body = CHALLENGE
        elif path == "/busy":
            body = RATE_LIMITED if hits <= self.busy_times else PAGE.format(
                title="Busy", body="<article>Busy page content</article>")
        elif path == "/gone":
            body = SOFT_404
        elif path == "/about":
            body = PAGE.format(title="About", body=f"<article>{ARTICLE_TEXT}</article>")
        elif path == "/app":
            body = APP_SHELL
        elif path == "/signin":  # "logging in by hand": the page sets the session itself
            body = PAGE.format(title="Sign in", body=f"""<p>Signing you in…</p><script>
setTimeout(() => {{ document.cookie = 'session={SESSION}; path=/; max-age=3600'; }}, 300);
</script>""")
        elif path == "/stallpage":
            body = STALL_PAGE
        elif path == "/stall":  # headers, 10 bytes of a promised 1000, then nothing
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", "1000")
            h.end_headers()
            h.wfile.write(b'{"partial"')
            h.wfile.flush()
            self.closing.wait(60)
            return
        elif path == "/i/flow/login":
            body = X_LOGIN
        elif path == "/api/me":
            ctype = "application/json"
            if cookies.get("auth_token") == AUTH_TOKEN:
                body = json.dumps({"screen_name": "alice"})
            else:
                status, body = 401, json.dumps({"errors": [{"message": "Could not authenticate"}]})
        else:
            status, body = 404, PAGE.format(title="404", body="404")
        data = body.encode("utf-8")
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        for k, v in extra.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
