"""Item pipeline: posts, accounts, media and pages into the index (batched).

Reads ``ARCHIVE_INDEX_PATH`` and ``ARCHIVE_COLLECTION``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.crawler import Crawler

from storage.db import open_database
from storage.items_store import store_items


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

    def open_spider(self) -> None:
        self.db = open_database(self.index_path)

    def process_item(self, item: Any) -> Any:
        table = getattr(type(item), "table", None)
        if table is None or not dataclasses.is_dataclass(item):
            return item
        self.pending.append((table, ItemAdapter(item).asdict()))
        self.crawler.stats.inc_value(f"items/{table}")
        if len(self.pending) >= self.batch:
            self.flush()
        return item

    def flush(self) -> None:
        if self.pending and self.db is not None:
            items, self.pending = self.pending, []
            store_items(self.db, items, self.collection)

    def close_spider(self) -> None:
        self.flush()

    def spider_closed(self) -> None:
        self.flush()
