"""report.json and the end-of-run summary agree with the files; the log is quiet; the progress line."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from snapcrawl.extensions.report import ALL_FILL_FIELDS, RunReport, summary, uncounted_spider_exceptions
from snapcrawl.sample.server import SampleServer
from snapcrawl.sample.site import Site
from tests.conftest import CrawlResult, SlowServer, run_crawl


def _fill(articles: list[dict[str, Any]]) -> dict[str, float | None]:
    """Fill rates recomputed from the exported lines: a field counts when its value is non-empty."""

    def value(a: dict[str, Any], field: str) -> Any:
        if field.startswith("snapshot."):
            return a["snapshot"].get(field.split(".", 1)[1])
        return a.get(field)

    n = len(articles)
    return {f: round(sum(1 for a in articles if value(a, f)) / n, 4) if n else None for f in ALL_FILL_FIELDS}


def test_report_figures_equal_the_files(full_crawl: tuple[CrawlResult, SampleServer], site: Site) -> None:
    result, srv = full_crawl
    report = result.report()
    articles, links, rejected = (result.records(n) for n in ("articles", "links", "rejected"))
    run_dir = result.run_dir

    assert report["run_id"] == run_dir.name and report["finish_reason"] == "finished"
    assert report["files"] == sorted(p.name for p in run_dir.iterdir())
    # records: line counts of the published files
    rec = report["records"]
    assert (rec["articles"], rec["links"], rec["rejected"]) == (len(articles), len(links), len(rejected))
    assert rec["articles"] == len(site.article_paths())
    assert rec["rejected_by_type"] == dict(Counter(r["record_type"] for r in rejected))
    # duplicates by kind: exported ones are what the articles file says; dedup's own counts include them
    kinds = Counter(a["duplicate_kind"] for a in articles if a.get("duplicate_kind"))
    assert report["duplicates_exported"] == dict(kinds)
    assert sum(1 for a in articles if a["duplicate_of"]) == sum(report["duplicates_exported"].values())
    assert all(report["duplicates"][k] >= n for k, n in kinds.items())
    assert report["duplicates"]["near"] == len(site.near_duplicate_pairs()) == kinds["near"]
    # fill rates, overall and per site, recomputed from the lines
    assert report["fill_rate"] == _fill(articles)
    assert report["fill_rate"]["published_at"] == 1.0 and report["fill_rate"]["reposted_from"] < 0.5
    assert report["fill_rate_by_site"] == {"127.0.0.1": {"articles": len(articles), "fill_rate": _fill(articles)}}
    # pages: responses by status add up; with the retries they are every request the server answered
    pages = report["pages"]
    served = Counter(str(status) for method, _, status in srv.request_log if method == "GET")
    assert sum(pages["by_status"].values()) == pages["fetched"]
    assert pages["fetched"] + pages["retried"] == sum(served.values())
    assert pages["by_status"]["404"] == served["404"] == 1
    assert pages["by_status"]["200"] == served["200"]
    assert pages["by_status"]["500"] == 1 and served["500"] == 1 + pages["retried"]
    assert pages["article"] == len(site.article_paths())
    assert pages["listing"] == len(site.listing_paths()) + 2  # + the home and subscribe pages
    # errors: the failed pages, by type, and the rate the monitor uses
    errors = report["errors"]
    assert errors["by_type"] == dict(Counter(f["error"] for f in errors["failed_pages"]))
    assert errors["total"] == pages["failed"] == len(site.broken_paths())
    assert errors["rate"] == round(errors["total"] / pages["fetched"], 4)
    # (duration_s is rounded to the millisecond, which on a 1.5 s crawl moves the rate by ~1/min)
    assert pages["pages_per_min"] == pytest.approx(pages["fetched"] / report["duration_s"] * 60, rel=2e-3)
    # the whole Scrapy stats dump is kept here instead of in the log
    stats = report["scrapy_stats"]
    assert stats["response_received_count"] == pages["fetched"]
    assert stats["snapcrawl/exported/article"] == len(articles)


def test_summary_is_logged_with_the_same_figures(full_crawl: tuple[CrawlResult, SampleServer]) -> None:
    result, _ = full_crawl
    report = result.report()
    text = summary(report)
    assert text in result.stderr
    p = report["pages"]
    assert (
        f"{p['fetched']} pages ({p['pages_per_min']:.0f}/min; 200: {p['by_status']['200']}, 404: 1, 500: 1), "
        f"{p['article']} articles, {p['listing']} listings, 3 failed" in text
    )
    assert f"records: {report['records']['articles']} articles, {report['records']['links']} links, 0 rejected" in text
    assert f"errors: 3 ({3 / p['fetched']:.1%} of pages): empty_page 1, http_404 1, http_500 1" in text
    assert "fill rates under 90%: reposted_from 34%, snapshot.original_url 66%" in text
    assert "monitors: 3 passed, 2 skipped, none failed" in text


def test_default_log_level_is_quiet(full_crawl: tuple[CrawlResult, SampleServer]) -> None:
    result, _ = full_crawl
    err = result.stderr
    for noise in (
        "Dumping Scrapy stats",
        "Overridden settings",
        "Enabled extensions",
        "Enabled item pipelines",
        "Enabled addons",
        "Versions:",
        "Crawled (200)",
        "Scraped from",
        "Stored jsonlines feed",
        "Disabled snapcrawl.",
        "progress:",
    ):
        assert noise not in err, noise
    records = [line for line in err.splitlines() if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[", line)]
    # a whole crawl of the site: start, the 3 broken pages (4 lines), close, summary, published
    assert len(records) <= 16, "\n".join(records)
    assert any("exports published: " in line for line in records)


def test_debug_log_keeps_the_inventory_and_stats_dump(tmp_path: Path, server: SampleServer) -> None:
    result = run_crawl(tmp_path, start_urls=server.url + "/", settings={"DEPTH_LIMIT": "1", "LOG_LEVEL": "DEBUG"})
    assert result.returncode == 0, result.stderr[-2000:]
    for line in (
        "DEBUG: Dumping Scrapy stats",
        "DEBUG: Overridden settings",
        "DEBUG: Enabled extensions",
        "DEBUG: Stored jsonlines feed",
        "DEBUG: Scrapy stats:",
        "DEBUG: Crawled (200)",
    ):
        assert line in result.stderr, line


def test_progress_line_while_crawling(tmp_path: Path, site: Site) -> None:
    with SlowServer(site, delay=0.5) as slow:
        result = run_crawl(
            tmp_path,
            start_urls=slow.url + "/",
            settings={"DEPTH_LIMIT": "1", "CONCURRENT_REQUESTS_PER_DOMAIN": "2", "SNAPCRAWL_PROGRESS_INTERVAL": "0.4"},
        )
    assert result.returncode == 0, result.stderr[-2000:]
    line_re = re.compile(
        r"\[snapcrawl\.progress\] INFO: progress: (\d+) pages \((\d+)/min\), (\d+) articles, (\d+) rejected, "
        r"(\d+) queued, (\d+) in flight, (\d+) errors$"
    )
    found = [tuple(map(int, m.groups())) for m in map(line_re.search, result.stderr.splitlines()) if m]
    assert len(found) >= 2, result.stderr[-3000:]
    pages = [f[0] for f in found]
    assert pages == sorted(pages) and pages[-1] <= result.report()["pages"]["fetched"]
    assert any(f[1] > 0 for f in found)  # a rate while pages come in
    assert any(f[4] + f[5] > 0 for f in found)  # work waiting or under way mid-crawl


def test_resumed_run_counts_records_already_in_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / ".run.partial"
    folder.mkdir()
    article: dict[str, Any] = {
        "type": "article",
        "url": "https://a.example/1",
        "title": "t",
        "body": "b",
        "published_at": None,
        "snapshot": {"collector": "x.example"},
        "related": [],
        "duplicate_kind": "near",
    }
    lines = [json.dumps(article), json.dumps({**article, "url": "https://b.example/2", "duplicate_kind": None})]
    # the last line was cut by a kill: not a record yet
    (folder / "articles.jsonl").write_text("\n".join(lines) + '\n{"type": "arti', encoding="utf-8")
    with gzip.open(folder / "links.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write("".join(json.dumps({"type": "link", "from_url": "https://a.example/1"}) + "\n" for _ in range(3)))
    (folder / "rejected.jsonl").write_text(json.dumps({"type": "rejected", "record_type": "link"}) + "\n")

    ext = RunReport(crawler=None)  # type: ignore[arg-type]
    ext._count_existing(folder)
    assert ext.resumed_records == 6
    assert ext.counts == Counter({"article": 2, "link": 3, "rejected": 1})
    assert ext.rejected_by_type == Counter({"link": 1}) and ext.duplicates == Counter({"near": 1})
    by_site = ext.fill_rates_by_site()
    assert set(by_site) == {"a.example", "b.example"}
    assert by_site["a.example"]["fill_rate"]["title"] == 1.0
    assert by_site["a.example"]["fill_rate"]["published_at"] == 0.0
    assert ext.fill_rates()["snapshot.collector"] == 1.0 and ext.fill_rates()["related"] == 0.0


def test_a_callback_exception_listed_as_failed_page_counts_once() -> None:
    assert uncounted_spider_exceptions({}) == 0
    # PageFailureMiddleware lists each callback exception as a parse_error page
    assert uncounted_spider_exceptions({"spider_exceptions/count": 2, "snapcrawl/failed/parse_error": 2}) == 0
    assert uncounted_spider_exceptions({"spider_exceptions/count": 3, "snapcrawl/failed/parse_error": 2}) == 1
