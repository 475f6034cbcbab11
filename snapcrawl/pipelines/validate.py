"""Validate every record against the contract's JSON Schema; never drop an invalid one silently."""

from __future__ import annotations

import logging
from typing import Any

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.statscollectors import StatsCollector

from snapcrawl.items import RejectedItem
from snapcrawl.schemas import SCHEMA_FILES, validator

logger = logging.getLogger(__name__)


class ValidationPipeline:
    """Checks each article/link record; an invalid one is replaced by a :class:`RejectedItem`
    (exported to ``rejected.jsonl`` with its errors and page URL) and counted."""

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats
        self.validators: dict[str, Any] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidationPipeline:
        if not crawler.settings.getbool("SNAPCRAWL_VALIDATE", True):
            raise NotConfigured("SNAPCRAWL_VALIDATE is off")
        assert crawler.stats is not None
        return cls(crawler.stats)

    def open_spider(self, spider: Any = None) -> None:
        self.validators = {t: validator(t) for t in SCHEMA_FILES}

    def process_item(self, item: Any, spider: Any = None) -> Any:
        adapter = ItemAdapter(item)
        record_type = adapter.get("type")
        check = self.validators.get(record_type or "")
        if check is None:
            return item
        data = adapter.asdict()
        errors = sorted(check.iter_errors(data), key=lambda e: list(e.absolute_path))
        if not errors:
            self.stats.inc_value(f"snapcrawl/exported/{record_type}")
            return item
        messages = [f"{'/'.join(map(str, e.absolute_path)) or '(record)'}: {e.message}" for e in errors[:20]]
        page_url = data.get("url") if record_type == "article" else data.get("from_url")
        self.stats.inc_value("snapcrawl/rejected")
        self.stats.inc_value(f"snapcrawl/rejected/{record_type}")
        logger.warning("invalid %s record from %s rejected: %s", record_type, page_url, "; ".join(messages[:3]))
        return RejectedItem(record_type=record_type, page_url=page_url, errors=messages, record=data)
