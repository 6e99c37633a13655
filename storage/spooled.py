"""Archiving an exchange whose response body was spooled to disk (``storage.spool``).

Split in three steps so the caller can run each where it belongs:

1. ``plan_spooled`` (the thread that owns the index): dedup lookup, records built with the
   digests taken while the body arrived;
2. ``write_spooled`` (a worker thread, with a ``StreamingWarcWriter`` of its own): the response
   record streamed from the spool file, then its request record; a revisit (no payload) is small
   and goes to the recorder's main writer instead, from the index thread;
3. ``index_spooled`` (the index thread again): index rows and counters.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from storage.exchange import HttpExchange, build_records, normalize_response_head
from storage.indexer import row_for_written
from storage.recorder import ArchiveRecorder
from storage.records import Record
from storage.spool import SpooledBody
from storage.warc import WrittenRecord
from storage.warc_stream import StreamedRecord, StreamingWarcWriter, block_digest_of


@dataclass
class SpooledPlan:
    main: Record
    request: Record
    streamed: StreamedRecord | None  # None: a revisit, written without its payload
    algorithm: str
    digest_stale: bool = False

    @property
    def is_revisit(self) -> bool:
        return self.streamed is None


def plan_spooled(recorder: ArchiveRecorder, ex: HttpExchange, body: SpooledBody) -> SpooledPlan:
    """Records for ``ex`` whose body is ``body`` (``ex.response_body`` is ignored)."""
    cfg = recorder.config
    if body.truncated:
        ex = replace(ex, truncated="length")
    ex = replace(ex, response_body=b"", body_decoded=False)
    original = None
    if cfg.dedup and body.length >= cfg.dedup_min_size and not ex.truncated:
        original = recorder.index.find_original(cfg.collection, body.payload_digest)
    main, request = build_records(
        ex, algorithm=cfg.algorithm, redact=cfg.redact, original=original,
        payload_digest=body.payload_digest,
    )
    if original is not None:
        return SpooledPlan(main, request, None, cfg.algorithm)
    head = normalize_response_head(ex.response_head, b"", body_decoded=False).to_bytes()
    # build_records digested an empty body: put in the digest of head + spooled body.
    fields = [(k, v) for k, v in main.fields if k != "WARC-Block-Digest"]
    fields.append(("WARC-Block-Digest", body.block_digest))
    main = replace(main, block=head, fields=fields)
    streamed = StreamedRecord(main, body.path, body.length)
    return SpooledPlan(main, request, streamed, cfg.algorithm, digest_stale=head != body.block_prefix)


def write_spooled(writer: StreamingWarcWriter, plan: SpooledPlan) -> list[WrittenRecord]:
    """Stream the response record and write its request record (call from a worker thread)."""
    assert plan.streamed is not None
    streamed = plan.streamed
    if plan.digest_stale:
        # The head the digest was started with is not the one stored: digest again from disk.
        fields = [(k, v) for k, v in streamed.record.fields if k != "WARC-Block-Digest"]
        fields.append(("WARC-Block-Digest", block_digest_of(streamed, plan.algorithm)))
        streamed = replace(streamed, record=replace(streamed.record, fields=fields))
        plan.main = streamed.record
    written = writer.write_streamed(streamed, [plan.request])
    # Durable before the response reaches its callback, so the frontier's done mark (committed
    # later on the reactor) never stands for bytes a power loss could take: one fdatasync per
    # large record costs nothing next to writing it.
    writer.sync()
    return written


def write_revisit(recorder: ArchiveRecorder, plan: SpooledPlan) -> list[WrittenRecord]:
    return recorder.writer.write([plan.main, plan.request])


def index_spooled(
    recorder: ArchiveRecorder, plan: SpooledPlan, written: list[WrittenRecord]
) -> None:
    """Index row for the response/revisit record, counters (call from the index thread)."""
    cfg = recorder.config
    w = written[0]
    recorder.index.add(
        row_for_written(
            w.record, collection=cfg.collection, crawl_id=cfg.crawl_id, filename=w.filename,
            offset=w.offset, length=w.length, request=plan.request,
        )
    )
    if plan.is_revisit:
        recorder.revisits += 1
    recorder._count(written)
