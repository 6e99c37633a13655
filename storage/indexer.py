"""``captures`` rows from WARC records: one function used live and when (re)indexing files.

The live index (written while crawling) and ``socialark index --rebuild`` both call
``capture_row`` with values taken from the record, so they cannot drift apart.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from storage.reader import (
    BLOCK_KEEP,
    CorruptRecord,
    WarcRecordData,
    iter_stream_records,
    warcinfo_fields,
)
from storage.records import HttpHead, Record, timestamp14
from storage.surt import surt, urlkey_for_request

INDEXED_TYPES = ("response", "revisit", "resource")


MAX_REQUEST_BODY = 1 << 20
"""Request body bytes used for a POST/PUT urlkey (the query is cut to 4,096 chars anyway)."""

_MIME_END = re.compile(r"[;\s]")


def mime_of(content_type: str | bytes | None) -> str | None:
    """The media type of a Content-Type, lower-cased, cut at ``;`` or whitespace (as
    cdxj-indexer cuts it); None when there is none (the row leaves ``mime`` out, like peers)."""
    if content_type is None:
        return None
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    value = _MIME_END.split(content_type.strip(), 1)[0].strip().lower()
    return value or None


def request_method(head: HttpHead) -> str | None:
    """The method of a request head; None when its first line is no request line (a status
    line stored in a request record by a broken tool)."""
    word = head.first_line.split(b" ", 1)[0].decode("latin-1")
    if not word or word.upper().startswith("HTTP/") or not _TOKEN.match(word):
        return None
    return word


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$")


def dechunk(body: bytes) -> bytes:
    """Undo ``Transfer-Encoding: chunked`` (as far as the body goes; bad framing: kept as is)."""
    out, pos = bytearray(), 0
    while pos < len(body):
        eol = body.find(b"\n", pos)
        if eol < 0:
            return body
        size_text = body[pos:eol].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return body
        if size == 0:
            break
        start = eol + 1
        out += body[start:start + size]
        pos = start + size
        if body[pos:pos + 2] == b"\r\n":
            pos += 2
        elif body[pos:pos + 1] == b"\n":
            pos += 1
    return bytes(out)


def _urlkey(url: str, method: str, body: bytes | None, content_type: str | None) -> tuple[str, str | None]:
    if method.upper() in ("POST", "PUT"):
        return urlkey_for_request(url, method, body or b"", content_type)
    return surt(url), None


def capture_row(
    *,
    collection: str,
    crawl_id: str | None,
    filename: str,
    offset: int,
    length: int,
    record_type: str,
    url: str,
    warc_date: str,
    record_id: str,
    digest: str | None,
    http_head: HttpHead | None,
    resource_content_type: str | None = None,
    method: str = "GET",
    request_body: bytes | None = None,
    request_content_type: str | None = None,
    refers_to_url: str | None = None,
    refers_to_date: str | None = None,
) -> dict[str, Any]:
    urlkey, body_query = _urlkey(url, method, request_body, request_content_type)
    if record_type == "revisit":
        mime = "warc/revisit"
    elif http_head is not None:
        mime = mime_of(http_head.get(b"Content-Type"))
    else:
        mime = mime_of(resource_content_type)
    return {
        "collection": collection,
        "urlkey": urlkey,
        "url": url,
        "timestamp": timestamp14(warc_date),
        "warc_date": warc_date,
        "status": http_head.status if http_head is not None else None,
        "mime": mime,
        "digest": digest,
        "length": length,
        "offset": offset,
        "filename": filename,
        "record_type": record_type,
        "record_id": record_id,
        "method": method.upper(),
        "request_body": body_query,
        "refers_to_url": refers_to_url,
        "refers_to_date": refers_to_date,
        "crawl_id": crawl_id,
    }


def row_for_written(
    record: Record,
    *,
    collection: str,
    crawl_id: str | None,
    filename: str,
    offset: int,
    length: int,
    request: Record | None = None,
) -> dict[str, Any]:
    """Row for a record we just wrote (live indexing), from the parts it was built of.

    The status, mime, method and request body come from the heads ``http_block_record`` kept
    on the records; only a record built some other way has its block parsed back. Files are
    indexed from their bytes (``index_records``); tests/test_index.py checks both give the
    same rows."""
    head = None
    if record.warc_type in ("response", "revisit"):
        head = record.http_head if record.http_head is not None else _split_http(record.block)[0]
    method, body, req_ctype = "GET", None, None
    if request is not None:
        if request.http_head is not None:
            req_head, body = request.http_head, request.http_payload
        else:
            req_head, body = _split_http(request.block)
        method = request_method(req_head) or "GET"
        ct = req_head.get(b"Content-Type")
        req_ctype = ct.decode("latin-1") if ct else None
    return capture_row(
        collection=collection, crawl_id=crawl_id, filename=filename, offset=offset,
        length=length, record_type=record.warc_type, url=record.target_uri or "",
        warc_date=record.date, record_id=record.record_id,
        digest=record.field("WARC-Payload-Digest"), http_head=head,
        resource_content_type=record.content_type, method=method, request_body=body,
        request_content_type=req_ctype,
        refers_to_url=record.field("WARC-Refers-To-Target-URI"),
        refers_to_date=record.field("WARC-Refers-To-Date"),
    )


def _split_http(block: bytes) -> tuple[HttpHead, bytes]:
    end = block.find(b"\r\n\r\n")
    if end < 0:
        return HttpHead.parse(block), b""
    return HttpHead.parse(block[:end]), block[end + 4 :]


@dataclass
class FileIndexResult:
    path: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    records: int = 0
    corrupt: list[CorruptRecord] = field(default_factory=list)
    warcinfo: dict[str, str] = field(default_factory=dict)
    sha256: str | None = None  # of the whole file, when computed while reading it


def index_file(
    path: Path,
    *,
    collection: str | None,
    on_corrupt: Callable[[CorruptRecord], None] | None = None,
) -> FileIndexResult:
    """Capture rows for every indexable record of ``path`` (any tool's WARC).

    ``collection=None`` takes the collection from our warcinfo (``isPartOf``) or, failing that,
    the parent directory name.
    """
    with open(path, "rb") as raw:
        fh = HashingReader(raw)
        result = index_records(
            iter_stream_records(fh, name=str(path), keep=BLOCK_KEEP), name=path.name,  # type: ignore[arg-type]
            collection=collection, default_collection=path.parent.name, on_corrupt=on_corrupt,
        )
        result.sha256 = fh.sha256_of_whole(path)
    result.path = path
    return result


class HashingReader:
    """A file read once front to back, hashed (sha256) on the way: the file's digest without
    a second pass. A seek (rescan after damage) gives up on it."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.hash: Any = hashlib.sha256() if fh.tell() == 0 else None
        self.read_bytes = 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        if self.hash is not None:
            self.hash.update(data)
            self.read_bytes += len(data)
        return data

    def seekable(self) -> bool:
        return self.fh.seekable()

    def tell(self) -> int:
        return self.fh.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        self.hash = None
        return self.fh.seek(pos, whence)

    def sha256_of_whole(self, path: Path) -> str | None:
        """The hex sha256 of the file when every byte of it was read once, in order."""
        if self.hash is None or self.fh.read(1) or self.read_bytes != path.stat().st_size:
            return None
        return str(self.hash.hexdigest())


def index_records(
    records: Iterator[WarcRecordData | CorruptRecord],
    *,
    name: str,
    collection: str | None,
    default_collection: str,
    on_corrupt: Callable[[CorruptRecord], None] | None = None,
) -> FileIndexResult:
    """Capture rows from a stream of records (a local file, or an object read from a bucket).

    A request record is paired with the response/revisit right before it when it names that
    record in ``WARC-Concurrent-To`` (as pywb and cdxj-indexer pair them).
    """
    result = FileIndexResult(Path(name))
    pending: WarcRecordData | None = None
    crawl_id: str | None = None
    coll = collection

    def emit(rec: WarcRecordData, request: WarcRecordData | None) -> None:
        try:
            row = _row_from_data(rec, request, coll or default_collection, crawl_id, name)
        except (ValueError, LookupError, OverflowError, UnicodeError) as exc:
            # One hostile record (absurd URL, header, date) is reported, never fatal.
            bad = CorruptRecord(rec.offset, rec.length, f"cannot index: {str(exc)[:200]}")
            result.corrupt.append(bad)
            if on_corrupt:
                on_corrupt(bad)
            return
        result.rows.append(row)

    for item in records:
        if isinstance(item, CorruptRecord):
            result.corrupt.append(item)
            if on_corrupt:
                on_corrupt(item)
            continue
        result.records += 1
        rtype = item.type
        if rtype == "warcinfo":
            info = warcinfo_fields(item.block)
            result.warcinfo = result.warcinfo or info
            crawl_id = info.get("socialark-crawl-id", crawl_id)
            if coll is None and info.get("isPartOf"):
                coll = info["isPartOf"]
            continue
        if pending is not None:
            paired = (
                rtype == "request"
                and item.get("WARC-Concurrent-To") == pending.get("WARC-Record-ID")
                and item.get("WARC-Target-URI") == pending.get("WARC-Target-URI")
            )
            emit(pending, item if paired else None)
            pending = None
            if paired:
                continue
        if rtype in ("response", "revisit"):
            pending = item
        elif rtype == "resource":
            if (item.get("Content-Type") or "").startswith("application/warc-fields"):
                continue
            emit(item, None)
    if pending is not None:
        emit(pending, None)
    return result


def _row_from_data(
    rec: WarcRecordData,
    request: WarcRecordData | None,
    collection: str,
    crawl_id: str | None,
    filename: str,
) -> dict[str, Any]:
    http = rec.http()
    method, body, req_ctype = "GET", None, None
    if request is not None:
        rhttp = request.http()
        if rhttp is not None:
            req_head, body = rhttp
            method = request_method(req_head) or "GET"
            body = body[:MAX_REQUEST_BODY]
            te = (req_head.get(b"Transfer-Encoding") or b"").lower()
            if b"chunked" in te:
                body = dechunk(body)
            ct = req_head.get(b"Content-Type")
            req_ctype = ct.decode("latin-1") if ct else None
    return capture_row(
        collection=collection, crawl_id=crawl_id, filename=filename, offset=rec.offset,
        length=rec.length, record_type=rec.type, url=(rec.get("WARC-Target-URI") or "").strip("<>"),
        warc_date=rec.get("WARC-Date") or "", record_id=rec.get("WARC-Record-ID") or "",
        digest=rec.payload_digest, http_head=http[0] if http else None,
        resource_content_type=rec.get("Content-Type"), method=method, request_body=body,
        request_content_type=req_ctype,
        refers_to_url=rec.get("WARC-Refers-To-Target-URI"),
        refers_to_date=rec.get("WARC-Refers-To-Date"),
    )
