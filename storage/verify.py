"""End-to-end integrity check of a collection: files, manifest chain, signatures, index, remote.

Every local WARC is re-hashed (streamed in 1 MiB chunks, files in parallel threads: hashlib
releases the GIL, so hashing runs on every core) and compared with its manifest entry and its
``warc_files`` row; the manifest chain, signatures and RFC 3161 tokens are checked
(storage.manifest.check_chain); with a remote, every object under ``PREFIX/<collection>/`` is
streamed and hashed the same way.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlite_utils import Database

from storage.manifest import check_chain, manifest_path
from storage.warc import OPEN_SUFFIX, WARC_SUFFIX

CHUNK = 1 << 20


@dataclass
class VerifyReport:
    collection: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first_broken: str | None = None
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    signed: int = 0
    timestamped: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0


def hash_stream(stream: BinaryIO) -> tuple[int, str]:
    sha, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK):
        sha.update(chunk)
        size += len(chunk)
    return size, sha.hexdigest()


def hash_file(path: Path) -> tuple[int, str]:
    with open(path, "rb", buffering=0) as fh:
        return hash_stream(fh)  # type: ignore[arg-type]


def collections_in(data_dir: Path) -> list[str]:
    base = Path(data_dir) / "warcs"
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.exists() else []


def _index_rows(db: Database | None, collection: str) -> dict[str, dict[str, Any]]:
    if db is None or "warc_files" not in db.table_names():
        return {}
    cols = {c.name for c in db["warc_files"].columns}
    off = "offloaded_at" if "offloaded_at" in cols else "NULL AS offloaded_at"
    sql = (f"SELECT name, size, sha256, state, {off} FROM warc_files"
           " WHERE collection = ?")
    return {r["name"]: r for r in db.query(sql, [collection])}


def verify_collection(
    data_dir: Path, collection: str, *, db: Database | None = None, workers: int = 4,
    public_key: str | None = None, trusted_tsa: list[Any] | None = None,
    remote: RemoteObjects | None = None,
) -> VerifyReport:
    started = time.monotonic()
    rep = VerifyReport(collection)
    warc_dir = Path(data_dir) / "warcs" / collection
    mpath = manifest_path(warc_dir)
    if not mpath.exists():
        rep.problems.append(f"{collection}: no manifest ({mpath}): nothing ties its files together")
    chain = check_chain(mpath, public_key=public_key, trusted_tsa=trusted_tsa)
    rep.problems += chain.problems
    rep.first_broken, rep.signed, rep.timestamped = chain.first_broken, chain.signed, chain.timestamped
    unstamped = [name for name, e in chain.latest.items() if "timestampError" in e]
    if unstamped:
        rep.notes.append(f"{len(unstamped)} entries have no timestamp (the TSA failed when the "
                         f"file closed), first: {unstamped[0]}")
    rows = _index_rows(db, collection)
    local = sorted(warc_dir.glob("*" + WARC_SUFFIX)) if warc_dir.exists() else []
    for path in sorted(warc_dir.glob("*" + WARC_SUFFIX + OPEN_SUFFIX)) if warc_dir.exists() else []:
        rep.notes.append(f"{path.name}: still being written (not checked)")
    with ThreadPoolExecutor(max(1, workers)) as pool:
        actual = dict(zip([p.name for p in local], pool.map(hash_file, local), strict=True))
    rep.files, rep.bytes = len(actual), sum(size for size, _ in actual.values())
    _compare_local(rep, chain.latest, actual, rows)
    if remote is not None:
        _compare_remote(rep, chain.latest, remote, workers)
    rep.seconds = time.monotonic() - started
    return rep


def _compare_local(rep: VerifyReport, latest: dict[str, dict[str, Any]],
                   actual: dict[str, tuple[int, str]], rows: dict[str, dict[str, Any]]) -> None:
    for name, entry in latest.items():
        if name not in actual:
            row = rows.get(name) or {}
            if row.get("offloaded_at"):
                rep.notes.append(f"{name}: offloaded (local copy deleted); check it with --remote")
            else:
                rep.problems.append(f"missing: {name} is in the manifest but not on disk")
            continue
        size, sha = actual[name]
        if (size, sha) != (entry.get("size"), entry.get("sha256")):
            rep.problems.append(f"altered: {name} (sha256 {sha[:16]}…, {size} bytes) differs from "
                                f"its manifest entry (sha256 {str(entry.get('sha256'))[:16]}…, "
                                f"{entry.get('size')} bytes)")
    for name in sorted(set(actual) - set(latest)):
        rep.problems.append(f"extra: {name} is on disk but not in the manifest")
    for name, row in sorted(rows.items()):
        if row.get("state") == "open":
            continue
        if name not in latest:
            rep.problems.append(f"index: warc_files lists {name}, the manifest does not")
        if name in actual and row.get("sha256") and row["sha256"] != actual[name][1]:
            rep.problems.append(f"index: warc_files.sha256 of {name} does not match the file")


class RemoteObjects:
    """The WARCs of one collection in a bucket: ``list()`` names → keys, ``open(key)`` streams."""

    def __init__(self, lister: Callable[[], dict[str, str]],
                 opener: Callable[[str], BinaryIO], where: str) -> None:
        self.list, self.open, self.where = lister, opener, where


def s3_objects(target_url: str, collection: str, *, endpoint_url: str | None = None) -> RemoteObjects:
    """Objects under ``s3://BUCKET/PREFIX/<collection>/`` (the mirror's layout)."""
    from storage._s3 import S3Target, make_client

    target = S3Target.parse(target_url)
    client = make_client(endpoint_url=endpoint_url)
    prefix = target.key_for(collection, "x")[:-1]  # "PREFIX/<collection>/"

    def lister() -> dict[str, str]:
        out: dict[str, str] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=target.bucket,
                                                                     Prefix=prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix):]
                if "/" not in name and name.endswith(WARC_SUFFIX):
                    out[name] = obj["Key"]
        return out

    def opener(key: str) -> BinaryIO:
        return client.get_object(Bucket=target.bucket, Key=key)["Body"]  # type: ignore[no-any-return]

    return RemoteObjects(lister, opener, target.uri(prefix))


def _compare_remote(rep: VerifyReport, latest: dict[str, dict[str, Any]],
                    remote: RemoteObjects, workers: int) -> None:
    keys = remote.list()

    def remote_hash(key: str) -> tuple[int, str]:
        body = remote.open(key)
        try:
            return hash_stream(body)
        finally:
            body.close()

    names = sorted(set(keys) & set(latest))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        hashed = dict(zip(names, pool.map(remote_hash, [keys[n] for n in names]), strict=True))
    rep.bytes += sum(size for size, _ in hashed.values())
    for name, entry in latest.items():
        if name not in keys:
            rep.problems.append(f"remote missing: {name} is not in {remote.where}")
        elif hashed[name] != (entry.get("size"), entry.get("sha256")):
            rep.problems.append(f"remote altered: {remote.where}{name} differs from its manifest entry")
    for name in sorted(set(keys) - set(latest)):
        rep.problems.append(f"remote extra: {remote.where}{name} is not in the manifest")


def summarize(reports: Iterable[VerifyReport]) -> list[str]:
    return [f"{r.collection}: {r.files} files, {r.bytes / 1e6:.1f} MB in {r.seconds:.2f} s "
            f"({r.mb_per_s:.0f} MB/s), {r.signed} signed, {r.timestamped} timestamped entries"
            for r in reports]
