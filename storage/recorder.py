"""The archive recorder: exchanges in, WARC records + index rows out (dedup, rotation, repair).

One ``ArchiveRecorder`` per crawl process. Every capture path (Scrapy's downloader, the
browser) hands its exchanges here, so dedup, rotation and indexing are the same for all.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from storage._process import pid_alive
from storage.exchange import DEFAULT_REDACT, HttpExchange, build_records, resource_record
from storage.index import store_file_rows
from storage.indexer import index_file, row_for_written
from storage.live_index import LiveIndex, utc_now_iso
from storage.manifest import FileFacts, Manifest, ManifestSigner
from storage.records import Digester, warc_date
from storage.warc import (
    DEFAULT_MAX_SIZE,
    OPEN_SUFFIX,
    WARC_SUFFIX,
    ClosedFile,
    RepairResult,
    WarcWriter,
    WrittenRecord,
    _safe_host,
    file_sha256,
    find_open_files,
    repair_open_file,
)

logger = logging.getLogger(__name__)


@dataclass
class RecorderConfig:
    data_dir: Path
    collection: str
    crawl_id: str
    max_size: int = DEFAULT_MAX_SIZE
    prefix: str = "socialark"
    algorithm: str = "sha256"
    dedup: bool = True
    dedup_min_size: int = 1
    redact: tuple[bytes, ...] = DEFAULT_REDACT
    gzip_level: int = 6
    media_gzip_level: int | None = None  # already-compressed payloads (storage.media)
    warcinfo: Sequence[tuple[str, str]] = field(default_factory=list)
    signer: ManifestSigner | None = None  # key / TSA for manifest entries (storage.manifest)

    @property
    def warc_dir(self) -> Path:
        return self.data_dir / "warcs" / self.collection

    @property
    def index_path(self) -> Path:
        return self.data_dir / "index.db"


@dataclass
class RepairReport:
    name: str
    records: int
    removed_bytes: int
    kind: str = "repaired"




def _belongs_to_live_process(path: Path) -> bool:
    """Is this ``.open`` file being written right now by another process on this host?

    Names end in ``-<host>-<pid>.warc.gz.open``: a file of ours whose pid still runs is left
    alone (another worker sharing the data dir), anything else is a crash leftover.
    """
    stem = path.name[: -len(".warc.gz" + OPEN_SUFFIX)]
    rest, _, pid = stem.rpartition("-")
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    return rest.endswith("-" + _safe_host(socket.gethostname())) and pid_alive(int(pid))


def leftover_open_files(directory: Path) -> list[Path]:
    """``.open`` WARCs under ``directory`` that no live process on this host is writing."""
    return [path for path in find_open_files(directory) if not _belongs_to_live_process(path)]


class ArchiveRecorder:
    def __init__(
        self,
        config: RecorderConfig,
        *,
        on_file_closed: Callable[[ClosedFile], None] | None = None,
    ) -> None:
        self.config = config
        self.on_file_closed = on_file_closed
        self.index = LiveIndex(config.index_path)
        self.manifest = Manifest(config.warc_dir, config.collection, config.signer)
        self.writer = WarcWriter(
            config.warc_dir,
            prefix=config.prefix,
            max_size=config.max_size,
            warcinfo=config.warcinfo,
            gzip_level=config.gzip_level,
            media_gzip_level=config.media_gzip_level,
            on_open=self._file_opened,
            on_close=self._file_closed,
        )
        self.records_written = 0
        self.bytes_written = 0
        self.revisits = 0
        self.files_closed: list[ClosedFile] = []

    # -- lifecycle --------------------------------------------------------------------------
    def repair_leftovers(self) -> list[RepairReport]:
        """Make ``warc_files`` and the captures agree with the WARCs on disk after a crash.

        * ``.open`` files a dead process left are cut after their last complete record, closed
          and re-indexed;
        * files closed on disk but still ``open`` in the index (a kill between the rename and
          the index update) are re-indexed and marked closed;
        * closed files the index does not know at all are indexed;
        * ``open`` rows whose file is gone (an empty shell removed by the repair) are dropped.

        Every report with ``records`` names a file whose rows were (re)written: the caller
        re-extracts posts from its captures, which a crash may have kept out of the index.
        """
        reports = [self._repair_open(path) for path in leftover_open_files(self.config.warc_dir)]
        reports += self._reconcile_rows()
        for rep in reports:
            if rep.kind != "repaired":
                logger.warning("Reconciled %s with the index after a crash: %s", rep.name, rep.kind)
        self._catch_up_manifest()
        return reports

    def _catch_up_manifest(self) -> None:
        """Give every closed WARC of the collection the manifest entry a crash kept from it.

        A kill between a file's rename and its manifest append, or a file the repair just
        closed, leaves a WARC the manifest does not list; it is hashed and appended here, with
        a note saying so. Files of live processes (``.open``) are not touched.
        """
        cfg = self.config
        if not cfg.warc_dir.exists():
            return
        listed = self.manifest.names()
        for path in sorted(cfg.warc_dir.glob("*" + WARC_SUFFIX)):
            if path.name in listed:
                continue
            row = self.index.db.execute(
                "SELECT records, crawl_id FROM warc_files WHERE name = ?", [path.name]).fetchone()
            facts = FileFacts(
                name=path.name, size=path.stat().st_size, sha256=file_sha256(path),
                records=int(row[0]) if row and row[0] is not None else 0,
                crawl_id=row[1] if row else None, time=utc_now_iso(),
                note="entered at crawl start: the file had no manifest entry (crash recovery)",
            )
            self.manifest.append(facts)
            logger.warning("Added %s to the manifest (closed without an entry)", path.name)

    def _repair_open(self, path: Path) -> RepairReport:
        result: RepairResult = repair_open_file(path)
        if result.records == 0:
            return RepairReport(path.name, 0, result.removed_bytes)
        note = (
            f"repaired after a crash: kept {result.records} records, "
            f"removed {result.removed_bytes} trailing bytes of an incomplete record"
        )
        self._reindex(result.path, "repaired", note)
        logger.warning("Repaired %s: %s", result.path.name, note)
        return RepairReport(result.path.name, result.records, result.removed_bytes)

    def _reconcile_rows(self) -> list[RepairReport]:
        cfg, db = self.config, self.index.db
        reports = []
        states = dict(db.execute("SELECT name, state FROM warc_files").fetchall())
        open_rows = [name for (name,) in db.execute(
            "SELECT name FROM warc_files WHERE collection = ? AND state = 'open'", [cfg.collection])]
        for name in open_rows:
            final, open_path = cfg.warc_dir / name, cfg.warc_dir / (name + OPEN_SUFFIX)
            if open_path.exists():
                continue  # another live process is writing it
            if final.exists():
                records = self._reindex(final, "closed", "re-indexed after a crash")
                reports.append(RepairReport(name, records, 0, "closed on disk, re-indexed"))
            else:
                self.index.run_write(lambda n=name: self._forget(n))
                reports.append(RepairReport(name, 0, 0, "gone from disk, forgotten"))
        if cfg.warc_dir.exists():
            for path in sorted(cfg.warc_dir.glob("*" + WARC_SUFFIX)):
                if path.name not in states:
                    records = self._reindex(path, "closed", "indexed after a crash")
                    reports.append(RepairReport(path.name, records, 0, "unknown to the index, indexed"))
        return reports

    def _forget(self, name: str) -> None:
        self.index.db.execute("DELETE FROM captures WHERE filename = ?", [name])
        self.index.db.execute("DELETE FROM warc_files WHERE name = ?", [name])

    def _reindex(self, path: Path, state: str, note: str) -> int:
        """Replace the rows of one file from the file itself; returns its record count."""
        cfg, db = self.config, self.index.db
        indexed = index_file(path, collection=cfg.collection)

        def work() -> None:
            store_file_rows(db, indexed, collection=cfg.collection, state=state,
                            crawl_id=indexed.warcinfo.get("socialark-crawl-id"))
            db.execute("UPDATE warc_files SET state = ?, note = ?,"
                       " closed_at = COALESCE(closed_at, ?) WHERE name = ?",
                       [state, note, utc_now_iso(), path.name])

        self.index.run_write(work)
        return indexed.records

    def sync(self) -> bool:
        """Make what is recorded durable: fdatasync the WARC, commit the buffered index rows.

        Runs before every frontier commit, so a URL is marked done only after its records
        (and the posts extracted from them) would survive a power loss. False when the index is
        busy: the caller keeps its done marks for the next try.
        """
        self.writer.sync()
        return self.index.try_flush()

    def close(self) -> None:
        """Close the WARC and commit the index; both are attempted even if the first fails."""
        try:
            self.writer.close()
        finally:
            self.index.flush()

    # -- writing ----------------------------------------------------------------------------
    def record_exchange(self, ex: HttpExchange) -> list[WrittenRecord]:
        cfg = self.config
        digester = Digester(cfg.algorithm)
        digester.update(ex.response_body)
        payload_digest = str(digester)
        original = None
        if cfg.dedup and len(ex.response_body) >= cfg.dedup_min_size and not ex.truncated:
            original = self.index.find_original(cfg.collection, payload_digest)
        main, request = build_records(
            ex, algorithm=cfg.algorithm, redact=cfg.redact, original=original,
            payload_digest=payload_digest,
        )
        written = self.writer.write([main, request])
        w = written[0]
        self.index.add(
            row_for_written(
                main, collection=cfg.collection, crawl_id=cfg.crawl_id, filename=w.filename,
                offset=w.offset, length=w.length, request=request,
            )
        )
        if original is not None:
            self.revisits += 1
        self._count(written)
        return written

    def record_resource(
        self, uri: str, content_type: str, data: bytes, extra: list[tuple[str, str]] | None = None,
        date: str | None = None,
    ) -> WrittenRecord:
        from datetime import UTC, datetime

        rec = resource_record(
            uri, date or warc_date(datetime.now(UTC)), content_type, data,
            algorithm=self.config.algorithm, extra=extra,
        )
        (w,) = self.writer.write([rec])
        self.index.add(
            row_for_written(
                rec, collection=self.config.collection, crawl_id=self.config.crawl_id,
                filename=w.filename, offset=w.offset, length=w.length,
            )
        )
        self._count([w])
        return w

    def _count(self, written: list[WrittenRecord]) -> None:
        self.records_written += len(written)
        self.bytes_written += sum(w.length for w in written)

    # -- file callbacks ---------------------------------------------------------------------
    def _file_opened(self, name: str, path: Path) -> None:
        self.index.file_opened(name, path, self.config.collection, self.config.crawl_id)

    def _file_closed(self, closed: ClosedFile) -> None:
        self.index.file_closed(closed)
        self.manifest.append(FileFacts(closed.name, closed.size, closed.sha256, closed.records,
                                       self.config.crawl_id, closed.closed_at))
        self.files_closed.append(closed)
        if self.on_file_closed:
            self.on_file_closed(closed)
