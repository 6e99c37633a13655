"""The hash-chained manifest of a collection: one JSON line per closed WARC file.

``warcs/<collection>/manifest.jsonl``. Each entry names a file (size, SHA-256, record count,
crawl id, time) and carries ``prev``, the ``hash`` of the entry before it (``GENESIS`` for the
first), so removing, reordering or replacing a file or an entry breaks the chain at a link a
verifier can name. ``hash`` is ``sha256:<hex>`` of the entry's canonical JSON (sorted keys, no
spaces) without the fields that are about the hash: ``hash``, ``signature``, ``publicKey``,
``timestamp``, ``timestampError``. With a key, ``signature`` is ECDSA P-384 over the ASCII
``hash`` (the WACZ scheme, storage.signing); with a TSA, ``timestamp`` holds an RFC 3161 token
over the hash's digest (storage.tsa).

Appends are atomic and durable: under an exclusive ``flock`` the whole file is rewritten to a
temporary file, fsynced, renamed over the manifest, and the directory fsynced. A kill -9 leaves
either the old or the new manifest, never a torn line.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage._faults import crash_point
from storage.errors import ArchiveWriteError
from storage.signing import SigningKey
from storage.tsa import TimestampError, digest_of, request_timestamp

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
VERSION = 1
GENESIS = "sha256:" + "0" * 64
UNHASHED = ("hash", "signature", "publicKey", "timestamp", "timestampError")


def manifest_path(warc_dir: Path) -> Path:
    return Path(warc_dir) / MANIFEST_NAME


def canonical(entry: dict[str, Any]) -> bytes:
    core = {k: v for k, v in entry.items() if k not in UNHASHED}
    return json.dumps(core, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical(entry)).hexdigest()


@dataclass(frozen=True)
class FileFacts:
    """What an entry says about one closed WARC file."""

    name: str
    size: int
    sha256: str  # hex
    records: int
    crawl_id: str | None
    time: str  # when it closed (RFC 3339 / WARC-Date form)
    note: str | None = None


@dataclass
class ManifestSigner:
    """Optional key and TSA applied to every new entry."""

    key: SigningKey | None = None
    tsa_url: str | None = None
    tsa_timeout: float = 10.0


def read_lines(path: Path) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def read_entries(path: Path) -> list[dict[str, Any]]:
    """Entries of a manifest (unparseable lines are skipped here; the verifier names them)."""
    out = []
    for line in read_lines(path):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


class Manifest:
    """Appends entries to one collection's manifest."""

    def __init__(self, warc_dir: Path, collection: str,
                 signer: ManifestSigner | None = None) -> None:
        self.path = manifest_path(warc_dir)
        self.collection = collection
        self.signer = signer or ManifestSigner()

    def names(self) -> set[str]:
        return {str(e.get("file")) for e in read_entries(self.path)}

    def append(self, facts: FileFacts) -> dict[str, Any]:
        """Add an entry for ``facts`` (atomically, fsynced); a file already listed is skipped.

        Raises ArchiveWriteError when the manifest cannot be written.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked():
                lines = read_lines(self.path)
                entries = read_entries(self.path)
                for old in entries:
                    if old.get("file") == facts.name and old.get("sha256") == facts.sha256:
                        return old
                entry = self._entry(facts, entries)
                lines.append(json.dumps(entry, separators=(",", ":"), ensure_ascii=True))
                self._replace(("\n".join(lines) + "\n").encode("ascii"))
        except OSError as exc:
            raise ArchiveWriteError(self.path, exc) from exc
        return entry

    def _entry(self, facts: FileFacts, entries: list[dict[str, Any]]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "v": VERSION,
            "seq": len(entries),
            "collection": self.collection,
            "file": facts.name,
            "size": facts.size,
            "sha256": facts.sha256,
            "records": facts.records,
            "crawl_id": facts.crawl_id,
            "time": facts.time,
            "prev": str(entries[-1].get("hash")) if entries else GENESIS,
        }
        if facts.note:
            entry["note"] = facts.note
        entry["hash"] = entry_hash(entry)
        if self.signer.key is not None:
            entry["signature"] = self.signer.key.sign(entry["hash"])
            entry["publicKey"] = self.signer.key.public_b64
        if self.signer.tsa_url:
            try:
                stamp = request_timestamp(self.signer.tsa_url, digest_of(entry["hash"]),
                                          timeout=self.signer.tsa_timeout)
                entry["timestamp"] = {"token": stamp.token_b64, "tsa": self.signer.tsa_url,
                                      "genTime": stamp.gen_time.isoformat()}
            except TimestampError as exc:  # the crawl goes on; the entry says why it has none
                logger.warning("No trusted timestamp for %s: %s", facts.name, exc)
                entry["timestampError"] = str(exc)
        return entry

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _replace(self, data: bytes) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        crash_point("manifest_written")
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def make_signer(data_dir: Path, collection: str, *, key_path: str | None = None,
                tsa_url: str | None = None) -> ManifestSigner:
    """The signer a crawl uses: ``key_path``, else the collection's default key if it exists
    (``<data-dir>/keys/<collection>.pem``), else none; plus the TSA URL if any."""
    from storage.signing import default_key_path, load_key

    path = Path(key_path) if key_path else default_key_path(data_dir, collection)
    key = load_key(path) if key_path or path.exists() else None
    return ManifestSigner(key=key, tsa_url=tsa_url or None)


@dataclass
class ChainCheck:
    problems: list[str]
    first_broken: str | None
    latest: dict[str, dict[str, Any]]  # file name → its last entry
    signed: int = 0
    timestamped: int = 0


def check_chain(path: Path, *, public_key: str | None = None,
                trusted_tsa: list[Any] | None = None) -> ChainCheck:
    """Check every link, hash, signature and timestamp of the manifest at ``path``.

    ``public_key`` (base64 SPKI): every entry must be signed by it. Otherwise, once one entry
    is signed, all must be, by the same key (an unsigned entry is an insertion).
    """
    from storage.signing import verify_signature
    from storage.tsa import check_token

    out = ChainCheck([], None, {})
    prev, key = GENESIS, public_key

    def broken(where: str, why: str) -> None:
        out.problems.append(f"{where}: {why}")
        if out.first_broken is None:
            out.first_broken = f"{where}: {why}"

    for number, line in enumerate(read_lines(path), 1):
        where = f"{path.name} line {number}"
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError
        except ValueError:
            broken(where, "not a JSON object")
            continue
        where += f" ({entry.get('file')})"
        if entry.get("hash") != entry_hash(entry):
            broken(where, "entry altered: its hash does not match its contents")
        if entry.get("prev") != prev:
            broken(where, "chain broken: prev is not the hash of the entry before it "
                          "(an entry was removed, reordered or replaced)")
        if entry.get("seq") != number - 1:
            broken(where, f"seq {entry.get('seq')} where {number - 1} belongs")
        prev = str(entry.get("hash"))
        if "signature" in entry:
            if key is None:
                key = entry.get("publicKey")
            if entry.get("publicKey") != key:
                out.problems.append(f"{where}: signed by another key")
            elif not verify_signature(str(entry.get("hash")), str(entry["signature"]), key or ""):
                out.problems.append(f"{where}: signature does not verify")
            else:
                out.signed += 1
        elif key is not None:
            out.problems.append(f"{where}: not signed, but the manifest is signed")
        stamp = entry.get("timestamp")
        if isinstance(stamp, dict):
            try:
                check_token(str(stamp.get("token")), digest_of(str(entry.get("hash"))),
                            trusted_tsa)
                out.timestamped += 1
            except TimestampError as exc:
                out.problems.append(f"{where}: timestamp: {exc}")
        out.latest[str(entry.get("file"))] = entry
    return out
