"""Incremental recrawls end to end: two (and three) real crawls of the sample site sharing one
SQLite state file, the second after the site moved to edition 2 (one article edited, two new)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from snapcrawl.processors import record_id
from snapcrawl.sample.server import SampleServer
from snapcrawl.sample.site import Site, build_site
from tests.conftest import CrawlResult, run_crawl

ARTICLE_PATH = re.compile(r"^/(?:[a-z]+/\d{8}|zhuanzai)/[0-9a-f]{16}\.html$")


def without_validators(site: Site) -> Site:
    """The same site served by a server that sends neither ETag nor Last-Modified."""
    site.pages = {
        path: replace(page, headers={k: v for k, v in page.headers.items() if k not in ("ETag", "Last-Modified")})
        for path, page in site.pages.items()
    }
    return site


def stats(result: CrawlResult) -> dict[str, Any]:
    report: dict[str, Any] = result.report()["scrapy_stats"]
    return report


@pytest.mark.parametrize("validators", [True, False], ids=["conditional-requests", "content-hash"])
def test_second_run_exports_only_new_and_revised_articles(tmp_path: Path, validators: bool) -> None:
    state = {"SNAPCRAWL_STATE_PATH": str(tmp_path / "state.sqlite")}
    edition1, edition2 = build_site(1), build_site(2)
    if not validators:
        edition1, edition2 = without_validators(edition1), without_validators(edition2)
    with SampleServer(edition1) as server:
        first = run_crawl(tmp_path / "run1", start_urls=server.url + "/", settings=state)
        assert first.returncode == 0, first.stderr[-3000:]
        run1 = {a["url"]: a for a in first.records("articles")}
        assert set(run1) == {server.url + p for p in edition1.article_paths()}
        assert all(a["revision"] == 1 and a["previous_content_hash"] is None for a in run1.values())

        server.set_site(edition2)
        server.clear_log()
        second = run_crawl(tmp_path / "run2", start_urls=server.url + "/", settings=state)
        assert second.returncode == 0, second.stderr[-3000:]
        log = server.request_log

    articles = {a["url"]: a for a in second.records("articles")}
    (changed,) = edition2.changed_paths()
    new = edition2.new_article_paths()
    assert len(new) == 2
    assert set(articles) == {server.url + p for p in [changed, *new]}
    for path in new:
        a = articles[server.url + path]
        assert (a["revision"], a["previous_content_hash"]) == (1, None)
        assert a["title"] == edition2.expected(path)["title"]
        assert a["cluster_id"] == record_id(a["url"]) and a["duplicate_of"] is None
    revised = articles[server.url + changed]
    before = run1[server.url + changed]
    assert revised["revision"] == 2
    assert revised["previous_content_hash"] == before["content_hash"] != revised["content_hash"]
    assert revised["body"].endswith("截至发稿时,首批项目已全部完成验收并投入试运行。")
    assert revised["cluster_id"] == before["cluster_id"]
    # link records only for the exported articles, all of them
    links = second.records("links")
    assert {r["from_url"] for r in links} == set(articles)
    assert len(links) == sum(len(a["related"]) + len(a["more_in_category"]) for a in articles.values())
    assert second.records("rejected") == []

    unchanged = len(edition1.article_paths()) - 1
    s = stats(second)
    assert s["snapcrawl/dedup/unchanged"] == unchanged
    assert s["snapcrawl/dedup/revised"] == 1
    statuses = {path.split("?")[0]: status for method, path, status in log if method == "GET"}
    assert all(statuses[p] == 200 for p in edition2.listing_paths()), "listing pages are always fetched in full"
    unchanged_paths = set(edition1.article_paths()) - {changed}
    if validators:
        assert {p: statuses[p] for p in unchanged_paths} == dict.fromkeys(unchanged_paths, 304)
        assert statuses[changed] == 200  # its ETag no longer matches
        assert s["snapcrawl/incremental/not_modified"] == unchanged
        assert s["snapcrawl/incremental/conditional_requests"] == unchanged + 1
        assert second.report()["pages"]["by_status"]["304"] == unchanged
    else:
        assert all(statuses[p] == 200 for p in unchanged_paths)
        assert "snapcrawl/incremental/not_modified" not in s


def test_third_run_of_an_unchanged_site_exports_nothing(tmp_path: Path) -> None:
    state = {"SNAPCRAWL_STATE_PATH": str(tmp_path / "state.sqlite")}
    site = build_site(2)
    with SampleServer(site) as server:
        for n in (1, 2, 3):
            result = run_crawl(tmp_path / f"run{n}", start_urls=server.url + "/", settings=state)
            assert result.returncode == 0, result.stderr[-3000:]
            if n == 1:
                assert len(result.records("articles")) == len(site.article_paths())
    assert result.records("articles") == [] and result.records("links") == []
    assert stats(result)["snapcrawl/dedup/unchanged"] == len(site.article_paths())
    assert result.report()["pages"]["by_status"]["304"] == len(site.article_paths())


def test_incremental_off_exports_everything_again(tmp_path: Path, server: SampleServer, site: Site) -> None:
    state = {"SNAPCRAWL_STATE_PATH": str(tmp_path / "state.sqlite")}
    first = run_crawl(tmp_path / "run1", start_urls=server.url + "/", settings=state)
    assert first.returncode == 0, first.stderr[-3000:]
    server.clear_log()
    again = run_crawl(tmp_path / "run2", start_urls=server.url + "/", settings={**state, "SNAPCRAWL_INCREMENTAL": "0"})
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(again.records("articles")) == len(site.article_paths())
    assert all(status != 304 for _, _, status in server.request_log)
    assert all(a["revision"] == 1 for a in again.records("articles"))


def test_newest_articles_are_fetched_first(tmp_path: Path, server: SampleServer, site: Site) -> None:
    """From one listing page, one request at a time: its articles come newest first, then its other links."""
    listing = site.listing_paths()[0]
    result = run_crawl(
        tmp_path,
        start_urls=server.url + listing,
        settings={"DEPTH_LIMIT": "1", "CONCURRENT_REQUESTS": "1", "CONCURRENT_REQUESTS_PER_DOMAIN": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    fetched = [p for m, p, _ in server.request_log if m == "GET" and p not in ("/robots.txt", listing)]
    articles = [p for p in fetched if ARTICLE_PATH.match(p)]
    assert len(articles) >= 8
    dates = {p: datetime.fromisoformat(site.expected(p)["published_at"]) for p in site.article_paths()}
    known = [p for p in articles if p in dates]  # broken links listed on the page have dates too, not pages
    assert known == sorted(known, key=lambda p: dates[p], reverse=True)
    # every dated article link was fetched before any undated link (pager, navigation)
    last_article = max(fetched.index(p) for p in articles)
    assert all(ARTICLE_PATH.match(p) for p in fetched[: last_article + 1]), fetched
    assert Counter(fetched).most_common(1)[0][1] == 1
