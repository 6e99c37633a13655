"""Item pipeline: posts, accounts, media and pages into the index.

With WARC capture on (every real crawl), items go to the capture's ``LiveIndex`` and are
committed in the same transaction as the captures they come from, on the same triggers (a full
batch, a timer, every frontier commit): a URL is never marked done while its posts wait in
memory, and a kill -9 loses no post whose capture the index has. Without WARC capture they are
written here in batches of ``batch`` items (and at close).

Reads ``ARCHIVE_INDEX_PATH`` and ``ARCHIVE_COLLECTION``.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from typing import Any

from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.crawler import Crawler

from crawler.write_failure import report_write_failure
from storage.db import open_database
from storage.errors import ArchiveWriteError
from storage.items_store import store_items

logger = logging.getLogger(__name__)


class IndexPipeline:
    def __init__(self, crawler: Crawler, index_path: str, collection: str, batch: int = 200) -> None:
        self.crawler = crawler
        self.index_path = index_path
        self.collection = collection
        self.batch = batch
        self.pending: list[tuple[str, dict[str, Any]]] = []
        self.db: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IndexPipeline:
        s = crawler.settings
        pipe = cls(crawler, s.get("ARCHIVE_INDEX_PATH"), s.get("ARCHIVE_COLLECTION") or "default")
        crawler.signals.connect(pipe.spider_closed, signal=signals.spider_closed)
        return pipe

    def _capture(self) -> Any:
        """The WARC extension when it is recording (its index takes the items), else None."""
        from crawler.extensions.warc import WarcCaptureExtension

        ext = self.crawler.get_extension(WarcCaptureExtension)
        return ext if ext is not None and ext.recorder is not None else None

    def process_item(self, item: Any) -> Any:
        table = getattr(type(item), "table", None)
        if table is None or not dataclasses.is_dataclass(item):
            return item
        self.crawler.stats.inc_value(f"items/{table}")
        pair = (table, ItemAdapter(item).asdict())
        capture = self._capture()
        if capture is not None:
            capture.add_items([pair])
            return item
        self.pending.append(pair)
        if len(self.pending) >= self.batch:
            self.flush()
        return item

    def flush(self) -> None:
        if not self.pending:
            return
        try:
            if self.db is None:
                self.db = open_database(self.index_path)
            store_items(self.db, self.pending, self.collection)
        except sqlite3.Error as exc:
            report_write_failure(self.crawler, ArchiveWriteError(self.index_path, exc))
            return
        self.pending = []

    def close_spider(self) -> None:
        self.flush()

    def spider_closed(self) -> None:
        self.flush()
