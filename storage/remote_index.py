"""Index WARCs straight from a bucket: the central index of a crawl spread over many machines.

Each worker mirrors its WARCs to ``s3://BUCKET/PREFIX/<collection>/<name>``;
``socialark index s3://BUCKET/PREFIX`` lists them and streams each object through the same
record reader and row builder as local indexing, one gzip member at a time, so no file is
downloaded to disk and memory stays at one record. ``warc_files.path`` is the object's
``s3://`` URL; ``remote_size`` and ``remote_checksum`` (``etag:<ETag>``) let the next run skip
objects already indexed, so re-running after more workers uploaded only reads the new ones.

``socialark index https://HOST/…/NAME.warc.gz`` (:func:`index_http`) does the same for one
object on a web server (the Internet Archive, a lab's file server): ``path`` is the URL.
Posts, accounts and media are extracted afterwards by the CLI (``crawler.extraction``, the
platform parsers) from ``report.indexed``, reading single records by range.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, BinaryIO

from sqlite_utils import Database

from storage._s3 import S3Target, classify, make_client
from storage.errors import StorageError, WarcFormatError
from storage.index import insert_captures, utc_now_iso
from storage.indexer import FileIndexResult, index_records
from storage.reader import CorruptRecord, iter_stream_records

# What the reader may read (it says so per object when it cannot): WARC, ARC, zstd WARC.
WARC_SUFFIXES = (".warc.gz", ".warc", ".warc.zst", ".arc.gz", ".arc")


@dataclass
class RemoteObject:
    key: str
    size: int
    etag: str
    last_modified: str

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name


@dataclass
class RemoteIndexReport:
    files: int = 0
    unchanged: int = 0
    records: int = 0
    rows: int = 0
    corrupt: list[tuple[str, CorruptRecord]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    indexed: list[str] = field(default_factory=list)  # file names (re)indexed: extract from them


class _HashingReader:
    """Passes reads through while hashing them: the file's sha256 without a local copy."""

    def __init__(self, body: Any) -> None:
        self.body = body
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.body.read() if n is None or n < 0 else self.body.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data


def list_warcs(client: Any, target: S3Target) -> Iterator[RemoteObject]:
    prefix = f"{target.prefix}/" if target.prefix else ""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=target.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith(WARC_SUFFIXES):
                yield RemoteObject(key, int(obj["Size"]), str(obj.get("ETag", "")).strip('"'),
                                   obj["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ"))


def _already_indexed(db: Database, obj: RemoteObject, uri: str) -> bool:
    row = db.execute(
        "SELECT path, remote_size, remote_checksum FROM warc_files WHERE name = ?", [obj.name]
    ).fetchone()
    return bool(row) and tuple(row) == (uri, obj.size, f"etag:{obj.etag}")


def _store(db: Database, obj: RemoteObject, uri: str, result: FileIndexResult, sha256: str,
           collection: str) -> None:
    with db.conn:
        db.execute("DELETE FROM captures WHERE filename = ?", [obj.name])
        if result.rows:
            insert_captures(db, result.rows)
        db["warc_files"].upsert({
            "name": obj.name, "collection": collection, "path": uri, "size": obj.size,
            "sha256": sha256, "records": result.records, "state": "remote",
            "crawl_id": result.warcinfo.get("socialark-crawl-id"),
            "created_at": obj.last_modified, "closed_at": obj.last_modified,
            "remote_key": uri, "remote_size": obj.size,
            "remote_checksum": f"etag:{obj.etag}" if obj.etag else f"sha256:{sha256}", "note": f"indexed from {uri} at {utc_now_iso()}",
        }, pk="name")


def index_bucket(
    db: Database, url: str, *, endpoint_url: str | None = None, collection: str | None = None,
    progress: Callable[[RemoteObject, FileIndexResult], None] | None = None,
    client: Any = None,
) -> RemoteIndexReport:
    """Index (or bring up to date) every WARC under ``s3://BUCKET/PREFIX`` into ``db``."""
    from botocore.exceptions import BotoCoreError, ClientError

    target = S3Target.parse(url)
    client = client or make_client(endpoint_url=endpoint_url)
    report = RemoteIndexReport()
    try:
        objects = list(list_warcs(client, target))
    except (BotoCoreError, ClientError) as exc:
        raise StorageError(f"cannot list {target.url}: {classify(exc)}") from exc
    for obj in objects:
        uri = target.uri(obj.key)
        if _already_indexed(db, obj, uri):
            report.unchanged += 1
            continue
        parent = PurePosixPath(obj.key).parent.name or target.bucket
        try:
            body = client.get_object(Bucket=target.bucket, Key=obj.key)["Body"]
            result, sha256, _size = index_stream(body, uri=uri, name=obj.name,
                                                 collection=collection, default_collection=parent)
        except WarcFormatError as exc:
            report.skipped.append((uri, str(exc)))
            continue
        except (BotoCoreError, ClientError) as exc:
            report.skipped.append((uri, str(classify(exc))))
            continue
        coll = collection or result.warcinfo.get("isPartOf") or parent
        _store(db, obj, uri, result, sha256, coll)
        _count(report, obj, uri, result, progress)
    return report


def _count(report: RemoteIndexReport, obj: RemoteObject, uri: str, result: FileIndexResult,
           progress: Callable[[RemoteObject, FileIndexResult], None] | None) -> None:
    report.files += 1
    report.records += result.records
    report.rows += len(result.rows)
    report.corrupt += [(uri, c) for c in result.corrupt]
    report.indexed.append(obj.name)
    if progress:
        progress(obj, result)


def index_http(
    db: Database, url: str, *, collection: str | None = None,
    progress: Callable[[RemoteObject, FileIndexResult], None] | None = None,
) -> RemoteIndexReport:
    """Index one WARC served over HTTP(S), streamed once (nothing written to disk).

    ``warc_files.path`` is the URL: replay, export and extraction read records from it by
    HTTP range. An object indexed before from the same URL with the same ETag and size is
    not read again.
    """
    from http.client import HTTPException

    from storage.http_object import HttpObjectError, object_name, open_stream, parent_name
    from storage.names import COLLECTION_RE

    report = RemoteIndexReport()
    name = object_name(url)
    try:
        body, info = open_stream(url)
    except HttpObjectError as exc:
        report.skipped.append((url, str(exc).removeprefix(f"{url}: ")))
        return report
    try:
        obj = RemoteObject(url, info.size or 0, info.etag, info.last_modified)
        if info.etag and info.size is not None and _already_indexed(db, obj, url):
            report.unchanged += 1
            return report
        parent = parent_name(url)
        default = parent if COLLECTION_RE.match(parent) and ".." not in parent else "default"
        try:
            result, sha256, size = index_stream(body, uri=url, name=name, collection=collection,
                                                default_collection=default)
        except WarcFormatError as exc:
            report.skipped.append((url, str(exc)))
            return report
        except (OSError, HTTPException, HttpObjectError) as exc:  # dropped mid-stream
            report.skipped.append((url, f"reading failed: {exc}"))
            return report
    finally:
        body.close()
    if info.size is not None and size != info.size:
        report.skipped.append((url, f"stream ended after {size:,} of {info.size:,} bytes"))
        return report
    obj = RemoteObject(url, size, info.etag, _http_date(info.last_modified))
    coll = collection or result.warcinfo.get("isPartOf") or default
    _store(db, obj, url, result, sha256, coll)
    _count(report, obj, url, result, progress)
    return report


def _http_date(value: str) -> str:
    """An HTTP ``Last-Modified`` as ISO 8601 UTC, or now when absent or unreadable."""
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError, IndexError):
        return utc_now_iso()


def index_stream(body: Any, *, uri: str, name: str, collection: str | None,
                 default_collection: str) -> tuple[FileIndexResult, str, int]:
    """Capture rows of a WARC read as a stream (an S3 object body), plus its sha256 and size.

    Memory holds one record at a time; the whole stream is hashed, trailing bytes included.
    """
    reader = _HashingReader(body)
    result = index_records(iter_stream_records(_as_binary(reader), name=uri), name=name,
                           collection=collection, default_collection=default_collection)
    while reader.read(1 << 20):  # hash any trailing bytes the reader did not need
        pass
    return result, reader.sha256.hexdigest(), reader.size


def _as_binary(reader: _HashingReader) -> BinaryIO:
    return reader  # type: ignore[return-value]
