"""Redaction of secrets in what socialark writes about a crawl (config, logs, errors, Redis).

A crawl's configuration travels far: the warcinfo ``crawl-config`` field is mirrored to S3 and
packed into WACZ files, ``crawls.config`` is shown by ``socialark browse``, the registered plan
sits in Redis. Secret-looking values are replaced by ``[redacted]`` before any of that:

- settings whose name matches a secret word (``MY_API_TOKEN``, ``AWS_SECRET_ACCESS_KEY``);
- header values whose name matches (``Authorization``, ``Cookie``, ``X-Api-Key``) inside
  settings such as ``DEFAULT_REQUEST_HEADERS``;
- passwords in URLs (``redis://:pw@host``, ``https://user:pw@host``).

The secret words are ``SECRET_WORDS`` unless ``ARCHIVE_REDACT_NAMES`` (comma-separated) says
otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"
SECRET_WORDS: tuple[str, ...] = (
    "authorization", "cookie", "token", "secret", "password", "passwd", "key", "credential",
    "session", "auth",
)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@'\"]*:)[^@\s/'\"]+@")
_QUOTED_PAIR = re.compile(
    r"(?P<q1>['\"]?)(?P<name>[A-Za-z0-9_.-]+)(?P=q1)(?P<sep>\s*[:=]\s*)(?P<q2>['\"])"
    r"(?P<value>(?:\\.|(?!(?P=q2)).)*)(?P=q2)"
)
_BARE_PAIR = re.compile(r"(?P<name>[A-Za-z0-9_.-]+)(?P<sep>=)(?P<value>[^\s,;&'\"]+)")


def words_from(setting: str | Iterable[str] | None) -> tuple[str, ...]:
    """The secret words of an ``ARCHIVE_REDACT_NAMES`` value (default: ``SECRET_WORDS``)."""
    if not setting:
        return SECRET_WORDS
    items = setting.split(",") if isinstance(setting, str) else list(setting)
    return tuple(w.strip().lower() for w in items if w.strip()) or SECRET_WORDS


def is_secret_name(name: str | bytes, words: tuple[str, ...] = SECRET_WORDS) -> bool:
    text = name.decode("latin-1") if isinstance(name, bytes) else name
    lowered = text.lower()
    return any(w in lowered for w in words)


def redact_url(url: str) -> str:
    """``scheme://user:pw@host`` → ``scheme://user:[redacted]@host`` (anywhere in ``url``)."""
    return _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED + "@", url)


def redact_text(text: str, words: tuple[str, ...] = SECRET_WORDS) -> str:
    """Redact URL passwords and ``name: 'value'`` / ``name=value`` pairs with secret names.

    For free text: log lines (Scrapy's "Overridden settings" dict), error messages.
    """
    text = redact_url(text)

    def quoted(m: re.Match[str]) -> str:
        q1, q2 = m.group("q1"), m.group("q2")
        value = REDACTED if is_secret_name(m.group("name"), words) else (
            _QUOTED_PAIR.sub(quoted, m.group("value")))  # headers as JSON inside a setting
        return f"{q1}{m.group('name')}{q1}{m.group('sep')}{q2}{value}{q2}"

    def bare(m: re.Match[str]) -> str:
        if not is_secret_name(m.group("name"), words) or m.group("value") == REDACTED:
            return m.group(0)
        return f"{m.group('name')}{m.group('sep')}{REDACTED}"

    return _BARE_PAIR.sub(bare, _QUOTED_PAIR.sub(quoted, text))


def redact_value(value: Any, words: tuple[str, ...] = SECRET_WORDS) -> Any:
    """Redact secrets in a JSON-like value: secret-named keys, URL passwords, nested JSON text."""
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_name(k, words) and v not in (None, "")
            else redact_value(v, words)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact_value(v, words) for v in value]
    if isinstance(value, str):
        return _redact_string(value, words)
    return value


def _redact_string(value: str, words: tuple[str, ...]) -> str:
    stripped = value.strip()
    if stripped[:1] in ("{", "["):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            pass
        else:
            return json.dumps(redact_value(parsed, words))
    return redact_url(value)


def redact_setting(item: str, words: tuple[str, ...] = SECRET_WORDS) -> str:
    """One ``KEY=VALUE`` (``-s``) item with its value redacted as needed."""
    key, sep, value = item.partition("=")
    if not sep:
        return redact_url(item)
    if is_secret_name(key, words):
        return f"{key}={REDACTED}"
    return f"{key}={_redact_string(value, words)}"


def redact_config(config: dict[str, Any], words: tuple[str, ...] = SECRET_WORDS) -> dict[str, Any]:
    """A crawl plan's config (``CrawlPlan.config()``) safe to write and share."""
    out = dict(config)
    options = dict(out.get("options") or {})
    if isinstance(options.get("settings"), list):
        options["settings"] = [
            redact_setting(s, words) if isinstance(s, str) else s for s in options["settings"]
        ]
    for name, value in list(options.items()):
        if name != "settings":
            options[name] = redact_value(value, words) if isinstance(value, str) else value
    out["options"] = options
    if isinstance(out.get("args"), dict):
        # Argument names are the spider's own (``keywords`` is no secret): URL passwords only.
        out["args"] = {k: redact_value(v, words) for k, v in out["args"].items()}
    return out
