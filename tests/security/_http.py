"""A tiny loopback HTTP site for the security tests: fixed routes, or a handler function."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = tuple[int, dict[str, str], bytes]


class Site:
    """Serves ``routes`` (path -> (status, headers, body)); ``handler`` overrides per path."""

    def __init__(self, routes: dict[str, Route] | None = None,
                 handlers: dict[str, Callable[[BaseHTTPRequestHandler], None]] | None = None
                 ) -> None:
        self.routes = dict(routes or {})
        self.handlers = dict(handlers or {})
        self.requests: list[tuple[str, dict[str, str]]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                site.requests.append((self.path, dict(self.headers.items())))
                if self.path in site.handlers:
                    site.handlers[self.path](self)
                    return
                status, headers, body = site.routes.get(
                    self.path, (404, {"Content-Type": "text/plain"}, b"not found"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def html(body: str) -> Route:
    return 200, {"Content-Type": "text/html; charset=utf-8"}, body.encode()
