"""A small site whose health can be switched while a crawl runs (tests of prompt stops).

Modes (``site.mode = ...``):

* ``"healthy"``: every page, image and the big file answer 200 at once;
* ``"throttle"``: after ``allow`` successful answers, everything answers 429 with
  ``Retry-After: 600`` (a host paused for ten minutes);
* ``"slow"``: ``/big.bin`` announces its full length and trickles 1 KiB every 50 ms;
* ``"stall"``: ``/stall.png`` (an image of ``/render.html``) sends its headers and never its body.

``site.pages`` is the server-side ground truth: every URL that answers 200 when healthy.
"""

from __future__ import annotations

import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGES = 12
BIG_SIZE = 2 * 1024 * 1024
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


def _page(title: str, body: str) -> bytes:
    return (f"<!doctype html><html><head><title>{title}</title></head>"
            f"<body><h1>{title}</h1>{body}</body></html>").encode()


class StopSite:
    def __init__(self, *, big: bool = True, render: bool = False) -> None:
        self.mode = "healthy"
        self.allow = 3
        self.big = big
        self.render = render
        self.lock = threading.Lock()
        self.served: list[tuple[str, int]] = []  # (path, status) of every answer started
        self.big_body = random.Random(7).randbytes(BIG_SIZE)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._ok = 0

    # -- ground truth ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    @property
    def pages(self) -> set[str]:
        paths = ["", *(f"p/{i}.html" for i in range(PAGES)), "pixel.png"]
        if self.big:
            paths.append("big.bin")
        if self.render:
            paths += ["render.html", "stall.png"]
        return {self.base_url + p for p in paths}

    def count(self, path: str, status: int | None = None) -> int:
        with self.lock:
            return sum(1 for p, s in self.served if p == path and status in (None, s))

    # -- serving -------------------------------------------------------------------------------
    def _index(self) -> bytes:
        links = "".join(f'<a href="/p/{i}.html">page {i}</a> ' for i in range(PAGES))
        if self.big:
            links += '<a href="/big.bin">big file</a> '
        if self.render:
            links += '<a href="/render.html">rendered</a> '
        return _page("index", links)

    def _answer(self, path: str) -> tuple[int, str, bytes] | None:
        if path == "/robots.txt":
            return 200, "text/plain", b"User-agent: *\nAllow: /\n"
        if path == "/":
            return 200, "text/html", self._index()
        if path.startswith("/p/") and path.endswith(".html"):
            n = path[3:-5]
            return 200, "text/html", _page(f"page {n}", '<img src="/pixel.png"><a href="/">home</a>')
        if path == "/pixel.png":
            return 200, "image/png", PNG
        if path == "/big.bin" and self.big:
            return 200, "application/octet-stream", self.big_body
        if path == "/render.html" and self.render:
            return 200, "text/html", _page("rendered", '<img src="/stall.png">')
        if path == "/stall.png" and self.render:
            return 200, "image/png", PNG
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                site._serve(self)

        return Handler

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        answer = self._answer(path)
        status = 404 if answer is None else 200
        with self.lock:
            throttled = (self.mode == "throttle" and path != "/robots.txt"
                         and self._ok >= self.allow)
            if throttled:
                status = 429
            elif status == 200:
                self._ok += 1
            self.served.append((path, status))
        if throttled:
            self._send(h, 429, "text/plain", b"slow down\n", [("Retry-After", "600")])
            return
        if answer is None:
            self._send(h, 404, "text/plain", b"not found\n")
            return
        _, ctype, body = answer
        if self.mode == "slow" and path == "/big.bin":
            self._trickle(h, ctype, body)
        elif self.mode == "stall" and path == "/stall.png":
            self._stall(h, ctype, body)
        else:
            self._send(h, 200, ctype, body)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, ctype: str, body: bytes,
              extra: list[tuple[str, str]] | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for name, value in extra or []:
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(body)

    def _trickle(self, h: BaseHTTPRequestHandler, ctype: str, body: bytes) -> None:
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            for i in range(0, len(body), 1024):
                h.wfile.write(body[i:i + 1024])
                h.wfile.flush()
                time.sleep(0.05)
        except OSError:
            return  # the crawler hung up

    def _stall(self, h: BaseHTTPRequestHandler, ctype: str, body: bytes) -> None:
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.flush()
        deadline = time.monotonic() + 300
        while self.mode == "stall" and time.monotonic() < deadline:
            time.sleep(0.1)
        h.close_connection = True

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> StopSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.mode = "healthy"
        self.server.shutdown()
        self.server.server_close()
