"""Extraction of posts/accounts/media from captures: the same code live and from old WARCs.

A platform registers an ``Extractor`` (``spiders/<platform>/extract.py``): ``matches(url)`` and
``extract(capture) -> items``, a pure function of one captured response. Spider callbacks call it
on the response they just archived; ``socialark index --rebuild`` calls it on every capture read
back from the WARCs, so the posts index can always be rebuilt from the WARCs alone.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.items_store import store_items
from storage.offload import RecordSource, keep_sources
from storage.reader import WarcRecordData, _parse_record
from storage.records import HttpHead

logger = logging.getLogger(__name__)

EXTRACTOR_MODULES: list[str] = [
    "spiders.mastodon.extract",
    "spiders.bluesky.extract",
    "spiders.reddit.extract",
    "spiders.telegram.extract",
    "spiders.discourse.extract",
    "spiders.x.extract",
]


@dataclass(frozen=True)
class Capture:
    """One captured response, decoded: what an extractor sees."""

    url: str
    status: int
    headers: dict[str, str]  # lower-cased names, first value
    body: bytes  # content-encoding removed
    timestamp: str  # 14-digit capture timestamp (source_timestamp of the items)

    def json(self) -> Any:
        import json

        return json.loads(self.body.decode("utf-8"))

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class Extractor:
    platform: str
    matches: Callable[[str], bool]
    extract: Callable[[Capture], Iterable[Any]]


def load_extractors() -> list[Extractor]:
    out = []
    for name in EXTRACTOR_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # platform not installed in this build
            raise
        out.append(module.EXTRACTOR)
    return out


def decode_body(body: bytes, encoding: str | None) -> bytes:
    """Undo Content-Encoding (gzip, deflate, br; stacked codings right to left)."""
    if not encoding:
        return body
    for coding in reversed([c.strip().lower() for c in encoding.split(",") if c.strip()]):
        if coding in ("gzip", "x-gzip"):
            body = zlib.decompress(body, 47)
        elif coding == "deflate":
            try:
                body = zlib.decompress(body)
            except zlib.error:
                body = zlib.decompress(body, -15)
        elif coding == "br":
            import brotli

            body = brotli.decompress(body)
        elif coding != "identity":
            raise ValueError(f"unsupported content-encoding {coding!r}")
    return body


def item_pairs(items: Iterable[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for item in items:
        table = getattr(type(item), "table", None)
        if table and dataclasses.is_dataclass(item):
            yield table, dataclasses.asdict(item)


def capture_from_record(rec: WarcRecordData, timestamp: str) -> Capture | None:
    http = rec.http()
    if http is None:
        return None
    head, payload = http
    if head.status is None:
        return None
    headers = _headers(head)
    try:
        body = decode_body(payload, headers.get("content-encoding"))
    except (ValueError, zlib.error, OSError) as exc:
        logger.warning("cannot decode %s: %s", rec.get("WARC-Target-URI"), exc)
        return None
    url = (rec.get("WARC-Target-URI") or "").strip("<>")
    return Capture(url, head.status, headers, body, timestamp)


def _headers(head: HttpHead) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in head.headers:
        out.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
    return out


def read_record(path: Path, offset: int, length: int) -> WarcRecordData:
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(length)
    return parse_record_bytes(data, offset, length)


def parse_record_bytes(data: bytes, offset: int, length: int) -> WarcRecordData:
    """One record from the bytes of its gzip member (or of the plain record)."""
    if data[:2] == b"\x1f\x8b":
        data = zlib.decompressobj(31).decompress(data)
    rec, _ = _parse_record(data, offset, length)
    return rec


def reextract(db: Any, *, collection: str | None = None,
              extractors: list[Extractor] | None = None,
              source: RecordSource | None = None) -> int:
    """Rebuild posts/accounts/media from the captures in the index. Returns items stored.

    Records are read through ``source`` (default: local files only). Rows extracted from a file
    that ``source`` cannot read (offloaded to a bucket, no reader or store down) are kept, not
    deleted: the WARC is the source of truth, and it still exists, elsewhere.
    """
    extractors = load_extractors() if extractors is None else extractors
    if not extractors:
        return 0
    source = source or RecordSource(db)
    where, args = "c.record_type IN ('response', 'revisit')", []
    if collection:
        where += " AND c.collection = ?"
        args.append(collection)
    _delete_extracted(db, collection, source.unavailable)
    rows = db.execute(
        f"{_CAPTURES_SQL} WHERE {where} ORDER BY c.timestamp, c.id", args,
    ).fetchall()
    return _extract_rows(db, rows, extractors, source)


_CAPTURES_SQL = (
    "SELECT c.url, c.timestamp, c.offset, c.length, c.collection, f.path, c.record_type,"
    " c.digest, c.refers_to_url, c.filename FROM captures c"
    " JOIN warc_files f ON f.name = c.filename"
)


def reextract_files(db: Any, filenames: list[str], *,
                    extractors: list[Extractor] | None = None) -> int:
    """Extract items again from the captures of ``filenames`` (WARCs a crash kept out of the
    index, re-indexed on resume), upserting them next to the items already there."""
    extractors = load_extractors() if extractors is None else extractors
    if not extractors or not filenames:
        return 0
    marks = ", ".join("?" for _ in filenames)
    rows = db.execute(
        f"{_CAPTURES_SQL} WHERE c.record_type IN ('response', 'revisit')"
        f" AND c.filename IN ({marks}) ORDER BY c.timestamp, c.id", list(filenames),
    ).fetchall()
    return _extract_rows(db, rows, extractors, RecordSource(db))


def _extract_rows(db: Any, rows: list[Any], extractors: list[Extractor],
                  source: RecordSource) -> int:
    stored = 0
    for url, ts, offset, length, coll, path, rtype, digest, refers_to, name in rows:
        matching = [e for e in extractors if e.matches(url)]
        if not matching:
            continue
        data = source.read(name, path, offset, length)
        if data is None:
            continue
        record = parse_record_bytes(data, offset, length)
        if rtype == "revisit":
            record = _with_original_payload(db, source, record, coll, digest, refers_to)
            if record is None:
                continue
        capture = capture_from_record(record, ts)
        if capture is None:
            continue
        for ex in matching:
            try:
                items = list(item_pairs(ex.extract(capture)))
            except Exception as exc:  # one bad capture must not stop a rebuild
                logger.warning("%s extractor failed on %s: %s", ex.platform, url, exc)
                continue
            stored += store_items(db, items, coll) if items else 0
    return stored


def _delete_extracted(db: Any, collection: str | None, keep_files: set[str]) -> None:
    """Delete the extracted rows about to be re-extracted: all of them in scope, except rows
    whose source capture is in one of ``keep_files`` (WARCs that cannot be read now)."""
    keep = ""
    if keep_files:
        keep_sources(db, sorted(keep_files))
        keep = (" AND NOT EXISTS (SELECT 1 FROM temp.keep_sources k WHERE"
                " k.collection = {t}.collection AND k.url = {t}.source_url"
                " AND k.timestamp = {t}.source_timestamp)")
    with db.conn:
        for table in ("posts", "accounts", "media"):
            where = "collection = ?" if collection else "1"
            db.execute(f"DELETE FROM {table} WHERE {where}{keep.format(t=table)}",
                       [collection] if collection else [])


def _with_original_payload(
    db: Any, source: RecordSource, revisit: WarcRecordData, collection: str,
    digest: str | None, refers_to: str | None,
) -> WarcRecordData | None:
    """A revisit's own headers with the payload of the capture it refers to.

    A live crawl hands the callback the full body even when the record became a revisit, so the
    rebuild must extract from the same bytes.
    """
    row = db.execute(
        "SELECT c.offset, c.length, f.path, c.filename FROM captures c"
        " JOIN warc_files f ON f.name = c.filename"
        " WHERE c.collection = ? AND c.digest = ? AND c.record_type = 'response'"
        " ORDER BY (c.url = ?) DESC, c.id LIMIT 1",
        [collection, digest, refers_to],
    ).fetchone()
    if row is None:
        return None
    data = source.read(row[3], row[2], row[0], row[1])
    if data is None:
        return None
    original = parse_record_bytes(data, row[0], row[1]).http()
    own = revisit.http()
    if original is None or own is None:
        return None
    block = own[0].to_bytes() + original[1]
    return WarcRecordData(revisit.offset, revisit.length, revisit.headers, block)


def capture_from_response(response: Any) -> Capture:
    """The Capture for a Scrapy response a spider callback is handling (body already decoded)."""
    from storage.records import timestamp14

    headers = {k.decode("latin-1").lower(): v[0].decode("latin-1")
               for k, v in response.headers.items() if v}
    date = response.meta.get("warc_date") or ""
    return Capture(response.url, response.status, headers, response.body, timestamp14(date) if date else "")
