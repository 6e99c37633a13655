"""WARC files served over HTTP(S): one whole-object stream for indexing, ranged GETs for records.

``socialark index https://…/grab.warc.gz`` reads the object once as a non-seekable stream (no
copy on disk); replay, export and post extraction later read single records with
``Range: bytes=OFFSET-END``. A server that answers a Range request with the whole object
(``200`` instead of ``206``) cannot serve records: :class:`RangeNotSupported` says so in one line
instead of reading gigabytes to find a few hundred bytes.

Only the standard library is used (urllib follows redirects and keeps the Range header, as the
Internet Archive's download URLs need).
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from storage.errors import StorageError

USER_AGENT = "socialark (WARC indexer; +https://github.com/socialark)"
TIMEOUT = 60.0
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


class HttpObjectError(StorageError):
    """The object cannot be read over HTTP (status, network, or no range support)."""


class RangeNotSupported(HttpObjectError):
    """The server ignores Range requests: records cannot be read one by one."""


def is_http_url(value: str | None) -> bool:
    return value is not None and value.lower().startswith(("http://", "https://"))


def object_name(url: str) -> str:
    """The file name an HTTP object is indexed under: the last path segment, made safe for
    the index (``filename`` column, pywb's tab-separated path index)."""
    segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    name = _NAME_UNSAFE.sub("_", segment).lstrip(".")
    if not name:
        raise HttpObjectError(f"{url}: the URL names no file (expected .../NAME.warc.gz)")
    return name


def parent_name(url: str) -> str:
    """The last directory of the URL's path ('' if none): the default collection, as a local
    file's parent directory is."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    return unquote(parts[-2]) if len(parts) >= 2 else ""


@dataclass
class HttpHeadInfo:
    size: int | None
    etag: str
    last_modified: str


def _opener() -> urllib.request.OpenerDirector:
    """http and https only (redirects included: urllib's default opener would also follow a
    redirect to ``ftp://``); proxies from the environment as usual."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(),
                    urllib.request.HTTPSHandler(), urllib.request.HTTPRedirectHandler(),
                    urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def _request(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Any:
    if not is_http_url(url):
        raise HttpObjectError(f"{url}: not an http(s) URL")
    req = urllib.request.Request(url, method=method,
                                 headers={"User-Agent": USER_AGENT, **(headers or {})})
    try:
        return _opener().open(req, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise HttpObjectError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HttpObjectError(f"{url}: cannot connect ({reason})") from exc


def open_stream(url: str) -> tuple[Any, HttpHeadInfo]:
    """The whole object as a binary stream (``.read(n)``, not seekable), and what its headers say.

    The caller closes the stream. ``Content-Encoding`` other than identity is refused: offsets
    must be offsets into the file as stored, not into a transfer encoding of it.
    """
    resp = _request(url, {"Accept-Encoding": "identity"})
    if resp.status != 200:
        resp.close()
        raise HttpObjectError(f"{url}: HTTP {resp.status} (expected 200)")
    encoding = (resp.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", ""):
        resp.close()
        raise HttpObjectError(f"{url}: served with Content-Encoding {encoding}; offsets would not "
                              "match the file")
    length = resp.headers.get("Content-Length")
    info = HttpHeadInfo(int(length) if length and length.isdigit() else None,
                        (resp.headers.get("ETag") or "").strip('"'),
                        resp.headers.get("Last-Modified") or "")
    return resp, info


def read_range(url: str, offset: int, length: int) -> bytes:
    """``length`` bytes at ``offset`` of the object, by one ranged GET (``206`` required)."""
    end = offset + length - 1
    resp = _request(url, {"Range": f"bytes={offset}-{end}", "Accept-Encoding": "identity"})
    try:
        if resp.status != 206:
            raise RangeNotSupported(
                f"{url}: the server does not support HTTP range requests (answered "
                f"{resp.status} to 'Range: bytes={offset}-{end}'); single records cannot be "
                "read from it: download the file and index the local copy")
        got = _CONTENT_RANGE.match((resp.headers.get("Content-Range") or "").strip())
        if not got or int(got.group(1)) != offset or int(got.group(2)) != end:
            raise HttpObjectError(f"{url}: asked for bytes {offset}-{end}, got "
                                  f"{resp.headers.get('Content-Range')!r}")
        data: bytes = resp.read(length + 1)
    except OSError as exc:
        raise HttpObjectError(f"{url}: reading bytes {offset}-{end} failed: {exc}") from exc
    finally:
        resp.close()
    if len(data) != length:
        raise HttpObjectError(f"{url}: got {len(data)} bytes at offset {offset}, wanted {length}")
    return data


MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)


class RangeClient:
    """Ranged GETs of many records over kept-alive connections (one per scheme, host, port).

    Post extraction reads one record per matching capture: a fresh TCP (and TLS) connection,
    and a redirect hop (the Internet Archive's download URLs redirect to a data node), for
    each would cost more than the record. Redirects are followed once per URL and remembered.
    With a proxy configured in the environment it falls back to :func:`read_range` (urllib
    knows proxies, ``http.client`` does not).
    """

    def __init__(self, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self._conns: dict[tuple[str, str], Any] = {}
        self._final: dict[str, str] = {}

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def _connection(self, scheme: str, netloc: str) -> Any:
        import http.client

        key = (scheme, netloc)
        if key not in self._conns:
            cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            self._conns[key] = cls(netloc, timeout=self.timeout)
        return self._conns[key]

    def _get(self, url: str, headers: dict[str, str]) -> Any:
        """One GET on a kept-alive connection (retried once on a fresh one if it was closed)."""
        import http.client

        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for attempt in (0, 1):
            conn = self._connection(parts.scheme, parts.netloc)
            try:
                conn.request("GET", path, headers={"User-Agent": USER_AGENT, **headers})
                return conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop(parts.scheme, parts.netloc)
                if attempt:
                    raise HttpObjectError(f"{url}: connection lost ({exc})") from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop(parts.scheme, parts.netloc)
                raise HttpObjectError(f"{url}: cannot connect ({exc})") from exc
        raise AssertionError("unreachable")

    def _drop(self, scheme: str, netloc: str) -> None:
        conn = self._conns.pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def read(self, url: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``, as :func:`read_range` (same errors)."""
        import http.client
        import urllib.request

        if urllib.request.getproxies() and not urllib.request.proxy_bypass(
                urlsplit(url).hostname or ""):
            return read_range(url, offset, length)
        end = offset + length - 1
        target = self._final.get(url, url)
        headers = {"Range": f"bytes={offset}-{end}", "Accept-Encoding": "identity"}
        for _hop in range(MAX_REDIRECTS + 1):
            resp = self._get(target, headers)
            if resp.status not in _REDIRECTS:
                break
            resp.read()
            location = resp.getheader("Location") or ""
            target = urljoin(target, location)
            if not is_http_url(target):
                raise HttpObjectError(f"{url}: redirected to a non-http URL {target[:100]!r}")
        else:
            raise HttpObjectError(f"{url}: more than {MAX_REDIRECTS} redirects")
        parts = urlsplit(target)
        try:
            if resp.status != 206:
                self._drop(parts.scheme, parts.netloc)  # never read a whole file for one record
                if resp.status >= 400:
                    raise HttpObjectError(f"{url}: HTTP {resp.status} {resp.reason}")
                raise RangeNotSupported(
                    f"{url}: the server does not support HTTP range requests (answered "
                    f"{resp.status} to 'Range: bytes={offset}-{end}'); single records cannot be "
                    "read from it: download the file and index the local copy")
            got = _CONTENT_RANGE.match((resp.getheader("Content-Range") or "").strip())
            if not got or int(got.group(1)) != offset or int(got.group(2)) != end:
                self._drop(parts.scheme, parts.netloc)
                raise HttpObjectError(f"{url}: asked for bytes {offset}-{end}, got "
                                      f"{resp.getheader('Content-Range')!r}")
            data: bytes = resp.read(length + 1)
            if not resp.isclosed():
                resp.read()  # drain (nothing left for a correct server) so the connection is reusable
        except (OSError, http.client.HTTPException) as exc:
            self._drop(parts.scheme, parts.netloc)
            raise HttpObjectError(f"{url}: reading bytes {offset}-{end} failed: {exc}") from exc
        if len(data) != length:
            self._drop(parts.scheme, parts.netloc)
            raise HttpObjectError(f"{url}: got {len(data)} bytes at offset {offset}, wanted {length}")
        self._final[url] = target
        return data


def check_ranges(url: str) -> None:
    """Raise unless the object exists and the server honours Range (one 1-byte ranged GET)."""
    read_range(url, 0, 1)


__all__ = ["HttpHeadInfo", "HttpObjectError", "RangeClient", "RangeNotSupported", "check_ranges",
           "is_http_url", "object_name", "open_stream", "parent_name", "read_range"]
