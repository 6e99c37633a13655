"""Extraction of posts/accounts/media from captures: the same code live and from old WARCs.

A platform registers an ``Extractor`` (``spiders/<platform>/extract.py``, listed in its
``platform.py``, found through ``crawler/platforms.py``): ``matches(url)``, ``wants`` (the
statuses and media types it can yield anything for) and ``extract(capture) -> items``, a pure
function of one captured response. Spider callbacks call it
on the response they just archived; ``socialark index --rebuild`` calls it on every capture read
back from the WARCs, so the posts index can always be rebuilt from the WARCs alone.

Reading a record back (seek, inflate, parse) is what extraction costs, so captures are filtered
on their index row first: URL (``matches``), status and media type (``wants``, checked on the
``captures`` row's ``status`` and ``mime``). ``wants`` must only describe what ``extract``
itself refuses (it checks the same things on the ``Capture``), so the filter never changes what
is extracted: a rebuild gives the same rows as the live crawl.
"""

from __future__ import annotations

import dataclasses
import logging
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.errors import WarcFormatError
from storage.indexer import mime_of
from storage.items_store import store_items
from storage.offload import RecordSource
from storage.reader import WarcRecordData, parse_record_bytes, zstd_dictionary_for
from storage.rebuild import captures_to_extract, delete_extracted, original_capture
from storage.records import HttpHead

logger = logging.getLogger(__name__)


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

    def json_or_none(self) -> Any:
        """The body as JSON, or None when it is not (an HTML error page where JSON was asked
        for, a truncated body): extractors then yield nothing for this capture."""
        try:
            return self.json()
        except (ValueError, UnicodeDecodeError):
            return None

    @property
    def content_type(self) -> str:
        """The media type, lower-cased (as the index's ``mime`` column holds it)."""
        return mime_of(self.headers.get("content-type")) or ""


GONE_STATUSES = frozenset({404, 410})


@dataclass(frozen=True)
class Wants:
    """Which captures an extractor can yield anything for, judged on the index row alone.

    A 200 whose media type contains one of ``mimes`` (any media type when empty), or a status
    in ``statuses`` whatever its type (404/410 of an extractor that records deleted posts).
    """

    mimes: tuple[str, ...] = ()
    statuses: frozenset[int] = frozenset()

    def row(self, status: int | None, mime: str | None, record_type: str) -> bool:
        if record_type == "revisit" and not status:  # no status on the row: let the extractor judge
            return True
        if status in self.statuses:
            return True
        if status != 200:
            return False
        if record_type == "revisit" or not self.mimes:  # a revisit's row mime is warc/revisit
            return True
        return any(m in (mime or "") for m in self.mimes)


@dataclass(frozen=True)
class Extractor:
    platform: str
    matches: Callable[[str], bool]
    extract: Callable[[Capture], Iterable[Any]]
    wants: Wants = Wants()


def load_extractors() -> list[Extractor]:
    """The extractors of every registered platform (crawler/platforms.py)."""
    from crawler.platforms import extractors

    return extractors()


MAX_DECODED_BODY = 64 * 1024 * 1024  # post extraction never inflates a body past this


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    d = zlib.decompressobj(wbits)
    out = d.decompress(body, limit + 1)
    if len(out) > limit:
        raise ValueError(f"decoded body larger than {limit:,} bytes (compression bomb?): "
                         "not extracted")
    return out


def _unbrotli(body: bytes, limit: int) -> bytes:
    import brotli

    d = brotli.Decompressor()
    try:
        out = d.process(body, output_buffer_limit=limit + 1)
    except brotli.error as exc:
        raise ValueError(f"bad brotli data: {exc}") from None
    if len(out) > limit or (not d.is_finished() and len(out) >= limit):
        raise ValueError(f"decoded body larger than {limit:,} bytes (compression bomb?): "
                         "not extracted")
    return out


def decode_body(body: bytes, encoding: str | None, limit: int = MAX_DECODED_BODY) -> bytes:
    """Undo Content-Encoding (gzip, deflate, br; stacked codings right to left).

    Refuses (``ValueError``) to inflate past ``limit`` bytes: a 2 KB record can hold a 1 GB
    gzip bomb.
    """
    if not encoding:
        return body
    for coding in reversed([c.strip().lower() for c in encoding.split(",") if c.strip()]):
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, 47, limit)
        elif coding == "deflate":
            try:
                body = _inflate(body, 15, limit)
            except zlib.error:
                body = _inflate(body, -15, limit)
        elif coding == "br":
            body = _unbrotli(body, limit)
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
    return parse_record_bytes(data, offset, length, zstd_dictionary_for(path))


def reextract(db: Any, *, collection: str | None = None,
              extractors: list[Extractor] | None = None,
              source: RecordSource | None = None) -> int:
    """Rebuild posts/accounts/media from the captures in the index. Returns items stored.

    Records are read through ``source`` (default: local files only). Rows extracted from a file
    that ``source`` cannot read (offloaded to a bucket, no reader or store down) are kept, not
    deleted: the WARC is the source of truth, and it still exists, elsewhere.
    """
    extractors = _with_specs(db, load_extractors()) if extractors is None else extractors
    if not extractors:
        return 0
    source = source or RecordSource(db)
    delete_extracted(db, collection, source.unavailable)
    rows = captures_to_extract(db, collection=collection)
    return _extract_rows(db, rows, extractors, source)


def reextract_files(db: Any, filenames: list[str], *,
                    extractors: list[Extractor] | None = None,
                    source: RecordSource | None = None) -> int:
    """Extract items again from the captures of ``filenames`` (WARCs a crash kept out of the
    index, re-indexed on resume; or files just indexed from a bucket or a URL, read through
    ``source``), upserting them next to the items already there."""
    extractors = _with_specs(db, load_extractors()) if extractors is None else extractors
    if not extractors or not filenames:
        return 0
    rows = captures_to_extract(db, filenames=list(filenames))
    return _extract_rows(db, rows, extractors, source or RecordSource(db))


def _with_specs(db: Any, extractors: list[Extractor]) -> list[Extractor]:
    """The platforms' extractors plus those of the specs the index's crawls used
    (``crawl ids --spec``: crawler/spec/extract.py)."""
    from crawler.spec.extract import spec_extractors

    return [*extractors, *spec_extractors(db)]


def _extract_rows(db: Any, rows: list[Any], extractors: list[Extractor],
                  source: RecordSource) -> int:
    stored = 0
    for url, ts, offset, length, coll, path, rtype, digest, refers_to, name, status, mime in rows:
        matching = [e for e in extractors
                    if e.wants.row(status, mime, rtype) and e.matches(url)]
        if not matching:
            continue
        data = source.read(name, path, offset, length)
        if data is None:
            continue
        try:
            record = parse_record_bytes(data, offset, length, zstd_dictionary_for(path))
        except WarcFormatError as exc:  # one hostile record must not stop the command
            logger.warning("cannot read the record of %s for extraction: %s", url, exc)
            continue
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


def _with_original_payload(
    db: Any, source: RecordSource, revisit: WarcRecordData, collection: str,
    digest: str | None, refers_to: str | None,
) -> WarcRecordData | None:
    """A revisit's own headers with the payload of the capture it refers to.

    A live crawl hands the callback the full body even when the record became a revisit, so the
    rebuild must extract from the same bytes.
    """
    row = original_capture(db, collection, digest, refers_to)
    if row is None:
        return None
    data = source.read(row[3], row[2], row[0], row[1])
    if data is None:
        return None
    original = parse_record_bytes(data, row[0], row[1], zstd_dictionary_for(row[2])).http()
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
