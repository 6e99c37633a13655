"""MirrorExtension: upload every WARC to S3-compatible storage as soon as it closes.

Hooks ``crawler.signals.warc_file_closed`` (queues the file; never blocks the reactor) and
``spider_closed`` (async: waits for pending uploads with a progress line, then logs a summary).
One background thread uploads and verifies files one at a time (multipart parts in parallel)
through :class:`storage.mirror.Mirror`, with retries and backoff. If the store is down the crawl
goes on; each failed file is logged once and left for ``socialark mirror``.

Settings read:

* ``ARCHIVE_MIRROR_URL`` (``s3://BUCKET/PREFIX``; unset: extension disabled)
* ``ARCHIVE_MIRROR_ENDPOINT_URL`` (else Scrapy's ``AWS_ENDPOINT_URL``, else boto3's chain)
* ``ARCHIVE_INDEX_PATH`` (index.db; where verification is recorded)
* ``ARCHIVE_MIRROR_RETRIES`` (4), ``ARCHIVE_MIRROR_BACKOFF`` (1.0 s, doubling, max 30 s)
* ``ARCHIVE_MIRROR_PART_SIZE`` / ``ARCHIVE_MIRROR_MULTIPART_THRESHOLD`` (8 MiB),
  ``ARCHIVE_MIRROR_CONCURRENCY`` (8 parts in flight)
* ``ARCHIVE_MIRROR_HEADERS`` (dict of extra headers, e.g. ``x-archive-meta-*`` for the IA)
* Scrapy's ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
  ``AWS_REGION_NAME`` when set (otherwise boto3's standard chain: env, profile, files).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Self

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import sleep

from crawler.signals import warc_file_closed
from storage._s3 import MirrorConfigError, S3Target, make_client
from storage.mirror import FileResult, Mirror

if TYPE_CHECKING:
    from pathlib import Path

    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

_STOP = object()


class MirrorExtension:
    def __init__(
        self, target: S3Target, stats: StatsCollector, *, index_path: str | None,
        client_kwargs: dict[str, Any], mirror_kwargs: dict[str, Any],
        progress_interval: float = 5.0,
    ) -> None:
        self.target = target
        self.stats = stats
        self.index_path = index_path
        self.client_kwargs = client_kwargs
        self.mirror_kwargs = mirror_kwargs
        self.progress_interval = progress_interval
        self.queue: queue.Queue[Any] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.queued = 0
        self.results: list[FileResult] = []
        self.config_error: str | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        s = crawler.settings
        url = s.get("ARCHIVE_MIRROR_URL")
        if not url:
            raise NotConfigured("ARCHIVE_MIRROR_URL is not set")
        target = S3Target.parse(url)  # a bad URL is a user error: fail the crawl loudly
        credentials = {
            arg: s.get(name) for arg, name in (
                ("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
                ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                ("aws_session_token", "AWS_SESSION_TOKEN"),
            ) if s.get(name)
        }
        client_kwargs = {
            "endpoint_url": s.get("ARCHIVE_MIRROR_ENDPOINT_URL") or s.get("AWS_ENDPOINT_URL"),
            "region_name": s.get("AWS_REGION_NAME"),
            "credentials": credentials or None,
        }
        mirror_kwargs = {
            "retries": s.getint("ARCHIVE_MIRROR_RETRIES", 4),
            "backoff": s.getfloat("ARCHIVE_MIRROR_BACKOFF", 1.0),
            "part_size": s.getint("ARCHIVE_MIRROR_PART_SIZE", 8 * 1024 * 1024),
            "multipart_threshold": s.getint("ARCHIVE_MIRROR_MULTIPART_THRESHOLD", 8 * 1024 * 1024),
            "concurrency": s.getint("ARCHIVE_MIRROR_CONCURRENCY", 8),
            "extra_headers": s.getdict("ARCHIVE_MIRROR_HEADERS") or None,
            "file_workers": 1,
        }
        ext = cls(target, crawler.stats, index_path=s.get("ARCHIVE_INDEX_PATH"),
                  client_kwargs=client_kwargs, mirror_kwargs=mirror_kwargs)
        crawler.signals.connect(ext.file_closed, signal=warc_file_closed)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    # -- reactor thread -------------------------------------------------------------------

    def file_closed(self, path: Path, name: str, collection: str, size: int, sha256: str,
                    **_: Any) -> None:
        """Queue the file for the uploader thread (returns at once)."""
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="socialark-mirror", daemon=True)
            self.thread.start()
        with self.lock:
            self.queued += 1
        self.queue.put({"name": name, "collection": collection, "path": str(path),
                        "size": size, "sha256": sha256, "state": "closed"})

    async def spider_closed(self, reason: str) -> None:
        """Wait for pending uploads (progress line every few seconds), then log a summary."""
        if self.thread is not None:
            self.queue.put(_STOP)
            last = time.monotonic()
            while self.thread.is_alive():
                await sleep(0.1)
                if time.monotonic() - last >= self.progress_interval:
                    last = time.monotonic()
                    with self.lock:
                        done = len(self.results)
                    logger.info("mirror: waiting for uploads to %s: %d of %d files done",
                                self.target.url, done, self.queued)
        self._summarise()

    def _summarise(self) -> None:
        ok = [r for r in self.results if r.ok]
        failed = [r for r in self.results if not r.ok]
        self.stats.set_value("mirror/uploaded", len(ok))
        self.stats.set_value("mirror/failed", len(failed))
        self.stats.set_value("mirror/bytes", sum(r.bytes_sent for r in ok))
        if not self.results:
            return
        logger.info("mirror: %d of %d WARC files verified in %s (%d bytes sent)",
                    len(ok), len(self.results), self.target.url, sum(r.bytes_sent for r in ok))
        if failed:
            logger.warning("mirror: %d files not mirrored; run `socialark mirror %s` to finish",
                           len(failed), self.target.url)

    # -- uploader thread ------------------------------------------------------------------

    def _run(self) -> None:
        mirror: Mirror | None = None
        db = None
        while (row := self.queue.get()) is not _STOP:
            try:
                if mirror is None and self.config_error is None:
                    mirror, db = self._make_mirror()
                result = self._upload(mirror, row)
            except Exception as exc:  # never let the uploader die silently
                logger.exception("mirror: unexpected error for %s", row["name"])
                result = FileResult(row["name"], "", row["size"], "failed", error=repr(exc))
            with self.lock:
                self.results.append(result)
        if db is not None:
            db.conn.close()

    def _make_mirror(self) -> tuple[Mirror | None, Any]:
        try:
            db = None
            if self.index_path:
                from storage.db import open_database

                db = open_database(self.index_path)
            client = make_client(**self.client_kwargs)
            return Mirror(self.target, client, db=db, **self.mirror_kwargs), db
        except MirrorConfigError as exc:
            self._disable(str(exc))
            return None, None

    def _upload(self, mirror: Mirror | None, row: dict[str, Any]) -> FileResult:
        if mirror is None or self.config_error:
            return FileResult(row["name"], "", row["size"], "failed", error=self.config_error)
        try:
            result = mirror.upload(row)
        except MirrorConfigError as exc:
            self._disable(str(exc))
            return FileResult(row["name"], "", row["size"], "failed", error=str(exc))
        if result.ok:
            logger.info("mirror: %s verified in %s (%s)", row["name"], self.target.url,
                        f"multipart, {result.parts} parts" if result.multipart else "single part")
            mirror.retries = self.mirror_kwargs["retries"]
        else:
            logger.warning("mirror: %s not mirrored: %s (left for `socialark mirror`)",
                           row["name"], result.error)
            # The store is failing: don't spend the full backoff on every following file too.
            mirror.retries = 0
        return result

    def _disable(self, message: str) -> None:
        """Credentials/bucket errors: one clear message, then every file stays unmirrored."""
        if self.config_error is None:
            self.config_error = message
            logger.error("mirror to %s disabled: %s. The crawl goes on; fix it and run "
                         "`socialark mirror %s`", self.target.url, message, self.target.url)
