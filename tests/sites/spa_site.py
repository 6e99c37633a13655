"""A single-page-app test site for browser capture (real HTTP server on loopback).

``/`` is an HTML shell; everything a reader sees is built by ``/static/app.js``:

* posts come from a JSON API with cursor pagination (``/api/posts?cursor=N``, gzip-encoded);
  pages 0..``SCROLL_PAGES``-1 are appended by infinite scroll, the rest only by clicking the
  "Load more" button (``#load-more``), so reaching the last cursor needs both behaviors;
* every post has a lazy image (``data-src``, loaded by an IntersectionObserver) and the first
  one of each API page a lazy ``data-srcset``;
* a POST ``fetch`` (``/api/track``, JSON body) on start;
* CSS with a background image and a web font (``@font-face``) used by the text;
* a ``<video>`` whose server answers every Range request with only its first 64 KiB (206), so
  the crawler must fetch it whole;
* navigation links to ``/p/1``.. that exist only in the rendered DOM.

``/p/<n>`` are small pages of the same app (``SMALL_PAGES`` API pages each) linking to
``/p/<2n+1>`` and ``/p/<2n+2>`` (``/`` to 1 and 2) up to ``page_count``: every page is reachable
from ``/`` and the frontier is wide enough for several pages at once (tests, benchmarks).
``/hang`` busy-loops its renderer forever once loaded.

Run ``python -m tests.sites.spa_site [--port N] [--pages N]`` to serve it by hand.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.sites.core_site import png

TOTAL_PAGES = 10  # API pages on "/"
SCROLL_PAGES = 7  # of which infinite scroll loads these; the rest need "Load more"
SMALL_PAGES = 2  # API pages on each /p/<n>
POSTS_PER_PAGE = 5
VIDEO_SIZE = 300 * 1024
RANGE_CHUNK = 64 * 1024
FONT = random.Random(7).randbytes(4096)
VIDEO = random.Random(11).randbytes(VIDEO_SIZE)

SHELL = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/static/app.css">
</head><body data-page="{page}" data-total="{total}" data-scroll="{scroll}" data-last="{last}">
<div class="hero">SPA archive fixture</div>
<nav id="nav"></nav>
<div id="posts"></div>
<button id="load-more" style="display:none">Load more</button>
{video}
<script src="/static/app.js"></script>
</body></html>
"""
VIDEO_TAG = '<video src="/media/clip.mp4" preload="auto" muted></video>'

CSS = """@font-face { font-family: "Fixture"; src: url(/fonts/site.woff2) format("woff2"); }
body { font-family: "Fixture", sans-serif; margin: 0; }
.hero { height: 300px; background-image: url(/img/bg.png); }
.post { height: 420px; border-bottom: 1px solid #ccc; }
.post img { width: 64px; height: 64px; }
"""

APP_JS = r"""
(function () {
  const body = document.body;
  const page = body.dataset.page, total = +body.dataset.total, scrollPages = +body.dataset.scroll;
  const last = +body.dataset.last;
  const list = document.getElementById("posts"), more = document.getElementById("load-more");
  let next = 0, loading = false;
  const io = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      const img = e.target;
      if (img.dataset.src) img.src = img.dataset.src;
      if (img.dataset.srcset) img.srcset = img.dataset.srcset;
      io.unobserve(img);
    }
  });
  const nav = document.getElementById("nav");
  const n = page === "home" ? 0 : +page;
  for (const target of [2 * n + 1, 2 * n + 2]) {  // a binary tree: every page linked once
    if (target > last) continue;
    const a = document.createElement("a");
    a.href = "/p/" + target; a.textContent = "page " + target;
    nav.appendChild(a);
  }
  fetch("/api/track", {method: "POST", headers: {"Content-Type": "application/json"},
                       body: JSON.stringify({event: "view", page: page})});
  async function load() {
    if (loading || next === null) return;
    loading = true;
    const r = await fetch("/api/posts?page=" + page + "&cursor=" + next);
    const data = await r.json();
    for (const p of data.posts) {
      const div = document.createElement("div");
      div.className = "post";
      div.innerHTML = "<p></p><img alt=''>";
      div.querySelector("p").textContent = p.text;
      const img = div.querySelector("img");
      img.dataset.src = p.image;
      if (p.srcset) img.dataset.srcset = p.srcset;
      list.appendChild(div);
      io.observe(img);
    }
    next = data.next_cursor;
    loading = false;
    more.style.display = next !== null && next >= scrollPages ? "block" : "none";
  }
  more.addEventListener("click", load);
  window.addEventListener("scroll", () => {
    if (next !== null && next < scrollPages &&
        window.innerHeight + window.scrollY >= document.body.scrollHeight - 200) load();
  });
  load();
})();
"""

HANG = """<!DOCTYPE html><html><head><title>Hang</title></head><body><p>hang</p>
<script>setTimeout(function () { for (;;) {} }, 200);</script></body></html>"""


def post_token(page: str, cursor: int, i: int) -> str:
    """The unique word in the text of post ``i`` of API page ``cursor`` of ``page``."""
    return f"post{page}x{cursor}x{i}"


class SpaSite:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, page_count: int = 30) -> None:
        self.page_count = page_count
        self.posts: list[dict[str, Any]] = []  # POST bodies received, in order
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.base_url = f"http://{host}:{self._server.server_address[1]}/"

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> SpaSite:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SpaSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    # -- content (also used by the tests as the expected values) ---------------------------
    def api_pages(self, page: str = "home") -> int:
        return TOTAL_PAGES if page == "home" else SMALL_PAGES

    def api_url(self, page: str, cursor: int) -> str:
        return self.url(f"/api/posts?page={page}&cursor={cursor}")

    def api_body(self, page: str, cursor: int) -> bytes:
        total = self.api_pages(page)
        posts = []
        for i in range(POSTS_PER_PAGE):
            post = {"text": f"{post_token(page, cursor, i)} says hello from the archive fixture",
                    "image": f"/img/p/{page}/{cursor}/{i}.png"}
            if i == 0:
                post["srcset"] = f"/img/p/{page}/{cursor}/{i}-2x.png 2x"
            posts.append(post)
        nxt = cursor + 1 if cursor + 1 < total else None
        return json.dumps({"posts": posts, "next_cursor": nxt}).encode()

    def image_urls(self, page: str = "home") -> set[str]:
        urls = {self.url("/img/bg.png")}
        for cursor in range(self.api_pages(page)):
            for i in range(POSTS_PER_PAGE):
                urls.add(self.url(f"/img/p/{page}/{cursor}/{i}.png"))
            urls.add(self.url(f"/img/p/{page}/{cursor}/0-2x.png"))
        return urls

    @staticmethod
    def video() -> bytes:
        return VIDEO

    @staticmethod
    def font() -> bytes:
        return FONT

    def shell(self, page: str) -> bytes:
        title = "SPA Home" if page == "home" else f"SPA page {page}"
        scroll = SCROLL_PAGES if page == "home" else SMALL_PAGES
        return SHELL.format(title=title, page=page, total=self.api_pages(page), scroll=scroll,
                            last=self.page_count, video=VIDEO_TAG if page == "home" else "").encode()

    # -- HTTP -------------------------------------------------------------------------------
    def route(self, method: str, path: str, query: dict[str, list[str]], headers: Any,
              body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        html = [("Content-Type", "text/html; charset=utf-8")]
        if method == "POST" and path == "/api/track":
            with self._lock:
                self.posts.append(json.loads(body or b"{}"))
            return 200, [("Content-Type", "application/json")], b'{"ok": true}'
        if path == "/":
            return 200, html, self.shell("home")
        m = re.fullmatch(r"/p/(\d+)", path)
        if m and 1 <= int(m.group(1)) <= self.page_count:
            return 200, html, self.shell(m.group(1))
        if path == "/hang":
            return 200, html, HANG.encode()
        if path == "/static/app.js":
            return 200, [("Content-Type", "application/javascript")], APP_JS.encode()
        if path == "/static/app.css":
            return 200, [("Content-Type", "text/css")], CSS.encode()
        if path == "/fonts/site.woff2":
            return 200, [("Content-Type", "font/woff2")], FONT
        if path == "/img/bg.png":
            return 200, [("Content-Type", "image/png")], png(32, 8, 1)
        m = re.fullmatch(r"/img/p/(\w+)/(\d+)/(\d+)(-2x)?\.png", path)
        if m:
            seed = zlib.crc32(path.encode()) % 200
            return 200, [("Content-Type", "image/png")], png(8, 8, seed)
        if path == "/api/posts":
            page = query.get("page", ["home"])[0]
            cursor = int(query.get("cursor", ["0"])[0])
            if cursor >= self.api_pages(page):
                return 404, [("Content-Type", "application/json")], b"{}"
            data = gzip.compress(self.api_body(page, cursor), mtime=0)
            return 200, [("Content-Type", "application/json"), ("Content-Encoding", "gzip"),
                         ("Cache-Control", "no-store")], data
        if path == "/media/clip.mp4":
            rng = headers.get("Range")
            base = [("Content-Type", "video/mp4"), ("Accept-Ranges", "bytes")]
            if rng:
                # Always only the first chunk, whatever was asked: a partial 206.
                partial = ("Content-Range", f"bytes 0-{RANGE_CHUNK - 1}/{VIDEO_SIZE}")
                return 206, [*base, partial], VIDEO[:RANGE_CHUNK]
            return 200, base, VIDEO
        return 404, [("Content-Type", "text/plain")], b"not found"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, data = site.route(self.command, parts.path, parse_qs(parts.query),
                                                   self.headers, body)
                try:
                    self.send_response(status)
                    for k, v in headers:
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except ConnectionError:  # the browser gave up on it (media, closed page)
                    self.close_connection = True

            do_GET = do_POST = do_HEAD = _serve

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--pages", type=int, default=30, help="number of /p/<n> pages")
    args = parser.parse_args()
    site = SpaSite(args.host, args.port, args.pages).start()
    print(f"Serving {site.base_url} (Ctrl-C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        site.stop()


if __name__ == "__main__":
    main()
