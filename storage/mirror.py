"""The object-storage mirror: every closed WARC copied to S3-compatible storage and verified.

Public API::

    target = S3Target.parse("s3://bucket/prefix")
    mirror = Mirror.connect(target, db=open_database(path), endpoint_url="http://127.0.0.1:9000")
    result = mirror.upload(row)            # one warc_files row (dict): upload, verify, record
    report = mirror.sync(verify=True)      # everything not yet verified in this target
    key = mirror.snapshot_index(path)      # consistent copy of index.db under PREFIX/index/

A file counts as mirrored only after verification (see ``storage/_transfer.py``). Per-target
state lives in the ``mirror_uploads`` table (created here, documented in ``docs/mirror.md``);
``warc_files.mirrored_at/remote_key/remote_checksum/remote_size`` are filled only after a
successful verification and cleared when a later verification fails.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage._checksum import file_sha256
from storage._s3 import (
    MirrorConfigError,
    S3Target,
    TransientMirrorError,
    classify,
    make_client,
)
from storage._transfer import (
    LocalFileChanged,
    RemoteCheck,
    TransferResult,
    put_multipart,
    put_single,
    verify_object,
)

__all__ = ["FileResult", "Mirror", "MirrorConfigError", "S3Target", "SyncReport"]

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
MAX_PARTS = 10_000

MIRROR_UPLOADS_DDL = """
CREATE TABLE IF NOT EXISTS mirror_uploads(
    name TEXT, target TEXT, key TEXT, size INTEGER, sha256 TEXT, remote_checksum TEXT,
    upload_id TEXT, uploaded_at TEXT, verified_at TEXT, PRIMARY KEY(name, target))
"""

ProgressCallback = Callable[["FileResult", int, int], None]


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FileResult:
    """What happened to one file. ``status`` is one of:

    ``uploaded`` (sent and verified), ``repaired`` (remote copy was missing or differed; re-sent
    and verified), ``verified`` (remote copy re-checked, fine), ``skipped`` (verified in an
    earlier run, not re-checked), ``would-upload`` / ``would-verify`` (dry run), ``failed``.
    """

    name: str
    key: str
    size: int
    status: str
    multipart: bool = False
    parts: int = 0
    bytes_sent: int = 0
    deleted: bool = False
    error: str | None = None
    method: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass
class SyncReport:
    target: str
    results: list[FileResult] = field(default_factory=list)
    index_key: str | None = None

    def count(self, *statuses: str) -> int:
        return sum(1 for r in self.results if r.status in statuses)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def bytes_sent(self) -> int:
        return sum(r.bytes_sent for r in self.results)

    @property
    def deleted(self) -> int:
        return sum(1 for r in self.results if r.deleted)


class Mirror:
    """Uploads WARCs to one :class:`S3Target`, verifies them and records the result.

    ``db`` (a sqlite-utils Database) is optional: without it nothing is recorded (used by the
    benchmark). All methods are thread-safe; ``sync`` uploads ``file_workers`` files at a time
    and each multipart file ``concurrency`` parts at a time.
    """

    def __init__(
        self,
        target: S3Target,
        client: Any,
        *,
        db: Any = None,
        multipart_threshold: int = 8 * MIB,
        part_size: int = 8 * MIB,
        concurrency: int = 4,
        file_workers: int = 4,
        retries: int = 4,
        backoff: float = 1.0,
        backoff_max: float = 30.0,
        extra_headers: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.target = target
        self.client = client
        self.db = db
        self.multipart_threshold = max(multipart_threshold, 5 * MIB)
        self.part_size = max(part_size, 5 * MIB)  # S3 minimum for all parts but the last
        self.concurrency = max(1, concurrency)
        self.file_workers = max(1, file_workers)
        self.retries = max(0, retries)
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._lock = threading.RLock()
        if extra_headers:
            self._add_headers(extra_headers)
        if db is not None:
            with self._lock:
                db.execute(MIRROR_UPLOADS_DDL)

    @classmethod
    def connect(
        cls, target: S3Target | str, *, endpoint_url: str | None = None,
        region_name: str | None = None, profile_name: str | None = None,
        credentials: dict[str, str] | None = None, **kwargs: Any,
    ) -> Mirror:
        """Build a Mirror with a client from the standard boto3 chain (plus ``endpoint_url``)."""
        if isinstance(target, str):
            target = S3Target.parse(target)
        concurrency = kwargs.get("concurrency", 4) * kwargs.get("file_workers", 4)
        client = make_client(
            endpoint_url=endpoint_url, region_name=region_name, profile_name=profile_name,
            credentials=credentials, max_pool_connections=max(10, concurrency),
        )
        return cls(target, client, **kwargs)

    def _add_headers(self, headers: dict[str, str]) -> None:
        """Send extra headers (e.g. IA's ``x-archive-meta-*``) with every object creation."""

        def add(params: dict[str, Any], **_: Any) -> None:
            params["headers"].update(headers)

        for op in ("PutObject", "CreateMultipartUpload"):
            self.client.meta.events.register(f"before-call.s3.{op}", add)

    # -- one file -------------------------------------------------------------------------

    def check_bucket(self) -> None:
        """Fail fast with one clear message if credentials or the bucket are wrong."""
        try:
            self.client.head_bucket(Bucket=self.target.bucket)
        except Exception as exc:
            err = classify(exc)
            if isinstance(err, MirrorConfigError | TransientMirrorError):
                raise err from exc
            raise MirrorConfigError(f"cannot use bucket {self.target.bucket!r}: {exc}") from exc

    def upload(self, row: dict[str, Any], *, upload_id: str | None = None,
               key: str | None = None, record: bool = True) -> FileResult:
        """Upload one ``warc_files`` row, verify it and record it (with retries and backoff).

        ``key`` overrides the ``PREFIX/<collection>/<name>`` layout; ``record=False`` leaves the
        index alone. Raises MirrorConfigError (retrying cannot help); any other failure gives a
        ``failed`` result and leaves the file unmirrored.
        """
        if not record:
            upload_id = upload_id or ""  # "" = no resume lookup
        row = self._with_sha256(row) if record else row
        key = key or self.target.key_for(row["collection"], row["name"])
        result = FileResult(row["name"], key, int(row["size"] or 0), "failed")
        if row.get("state", "closed") not in {"closed", "repaired"}:
            result.error = f"not closed (state {row.get('state')!r})"
            return result
        path = Path(row["path"])
        if upload_id is None:
            upload_id = self._recorded_upload_id(row["name"])
        for attempt in range(self.retries + 1):
            try:
                transfer = self._transfer(row, key, path, upload_id or None, record)
                check = verify_object(
                    self.client, self.target.bucket, key, size=result.size,
                    sha256_hex=row["sha256"], path=path, expected=transfer,
                )
                result.bytes_sent += transfer.bytes_sent
                result.multipart, result.parts = transfer.multipart, transfer.parts
                if check.ok:
                    if record:
                        self._record_verified(row, key, check)
                    result.status, result.method, result.error = "uploaded", check.method, None
                    return result
                result.error = f"verification failed after upload: {check.reason}"
                upload_id = None
            except LocalFileChanged as exc:
                result.error = str(exc)
                return result
            except OSError as exc:
                if not isinstance(exc, ConnectionError | TimeoutError):
                    result.error = f"cannot read {path}: {exc.strerror or exc}"
                    return result
                result.error = str(classify(exc))
            except Exception as exc:
                err = classify(exc)
                if isinstance(err, MirrorConfigError):
                    raise err from exc
                result.error = str(err)
                upload_id = self._recorded_upload_id(row["name"]) if record else None
            if attempt < self.retries:
                delay = min(self.backoff * 2**attempt, self.backoff_max)
                logger.debug("retrying %s in %.1fs: %s", row["name"], delay, result.error)
                self._sleep(delay)
        return result

    def _transfer(self, row: dict[str, Any], key: str, path: Path, upload_id: str | None,
                  record: bool) -> TransferResult:
        size, sha = int(row["size"]), row["sha256"]
        extra = {"Metadata": {"sha256": sha, "collection": row["collection"]}}
        if size < self.multipart_threshold:
            return put_single(self.client, self.target.bucket, key, path, size=size,
                              sha256_hex=sha, extra=extra)
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        return put_multipart(
            self.client, self.target.bucket, key, path, size=size, sha256_hex=sha,
            part_size=part_size, concurrency=self.concurrency, extra=extra,
            upload_id=upload_id,
            on_upload_id=lambda uid: record and self._record_upload_id(row, key, uid),
        )

    def verify(self, row: dict[str, Any]) -> RemoteCheck:
        """Re-check the remote copy of ``row`` (no upload). Raises on S3 errors."""
        row = self._with_sha256(row)
        key = self.target.key_for(row["collection"], row["name"])
        try:
            return verify_object(self.client, self.target.bucket, key, size=int(row["size"]),
                                 sha256_hex=row["sha256"], path=Path(row["path"]))
        except Exception as exc:
            err = classify(exc)
            if err is exc:
                raise
            raise err from exc

    # -- many files -----------------------------------------------------------------------

    def pending(self, collection: str | None = None) -> list[dict[str, Any]]:
        """``warc_files`` rows (closed/repaired) joined with this target's mirror state."""
        sql = (
            "SELECT w.*, m.verified_at AS m_verified_at, m.sha256 AS m_sha256 "
            "FROM warc_files w LEFT JOIN mirror_uploads m ON m.name = w.name AND m.target = ? "
            "WHERE w.state IN ('closed', 'repaired') AND (? IS NULL OR w.collection = ?) "
            "ORDER BY w.collection, w.name"
        )
        with self._lock:
            return list(self.db.query(sql, [self.target.url, collection, collection]))

    def sync(
        self, collection: str | None = None, *, verify: bool = False,
        delete_after_verify: bool = False, dry_run: bool = False,
        progress: ProgressCallback | None = None,
    ) -> SyncReport:
        """Upload every closed WARC not yet verified in this target; see FileResult.status.

        Idempotent: files verified earlier are skipped without a request unless ``verify`` (or
        ``delete_after_verify``, which re-verifies before deleting) is set.
        """
        if self.db is None:
            raise MirrorConfigError("sync needs the index (Mirror(db=...))")
        rows = self.pending(collection)
        report = SyncReport(self.target.url)
        stop = threading.Event()

        def one(row: dict[str, Any]) -> FileResult:
            if stop.is_set():
                return FileResult(row["name"], "", int(row["size"] or 0), "failed", error="stopped")
            try:
                return self._sync_one(row, verify, delete_after_verify, dry_run)
            except MirrorConfigError:
                stop.set()
                raise

        with ThreadPoolExecutor(max_workers=self.file_workers) as pool:
            for result in _as_completed_in_order(pool, one, rows):
                report.results.append(result)
                if progress:
                    progress(result, len(report.results), len(rows))
        return report

    def _sync_one(self, row: dict[str, Any], verify: bool, delete: bool, dry_run: bool) -> FileResult:
        key = self.target.key_for(row["collection"], row["name"])
        size = int(row["size"] or 0)
        already = bool(row["m_verified_at"]) and row["m_sha256"] == row["sha256"] and row["sha256"]
        if dry_run:
            status = "would-verify" if already and (verify or delete) else (
                "skipped" if already else "would-upload")
            return FileResult(row["name"], key, size, status)
        if already and not (verify or delete):
            return FileResult(row["name"], key, size, "skipped")
        if not already and row.get("offloaded_at") and not Path(row["path"]).exists():
            return FileResult(row["name"], key, size, "failed", error=(
                f"not on this machine: offloaded to {row.get('remote_key')} on {row['offloaded_at']}"))
        if already:
            result = self._recheck(row, key, size)
        else:
            result = self.upload(row)
        if delete and result.status in {"uploaded", "repaired", "verified"}:
            result.deleted = self._delete_local(row)
        return result

    def _recheck(self, row: dict[str, Any], key: str, size: int) -> FileResult:
        try:
            check = self.verify(row)
        except TransientMirrorError as exc:
            return FileResult(row["name"], key, size, "failed", error=str(exc))
        if check.ok:
            self._record_verified(row, key, check)
            return FileResult(row["name"], key, size, "verified", method=check.method)
        logger.warning("%s: remote copy %s: %s; re-uploading", row["name"], key, check.reason)
        self._clear_verified(row)
        if not Path(row["path"]).exists():
            return FileResult(row["name"], key, size, "failed",
                              error=f"remote copy {check.reason} and local file is gone")
        result = self.upload(row, upload_id=None)
        if result.status == "uploaded":
            result.status = "repaired"
        return result

    # -- index snapshot -------------------------------------------------------------------

    def snapshot_index(self, index_path: Path | str) -> str:
        """Upload a consistent copy of ``index.db`` to ``PREFIX/index/index-<UTC>-<host>.db``.

        The copy is made with SQLite's online backup API (safe while a crawl writes), into a
        temporary file next to nothing else, then uploaded and verified like a WARC.
        """
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"index-{stamp}-{socket.gethostname()}.db"
        key = "/".join(p for p in (self.target.prefix, "index", name) if p)
        with tempfile.TemporaryDirectory(prefix="socialark-index-") as tmp:
            copy = Path(tmp) / name
            src = sqlite3.connect(f"file:{index_path}?mode=ro", uri=True)
            dst = sqlite3.connect(copy)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
            row = {"name": name, "collection": "", "path": str(copy), "size": copy.stat().st_size,
                   "sha256": file_sha256(copy), "state": "closed"}
            result = self.upload(row, key=key, record=False)  # not a warc_files row
        if result.status != "uploaded":
            raise TransientMirrorError(f"index snapshot not mirrored: {result.error}")
        return key

    # -- index bookkeeping ----------------------------------------------------------------

    def _with_sha256(self, row: dict[str, Any]) -> dict[str, Any]:
        if row.get("sha256") and row.get("size") is not None:
            return row
        path = Path(row["path"])
        row = {**row, "sha256": row.get("sha256") or file_sha256(path),
               "size": row.get("size") if row.get("size") is not None else path.stat().st_size}
        if self.db is not None:
            with self._lock:
                self.db.execute(
                    "UPDATE warc_files SET sha256 = ?, size = ? WHERE name = ?",
                    [row["sha256"], row["size"], row["name"]])
                self.db.conn.commit()
        return row

    def _recorded_upload_id(self, name: str) -> str | None:
        if self.db is None:
            return None
        with self._lock:
            rows = list(self.db.query(
                "SELECT upload_id FROM mirror_uploads WHERE name = ? AND target = ?",
                [name, self.target.url]))
        return rows[0]["upload_id"] if rows else None

    def _record_upload_id(self, row: dict[str, Any], key: str, upload_id: str | None) -> None:
        if self.db is None:
            return
        with self._lock, self.db.conn:
            self.db["mirror_uploads"].upsert(
                {"name": row["name"], "target": self.target.url, "key": key, "size": row["size"],
                 "sha256": row["sha256"], "upload_id": upload_id},
                pk=("name", "target"),
            )

    def _record_verified(self, row: dict[str, Any], key: str, check: RemoteCheck) -> None:
        if self.db is None:
            return
        now = utcnow()
        with self._lock, self.db.conn:
            self.db["mirror_uploads"].upsert(
                {"name": row["name"], "target": self.target.url, "key": key, "size": row["size"],
                 "sha256": row["sha256"], "remote_checksum": check.remote_checksum,
                 "upload_id": None, "uploaded_at": now, "verified_at": now},
                pk=("name", "target"),
            )
            self.db.execute(
                "UPDATE warc_files SET mirrored_at = ?, remote_key = ?, remote_checksum = ?, "
                "remote_size = ? WHERE name = ?",
                [now, self.target.uri(key), check.remote_checksum, check.remote_size, row["name"]])

    def _clear_verified(self, row: dict[str, Any]) -> None:
        uri = self.target.uri(self.target.key_for(row["collection"], row["name"]))
        with self._lock, self.db.conn:
            self.db.execute(
                "UPDATE mirror_uploads SET verified_at = NULL WHERE name = ? AND target = ?",
                [row["name"], self.target.url])
            self.db.execute(
                "UPDATE warc_files SET mirrored_at = NULL, remote_checksum = NULL, "
                "remote_size = NULL WHERE name = ? AND remote_key = ?", [row["name"], uri])

    def _delete_local(self, row: dict[str, Any]) -> bool:
        """Delete the local copy (only called right after a verification in this run)."""
        path = Path(row["path"])
        try:
            os.remove(path)
        except FileNotFoundError:
            return False
        now = utcnow()
        note = f"local copy deleted {now} after verified mirror to {self.target.url}"
        key = self.target.key_for(row["collection"], row["name"])
        # offloaded_at + remote_key: the index keeps the file's rows and knows where to read it.
        with self._lock, self.db.conn:
            self.db.execute(
                "UPDATE warc_files SET offloaded_at = ?, remote_key = ?, note = CASE WHEN note IS "
                "NULL OR note = '' THEN ? ELSE note || '; ' || ? END WHERE name = ?",
                [now, self.target.uri(key), note, note, row["name"]])
        return True


def _as_completed_in_order(
    pool: ThreadPoolExecutor, fn: Callable[[dict[str, Any]], FileResult],
    rows: Iterable[dict[str, Any]],
) -> Iterable[FileResult]:
    """Run ``fn`` over rows in the pool, yielding results as they finish (errors re-raised)."""
    from concurrent.futures import as_completed

    futures = [pool.submit(fn, row) for row in rows]
    try:
        for fu in as_completed(futures):
            yield fu.result()
    finally:
        for fu in futures:
            fu.cancel()
