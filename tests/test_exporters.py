"""Link records written from their article: order, content, and what a crash recovery skips."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace
from typing import Any

from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from snapcrawl.exporters import SnapshotRecordsExporter, article_written, count_link_records, mark_written
from snapcrawl.extensions.journal import CrawlJournal
from snapcrawl.items import ArticleItem, RejectedItem

URL = "http://a.test/keji/1.html"


def article() -> ArticleItem:
    return ArticleItem(
        url=URL,
        title="标题",
        related=[
            {"title": "甲", "url": "http://a.test/2.html", "snippet": "...甲...", "published_at": None},
            {
                "title": None,
                "url": "http://b.test/3.html",
                "snippet": "乙...",
                "published_at": "2024-09-24T15:46:00+08:00",
            },
        ],
        more_in_category=[{"title": "丙", "url": "http://a.test/4.html", "snippet": None, "published_at": None}],
    )


def export(item: Any, **options: bool) -> list[dict[str, Any]]:
    buf = io.BytesIO()
    exporter = SnapshotRecordsExporter(buf, encoding="utf-8", **options)
    exporter.start_exporting()
    exporter.export_item(item)
    exporter.finish_exporting()
    text = buf.getvalue().decode("utf-8")
    assert "\\u" not in text  # CJK unescaped
    return [json.loads(line) for line in text.splitlines()]


def test_links_precede_their_article_with_the_contract_fields() -> None:
    records = export(article())
    assert [r["type"] for r in records] == ["link", "link", "link", "article"]
    assert records[0] == {
        "type": "link",
        "schema_version": 1,
        "from_url": URL,
        "list": "related",
        "position": 0,
        "title": "甲",
        "url": "http://a.test/2.html",
        "snippet": "...甲...",
        "published_at": None,
    }
    assert (records[1]["list"], records[1]["position"], records[1]["title"]) == ("related", 1, None)
    assert (records[2]["list"], records[2]["position"], records[2]["url"]) == (
        "more_in_category",
        0,
        "http://a.test/4.html",
    )
    assert records[3]["url"] == URL and len(records[3]["related"]) == 2


def test_feed_options_split_articles_and_links() -> None:
    assert [r["type"] for r in export(article(), articles=False)] == ["link"] * 3
    assert [r["type"] for r in export(article(), links=False)] == ["article"]
    rejected = RejectedItem(record_type="article", page_url=URL, errors=["x"], record={"url": URL})
    assert export(rejected, articles=False) == []  # a rejected article's links stay inside its record
    assert [r["type"] for r in export(rejected)] == ["rejected"]


def test_marked_records_are_not_written_again() -> None:
    item = article()
    mark_written(item, article=False, links={("related", 0)})
    assert [(r["type"], r.get("list"), r.get("position")) for r in export(item)] == [
        ("link", "related", 1),
        ("link", "more_in_category", 0),
        ("article", None, None),
    ]
    assert count_link_records(item) == 2
    mark_written(item, article=True, links={("related", 0), ("related", 1)})
    assert [(r["type"], r["list"]) for r in export(item)] == [("link", "more_in_category")]


def _journal(skip: set[tuple[Any, ...]]) -> Any:
    crawler = get_crawler()
    return SimpleNamespace(skip=skip, crawler=SimpleNamespace(stats=MemoryStatsCollector(crawler)))


def test_journal_skips_what_the_feeds_hold_after_a_kill() -> None:
    links = {("link", URL, "related", 0), ("link", URL, "related", 1), ("link", URL, "more_in_category", 0)}
    # everything written: the re-fetched page's article is dropped
    journal = _journal({("article", URL), *links})
    assert CrawlJournal.already_exported(journal, article()) is True
    assert journal.skip == set()
    assert journal.crawler.stats.get_value("snapcrawl/journal/skipped_exported") == 4
    # links written before the kill, article not (plain files): only the article goes out
    journal = _journal(set(links))
    item = article()
    assert CrawlJournal.already_exported(journal, item) is False
    assert not article_written(item) and [r["type"] for r in export(item)] == ["article"]
    # compressed feeds are cut independently: article there, one link missing
    journal = _journal({("article", URL), ("link", URL, "related", 0), ("link", URL, "more_in_category", 0)})
    item = article()
    assert CrawlJournal.already_exported(journal, item) is False
    assert article_written(item)
    assert [(r["type"], r["list"], r["position"]) for r in export(item)] == [("link", "related", 1)]
    # nothing of it written: untouched
    journal = _journal({("article", "http://a.test/other.html")})
    item = article()
    assert CrawlJournal.already_exported(journal, item) is False
    assert not article_written(item) and count_link_records(item) == 3
