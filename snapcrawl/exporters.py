"""JSON-lines exporter that writes link records from the articles that carry them.

An article item already holds its ``related`` and ``more_in_category`` lists; the links
export (``links.jsonl``, contract: "link") is one record per entry of those lists plus
``from_url``, ``list`` and ``position``. The spider yields only the article, and this
exporter expands it at the feed. Why not one Scrapy item per link record: an article page
has ~18 entries, and each item costs a trip through the spider middlewares, an asyncio task,
every pipeline, the ``item_scraped`` signal and each feed's filter, about two thirds of a
bare Scrapy crawl's cost per page (benchmarks/README.md). Expanding at the feed also means
a rejected or withheld article takes its links with it, with no ordering rule between items.

Write order is part of the crash-safety contract of the crawl journal
(:mod:`snapcrawl.extensions.journal`): an article's link records are written *before* the
article, in the same file (``-O all.jsonl``) and across files (the links feed comes first in
FEEDS and is flushed after each article), so a feed that has an article has all its links.
After a kill the journal skips what the feeds hold: an article whose line and links are all
there is dropped; otherwise (link records written before their article was, or compressed
feeds, whose files are cut wherever each compressor last wrote) it marks on the item what not
to write again (:func:`mark_written`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from itemadapter import ItemAdapter
from scrapy.exporters import JsonItemExporter, JsonLinesItemExporter
from scrapy.extensions.postprocessing import PostProcessingManager

from snapcrawl.items import SCHEMA_VERSION

#: The article fields holding link lists, in export order; the link record's ``list`` value.
LINK_LISTS = ("related", "more_in_category")
_WRITTEN = "_snapcrawl_written"  # instance attribute, invisible to ItemAdapter and exporters


@dataclass(frozen=True)
class Written:
    """What of an article's records the feeds already hold (crash recovery, set by the journal)."""

    article: bool = False
    links: frozenset[tuple[str, int]] = frozenset()


NOTHING_WRITTEN = Written()


def mark_written(item: Any, article: bool, links: set[tuple[str, int]]) -> None:
    """Note on ``item`` that its article line (``article``) and the (list, position) link
    records in ``links`` are in the feeds already, so they are not written again."""
    # snapcrawl's articles are dataclass instances; a dict item cannot carry the mark (its
    # records would be written again after a crash)
    with contextlib.suppress(AttributeError):
        setattr(item, _WRITTEN, Written(article, frozenset(links)))


def written(item: Any) -> Written:
    return getattr(item, _WRITTEN, NOTHING_WRITTEN)


def written_links(item: Any) -> frozenset[tuple[str, int]]:
    return written(item).links


def article_written(item: Any) -> bool:
    """True for an article re-extracted after a crash whose own line reached the feeds before it."""
    return written(item).article


def link_positions(article: Mapping[str, Any]) -> Iterator[tuple[str, int]]:
    """(list, position) of every link record an article produces."""
    for name in LINK_LISTS:
        entries = article.get(name)
        if isinstance(entries, list):
            for pos in range(len(entries)):
                yield name, pos


def link_records(item: Any, adapter: ItemAdapter | None = None) -> Iterator[dict[str, Any]]:
    """The link records of an article item (none for other records), minus those already written."""
    adapter = adapter if adapter is not None else ItemAdapter(item)
    if adapter.get("type") != "article":
        return
    skip = written_links(item)
    from_url = adapter.get("url")
    for name in LINK_LISTS:
        entries = adapter.get(name)
        if not isinstance(entries, list):
            continue
        for pos, entry in enumerate(entries):
            if (name, pos) in skip:
                continue
            record: dict[str, Any] = {
                "type": "link",
                "schema_version": SCHEMA_VERSION,
                "from_url": from_url,
                "list": name,
                "position": pos,
            }
            if isinstance(entry, Mapping):
                record.update(entry)
            yield record


def count_link_records(item: Any, adapter: ItemAdapter | None = None) -> int:
    """How many link records :func:`link_records` writes for ``item``, without building them."""
    adapter = adapter if adapter is not None else ItemAdapter(item)
    if adapter.get("type") != "article":
        return 0
    return sum(1 for _ in link_positions(adapter)) - len(written_links(item))


class SnapshotRecordsExporter(JsonLinesItemExporter):
    """JSON lines; an article also writes its link records, right before itself.

    Feed options (``item_export_kwargs``): ``articles`` (default true) writes the items
    themselves, ``links`` (default true) writes the link records of articles. snapcrawl's own
    feeds use ``articles.jsonl`` = articles only and ``links.jsonl`` = links only; an operator's
    ``-O all.jsonl`` gets both, every record with its ``type``.
    """

    def __init__(self, file: Any, *, articles: bool = True, links: bool = True, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.write_items = articles
        self.write_links = links
        # A plain file is flushed after an article's links (see the module docstring); a
        # compression plugin's buffer cannot be flushed mid-stream, and such feeds are only
        # trusted once closed by the journal anyway.
        self.flush_links = links and not articles and not isinstance(file, PostProcessingManager)

    def export_item(self, item: Any) -> None:
        adapter = ItemAdapter(item)
        lines: list[str] = []
        if self.write_links:
            encode = self.encoder.encode
            lines.extend(encode(record) + "\n" for record in link_records(item, adapter))
        if self.write_items and not article_written(item):
            lines.append(self.encoder.encode(dict(self.get_serialized_fields(item))) + "\n")
        if not lines:
            return
        self.file.write("".join(lines).encode(self.encoding or "utf-8"))
        if self.flush_links:
            self.file.flush()


class SnapshotRecordsJsonExporter(JsonItemExporter):
    """``-O all.json`` (one JSON array): each article preceded by its link records, as above.

    CSV and XML feeds keep Scrapy's exporters: their rows have one shape, so a mixed feed of
    articles and link records would not fit them; they export the records the spider yields.
    """

    def export_item(self, item: Any) -> None:
        for record in link_records(item):
            super().export_item(record)
        if not article_written(item):
            super().export_item(item)
