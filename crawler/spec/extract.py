"""Posts and media from a spec's API answers: the same pure function live and in ``index --rebuild``.

``extractor(spec)`` is an ``Extractor`` like every platform's (crawler/extraction.py). Which
spec a crawl used is kept in its ``crawls.config`` row (spider argument ``spec_text``), so
``spec_extractors(db)`` rebuilds the extractors of every spec crawl an index knows.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from crawler.extraction import Capture, Extractor
from crawler.items import Media, Post
from crawler.spec.jsonpath import JsonPath
from crawler.spec.model import Spec, SpecError, parse_spec, parse_vars

logger = logging.getLogger(__name__)

_COUNT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmMbB]?)\s*$")
_SCALE = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}


def parse_count(value: Any) -> int | None:
    """An int from 12, "12", or an abbreviated "3.3k" / "1.2m" / "2b" (Parler, many UIs)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    m = _COUNT.match(str(value))
    if not m:
        return None
    return round(float(m.group(1)) * _SCALE[m.group(2).lower()])


def parse_time(value: Any, fmt: str) -> str | None:
    """ISO 8601 UTC (``2021-01-06T18:30:12Z``) from a value in the spec's ``created_at_format``."""
    if value is None or value == "":
        return None
    try:
        if fmt in ("epoch", "epoch_ms"):
            secs = float(value) / (1000 if fmt == "epoch_ms" else 1)
            when = datetime.fromtimestamp(secs, UTC)
        elif fmt == "iso":
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        else:
            when = datetime.strptime(str(value), fmt)
    except (ValueError, OverflowError, OSError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scalar(path: JsonPath | None, obj: Any, root: Any) -> Any:
    if path is None:
        return None
    value = path.first(obj, root)
    return value if isinstance(value, str | int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def posts_of(spec: Spec, body: Any, source: tuple[str, str]) -> Iterator[Any]:
    """The Post (and Media) items of one decoded API answer."""
    pm = spec.posts
    if pm is None:
        return
    f = pm.fields.get
    seen: set[str] = set()
    for root_path in pm.roots:
        for obj in root_path.select(body, body):
            if not isinstance(obj, dict):
                continue
            post_id = _text(_scalar(f("post_id"), obj, body))
            if post_id is None or post_id in seen:
                continue
            seen.add(post_id)
            media_path = f("media")
            media = [m for m in (media_path.select(obj, body) if media_path else [])
                     if isinstance(m, str) and m]
            url = spec.expand(pm.url, post_id=post_id) if pm.url else None
            yield Post(
                platform=spec.platform, post_id=post_id, url=url,
                author=_text(_scalar(f("author"), obj, body)),
                author_id=_text(_scalar(f("author_id"), obj, body)),
                created_at=parse_time(_scalar(f("created_at"), obj, body), pm.created_at_format),
                text=_text(_scalar(f("text"), obj, body)) or "",
                content_html=_text(_scalar(f("content_html"), obj, body)),
                reply_to_id=_text(_scalar(f("reply_to_id"), obj, body)),
                repost_of_id=_text(_scalar(f("repost_of_id"), obj, body)),
                quote_of_id=_text(_scalar(f("quote_of_id"), obj, body)),
                reply_count=parse_count(_scalar(f("reply_count"), obj, body)),
                repost_count=parse_count(_scalar(f("repost_count"), obj, body)),
                like_count=parse_count(_scalar(f("like_count"), obj, body)),
                lang=_text(_scalar(f("lang"), obj, body)),
                media=media, raw=obj, source_url=source[0], source_timestamp=source[1],
            )
            for m in media:
                yield Media(platform=spec.platform, url=m, post_id=post_id,
                            source_url=source[0], source_timestamp=source[1])


def extractor(spec: Spec) -> Extractor:
    patterns = spec.api_patterns()

    def matches(url: str) -> bool:
        return any(p.match(url) for p in patterns)

    def extract(capture: Capture) -> list[Any]:
        if capture.status != 200 or spec.is_deleted(capture.status, capture.body):
            return []
        body = capture.json_or_none()
        if body is None:
            return []
        return list(posts_of(spec, body, (capture.url, capture.timestamp)))

    return Extractor(platform=spec.platform, matches=matches, extract=extract)


def spec_of_config(config: dict[str, Any]) -> Spec | None:
    """The spec a crawl used, from its ``crawls.config`` (None for other crawls)."""
    args = config.get("args") if isinstance(config, dict) else None
    if not isinstance(args, dict) or not args.get("spec_text"):
        return None
    return parse_spec(str(args["spec_text"]), str(args.get("spec_name") or "crawl config"),
                      parse_vars(list(args.get("spec_vars") or [])))


_CONFIG_LINE = re.compile(rb"^crawl-config: ?(.*?)\r?$", re.MULTILINE)


def warcinfo_configs(path: str) -> list[tuple[str, str]]:
    """(file, crawl-config JSON) of a local WARC's warcinfo record (its first record): how an
    index built from WARCs alone (downloaded from a bucket, another machine's) finds the spec."""
    from pathlib import Path

    from storage.reader import CorruptRecord, iter_records

    if not path or "://" in path or not Path(path).is_file():
        return []
    try:
        for rec in iter_records(Path(path)):
            if isinstance(rec, CorruptRecord) or rec.type != "warcinfo":
                return []
            m = _CONFIG_LINE.search(rec.block)
            return [(path, m.group(1).decode("utf-8", "replace"))] if m else []
    except (OSError, ValueError):
        return []
    return []


def spec_extractors(db: Any) -> list[Extractor]:
    """One extractor per distinct (spec, vars) among the crawls this index records (their
    ``crawls`` rows, and the warcinfo of the local WARC files it indexes)."""
    found: dict[tuple[str, str], Extractor] = {}
    try:
        rows = db.execute("SELECT crawl_id, config FROM crawls").fetchall()
    except Exception:  # an index without a crawls table
        rows = []
    try:
        files = [p for (p,) in db.execute("SELECT path FROM warc_files").fetchall()]
    except Exception:
        files = []
    seen_configs = {raw for _, raw in rows}
    for path in files:
        for name, raw in warcinfo_configs(path):
            if raw not in seen_configs and '"spec_text"' in raw:
                seen_configs.add(raw)
                rows.append((name, raw))
    for crawl_id, raw in rows:
        try:
            config = json.loads(raw)
            spec = spec_of_config(config)
        except (ValueError, SpecError) as exc:
            logger.warning("crawl %s: its spec cannot be used for extraction: %s", crawl_id, exc)
            continue
        if spec is None:
            continue
        key = (spec.text, json.dumps(spec.vars, sort_keys=True))
        found.setdefault(key, extractor(spec))
    return list(found.values())


__all__ = ["extractor", "parse_count", "parse_time", "posts_of", "spec_extractors",
           "spec_of_config"]
