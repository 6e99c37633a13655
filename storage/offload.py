"""Indexed WARC files that are not on this machine: offloaded to a bucket, or indexed from one.

After ``socialark mirror --delete-after-verify`` a WARC lives only in the bucket
(``warc_files.offloaded_at``, ``remote_key``); ``socialark index s3://…`` and
``socialark index https://…`` index files that were never local (``state = 'remote'``,
``path`` is the ``s3://`` or ``http(s)://`` URL; HTTP reads go through
``storage.http_object``). Their index rows stay: this module finds such files (:func:`absent_files`), reads them back from the bucket when the
credentials and endpoint allow (:class:`RemoteReader`: whole-object streams for re-indexing,
ranged GETs of single records for post extraction), and says where they are (:func:`locations`).

Whether a file is absent is decided by looking at the disk, not only at ``offloaded_at``: a file
deleted by hand, or a kill between the delete and the index update, is caught the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from storage._s3 import MirrorConfigError, S3Target, classify, make_client
from storage.errors import StorageError, WarcFormatError
from storage.http_object import (
    HttpObjectError,
    RangeClient,
    RangeNotSupported,
    is_http_url,
    open_stream,
)
from storage.indexer import FileIndexResult
from storage.remote_index import index_stream


class RemoteUnavailable(StorageError):
    """The remote copy of a WARC cannot be read now (store unreachable, no credentials, ...)."""

    def __init__(self, message: str, *, config: bool = False) -> None:
        super().__init__(message)
        self.config = config  # True: the user must change something (credentials, endpoint)


@dataclass(frozen=True)
class AbsentWarc:
    """A ``warc_files`` row whose file cannot be read on this machine."""

    name: str
    collection: str
    path: str
    uri: str | None  # s3://bucket/key of a copy to read instead, if one is known
    size: int | None
    sha256: str | None
    offloaded_at: str | None

    @property
    def location(self) -> str:
        """Where the file is: the mirror target ``s3://BUCKET/PREFIX``, or "nowhere known"."""
        if not self.uri:
            return "no known remote copy"
        tail = f"/{self.collection}/{self.name}"
        if self.uri.endswith(tail) and self.uri.count("/") >= tail.count("/") + 2:
            return self.uri[: -len(tail)]
        return self.uri.rsplit("/", 1)[0]


def _columns(db: Database) -> set[str]:
    return {c.name for c in db["warc_files"].columns} if "warc_files" in db.table_names() else set()


def absent_files(db: Database, collection: str | None = None,
                 names: Iterable[str] | None = None) -> list[AbsentWarc]:
    """Closed files of the index (optionally of one collection, or only ``names``) that are not
    readable here. Works on indexes opened read-only before the ``offloaded_at`` migration."""
    cols = _columns(db)
    if not cols:
        return []
    offloaded = "offloaded_at" if "offloaded_at" in cols else "NULL AS offloaded_at"
    sql = (f"SELECT name, collection, path, size, sha256, remote_key, {offloaded} FROM warc_files"
           " WHERE state != 'open'")
    args: list[Any] = []
    if collection:
        sql += " AND collection = ?"
        args.append(collection)
    wanted = set(names) if names is not None else None
    out = []
    for name, coll, path, size, sha256, remote_key, offloaded_at in db.execute(sql, args):
        if wanted is not None and name not in wanted:
            continue
        if path and not _is_remote_url(path) and Path(path).is_file():
            continue
        uri = remote_key or (path if _is_remote_url(path) else None)
        out.append(AbsentWarc(name, coll, path, uri, size, sha256, offloaded_at))
    return out


def _is_remote_url(path: str | None) -> bool:
    """``s3://`` (indexed from a bucket) or ``http(s)://`` (indexed from a web server)."""
    return bool(path) and (str(path).startswith("s3://") or is_http_url(path))


def locations(files: Iterable[AbsentWarc]) -> str:
    """``s3://b/crawls`` or ``s3://b/a, s3://c/d`` (sorted, distinct)."""
    return ", ".join(sorted({f.location for f in files}))


def keep_sources(db: Database, names: Iterable[str]) -> int:
    """Fill ``temp.keep_sources`` with (collection, url, timestamp) of every capture in ``names``.

    Extracted rows (posts, accounts, media) whose source capture is listed there must survive a
    re-extraction that cannot read their WARC. Returns the number of captures listed.
    """
    db.execute("CREATE TEMP TABLE IF NOT EXISTS keep_sources("
               " collection TEXT, url TEXT, timestamp TEXT, PRIMARY KEY(collection, url, timestamp))")
    db.execute("DELETE FROM temp.keep_sources")
    n = 0
    for name in names:
        cur = db.execute(
            "INSERT OR IGNORE INTO temp.keep_sources SELECT collection, url, timestamp"
            " FROM captures WHERE filename = ?", [name])
        n += cur.rowcount
        # revisits elsewhere whose payload is a response in this file: extraction needs it too
        cur = db.execute(
            "INSERT OR IGNORE INTO temp.keep_sources SELECT r.collection, r.url, r.timestamp"
            " FROM captures o JOIN captures r ON r.collection = o.collection"
            " AND r.digest = o.digest AND r.record_type = 'revisit'"
            " WHERE o.filename = ? AND o.record_type = 'response'", [name])
        n += cur.rowcount
    return n


@dataclass
class RemoteReader:
    """Reads remote copies of WARCs, with one S3 client built on first use.

    A bucket that failed once (unreachable, access denied, no credentials) is not tried again in
    the same run: every file in it gets the same reason at once instead of waiting for retries.
    """

    endpoint_url: str | None = None
    client: Any = None
    failed_buckets: dict[str, RemoteUnavailable] = field(default_factory=dict)
    http: RangeClient = field(default_factory=RangeClient)  # ranged GETs of http(s):// files

    def _client(self) -> Any:
        if self.client is None:
            try:
                self.client = make_client(endpoint_url=self.endpoint_url)
            except MirrorConfigError as exc:
                raise RemoteUnavailable(str(exc), config=True) from exc
        return self.client

    def _call(self, uri: str, fn: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        target = S3Target.parse(uri)
        if target.bucket in self.failed_buckets:
            raise self.failed_buckets[target.bucket]
        try:
            client = self._client()
            return getattr(client, fn)(Bucket=target.bucket, Key=target.prefix, **kwargs)
        except (BotoCoreError, ClientError, ConnectionError, TimeoutError) as exc:
            err = classify(exc)
            failure = RemoteUnavailable(str(err), config=isinstance(err, MirrorConfigError))
            if not _is_not_found(exc):
                self.failed_buckets[target.bucket] = failure
            raise failure from exc
        except RemoteUnavailable as exc:
            self.failed_buckets[target.bucket] = exc
            raise

    def open(self, uri: str) -> Any:
        """The object's body, a stream (botocore ``StreamingBody``, or an HTTP response)."""
        if is_http_url(uri):
            try:
                return open_stream(uri)[0]
            except HttpObjectError as exc:
                raise RemoteUnavailable(str(exc)) from exc
        return self._call(uri, "get_object")["Body"]

    def read_range(self, uri: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (one WARC record: a gzip member for ``.warc.gz``)."""
        from botocore.exceptions import BotoCoreError

        if is_http_url(uri):
            return _http_range(self.http, uri, offset, length)

        body = self._call(uri, "get_object", Range=f"bytes={offset}-{offset + length - 1}")["Body"]
        try:
            data: bytes = body.read()
        except (BotoCoreError, OSError) as exc:
            raise RemoteUnavailable(f"reading {uri} failed: {exc}") from exc
        if len(data) != length:
            raise RemoteUnavailable(f"{uri}: got {len(data)} bytes at offset {offset}, wanted {length}")
        return data

    def check(self, uri: str) -> None:
        """Raise RemoteUnavailable unless the object can be read (one HEAD request; for an
        HTTP URL one 1-byte ranged GET, which also proves the server honours Range)."""
        if is_http_url(uri):
            _http_range(self.http, uri, 0, 1)
            return
        self._call(uri, "head_object")

    def presigned_url(self, uri: str, expires: int) -> str:
        """An HTTPS URL that reads the object without credentials for ``expires`` seconds
        (an HTTP URL is already one)."""
        if is_http_url(uri):
            return uri
        target = S3Target.parse(uri)
        try:
            url: str = self._client().generate_presigned_url(
                "get_object", Params={"Bucket": target.bucket, "Key": target.prefix},
                ExpiresIn=expires)
        except Exception as exc:
            err = classify(exc)
            raise RemoteUnavailable(str(err), config=True) from exc
        return url


def _http_range(client: RangeClient, uri: str, offset: int, length: int) -> bytes:
    try:
        return client.read(uri, offset, length)
    except RangeNotSupported as exc:
        raise RemoteUnavailable(str(exc), config=True) from exc
    except HttpObjectError as exc:
        raise RemoteUnavailable(str(exc)) from exc


def _is_not_found(exc: BaseException) -> bool:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return code in {"NoSuchKey", "404"}


@dataclass
class AbsentReport:
    """What re-indexing the absent files did: streamed from their remote copy, or kept as is."""

    streamed: list[tuple[AbsentWarc, FileIndexResult]] = field(default_factory=list)
    kept: list[tuple[AbsentWarc, str]] = field(default_factory=list)

    @property
    def kept_names(self) -> set[str]:
        return {f.name for f, _ in self.kept}


def reindex_absent(db: Database, files: Iterable[AbsentWarc], reader: RemoteReader | None, *,
                   collection: str | None = None,
                   progress: Callable[[AbsentWarc, FileIndexResult], None] | None = None,
                   ) -> AbsentReport:
    """Replace the capture rows of absent files with rows streamed from their remote copy.

    A file whose copy cannot be read (no remote copy known, no reader, store unreachable, no
    credentials, bytes differing from the indexed SHA-256) keeps its rows untouched.
    """
    report = AbsentReport()
    for f in files:
        if f.uri is None:
            report.kept.append((f, "not on this machine and no remote copy is known"))
            continue
        if reader is None:
            report.kept.append((f, "only in the bucket"))
            continue
        try:
            result, sha256, size = index_stream(reader.open(f.uri), uri=f.uri, name=f.name,
                                                collection=collection,
                                                default_collection=f.collection)
        except RemoteUnavailable as exc:
            report.kept.append((f, str(exc)))
            continue
        except WarcFormatError as exc:
            report.kept.append((f, f"remote copy is not readable: {exc}"))
            continue
        except Exception as exc:  # a dropped stream (botocore/urllib3 errors): keep the rows
            report.kept.append((f, f"reading the remote copy failed: {exc}"))
            continue
        if (f.sha256 and sha256 != f.sha256) or (f.size is not None and size != f.size):
            report.kept.append((f, "remote copy differs from the indexed file (SHA-256/size)"))
            continue
        with db.conn:
            db.execute("DELETE FROM captures WHERE filename = ?", [f.name])
            if result.rows:
                db["captures"].insert_all(result.rows, replace=True, batch_size=1000)
            db.execute("UPDATE warc_files SET records = ? WHERE name = ?", [result.records, f.name])
        report.streamed.append((f, result))
        if progress:
            progress(f, result)
    return report


class RecordSource:
    """Bytes of single records for post extraction: the local file, else the remote copy.

    ``unavailable`` (plus every absent file when there is no reader or no remote copy) is fixed
    up front, so the caller can keep the rows extracted from those files before re-extracting.
    A read that fails later is counted in ``failed`` (file name -> reason).
    """

    def __init__(self, db: Database, reader: RemoteReader | None = None,
                 unavailable: Iterable[str] = ()) -> None:
        self.absent = {f.name: f for f in absent_files(db)}
        self.reader = reader
        self.unavailable = set(unavailable) | {
            n for n, f in self.absent.items() if reader is None or f.uri is None}
        self.failed: dict[str, str] = {}
        self.missed = 0  # records that could not be read after the pass started
        self.remote_reads = 0

    def read(self, name: str, path: str, offset: int, length: int) -> bytes | None:
        if name in self.unavailable:
            return None
        try:
            absent = self.absent.get(name)
            if absent is not None and absent.uri and self.reader is not None:
                self.remote_reads += 1
                return self.reader.read_range(absent.uri, offset, length)
            with open(path, "rb") as fh:
                fh.seek(offset)
                return fh.read(length)
        except (RemoteUnavailable, OSError) as exc:
            self.failed.setdefault(name, str(exc))
            self.missed += 1
            if isinstance(exc, RemoteUnavailable) and exc.config:
                self.unavailable.add(name)  # e.g. no range support: no use asking per record
            return None
