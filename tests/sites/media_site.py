"""A local site serving large incompressible media files, streamed from disk.

Used by ``tests/test_large_bodies.py`` and ``benchmarks/bench_media.py``. Files are random bytes
(like real video: gzip cannot shrink them) written once to a directory; the server streams them
in 1 MiB pieces, so serving a 1 GiB file costs the server no memory. ``site.sha256[name]`` is the
digest of what it serves.

Paths: ``/`` (an HTML page linking every file and its copy), ``/files`` (every file, no copies),
``/big-page`` (2 MB of HTML whose only link, at the end, is the first file),
``/media/<name>`` (``Content-Length``),
``/chunked/<name>`` (the same bytes with ``Transfer-Encoding: chunked``), ``/copy/<name>``
(the same bytes again under another URL, for dedup).
"""

from __future__ import annotations

import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
TYPES = {".mp4": "video/mp4", ".zip": "application/zip", ".json": "application/json",
         ".bin": "application/octet-stream"}


def make_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``; return their sha256 hex digest."""
    h = hashlib.sha256()
    with open(path, "wb") as fh:
        left = size
        while left:
            data = os.urandom(min(4 * CHUNK, left))
            fh.write(data)
            h.update(data)
            left -= len(data)
    return h.hexdigest()


class MediaSite:
    def __init__(self, directory: Path, files: dict[str, int], host: str = "127.0.0.1") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sha256 = {name: make_file(self.directory / name, size) for name, size in files.items()}
        self.sizes = dict(files)
        self.hits: dict[str, int] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                site.hits[self.path] = site.hits.get(self.path, 0) + 1
                if self.path == "/big-page":
                    return self._send(200, "text/html; charset=utf-8", site.big_page())
                if self.path in ("/", "/files"):
                    return self._page(copies=self.path == "/")
                kind, _, name = self.path.lstrip("/").partition("/")
                if kind not in ("media", "chunked", "copy") or name not in site.sizes:
                    return self._send(404, "text/plain", b"not found")
                self._file(name, chunked=kind == "chunked")

            def _page(self, copies: bool) -> None:
                links = "".join(
                    f'<a href="/media/{n}">{n}</a>' + (f' <a href="/copy/{n}">copy</a>' if copies else "")
                    + "\n" for n in site.sizes
                )
                self._send(200, "text/html; charset=utf-8",
                           f"<html><body>{links}</body></html>".encode())

            def _send(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _file(self, name: str, *, chunked: bool) -> None:
                path = site.directory / name
                self.send_response(200)
                self.send_header("Content-Type", TYPES.get(path.suffix, "application/octet-stream"))
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(site.sizes[name]))
                self.end_headers()
                try:
                    with open(path, "rb") as fh:
                        while data := fh.read(CHUNK):
                            if chunked:
                                self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
                            else:
                                self.wfile.write(data)
                    if chunked:
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def big_page(self) -> bytes:
        """A 2 MB HTML page (past a lowered spool threshold) whose only link is its last line."""
        first = next(iter(self.sizes))
        pad = "<!-- " + "x" * 2_000_000 + " -->"
        return f'<html><body>{pad}<a href="/media/{first}">{first}</a></body></html>'.encode()

    def url(self, name: str, kind: str = "media") -> str:
        return f"{self.base_url}/{kind}/{name}"

    def __enter__(self) -> MediaSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
