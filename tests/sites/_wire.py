"""A tiny HTTP/1.1 server on raw sockets, for test sites that must control every byte.

``http.server`` adds ``Server`` and ``Date`` headers and normalises what it writes; archival
fidelity tests need to know the exact status line, header order/case/repeats and body framing
that went over the wire. Here a handler returns a :class:`WireResponse` and it is written
verbatim. Requests are read with keep-alive (several per connection) and a Content-Length body.
"""

from __future__ import annotations

import gzip
import socket
import socketserver
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import brotli

MAX_LINE = 65536
MAX_HEADERS = 200


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the server read it (header names/values as bytes, order kept)."""

    method: str
    target: str  # path + query, exactly as on the request line
    headers: list[tuple[bytes, bytes]]
    body: bytes
    host: str  # the Host header if sent, else the listening "ip:port"
    time: float  # time.time() when the request head was read
    version: str = "HTTP/1.1"

    def header(self, name: str) -> bytes | None:
        """First value of header ``name`` (case-insensitive), or None."""
        key = name.lower().encode("latin-1")
        for k, v in self.headers:
            if k.lower() == key:
                return v
        return None


@dataclass(frozen=True)
class WireResponse:
    """A response exactly as the server sends it.

    ``entity_body`` is the payload after removing chunked transfer coding (still content-encoded);
    when ``chunks`` is set the body is sent with Transfer-Encoding: chunked, each chunk as
    ``(data, extension)`` where extension (e.g. ``b";name=value"``) may be empty.
    """

    status_line: bytes
    headers: list[tuple[bytes, bytes]]
    entity_body: bytes
    chunks: tuple[tuple[bytes, bytes], ...] | None = None
    close: bool = False  # server closes the connection after sending
    content_encoding: str | None = None

    @property
    def chunked(self) -> bool:
        return self.chunks is not None

    @property
    def status(self) -> int:
        return int(self.status_line.split(b" ", 2)[1])

    def head_bytes(self) -> bytes:
        lines = [self.status_line] + [k + b": " + v for k, v in self.headers]
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def body_bytes(self) -> bytes:
        """The message body as transferred (chunk framing included when chunked)."""
        if self.chunks is None:
            return self.entity_body
        out = bytearray()
        for data, ext in self.chunks:
            out += b"%x" % len(data) + ext + b"\r\n" + data + b"\r\n"
        out += b"0\r\n\r\n"
        return bytes(out)

    def wire_bytes(self, head_only: bool = False) -> bytes:
        """Everything written to the socket for this response (HEAD: no body)."""
        return self.head_bytes() if head_only else self.head_bytes() + self.body_bytes()


def make_response(
    status: int,
    reason: str,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    version: bytes = b"HTTP/1.1",
    encoding: str | None = None,
    chunk_size: int | None = None,
    chunk_ext: bytes = b"",
    close: bool = False,
) -> WireResponse:
    """Build a response: content-encode ``body`` with ``encoding`` (gzip/deflate/br), then frame it
    with Content-Length, or with chunked coding when ``chunk_size`` is given (the second chunk
    carries ``chunk_ext``). ``headers`` come first, in the given order and case."""
    hdrs = list(headers or [])
    entity = encode(body, encoding)
    if encoding:
        hdrs.append((b"Content-Encoding", encoding.encode("ascii")))
    chunks = None
    if chunk_size:
        pieces = [entity[i : i + chunk_size] for i in range(0, len(entity), chunk_size)]
        chunks = tuple(
            (piece, chunk_ext if i == 1 else b"") for i, piece in enumerate(pieces) if piece
        )
        hdrs.append((b"Transfer-Encoding", b"chunked"))
    else:
        hdrs.append((b"Content-Length", str(len(entity)).encode("ascii")))
    if close:
        hdrs.append((b"Connection", b"close"))
    status_line = version + b" %d " % status + reason.encode("latin-1")
    return WireResponse(status_line, hdrs, entity, chunks, close, encoding)


def encode(body: bytes, encoding: str | None) -> bytes:
    """Deterministic content-coding (gzip mtime=0; "deflate" is zlib-wrapped, per RFC 9110)."""
    if encoding is None:
        return body
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=6, mtime=0)
    if encoding == "deflate":
        return zlib.compress(body, 6)
    if encoding == "br":
        return brotli.compress(body)
    raise ValueError(f"unknown content-coding {encoding!r}")


def decode(body: bytes, encoding: str | None) -> bytes:
    """Inverse of :func:`encode`."""
    if encoding is None:
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        return brotli.decompress(body)
    raise ValueError(f"unknown content-coding {encoding!r}")


Handler = Callable[[str, str], WireResponse]  # (method, target) -> response


class _Connection(socketserver.StreamRequestHandler):
    server: WireServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        self.server.track(self.connection, add=False)
        try:
            super().finish()
        except OSError:
            pass

    def handle(self) -> None:
        while True:
            try:
                request = self._read_request()
            except (OSError, ValueError):
                return
            if request is None:
                return
            self.server.record(request)
            response = self.server.handler(request.method, request.target)
            try:
                self.wfile.write(response.wire_bytes(head_only=request.method == "HEAD"))
                self.wfile.flush()
            except OSError:
                return
            if response.close or _wants_close(request):
                return

    def _read_request(self) -> ReceivedRequest | None:
        line = self.rfile.readline(MAX_LINE)
        while line in (b"\r\n", b"\n"):  # tolerate stray CRLF between requests (RFC 9112 2.2)
            line = self.rfile.readline(MAX_LINE)
        if not line:
            return None
        method, target, version = line.rstrip(b"\r\n").decode("latin-1").split(" ", 2)
        headers: list[tuple[bytes, bytes]] = []
        for _ in range(MAX_HEADERS):
            raw = self.rfile.readline(MAX_LINE)
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.rstrip(b"\r\n").partition(b":")
            headers.append((name.strip(), value.strip()))
        length = next((int(v) for k, v in headers if k.lower() == b"content-length"), 0)
        body = self.rfile.read(length) if length else b""
        host_hdr = next((v for k, v in headers if k.lower() == b"host"), None)
        ip, port = self.connection.getsockname()[:2]
        local = f"{ip}:{port}"
        host = host_hdr.decode("latin-1") if host_hdr is not None else local
        return ReceivedRequest(method, target, headers, body, host, time.time(), version)


def _wants_close(request: ReceivedRequest) -> bool:
    conn = (request.header("Connection") or b"").lower()
    if request.version == "HTTP/1.0":
        return b"keep-alive" not in conn
    return b"close" in conn


@dataclass
class RequestLog:
    """Thread-safe list of received requests shared by several servers."""

    items: list[ReceivedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def append(self, request: ReceivedRequest) -> None:
        with self.lock:
            self.items.append(request)

    def snapshot(self) -> list[ReceivedRequest]:
        with self.lock:
            return list(self.items)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


class WireServer(socketserver.ThreadingTCPServer):
    """Threaded TCP server that hands each request to ``handler`` and logs it to ``log``."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        handler: Handler,
        log: RequestLog,
    ) -> None:
        self.handler = handler
        self._log = log
        self._lock = threading.Lock()  # guards the set of open connections
        self._open: set[socket.socket] = set()
        self._thread: threading.Thread | None = None
        super().__init__(address, _Connection)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def record(self, request: ReceivedRequest) -> None:
        self._log.append(request)

    def track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._open.add if add else self._open.discard)(conn)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, then shut down idle keep-alive connections so handler threads end."""
        self.shutdown()
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
