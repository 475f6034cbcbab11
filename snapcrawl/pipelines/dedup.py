"""Content-level deduplication: every article gets ``content_hash`` and ``cluster_id``;
a copy of an earlier article gets ``duplicate_of``."""

from __future__ import annotations

import logging
from typing import Any

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector

from snapcrawl.processors import content_hash, record_id

logger = logging.getLogger(__name__)


class DedupPipeline:
    """Exact duplicates by content hash of the normalised title + body (first seen wins)."""

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats
        self.by_hash: dict[str, tuple[str, str]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupPipeline:
        assert crawler.stats is not None
        return cls(crawler.stats)

    def process_item(self, item: Any, spider: Any = None) -> Any:
        adapter = ItemAdapter(item)
        if adapter.get("type") != "article":
            return item
        url = adapter["url"]
        own_id = adapter.get("id") or record_id(url)
        adapter["id"] = own_id
        digest = content_hash(adapter.get("title"), adapter.get("body"))
        adapter["content_hash"] = digest
        first = self.by_hash.get(digest)
        if first is None or first[1] == url:
            self.by_hash[digest] = (own_id, url)
            adapter["cluster_id"] = own_id
            adapter["duplicate_of"] = None
        else:
            adapter["cluster_id"], adapter["duplicate_of"] = first
            adapter["duplicate_kind"] = "exact"
            self.stats.inc_value("snapcrawl/dedup/exact")
        return item
