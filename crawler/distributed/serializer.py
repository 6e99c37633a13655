"""JSON request serializer for the Redis queue (scrapy-redis ``SCHEDULER_SERIALIZER``).

scrapy-redis pickles requests by default, so whoever can write to the Redis server can run
code in every worker (``pickle.loads`` of a planted entry). Here a request is JSON with a
fixed schema: bytes are tagged ``{"$b": base64}``, nothing else but JSON types is accepted, the
request class is one of a short list, and a callback is a plain method name of the spider
(resolved by Scrapy with ``getattr`` on the spider, never imported).

``loads`` raises ``BadQueueEntry`` (a ``ValueError``) for anything outside the schema; the
queue drops such an entry with one error line instead of looping on it.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

MAX_ENTRY_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 32
ALLOWED_CLASSES = frozenset({
    "scrapy.http.request.Request",
    "scrapy.http.request.form.FormRequest",
    "scrapy.http.request.json_request.JsonRequest",
    "scrapy.Request",
    "scrapy.FormRequest",
    "scrapy.http.Request",
    "scrapy.http.FormRequest",
    "scrapy.http.JsonRequest",
})
_METHOD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_HTTP_METHOD = re.compile(r"^[A-Z]{1,16}$")
_SCHEMA: dict[str, tuple[type, ...]] = {
    "url": (str,),
    "callback": (str, type(None)),
    "errback": (str, type(None)),
    "headers": (dict,),
    "body": (bytes,),
    "cookies": (dict, list),
    "meta": (dict,),
    "encoding": (str,),
    "flags": (list,),
    "cb_kwargs": (dict,),
    "dont_filter": (bool,),
    "method": (str,),
    "priority": (int,),
    "_class": (str,),
    "formdata": (dict, list, type(None)),
    "dumps_kwargs": (dict,),
}
_REQUIRED = ("url", "method")


class BadQueueEntry(ValueError):
    """A queue entry that is not a request this version of socialark wrote."""


def _encode(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise TypeError("request data nested too deeply for the Redis queue")
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, bytes):
                key = "$b:" + base64.b64encode(key).decode("ascii")
            elif not isinstance(key, str):
                raise TypeError(f"request data key {key!r} is not a string")
            out[key] = _encode(item, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_encode(v, depth + 1) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(f"{type(value).__name__} cannot be queued in Redis (JSON only)")


def _decode(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise BadQueueEntry("nested too deeply")
    if isinstance(value, dict):
        if set(value) == {"$b"}:
            try:
                return base64.b64decode(str(value["$b"]), validate=True)
            except (ValueError, TypeError) as exc:
                raise BadQueueEntry(f"bad base64: {exc}") from None
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if key.startswith("$b:"):
                try:
                    out[base64.b64decode(key[3:], validate=True)] = _decode(item, depth + 1)
                except ValueError as exc:
                    raise BadQueueEntry(f"bad base64 key: {exc}") from None
            else:
                out[key] = _decode(item, depth + 1)
        return out
    if isinstance(value, list):
        return [_decode(v, depth + 1) for v in value]
    return value


def dumps(obj: dict[str, Any]) -> bytes:
    """A request dict (``Request.to_dict``) as JSON bytes."""
    return json.dumps(_encode(obj), separators=(",", ":")).encode("utf-8")


def loads(data: bytes | str) -> dict[str, Any]:
    """The request dict in ``data``, checked against the schema (``BadQueueEntry`` if not)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_ENTRY_BYTES:
        raise BadQueueEntry(f"entry of {len(data)} bytes is larger than {MAX_ENTRY_BYTES}")
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise BadQueueEntry(f"not JSON ({str(exc)[:80]}); pickled entries are refused") from None
    if not isinstance(raw, dict):
        raise BadQueueEntry("not a JSON object")
    obj = _decode(raw)
    return check_request_dict(obj)


def check_request_dict(obj: dict[str, Any]) -> dict[str, Any]:
    """Validate the keys, types and values of a decoded request dict."""
    for key in _REQUIRED:
        if key not in obj:
            raise BadQueueEntry(f"missing {key!r}")
    for key, value in obj.items():
        types = _SCHEMA.get(key)
        if types is None:
            raise BadQueueEntry(f"unexpected field {key!r}")
        if not isinstance(value, types) or (key == "priority" and isinstance(value, bool)):
            raise BadQueueEntry(f"field {key!r} has the wrong type {type(value).__name__}")
    url = obj["url"]
    if not url.lower().startswith(("http://", "https://")) or len(url) > 64 * 1024:
        raise BadQueueEntry(f"url {url[:80]!r} is not an http(s) URL")
    if not _HTTP_METHOD.match(obj["method"]):
        raise BadQueueEntry(f"invalid method {obj['method'][:20]!r}")
    for key in ("callback", "errback"):
        name = obj.get(key)
        if name is not None and not _METHOD_NAME.match(name):
            raise BadQueueEntry(f"{key} {name[:80]!r} is not a spider method name")
    cls = obj.get("_class")
    if cls is not None and cls not in ALLOWED_CLASSES:
        raise BadQueueEntry(f"request class {cls[:80]!r} is not allowed")
    headers = obj.get("headers") or {}
    for name, values in headers.items():
        if not isinstance(name, (bytes, str)) or not isinstance(values, list) or not all(
            isinstance(v, (bytes, str)) for v in values
        ):
            raise BadQueueEntry("headers must map names to lists of values")
    return obj
