"""Shared plumbing for the platform emulators: a threaded HTTP/1.1 server on 127.0.0.1,
a request log, fault injection and a tiny request/response model.

Platform modules subclass :class:`Emulator` and implement :meth:`Emulator.route`; everything
that is about the wire (keep-alive, Content-Length, truncation, slowness, 429s) lives here so
each platform file only describes its API.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qs, urlsplit

from tests.emulators.faults import Faults, RateLimitState


class LoggedRequest(NamedTuple):
    """One entry of ``Emulator.requests``; unpacks as ``(time, method, path, headers)``."""

    time: float  # time.monotonic() when the request line was read
    method: str
    path: str  # path + query, as sent
    headers: dict[str, str]  # lower-cased header names


@dataclass
class Request:
    method: str
    target: str  # path + query as sent
    headers: dict[str, str]
    body: bytes = b""  # the request body (POST)

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    @property
    def base(self) -> str:
        """Scheme + authority taken from the Host header, so payload URLs follow the port."""
        return "http://" + self.headers.get("host", "127.0.0.1")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, data: Any, status: int = 200, **kw: Any) -> Response:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        return cls(status=status, body=body, **kw)

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        return cls(status=status, body=text.encode(), content_type="text/html; charset=utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        return

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self._serve(body=body)

    def _serve(self, head: bool = False, body: bytes = b"") -> None:
        emu = self.server.emulator
        headers = {k.lower(): v for k, v in self.headers.items()}
        emu._log(LoggedRequest(time.monotonic(), self.command, self.path, headers))
        req = Request(self.command, self.path, headers, body)
        faults = emu.faults
        delay = faults.take_delay(req.target)
        if delay:
            time.sleep(delay)
        rl = faults.check_rate_limit()
        if rl is not None and rl.limited:
            resp = emu.rate_limited_response(req)
        else:
            status = faults.take_server_error(req.target)
            if status is not None:
                resp = emu.server_error_response(req, status)
            else:
                try:
                    resp = emu.route(req)
                except Exception as exc:  # an emulator bug should be a visible 500
                    resp = Response.json({"error": f"emulator error: {exc!r}"}, status=500)
        if rl is not None:
            resp.headers.extend(emu.rate_limit_headers(rl))
        self._send(resp, head=head, truncate=faults.take_truncate(req.target))

    def _send(self, resp: Response, head: bool, truncate: bool) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        for name, value in resp.headers:
            self.send_header(name, value)
        body = resp.body
        if truncate:
            # Promise more bytes than we send, then drop the connection mid-body.
            self.send_header("Content-Length", str(len(body) + 1024))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: Emulator


class Emulator:
    """Base class: start/stop, ``base_url``, ``requests`` and ``faults``.

    Subclasses implement ``route`` and the platform-specific 429/5xx/header shapes.
    """

    name = "emulator"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.faults = Faults()
        self.requests: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ---------------------------------------------------------------
    def start(self) -> Self:
        server = _Server((self._host, self._port), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=self.name,
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "emulator not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def _log(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    # platform hooks ------------------------------------------------------------
    def route(self, req: Request) -> Response:
        raise NotImplementedError

    def rate_limited_response(self, req: Request) -> Response:
        raise NotImplementedError

    def rate_limit_headers(self, state: RateLimitState) -> list[tuple[str, str]]:
        raise NotImplementedError

    def server_error_response(self, req: Request, status: int) -> Response:
        return Response.html(
            f"<html><head><title>{status}</title></head><body><center><h1>{status}</h1>"
            "</center><hr><center>nginx</center></body></html>",
            status=status,
        )


def serve_until_interrupted(emu: Emulator, name: str, extra: list[str] | None = None) -> None:
    """For ``python -m tests.emulators.X``: print where the (started) emulator is, then serve
    until Ctrl-C."""
    import time

    print(f"{name} emulator on {emu.base_url}  (Ctrl-C to stop)", flush=True)
    for line in extra or []:
        print(f"  {line}", flush=True)
    samples = getattr(emu, "sample_targets", None)
    for label, url in (samples() if samples else {}).items():
        print(f"  {label:10} {url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopped")
