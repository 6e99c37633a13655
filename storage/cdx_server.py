"""A CDX server API over the index (pywb / IA compatible), on the standard library's HTTP server.

It also answers ``GET /search?q=...`` with posts as JSON (storage/search_api.py): one server,
one index, the same read-only connection pool and limits.

Endpoints: ``GET /cdx?url=...`` (every collection, or ``&collection=NAME``) and
``GET /<collection>/cdx?url=...``. Parameters as pywb's CDX server: ``url``, ``matchType``,
``from``, ``to``, ``limit``, ``sort=reverse|closest``, ``closest``, ``output=cdxj|json|text``,
``filter`` (repeatable), ``fields``/``fl``. Bad parameters get a 400 with a one-line message.

pywb's ``cdx+http://`` remote index source always sends ``sort=closest&closest=<ts>`` and leaves
``closest`` empty for non-replay lookups: an empty ``closest`` is therefore ignored, not an
error. It reads the default ``cdxj`` output.

Each request borrows a read-only SQLite connection from a small pool, so concurrently running
request threads never share one; WAL mode lets a crawl keep writing meanwhile.

Hardening (docs/security.md): every query has a deadline (``query_timeout``: SQLite's progress
handler and regex match timeouts), a client has ``request_timeout`` seconds per read or write
(half-open connections do not hold a thread), at most ``max_threads`` requests run at once
(more get 503 at once), and the listen backlog is ``REQUEST_QUEUE_SIZE``.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from storage.cdx import (
    DEFAULT_TEXT_FIELDS,
    MAX_LIMIT,
    QUERY_TIMEOUT,
    CdxQueryError,
    QueryTimeout,
    field_values,
    format_line,
    parse_fields,
    query,
)
from storage.db import open_database
from storage.errors import StorageError
from storage.search import DEFAULT_REPLAY_BASE
from storage.search_api import run_search

__all__ = ["CdxServer", "make_server"]

_CONTENT_TYPES = {
    "cdxj": "text/x-cdxj; charset=utf-8",
    "json": "text/x-ndjson; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "jsonarray": "application/json; charset=utf-8",
}
_BATCH = 256  # lines per write: few syscalls, still streamed
REQUEST_TIMEOUT = 20.0  # seconds a client may take to send its request or read a batch
MAX_THREADS = 32
REQUEST_QUEUE_SIZE = 128  # listen backlog (the standard library's default is 5)
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\n"
         b"Content-Length: 38\r\nConnection: close\r\n\r\nbusy: too many requests, retry shortly\n")


class CdxServer(ThreadingHTTPServer):
    """Serves CDX queries for the index at ``index_path`` (opened read-only)."""

    daemon_threads = True
    block_on_close = False  # stopping does not wait for requests in flight (each has a deadline)
    request_queue_size = REQUEST_QUEUE_SIZE

    def __init__(self, address: tuple[str, int], index_path: Path, *, quiet: bool = False,
                 query_timeout: float | None = QUERY_TIMEOUT,
                 request_timeout: float = REQUEST_TIMEOUT, max_threads: int = MAX_THREADS,
                 replay_base: str = DEFAULT_REPLAY_BASE) -> None:
        self.index_path = Path(index_path)
        self.replay_base = replay_base
        self.quiet = quiet
        self.query_timeout = query_timeout
        self.request_timeout = request_timeout
        self._slots = threading.BoundedSemaphore(max(1, max_threads))
        self._pool: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Fail now, with a clear message, rather than on the first request.
        self._pool.put(open_database(self.index_path, readonly=True))
        super().__init__(address, CdxRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread per request, up to ``max_threads``; beyond that a 503 right away."""
        if not self._slots.acquire(blocking=False):
            try:
                request.settimeout(1.0)
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/cdx"

    @contextmanager
    def connection(self) -> Iterator[Any]:
        try:
            db = self._pool.get_nowait()
        except queue.Empty:
            db = open_database(self.index_path, readonly=True)
        try:
            yield db
        finally:
            self._pool.put(db)


def make_server(
    index_path: Path | str, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = False,
    query_timeout: float | None = QUERY_TIMEOUT, request_timeout: float = REQUEST_TIMEOUT,
    max_threads: int = MAX_THREADS, replay_base: str = DEFAULT_REPLAY_BASE,
) -> CdxServer:
    """Bind a CDX server (``port=0`` picks a free port; see ``server.url``). Call ``serve_forever()``."""
    return CdxServer((host, port), Path(index_path), quiet=quiet, query_timeout=query_timeout,
                     request_timeout=request_timeout, max_threads=max_threads,
                     replay_base=replay_base)


class BadRequest(Exception):
    """A parameter problem to answer with 400."""


def _single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _limit(value: str | None) -> int | None:
    if not value:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10 or not 0 < int(text) <= MAX_LIMIT:
        raise BadRequest(f"invalid limit {value[:30]!r}: use an integer from 1 to {MAX_LIMIT}")
    return int(text)


class CdxRequestHandler(BaseHTTPRequestHandler):
    server: CdxServer
    server_version = "socialark-cdx"

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # per read/write on the socket
        super().setup()

    def handle(self) -> None:
        try:
            super().handle()
        except (TimeoutError, ConnectionError):
            self.close_connection = True  # a client too slow or gone: drop it, free the thread

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        if split.path.rstrip("/") == "/search":
            self._search(parse_qs(split.query, keep_blank_values=True))
            return
        collection = self._collection_from_path(split.path)
        if collection is False:
            self._plain(
                HTTPStatus.NOT_FOUND, "not found: use /cdx?url=..., /<collection>/cdx?url=... or /search?q=..."
            )
            return
        params = parse_qs(split.query, keep_blank_values=True)
        collection = collection or _single(params, "collection") or None
        # The connection stays borrowed while rows stream out: results are never held in memory.
        with self.server.connection() as db:
            try:
                output, lines = self._run(db, params, collection)
            except (BadRequest, CdxQueryError) as exc:
                self._plain(HTTPStatus.BAD_REQUEST, str(exc))
                return
            except QueryTimeout as exc:
                self._plain(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
                return
            except (ValueError, OverflowError) as exc:  # a value no check above foresaw
                self._plain(HTTPStatus.BAD_REQUEST, f"invalid parameter: {exc}")
                return
            except StorageError as exc:
                self._plain(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc))
                return
            except sqlite3.Error as exc:
                self._plain(HTTPStatus.SERVICE_UNAVAILABLE, f"index error: {exc}")
                return
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", _CONTENT_TYPES[output])
            self.end_headers()
            try:
                self._stream(lines)
            except QueryTimeout as exc:  # mid-stream: the body is cut, say why in the log
                self.close_connection = True
                self.log_message("%s", f"stream stopped: {exc}")

    @staticmethod
    def _collection_from_path(path: str) -> str | bool | None:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts == ["cdx"]:
            return None
        if len(parts) == 2 and parts[1] == "cdx" and parts[0]:
            return parts[0]
        return False

    def _run(
        self, db: Any, params: dict[str, list[str]], collection: str | None
    ) -> tuple[str, Iterable[str]]:
        """Validate the parameters and start the query (rows are read as the response streams)."""
        url = _single(params, "url")
        if not url:
            raise BadRequest("missing url parameter: /cdx?url=http://example.com/")
        output = (_single(params, "output") or "cdxj").lower()
        if output not in ("cdxj", "json", "text"):
            raise BadRequest(f"invalid output {output!r}: use cdxj, json or text")
        fl = _single(params, "fl")
        fields = parse_fields(_single(params, "fields") or fl)
        sort = _single(params, "sort") or None
        closest = _single(params, "closest") or None
        if sort == "closest" and not closest:
            sort = None  # pywb's remote index source sends sort=closest&closest= for non-replay lookups
        rows = query(
            db,
            url,
            match_type=_single(params, "matchType") or None,
            from_ts=_single(params, "from") or None,
            to_ts=_single(params, "to") or None,
            limit=_limit(_single(params, "limit")),
            sort=sort,
            closest=closest,
            filters=params.get("filter", []),
            collection=collection,
            timeout=self.server.query_timeout,
        )
        if output == "json" and fl:
            return "jsonarray", _json_array(rows, fields or ())
        return output, (format_line(row, output, fields) + "\n" for row in rows)

    def _stream(self, lines: Iterable[str]) -> None:
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) >= _BATCH:
                self.wfile.write("".join(batch).encode("utf-8"))
                batch.clear()
        if batch:
            self.wfile.write("".join(batch).encode("utf-8"))

    def _search(self, params: dict[str, list[str]]) -> None:
        with self.server.connection() as db:
            status, body = run_search(db, params, replay_base=self.server.replay_base,
                                      timeout=self.server.query_timeout)
        data = (json.dumps(body, ensure_ascii=False) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _plain(self, status: HTTPStatus, message: str) -> None:
        body = (message + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)


def _json_array(rows: Iterable[dict[str, Any]], fields: tuple[str, ...]) -> Iterator[str]:
    """The Internet Archive's ``output=json`` shape: a header row, then one array per capture."""
    fields = fields or DEFAULT_TEXT_FIELDS
    yield "[" + json.dumps(list(fields))
    for row in rows:
        yield ",\n" + json.dumps(field_values(row, fields))
    yield "]\n"
