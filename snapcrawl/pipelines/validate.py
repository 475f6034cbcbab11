"""Validate every record against the contract's JSON Schema; never drop an invalid one silently.

jsonschema directly rather than spidermon's validation pipeline: spidermon either drops an
invalid item or adds a ``_validation`` field to it inside the export, and runs its own
validator draft; the contract wants the record kept, out of the clean files, in
``rejected.jsonl`` with its errors and page URL, validated with the schemas' own draft (2020-12).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastjsonschema import JsonSchemaException
from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.statscollectors import StatsCollector

from snapcrawl.exporters import article_written, count_link_records
from snapcrawl.items import ArticleItem, RejectedItem
from snapcrawl.schemas import SCHEMA_FILES, fast_validator, validator

logger = logging.getLogger(__name__)

#: the item class each record type's feed takes (FEEDS ``item_classes``); another class would be exported nowhere.
#: Link records are not items: the feeds write them from their article (snapcrawl/exporters.py).
FEED_CLASSES: dict[str, type] = {"article": ArticleItem}
MAX_ERRORS_KEPT = 20  # validation errors kept per rejected record
WARN_FIRST = 10  # rejected records logged at WARNING; the rest at DEBUG (all are counted and exported)


class ValidationPipeline:
    """Checks each record; an invalid one is replaced by a :class:`RejectedItem` (exported to
    ``rejected.jsonl`` with its errors and page URL) and counted.

    An article's link records are written from its ``related`` / ``more_in_category`` lists
    (snapcrawl/exporters.py), whose entries the article schema checks with the same
    definitions as the link schema; the fields a link record adds (``from_url``, ``list``,
    ``position``) come from the valid article. So validating the article validates its link
    records, and a rejected article keeps them inside its rejected record: every exported
    link's ``from_url`` is an exported article."""

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats
        self.validators: dict[str, Any] = {}
        self.fast: dict[str, Callable[[Any], Any]] = {}
        self.warned = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidationPipeline:
        if not crawler.settings.getbool("SNAPCRAWL_VALIDATE", True):
            raise NotConfigured("SNAPCRAWL_VALIDATE is off")
        assert crawler.stats is not None
        return cls(crawler.stats)

    def open_spider(self, spider: Any = None) -> None:
        self.validators = {t: validator(t) for t in SCHEMA_FILES}
        self.fast = {t: fast_validator(t) for t in SCHEMA_FILES}
        self.warned = 0

    def close_spider(self, spider: Any = None) -> None:
        if self.warned > WARN_FIRST:
            logger.warning("%d invalid records in all; only the first %d were logged", self.warned, WARN_FIRST)

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, RejectedItem):
            return item
        adapter = ItemAdapter(item)
        if article_written(item):
            # re-extracted after a crash, its article line already exported (validated then; the
            # dedup fields it carried are not recomputed): only its missing link records go out
            self.stats.inc_value("snapcrawl/exported/link", count_link_records(item, adapter))
            return item
        raw_type = adapter.get("type")
        record_type = raw_type if isinstance(raw_type, str) else repr(raw_type)
        data = adapter.asdict()
        page_url = data.get("from_url") if record_type == "link" else data.get("url")
        check = self.validators.get(record_type)
        feed_class = FEED_CLASSES.get(record_type)
        if record_type == "link":
            why = "type: link records are written from their article's lists, not yielded as items"
            return self.reject(record_type, page_url, [why], data)
        if check is None or feed_class is None:
            known = ", ".join(FEED_CLASSES)
            return self.reject(record_type, page_url, [f"type: {raw_type!r} is not a record type ({known})"], data)
        try:
            self.fast[record_type](data)
        except JsonSchemaException:
            pass  # invalid to the fast check: jsonschema below says why (and has the last word)
        else:
            return self.accept(item, adapter, record_type, feed_class)
        errors = sorted(check.iter_errors(data), key=lambda e: list(e.absolute_path))
        if not errors:
            self.stats.inc_value("snapcrawl/validate/fast_check_disagreed")
        messages = [f"{'/'.join(map(str, e.absolute_path)) or '(record)'}: {e.message}" for e in errors]
        if messages:
            return self.reject(record_type, page_url, messages, data)
        return self.accept(item, adapter, record_type, feed_class)

    def accept(self, item: Any, adapter: ItemAdapter, record_type: str, feed_class: type) -> Any:
        """A valid record goes on if a feed takes its class; counted with the link records it carries."""
        if not isinstance(item, feed_class):
            why = f"(record): a {type(item).__name__}, not {feed_class.__name__}: no feed takes it"
            return self.reject(record_type, adapter.get("url"), [why], adapter.asdict())
        self.stats.inc_value(f"snapcrawl/exported/{record_type}")
        if record_type == "article":
            self.stats.inc_value("snapcrawl/exported/link", count_link_records(item, adapter))
        return item

    def reject(self, record_type: str | None, page_url: str | None, messages: list[str], data: dict[str, Any]) -> Any:
        """The RejectedItem for an invalid record, counted; logged at WARNING for the first few
        invalid records, then at DEBUG."""
        self.stats.inc_value("snapcrawl/rejected")
        self.stats.inc_value(f"snapcrawl/rejected/{record_type}")
        self.warned += 1
        level = logging.WARNING if self.warned <= WARN_FIRST else logging.DEBUG
        logger.log(level, "invalid %s record from %s rejected: %s", record_type, page_url, "; ".join(messages[:3]))
        kept = messages[:MAX_ERRORS_KEPT]
        if len(messages) > MAX_ERRORS_KEPT:
            kept.append(f"... and {len(messages) - MAX_ERRORS_KEPT} more")
        return RejectedItem(record_type=record_type, page_url=page_url, errors=kept, record=data)
