"""SURT url keys: the canonical, sortable form of a URL that CDX indexes are keyed by.

``surt(url)`` gives the same key as ``surt.surt(url)`` from internetarchive/surt 0.3.1 (the
canonicalizer pywb and cdxj-indexer use), so an index written here can be queried by pywb and
merged with CDXJ from other tools. It is an independent implementation of the documented rules
(that package is AGPL): Google's "safe browsing" canonicalization (percent-decoding until
stable, then escaping once; dotted-path resolution; IP and IDN hosts), then the Internet Archive
rules (lower-case, strip ``www\\d*.``, userinfo, default ports, session ids, trailing slash and
fragment; sort the query), then the host reversed into ``org,example)/path?query``.

``urlkey_for_request`` adds the request method and body for non-GET requests, as pywb's
``MethodQueryCanonicalizer`` and cdxj-indexer's ``--post-append`` do, so POST captures can be
looked up by their body.

Everything works on bytes internally, like the reference, so a URL with invalid UTF-8 escapes
gets exactly the same key.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import socket
import struct
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import (
    SplitResultBytes,
    quote_from_bytes,
    unquote_plus,
    unquote_to_bytes,
    urlencode,
)

__all__ = ["MAX_QUERY_LENGTH", "request_body_query", "surt", "urlkey_for_request"]

# RFC 3986 appendix B, with the scheme restricted to legal scheme characters and the whole
# hierarchical part optional (so a bare fragment parses).
_SPLIT = re.compile(
    rb"^(?:([a-zA-Z][a-zA-Z0-9+.-]*):)?(?:(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?)?(?:#(.*))?$", re.S
)
_HAS_SCHEME = re.compile(rb"^[a-zA-Z][a-zA-Z0-9+\-.]*:")
_REPEATED_HTTP = re.compile(rb"^(https?://)+")
_TAB_CR_LF = re.compile(b"[\n\r\t]")
_WWW = re.compile(rb"www\d*\.")
_DECIMAL_IP = re.compile(rb"^[1-9][0-9]*(?:\.[0-9]+){0,3}$")
_OCTAL_IP = re.compile(rb"^0[0-7]*(?:\.[0-7]+){0,3}$")
# Everything printable in ASCII except '#' and '%' stays as is when escaping once.
_SAFE = b"!\"$&'()*+,-./:;<=>?@[\\]^_`{|}~"

_PATH_SESSION_IDS = (
    re.compile(rb"^(.*/)(\((?:[a-z]\([0-9a-z]{24}\))+\)/)([^\?]+\.aspx.*)$", re.I),
    re.compile(rb"^(.*/)(\([0-9a-z]{24}\)/)([^\?]+\.aspx.*)$", re.I),
)
_QUERY_SESSION_IDS = tuple(
    re.compile(rb"^(.*)(?:" + p + rb")(?:&(.*))?$", re.I)
    for p in (
        rb"jsessionid=[0-9a-zA-Z]{32}",
        rb"phpsessid=[0-9a-zA-Z]{32}",
        rb"sid=[0-9a-zA-Z]{32}",
        rb"ASPSESSIONID[a-zA-Z]{8}=[a-zA-Z]{24}",
        rb"cfid=[^&]+&cftoken=[^&]+",
    )
)
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
# Bytes that _escape_once would change (controls, space, '#', '%', non-ASCII): a value
# without any is returned as is, without calling quote_from_bytes.
_NEEDS_ESCAPE = re.compile(rb"[^!-~]|[#%]")

MAX_QUERY_LENGTH = 4096


def surt(
    url: str | None,
    *,
    with_scheme: bool = False,
    trailing_comma: bool = False,
    host_massage: bool = True,
) -> str:
    """Return the SURT url key of ``url`` (``http://www.Example.com/a/?b=1&a`` → ``com,example)/a?a&b=1``).

    ``dns:``, ``warcinfo:``, ``mailto:`` and other host-less URLs keep their scheme;
    ``filedesc:`` URLs and empty input (``-``) pass through untouched, as in the reference.
    Raises ``ValueError`` for a URL whose port is not a number in 0-65535.
    """
    if not url:
        return "-"
    raw = url.encode("utf-8")
    if raw.startswith(b"filedesc"):
        return url
    parts = _parse(raw)
    if parts is None:
        return "-"
    _google_canonicalize(parts)
    _ia_canonicalize(parts, host_massage=host_massage)
    return _render(parts, with_scheme=with_scheme, trailing_comma=trailing_comma).decode("utf-8")


class _Url:
    """The pieces of a URL being canonicalized (bytes; ``None`` = absent)."""

    __slots__ = ("host", "path", "port", "query", "scheme")

    def __init__(
        self,
        scheme: bytes,
        host: bytes | None,
        port: int | None,
        path: bytes | None,
        query: bytes | None,
    ) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.query = query


def _parse(raw: bytes) -> _Url | None:
    raw = raw.strip()
    if b"\t" in raw or b"\r" in raw or b"\n" in raw:
        raw = _TAB_CR_LF.sub(b"", raw)
    if not raw:
        return None  # whitespace only (the reference raises here)
    if not _HAS_SCHEME.match(raw):
        raw = b"http://" + raw
    raw = _REPEATED_HTTP.sub(lambda m: m.group(1), raw)  # http://https://x → https://x
    m = _SPLIT.match(raw)
    assert m is not None  # every byte string matches: all groups are optional
    scheme, netloc, path, query = (m.group(i) or b"" for i in (1, 2, 3, 4))
    port, host = _netloc_parts(netloc)
    path_or_none = path or None
    if scheme.startswith(b"http") and host is None and path_or_none is not None:
        # "http:////www.example.com": the host hides behind extra slashes
        first, _, rest = path_or_none.lstrip(b"/").partition(b"/")
        host, path_or_none = first, b"/" + rest
    return _Url(scheme, host, port, path_or_none, query or None)


@functools.lru_cache(maxsize=4096)
def _netloc_parts(netloc: bytes) -> tuple[int | None, bytes | None]:
    """(port, host) of a netloc (cached: a file's URLs share few hosts)."""
    if netloc.endswith(b":"):  # "host:" with no port number
        netloc = netloc.rstrip(b":")
    split = SplitResultBytes(b"", netloc, b"", b"", b"")
    port = split.port or None  # stdlib: userinfo dropped, ValueError for a bad port
    host = split.hostname or None  # stdlib: lower-cased, [IPv6] brackets removed
    return port, host


def _unescape_repeatedly(value: bytes) -> bytes:
    if b"%" not in value:
        return value
    while True:
        decoded = unquote_to_bytes(value)
        if decoded == value:
            return value
        value = decoded


def _escape_once(value: bytes) -> bytes:
    """Percent-encode controls, space, '#', '%' and non-ASCII bytes; keep the rest."""
    if not value or not _NEEDS_ESCAPE.search(value):
        return value
    return quote_from_bytes(value, safe=_SAFE).encode("ascii")


def _ip_host(host: bytes) -> bytes | None:
    """Dotted-quad form of a numeric host (``3279880203``, ``017.0.0.1``, ``10.0.258``), else None.

    Uses ``inet_aton`` (what the resolver does for numeric hosts), so this never touches DNS.
    """
    if host.isdigit():
        # mask to 32 bits, as the reference does for odd hosts found in old ARC files
        return socket.inet_ntoa(struct.pack(">L", int(host) & 0xFFFFFFFF)).encode("ascii")
    if _DECIMAL_IP.match(host) or _OCTAL_IP.match(host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host.decode("ascii"))).encode("ascii")
        except OSError:
            return None
    return None


@functools.lru_cache(maxsize=4096)
def _canonical_host(host: bytes) -> bytes:
    host = _unescape_repeatedly(host)
    if not host.isascii():
        try:
            host = host.decode("utf-8", "ignore").encode("idna")
        except ValueError:  # UnicodeError: not representable in IDNA 2003; escaped below
            pass
    host = host.replace(b"..", b".").strip(b".")
    ip = _ip_host(host)
    return ip if ip is not None else _escape_once(host.lower())


def _normalize_path(path: bytes | None) -> bytes:
    """Resolve ``.``/``..`` segments and collapse empty ones, keeping a trailing slash."""
    if not path:
        return b"/"
    kept: list[bytes] = []
    for segment in path.split(b"/")[1:]:
        if segment == b".":
            continue
        if segment == b".." and kept:
            kept.pop()
        else:
            kept.append(segment)
    if not kept:
        return b"/"
    return b"/" + b"".join(s + b"/" for s in kept[:-1] if s) + kept[-1]


def _google_canonicalize(u: _Url) -> None:
    if u.query:
        u.query = _escape_once(_unescape_repeatedly(u.query))
    if u.host:
        u.host = _canonical_host(u.host)
    path = _unescape_repeatedly(u.path) if u.path is not None else None
    if u.host:
        path = _normalize_path(path)
    u.path = _escape_once(path) if path is not None else None


def _strip_session_ids(value: bytes, patterns: tuple[re.Pattern[bytes], ...], path: bool) -> bytes:
    for pattern in patterns:
        m = pattern.match(value)
        if m:
            value = m.group(1) + m.group(3) if path else m.group(1) + (m.group(2) or b"")
    return value


def _sort_query(query: bytes) -> bytes:
    if len(query) <= 1:
        return query
    args = sorted(tuple(arg.split(b"=", 1)) for arg in query.split(b"&"))
    return b"&".join(b"=".join(arg) for arg in args)


def _ia_canonicalize(u: _Url, *, host_massage: bool) -> None:
    if u.host:
        u.host = u.host.lower()
        if host_massage and u.scheme != b"dns":
            m = _WWW.match(u.host)
            if m:
                u.host = u.host[m.end() :]
    if u.scheme and u.port == _DEFAULT_PORTS.get(u.scheme.lower(), 0):
        u.port = None
    path = u.path
    if path:
        path = path.lower()
        if b".aspx" in path:  # both path patterns need it
            path = _strip_session_ids(path, _PATH_SESSION_IDS, path=True)
        if len(path) > 1 and path.endswith(b"/"):
            path = path[:-1]
    u.path = path
    if u.query:
        query = u.query
        lower = query.lower()
        if b"sessionid" in lower or b"sid=" in lower or b"cfid=" in lower:  # the patterns' cores
            query = _strip_session_ids(query, _QUERY_SESSION_IDS, path=False)
            lower = query.lower()
        u.query = _sort_query(lower) or None


def _render(u: _Url, *, with_scheme: bool, trailing_comma: bool) -> bytes:
    host = u.host
    if host:
        labels = host.split(b".")
        labels.reverse()
        host = b",".join(labels)
    if with_scheme or not host:
        out = u.scheme + b":"
        if with_scheme and host:
            out += b"//(" if u.scheme != b"dns" else b"("
    else:
        out = b""
    if host:
        out += host
        if u.port is not None:
            out += b":%d" % u.port
        out += b",)" if trailing_comma else b")"
    if u.path:
        out += u.path
    elif u.query is not None:
        out += b"/"
    if u.query is not None:
        out += b"?" + u.query
    return out


# --- non-GET requests --------------------------------------------------------------------------


def urlkey_for_request(
    url: str, method: str = "GET", body: bytes | None = None, content_type: str | None = None
) -> tuple[str, str | None]:
    """Return ``(urlkey, request_body_query)`` for a request, as pywb/cdxj-indexer key it.

    Only POST and PUT are special: they are keyed by
    ``surt(url + "?__wb_method=POST&<body query>")`` (``&`` if the URL already has a query), so
    replaying the same form submission finds the capture, and the body query (stored as
    ``captures.request_body``, emitted as ``requestBody``) is returned with the key. Every other
    method is keyed by ``surt(url)`` with ``None`` for the body, as cdxj-indexer does.
    """
    method = (method or "GET").upper()
    if method not in ("POST", "PUT"):
        return surt(url), None
    query = request_body_query(body or b"", content_type)
    suffix = ("&" if "?" in url else "?") + "__wb_method=" + method
    if query:
        suffix += "&" + query
    return surt(url + suffix), query


def request_body_query(body: bytes, content_type: str | None) -> str:
    """Turn a POST/PUT body into the query string cdxj-indexer appends (truncated to 4096 chars).

    Form bodies are unquoted, multipart fields urlencoded, JSON flattened into ``key=value``
    (repeated keys get ``.2_``, ``.3_`` suffixes), anything else becomes
    ``__wb_post_data=<base64>``. (AMF bodies, which cdxj-indexer decodes, are kept as base64.)
    """
    mime = (content_type or "").strip()
    lower = mime.lower()
    if lower.startswith("application/x-www-form-urlencoded"):
        try:
            query = unquote_plus(body.decode("utf-8"))
        except UnicodeDecodeError:
            query = _binary_query(body)
    elif lower.startswith("multipart/"):
        query = _multipart_query(body, mime)
    elif lower.startswith("application/json"):
        try:
            query = _json_query(body)
        except ValueError:
            query = ""
    elif lower.startswith("text/plain"):
        try:
            query = _json_query(body)
        except ValueError:
            query = _binary_query(body)
    else:
        query = _binary_query(body)
    return query[:MAX_QUERY_LENGTH]


def _binary_query(body: bytes) -> str:
    return "__wb_post_data=" + base64.b64encode(body).decode("ascii")


def _multipart_query(body: bytes, content_type: str) -> str:
    if "boundary=" not in content_type:
        return _binary_query(body)
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        return _binary_query(body)
    values: list[tuple[str, str | bytes]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        payload = part.get_payload(decode=True) or b""
        if part.get_filename():
            values.append((str(name), payload))
        else:
            values.append((str(name), payload.decode("utf-8", "replace")))
    return urlencode(values, True)


def _json_query(body: bytes) -> str:
    """Flatten JSON (or JSON lines) into ``key=value`` pairs, keyed by the innermost name."""
    data: dict[str, str] = {}
    dupes: dict[str, int] = {}

    def key_for(name: str) -> str:
        if name not in data:
            return name
        dupes[name] = dupes.get(name, 1) + 1
        return f"{name}.{dupes[name]}_"

    def walk(value: object, name: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, name)
        elif name:
            data[key_for(name)] = str(value)

    try:
        walk(json.loads(body))
    except json.JSONDecodeError:
        if b"\n" not in body:
            raise
        for line in body.split(b"\n"):
            walk(json.loads(line))
    return urlencode(data)
