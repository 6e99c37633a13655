"""Moving one file to S3 and proving the remote bytes equal the local ones.

Upload: files below the multipart threshold go in one ``PutObject`` carrying ``ChecksumSHA256`` of
the whole file (AWS rejects the request if the bytes differ). Larger files go multipart; each part
carries its own ``ChecksumSHA256``, so the object gets a *composite* checksum. Parts are read
sequentially (which also re-hashes the whole file against the index's sha256, catching local disk
corruption) and sent by a small thread pool. The upload id is handed to a callback before any part
is sent, so an interrupted upload can be resumed: parts already on the server are reused when
their size and ETag (the part's MD5 on S3, MinIO, moto) match the local bytes.

Verification (:func:`verify_object`), in order of preference:

1. ``HeadObject(ChecksumMode=ENABLED)`` gives a full-object ``ChecksumSHA256``: compare it with
   the local sha256.
2. It gives a composite checksum: recompute the composite from the local file using the remote
   part size (``HeadObject(PartNumber=1)``) and compare, part count included.
3. No SHA-256 at all (object overwritten by another client, stores without additional checksums
   such as the Internet Archive): stream the object back with ranged GETs and hash it.

Object metadata ``x-amz-meta-sha256`` (full-file hex) is written for humans and for rebuilding an
index from a bucket, but never trusted as proof: metadata says nothing about the bytes.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage._checksum import (
    b64_of_hex,
    composite_sha256,
    file_composite_sha256,
    part_ranges,
)

CONTENT_TYPE = "application/warc"
READBACK_RANGE = 64 * 1024 * 1024


class LocalFileChanged(Exception):
    """The local file no longer matches the size/sha256 the index recorded for it."""


@dataclass
class TransferResult:
    multipart: bool
    parts: int
    expected_checksum: str  # S3 notation: b64, or b64-N for composite
    bytes_sent: int


@dataclass
class RemoteCheck:
    ok: bool
    reason: str
    remote_checksum: str | None = None
    remote_size: int | None = None
    method: str = ""  # "checksum", "composite" or "read"
    missing: bool = False


def put_single(
    client: Any, bucket: str, key: str, path: Path, *, size: int, sha256_hex: str,
    extra: dict[str, Any],
) -> TransferResult:
    data = path.read_bytes()
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha256_hex:
        raise LocalFileChanged(f"{path} differs from the size/sha256 recorded in the index")
    b64 = b64_of_hex(sha256_hex)
    client.put_object(
        Bucket=bucket, Key=key, Body=data, ContentType=CONTENT_TYPE,
        ChecksumAlgorithm="SHA256", ChecksumSHA256=b64, **extra,
    )
    return TransferResult(False, 1, b64, size)


def _existing_parts(client: Any, bucket: str, key: str, upload_id: str) -> dict[int, tuple[str, int]] | None:
    """Parts already uploaded under ``upload_id`` ({number: (etag, size)}), None if it is gone."""
    parts: dict[int, tuple[str, int]] = {}
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "UploadId": upload_id}
    try:
        while True:
            page = client.list_parts(**kwargs)
            for p in page.get("Parts", []):
                parts[p["PartNumber"]] = (p["ETag"].strip('"'), p["Size"])
            if not page.get("IsTruncated"):
                return parts
            kwargs["PartNumberMarker"] = page["NextPartNumberMarker"]
    except client.exceptions.NoSuchUpload:
        return None
    except client.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchUpload", "404"}:
            return None
        raise


def abort_stale_uploads(client: Any, bucket: str, key: str, keep: str | None = None) -> int:
    """Abort unfinished multipart uploads of ``key`` (left by a crash) except ``keep``."""
    page = client.list_multipart_uploads(Bucket=bucket, Prefix=key)
    n = 0
    for u in page.get("Uploads", []):
        if u["Key"] == key and u["UploadId"] != keep:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=u["UploadId"])
            n += 1
    return n


def put_multipart(
    client: Any, bucket: str, key: str, path: Path, *, size: int, sha256_hex: str,
    part_size: int, concurrency: int, extra: dict[str, Any],
    upload_id: str | None, on_upload_id: Callable[[str | None], None],
) -> TransferResult:
    existing = _existing_parts(client, bucket, key, upload_id) if upload_id else None
    if existing is None or (existing and any(s > part_size for _, s in existing.values())):
        if upload_id and existing is not None:  # resumable in principle, but cut differently
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        abort_stale_uploads(client, bucket, key)
        upload_id = client.create_multipart_upload(
            Bucket=bucket, Key=key, ContentType=CONTENT_TYPE, ChecksumAlgorithm="SHA256", **extra
        )["UploadId"]
        existing = {}
    assert upload_id is not None
    on_upload_id(upload_id)

    whole = hashlib.sha256()
    digests: list[bytes] = []
    done: list[dict[str, Any]] = []
    sent = 0
    lock = threading.Lock()
    slots = threading.BoundedSemaphore(concurrency)

    def send(number: int, body: bytes, b64: str) -> None:
        nonlocal sent
        try:
            r = client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body,
                ChecksumAlgorithm="SHA256", ChecksumSHA256=b64,
            )
            with lock:
                done.append({"PartNumber": number, "ETag": r["ETag"], "ChecksumSHA256": b64})
                sent += len(body)
        finally:
            slots.release()

    futures: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool, open(path, "rb") as f:
        for number, _offset, length in part_ranges(size, part_size):
            body = f.read(length)
            whole.update(body)
            digest = hashlib.sha256(body).digest()
            digests.append(digest)
            b64 = _b64(digest)
            old = existing.get(number)
            if old and old[1] == length and old[0] == hashlib.md5(body, usedforsecurity=False).hexdigest():
                done.append({"PartNumber": number, "ETag": f'"{old[0]}"', "ChecksumSHA256": b64})
                continue
            slots.acquire()
            futures.append(pool.submit(send, number, body, b64))
            if any(fu.done() and fu.exception() for fu in futures):
                break
        wait(futures, return_when=FIRST_EXCEPTION)
        for fu in futures:
            fu.result()  # re-raise the first upload error (the upload id stays resumable)
        read = f.tell()
    if read != size or whole.hexdigest() != sha256_hex:
        raise LocalFileChanged(f"{path} differs from the size/sha256 recorded in the index")
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id,
        MultipartUpload={"Parts": sorted(done, key=lambda p: p["PartNumber"])},
    )
    on_upload_id(None)
    return TransferResult(True, len(digests), f"{composite_sha256(digests)}-{len(digests)}", sent)


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _not_found(exc: Any) -> bool:
    return exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}


def verify_object(
    client: Any, bucket: str, key: str, *, size: int, sha256_hex: str, path: Path | None,
    expected: TransferResult | None = None,
) -> RemoteCheck:
    """Prove (or disprove) that ``bucket/key`` holds exactly the bytes with ``sha256_hex``."""
    try:
        head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except client.exceptions.ClientError as exc:
        if _not_found(exc):
            return RemoteCheck(False, "missing from the bucket", missing=True)
        raise
    remote_size = int(head["ContentLength"])
    if remote_size != size:
        return RemoteCheck(False, f"size differs (remote {remote_size}, local {size})",
                           remote_size=remote_size)
    checksum = head.get("ChecksumSHA256")
    if checksum:
        base, _, suffix = checksum.partition("-")
        etag_parts = re.search(r"-(\d+)\"?$", head.get("ETag", ""))
        ctype = head.get("ChecksumType")
        composite = bool(suffix) or ctype == "COMPOSITE" or (ctype != "FULL_OBJECT" and etag_parts)
        if not composite:
            ok = base == b64_of_hex(sha256_hex)
            return RemoteCheck(ok, "ok" if ok else "SHA-256 differs", base, remote_size, "checksum")
        nparts = int(suffix or (etag_parts.group(1) if etag_parts else 0))
        local = _local_composite(client, bucket, key, path, size, expected)
        if local is not None:
            ok = local == (base, nparts)
            return RemoteCheck(ok, "ok" if ok else "composite SHA-256 differs",
                               f"{base}-{nparts}", remote_size, "composite")
    return _read_back(client, bucket, key, size, sha256_hex)


def _local_composite(
    client: Any, bucket: str, key: str, path: Path | None, size: int,
    expected: TransferResult | None,
) -> tuple[str, int] | None:
    if expected is not None and expected.multipart:
        base, _, n = expected.expected_checksum.partition("-")
        return base, int(n)
    if path is None or not path.exists() or path.stat().st_size != size:
        return None
    part_size = int(client.head_object(Bucket=bucket, Key=key, PartNumber=1)["ContentLength"])
    return file_composite_sha256(path, part_size)


def _read_back(client: Any, bucket: str, key: str, size: int, sha256_hex: str) -> RemoteCheck:
    """Hash the remote object by streaming it back in ranges (the store gave no SHA-256)."""
    h = hashlib.sha256()
    for start in range(0, max(size, 1), READBACK_RANGE):
        end = min(start + READBACK_RANGE, size) - 1
        if end < start:
            break
        body = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")["Body"]
        for chunk in body.iter_chunks(1024 * 1024):
            h.update(chunk)
    ok = h.hexdigest() == sha256_hex
    return RemoteCheck(ok, "ok" if ok else "SHA-256 of the bytes read back differs",
                       _b64(h.digest()), size, "read")
