"""Platform spec files: a TOML description of a platform that ``crawl ids --spec`` crawls.

A spec names how an id becomes URLs (templates, or a lookup answer that yields the item's key),
the item's API answers and page, where its media are, how API fields map into ``posts``, what a
deleted item looks like and how politely each host is treated. docs/specs.md is the reference.

Loading validates everything up front (templates, regexes, paths, types): a bad spec is one
``SpecError`` naming the file, the key and the problem, before any request is sent. This module
is Scrapy-free: ``index --rebuild`` loads specs without a crawler.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crawler.errors import CrawlConfigError
from crawler.spec.jsonpath import JsonPath

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
SPEC_PACKAGE = "crawler.spec.specs"
POST_FIELDS = ("post_id", "author", "author_id", "created_at", "text", "content_html",
               "reply_to_id", "repost_of_id", "quote_of_id", "reply_count", "repost_count",
               "like_count", "lang", "media")
SECTIONS = {"spec", "vars", "lookup", "item", "media", "posts", "deleted", "politeness"}


class SpecError(CrawlConfigError):
    """A spec that cannot be used: ``FILE: KEY: PROBLEM`` (a usage error, exit 2)."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"spec {source}: {key}: {problem}")
        self.source, self.key, self.problem = source, key, problem


@dataclass(frozen=True)
class Lookup:
    url: str  # template with {id}
    regex: re.Pattern[str] | None
    json: JsonPath | None


@dataclass(frozen=True)
class PostMap:
    roots: tuple[JsonPath, ...]
    fields: dict[str, JsonPath]
    created_at_format: str
    url: str | None  # template with {post_id} (and vars)


@dataclass(frozen=True)
class Politeness:
    delay: float | None
    concurrency: int | None


@dataclass(frozen=True)
class Spec:
    name: str
    platform: str
    source: str  # where it came from (file path or "parler-2021 (built in)")
    text: str  # the TOML source (kept in the crawl's config for index --rebuild and workers)
    vars: dict[str, str]
    id_format: str
    lookup: Lookup | None
    api: tuple[str, ...]
    page: str | None
    media_json: tuple[JsonPath, ...]
    media_css: tuple[str, ...]
    shortlinks: tuple[str, ...]
    variants: tuple[tuple[re.Pattern[str], str], ...]
    posts: PostMap | None
    deleted_statuses: frozenset[int]
    deleted_body: tuple[re.Pattern[str], ...]
    politeness: dict[str, Politeness] = field(default_factory=dict)  # hostname -> limits

    def expand(self, template: str, **values: str) -> str:
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), self.vars.get(m.group(1), m.group(0))),
                               template)

    def is_deleted(self, status: int, body: bytes) -> bool:
        if status in self.deleted_statuses:
            return True
        if status != 200 or not self.deleted_body:
            return False
        text = body[:65536].decode("utf-8", "replace")
        return any(rx.search(text) for rx in self.deleted_body)

    def api_patterns(self) -> list[re.Pattern[str]]:
        """Regexes matching this spec's API URLs (for ``index --rebuild``)."""
        out = []
        for template in self.api:
            parts = PLACEHOLDER.split(self.expand(template))
            rx = "".join(re.escape(p) if i % 2 == 0 else r"[^/?&#]+" for i, p in enumerate(parts))
            out.append(re.compile("^" + rx + "$"))
        return out


# -- loading ---------------------------------------------------------------------------------

def builtin_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(SPEC_PACKAGE).iterdir()
                  if p.name.endswith(".toml"))


def read_spec(name_or_file: str) -> tuple[str, str]:
    """(source label, TOML text) of a spec file path or a built-in spec name."""
    path = Path(name_or_file)
    if path.suffix == ".toml" or path.exists():
        try:
            return str(path), path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError(str(path), "-", exc.strerror or str(exc)) from None
        except UnicodeDecodeError:
            raise SpecError(str(path), "-", "not UTF-8 text") from None
    if re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", name_or_file):
        res = resources.files(SPEC_PACKAGE) / f"{name_or_file}.toml"
        if res.is_file():
            return f"{name_or_file} (built in)", res.read_text(encoding="utf-8")
    known = ", ".join(builtin_names()) or "none"
    raise SpecError(name_or_file, "-", f"no such spec file or built-in spec (built in: {known})")


def parse_vars(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise CrawlConfigError(f"--var expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip().rstrip("/")
    return out


def load_spec(name_or_file: str, overrides: dict[str, str] | None = None) -> Spec:
    source, text = read_spec(name_or_file)
    return parse_spec(text, source, overrides or {})


class _Reader:
    """Typed access to the TOML tables, each problem a ``SpecError`` naming the key."""

    def __init__(self, source: str, data: dict[str, Any]) -> None:
        self.source, self.data = source, data

    def fail(self, key: str, problem: str) -> SpecError:
        return SpecError(self.source, key, problem)

    def table(self, name: str, required: bool = False) -> dict[str, Any]:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.fail(f"[{name}]", "missing table")
            return {}
        if not isinstance(value, dict):
            raise self.fail(name, "must be a table")
        return value

    def get(self, table: str, key: str, kind: type | tuple[type, ...], default: Any = None,
            required: bool = False) -> Any:
        value = self.table(table).get(key)
        if value is None:
            if required:
                raise self.fail(f"{table}.{key}", "missing")
            return default
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(f"{table}.{key}", f"must be {names}, got {value!r:.60}")
        return value

    def strings(self, table: str, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.table(table).get(key)
        if value is None:
            return default
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{table}.{key}", "must be a string or a list of strings")
        return tuple(value)

    def unknown(self, table: str, allowed: set[str]) -> None:
        for key in self.table(table):
            if key not in allowed:
                raise self.fail(f"{table}.{key}", f"unknown key (known: {', '.join(sorted(allowed))})")


def _template(r: _Reader, key: str, template: str, vars: dict[str, str], allowed: set[str],
              url: bool = True) -> str:
    for name in PLACEHOLDER.findall(template):
        if name not in vars and name not in allowed:
            raise r.fail(key, f"unknown placeholder {{{name}}} (vars: "
                              f"{', '.join(sorted(vars)) or 'none'}; here also: "
                              f"{', '.join(sorted(allowed)) or 'none'})")
    if url:
        sample = PLACEHOLDER.sub(lambda m: vars.get(m.group(1), "1"), template)
        parts = urlsplit(sample)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise r.fail(key, f"{sample!r:.80} is not an http(s) URL")
    return template


def _path(r: _Reader, key: str, text: str) -> JsonPath:
    try:
        return JsonPath.parse(text)
    except ValueError as exc:
        raise r.fail(key, f"bad JSON path: {exc}") from None


def _regex(r: _Reader, key: str, text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise r.fail(key, f"bad regex: {exc}") from None


def parse_spec(text: str, source: str, overrides: dict[str, str]) -> Spec:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(source, "-", f"not valid TOML: {exc}") from None
    r = _Reader(source, data)
    for name in data:
        if name not in SECTIONS:
            raise r.fail(f"[{name}]", f"unknown table (known: {', '.join(sorted(SECTIONS))})")
    r.unknown("spec", {"name", "platform", "description", "ids"})
    name = r.get("spec", "name", str, required=True)
    platform = r.get("spec", "platform", str, required=True)
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", platform):
        raise r.fail("spec.platform", "lowercase letters, digits, '-' or '_' (at most 32)")
    id_format = r.get("spec", "ids", str, default="dec")
    if id_format not in ("dec", "hex"):
        raise r.fail("spec.ids", "must be \"dec\" or \"hex\"")

    vars: dict[str, str] = {}
    for key, value in r.table("vars").items():
        if not isinstance(value, str):
            raise r.fail(f"vars.{key}", "must be a string")
        vars[key] = value.rstrip("/")
    for key in overrides:
        if key not in vars:
            raise SpecError(source, f"--var {key}", f"the spec has no such variable "
                                                    f"(vars: {', '.join(sorted(vars)) or 'none'})")
    vars.update(overrides)

    lookup = None
    if r.table("lookup"):
        r.unknown("lookup", {"url", "regex", "json"})
        url = _template(r, "lookup.url", r.get("lookup", "url", str, required=True), vars, {"id"})
        rx, jp = r.get("lookup", "regex", str), r.get("lookup", "json", str)
        if (rx is None) == (jp is None):
            raise r.fail("lookup", "give exactly one of regex (first group is the key) or json")
        regex = _regex(r, "lookup.regex", rx) if rx is not None else None
        if regex is not None and regex.groups < 1:
            raise r.fail("lookup.regex", "needs a capturing group: the key")
        lookup = Lookup(url, regex, _path(r, "lookup.json", jp) if jp is not None else None)
    key_names = {"id", "key"} if lookup else {"id"}

    r.table("item", required=True)
    r.unknown("item", {"api", "page"})
    api = tuple(_template(r, "item.api", t, vars, key_names) for t in r.strings("item", "api"))
    page = r.get("item", "page", str)
    if page is not None:
        page = _template(r, "item.page", page, vars, key_names)
    if not api and page is None:
        raise r.fail("item", "give api (URL templates) or page (a URL template), or both")

    r.unknown("media", {"json", "css", "shortlinks", "variants"})
    media_json = tuple(_path(r, "media.json", p) for p in r.strings("media", "json"))
    media_css = r.strings("media", "css")
    for css in media_css:
        try:
            from parsel import Selector

            Selector(text="<html></html>").css(css)
        except Exception as exc:
            raise r.fail("media.css", f"bad CSS selector {css!r:.60}: {exc}") from None
    shortlinks = tuple(_template(r, "media.shortlinks", t, vars, set())
                       for t in r.strings("media", "shortlinks"))
    variants: list[tuple[re.Pattern[str], str]] = []
    for i, pair in enumerate(r.table("media").get("variants") or []):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise r.fail(f"media.variants[{i}]", "must be a [regex, replacement] pair of strings")
        variants.append((_regex(r, f"media.variants[{i}]", pair[0]), pair[1]))

    posts = _post_map(r, vars) if r.table("posts") else None
    if posts is not None and not api:
        raise r.fail("posts", "posts are read from the API answers: give item.api")

    r.unknown("deleted", {"statuses", "body"})
    statuses = r.get("deleted", "statuses", list, default=[404, 410])
    if not all(isinstance(s, int) and 100 <= s <= 599 for s in statuses):
        raise r.fail("deleted.statuses", "must be a list of HTTP status codes")
    body = tuple(_regex(r, "deleted.body", b) for b in r.strings("deleted", "body"))

    politeness: dict[str, Politeness] = {}
    for host_t, limits in r.table("politeness").items():
        key = f"politeness.{host_t!r}"
        if not isinstance(limits, dict):
            raise r.fail(key, "must be a table such as { delay = 0.5, concurrency = 4 }")
        for k in limits:
            if k not in ("delay", "concurrency"):
                raise r.fail(f"{key}.{k}", "unknown key (known: concurrency, delay)")
        delay, conc = limits.get("delay"), limits.get("concurrency")
        if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int | float)
                                  or delay < 0):
            raise r.fail(f"{key}.delay", "must be a number of seconds >= 0")
        if conc is not None and (isinstance(conc, bool) or not isinstance(conc, int) or conc < 1):
            raise r.fail(f"{key}.concurrency", "must be an integer >= 1")
        expanded = PLACEHOLDER.sub(lambda m: vars.get(m.group(1), m.group(0)), host_t)
        if PLACEHOLDER.search(expanded):
            raise r.fail(key, "unknown variable in host")
        host = urlsplit(expanded).hostname if "://" in expanded else expanded.split(":")[0]
        if not host:
            raise r.fail(key, "not a host or URL")
        politeness[host] = Politeness(float(delay) if delay is not None else None, conc)

    return Spec(name=name, platform=platform, source=source, text=text, vars=vars,
                id_format=id_format, lookup=lookup, api=api, page=page, media_json=media_json,
                media_css=media_css, shortlinks=shortlinks, variants=tuple(variants),
                posts=posts, deleted_statuses=frozenset(statuses), deleted_body=body,
                politeness=politeness)


def _post_map(r: _Reader, vars: dict[str, str]) -> PostMap:
    r.unknown("posts", {"roots", "url", "created_at_format", *POST_FIELDS})
    roots = tuple(_path(r, "posts.roots", p) for p in r.strings("posts", "roots", ("$",)))
    fields = {}
    for name in POST_FIELDS:
        value = r.get("posts", name, str)
        if value is not None:
            fields[name] = _path(r, f"posts.{name}", value)
    if "post_id" not in fields:
        raise r.fail("posts.post_id", "missing: the JSON path of the post's id")
    fmt = r.get("posts", "created_at_format", str, default="iso")
    if fmt not in ("iso", "epoch", "epoch_ms") and "%" not in fmt:
        raise r.fail("posts.created_at_format", "iso, epoch, epoch_ms or a strptime format")
    url = r.get("posts", "url", str)
    if url is not None:
        url = _template(r, "posts.url", url, vars, {"post_id"})
    return PostMap(roots, fields, fmt, url)


__all__ = ["Spec", "SpecError", "builtin_names", "load_spec", "parse_spec", "parse_vars"]
