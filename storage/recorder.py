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

from storage.exchange import DEFAULT_REDACT, HttpExchange, build_records, resource_record
from storage.index import LiveIndex, store_file_rows
from storage.indexer import index_file, row_for_written
from storage.records import Digester, warc_date
from storage.warc import (
    DEFAULT_MAX_SIZE,
    OPEN_SUFFIX,
    ClosedFile,
    RepairResult,
    WarcWriter,
    WrittenRecord,
    _safe_host,
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _belongs_to_live_process(path: Path) -> bool:
    """Is this ``.open`` file being written right now by another process on this host?

    Names end in ``-<host>-<pid>.warc.gz.open``: a file of ours whose pid still runs is left
    alone (another worker sharing the data dir), anything else is a crash leftover.
    """
    stem = path.name[: -len(".warc.gz" + OPEN_SUFFIX)]
    rest, _, pid = stem.rpartition("-")
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    return rest.endswith("-" + _safe_host(socket.gethostname())) and _pid_alive(int(pid))


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
        """Close and index any ``.open`` WARC a crashed run left in this collection."""
        reports = []
        for path in find_open_files(self.config.warc_dir):
            if _belongs_to_live_process(path):
                continue
            result: RepairResult = repair_open_file(path)
            if result.records == 0:
                reports.append(RepairReport(path.name, 0, result.removed_bytes))
                continue
            indexed = index_file(result.path, collection=self.config.collection)
            store_file_rows(
                self.index.db, indexed, collection=self.config.collection,
                state="repaired", crawl_id=indexed.warcinfo.get("socialark-crawl-id"),
            )
            note = (
                f"repaired after a crash: kept {result.records} records, "
                f"removed {result.removed_bytes} trailing bytes of an incomplete record"
            )
            self.index.db["warc_files"].update(result.path.name, {"note": note})
            self.index.db.conn.commit()
            reports.append(RepairReport(result.path.name, result.records, result.removed_bytes))
            logger.warning("Repaired %s: %s", result.path.name, note)
        return reports

    def close(self) -> None:
        self.writer.close()
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
        self.files_closed.append(closed)
        if self.on_file_closed:
            self.on_file_closed(closed)
