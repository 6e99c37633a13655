"""A static file server on 127.0.0.1 with HTTP Range support (or, on request, without it).

The standard library's ``SimpleHTTPRequestHandler`` ignores ``Range``; WARC hosts (the Internet
Archive, S3 websites, nginx) honour it. ``RangeServer(root, ranges=False)`` answers every GET
with the whole file and ``200``, like a server that does not implement ranges;
``cut_at=N`` sends the full ``Content-Length`` but closes the connection after N body bytes.
``/moved/PATH`` redirects (302) to ``/PATH``. Every request is
logged as ``(method, path, Range header or None, status, client port)`` so tests can check what was read.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
CHUNK = 1 << 16


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _log(self, status: int) -> None:
        with self.server.lock:
            self.server.requests.append((self.command, self.path, self.headers.get("Range"), status,
                                         self.client_address[1]))

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        if self.path.startswith("/moved/"):  # as the Internet Archive's download URLs do
            self._log(302)
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/moved"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = (self.server.root / unquote(self.path.split("?", 1)[0]).lstrip("/")).resolve()
        if self.server.root not in path.parents or not path.is_file():
            self._log(404)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = path.stat().st_size
        start, end, status = 0, size - 1, 200
        wanted = self.headers.get("Range")
        if wanted and self.server.ranges:
            m = _RANGE.match(wanted.strip())
            if not m or int(m.group(1)) >= size:
                self._log(416)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            status = 206
        self._log(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/warc")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("ETag", f'"{size:x}-{int(path.stat().st_mtime):x}"')
        self.send_header("Last-Modified", self.date_time_string(int(path.stat().st_mtime)))
        if self.server.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not body:
            return
        if self.server.cut_at is not None:
            self.close_connection = True
        try:
            with path.open("rb") as fh:
                fh.seek(start)
                left = end - start + 1
                if self.server.cut_at is not None:  # a connection dropped mid-transfer
                    left = min(left, self.server.cut_at)
                while left > 0 and (chunk := fh.read(min(CHUNK, left))):
                    self.wfile.write(chunk)
                    left -= len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client read what it needed (a 200 to a Range probe) and hung up


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, ranges: bool, cut_at: int | None) -> None:
        self.root = root.resolve()
        self.ranges = ranges
        self.cut_at = cut_at
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, str | None, int, int]] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class RangeServer:
    """Serve ``root`` on a free loopback port for the duration of a ``with`` block."""

    def __init__(self, root: Path, *, ranges: bool = True, cut_at: int | None = None) -> None:
        self.server = _Server(Path(root), ranges, cut_at)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RangeServer:
        self.thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, relative: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{relative.lstrip('/')}"

    @property
    def requests(self) -> list[tuple[str, str, str | None, int, int]]:
        with self.server.lock:
            return list(self.server.requests)

    def clear(self) -> None:
        with self.server.lock:
            self.server.requests.clear()
