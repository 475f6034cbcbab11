"""Deduplication: the sample site's copy clustered with its original in real crawls (annotate and
drop policies, and across runs), and the pipeline's decisions on a real SQLite state file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scrapy.exceptions import DropItem
from scrapy.utils.test import get_crawler

from snapcrawl.addon import SettingError
from snapcrawl.dedup.minhash import Signer, similarity
from snapcrawl.pipelines.dedup import DedupPipeline
from snapcrawl.processors import record_id
from snapcrawl.sample.server import SampleServer
from snapcrawl.sample.site import Site, build_site
from snapcrawl.spiders.priority import HORIZON_DAYS, RequestPriority
from tests.conftest import CrawlResult, run_crawl
from tests.dedup_helpers import OTHER_STORY, STORY, article, as_dict, edited

# --------------------------------------------------------------------------- crawls


def most_similar_unrelated_pair(site: Site) -> tuple[str, str, float]:
    """The two different stories of the sample site whose texts are closest (same category)."""
    signer = Signer()
    sigs = {}
    for p in site.article_paths():
        a = site.article(p)
        sig = signer.signature(a.title, "\n\n".join(b.text for b in a.blocks), "zh")
        assert sig is not None
        sigs[p] = sig
    pair = set(site.near_duplicate_pairs()[0])
    best = ("", "", -1.0)
    paths = sorted(sigs)
    for i, x in enumerate(paths):
        for y in paths[i + 1 :]:
            if {x, y} != pair and (s := similarity(sigs[x], sigs[y])) > best[2]:
                best = (x, y, s)
    return best


def test_near_duplicate_copy_is_clustered_with_its_original(
    full_crawl: tuple[CrawlResult, SampleServer], site: Site
) -> None:
    result, srv = full_crawl
    articles = {a["url"]: a for a in result.records("articles")}
    ((original, copy),) = site.near_duplicate_pairs()
    orig, dup = articles[srv.url + original], articles[srv.url + copy]
    assert dup["title"] != orig["title"] and dup["content_hash"] != orig["content_hash"]
    assert (dup["duplicate_of"], dup["duplicate_kind"]) == (srv.url + original, "near")
    assert dup["cluster_id"] == orig["cluster_id"] == orig["id"] == record_id(srv.url + original)
    assert (orig["duplicate_of"], orig["duplicate_kind"]) == (None, None)
    # every other article is a story of its own, the most similar unrelated pair included
    for url, a in articles.items():
        if url != srv.url + copy:
            assert (a["cluster_id"], a["duplicate_of"]) == (a["id"], None), url
    x, y, sim = most_similar_unrelated_pair(site)
    assert x.split("/")[1] == y.split("/")[1] and sim > 0.25  # same category, close texts
    assert articles[srv.url + x]["cluster_id"] != articles[srv.url + y]["cluster_id"]
    report = result.report()
    assert report["duplicates"]["near"] == 1 and report["duplicates"]["exact"] == 0
    assert report["scrapy_stats"]["snapcrawl/dedup/near"] == 1


def test_url_variants_are_counted(full_crawl: tuple[CrawlResult, SampleServer], site: Site) -> None:
    """The sample site's links carry tracking parameters: each page is fetched once, variants counted."""
    result, srv = full_crawl
    hrefs = [
        e["href"]
        for p in site.article_paths()
        for lname in ("related", "more_in_category")
        for e in site.expected(p)[lname]
    ]
    tracked = {h for h in hrefs if h.startswith("/") and ("?" in h or "#" in h)}
    assert tracked, "the sample site is expected to link with tracking parameters"
    counted = result.report()["scrapy_stats"]["snapcrawl/dedup/url_variant"]
    assert 0 < counted <= len(tracked)
    gets = [p for m, p, _ in srv.request_log if m == "GET"]
    assert all("?" not in p for p in gets)


def test_drop_policy_withholds_the_copy_and_its_links(tmp_path: Path, server: SampleServer, site: Site) -> None:
    result = run_crawl(tmp_path, start_urls=server.url + "/", settings={"SNAPCRAWL_DUP_POLICY": "drop"})
    assert result.returncode == 0, result.stderr[-3000:]
    ((original, copy),) = site.near_duplicate_pairs()
    articles = {a["url"] for a in result.records("articles")}
    assert articles == {server.url + p for p in site.article_paths() if p != copy}
    links = result.records("links")
    assert not [r for r in links if r["from_url"] == server.url + copy]
    assert [r for r in links if r["from_url"] == server.url + original]
    s = result.report()["scrapy_stats"]
    expected = site.expected(copy)
    assert s["snapcrawl/dedup/near"] == 1
    assert s["snapcrawl/dedup/withheld/article"] == 1
    assert s["snapcrawl/dedup/withheld/link"] == len(expected["related"]) + len(expected["more_in_category"])


def test_a_later_run_finds_the_first_runs_cluster(tmp_path: Path, site: Site) -> None:
    """The copy appears only after the first run: the second run puts it in the original's cluster."""
    ((original, copy),) = site.near_duplicate_pairs()
    state = {"SNAPCRAWL_STATE_PATH": str(tmp_path / "state.sqlite")}
    before = build_site()
    del before.pages[copy]  # not published yet (404)
    with SampleServer(before) as server:
        first = run_crawl(tmp_path / "run1", start_urls=server.url + "/", settings=state)
        assert first.returncode == 0, first.stderr[-3000:]
        assert {a["url"] for a in first.records("articles")} == {
            server.url + p for p in site.article_paths() if p != copy
        }
        server.set_site(site)
        second = run_crawl(tmp_path / "run2", start_urls=server.url + "/", settings=state)
        assert second.returncode == 0, second.stderr[-3000:]
    (dup,) = second.records("articles")  # everything else is unchanged
    assert dup["url"] == server.url + copy
    assert (dup["duplicate_of"], dup["duplicate_kind"]) == (server.url + original, "near")
    assert dup["cluster_id"] == record_id(server.url + original)


def test_bad_dedup_settings_are_named(tmp_path: Path, server: SampleServer) -> None:
    bad = run_crawl(tmp_path, start_urls=server.url + "/", settings={"SNAPCRAWL_DUP_POLICY": "delete"})
    assert bad.returncode == 2
    assert "SNAPCRAWL_DUP_POLICY" in bad.stderr and "'delete'" in bad.stderr and "Traceback" not in bad.stderr


# --------------------------------------------------------------------------- the pipeline


class Runs:
    """Successive runs of the pipeline over one real SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current: DedupPipeline | None = None

    def start(self, run_id: str, **settings: Any) -> DedupPipeline:
        crawler = get_crawler(
            settings_dict={"SNAPCRAWL_STATE_PATH": str(self.path), "SNAPCRAWL_RUN_ID": run_id, **settings}
        )
        crawler.crawling = True  # as during a crawl
        self.current = DedupPipeline.from_crawler(crawler)
        self.current.open_spider()
        return self.current

    def finish(self) -> None:
        if self.current is not None:
            self.current.close_spider()
            self.current = None


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[Runs]:
    r = Runs(tmp_path / "state.sqlite")
    yield r
    r.finish()


def test_exact_copy_ignores_spacing_and_case(runs: Runs) -> None:
    p = runs.start("run1")
    first = as_dict(
        p.process_item(article("http://a.test/1.html", "Subway Line Opens", ["First  para.", "Two."], "en"))
    )
    copy = as_dict(
        p.process_item(article("http://b.test/1.html", "subway line opens", ["First para.", " Two. "], "en"))
    )
    assert len(first["content_hash"]) == 64 and first["content_hash"] == copy["content_hash"]
    assert (copy["duplicate_of"], copy["duplicate_kind"], copy["cluster_id"]) == (
        "http://a.test/1.html",
        "exact",
        first["cluster_id"],
    )
    assert p.stats.get_value("snapcrawl/dedup/exact") == 1
    assert p.stats.get_value("snapcrawl/dedup/too_short") == 2  # too short for near matching: exact only


def test_revisions_count_up_across_confirmed_runs(runs: Runs) -> None:
    url = "http://a.test/1.html"
    bodies = [STORY, [*STORY, "截至发稿时，首批列车已完成调试。"], [*STORY, "截至发稿时，首批列车已投入运营。"]]
    hashes: list[str] = []
    for n, body in enumerate(bodies, start=1):
        p = runs.start(f"run{n}")
        got = as_dict(p.process_item(article(url, "地铁十四号线东段月底开通", body)))
        assert got["revision"] == n
        assert got["previous_content_hash"] == (hashes[-1] if hashes else None)
        assert got["cluster_id"] == record_id(url) and got["duplicate_of"] is None
        hashes.append(got["content_hash"])
        runs.finish()
    p = runs.start("run4")
    unchanged = article(url, "地铁十四号线东段月底开通", bodies[-1])
    unchanged.related = [{"title": "t", "url": "http://a.test/2.html"}, {"title": None, "url": "http://a.test/3.html"}]
    with pytest.raises(DropItem, match="unchanged"):
        p.process_item(unchanged)
    assert p.stats.get_value("snapcrawl/dedup/unchanged") == 1
    assert p.stats.get_value("snapcrawl/dedup/withheld/link") == 2  # its link records go unexported with it


def test_a_killed_or_paused_run_is_not_confirmed(runs: Runs, tmp_path: Path) -> None:
    url = "http://a.test/1.html"
    p = runs.start("run1")
    p.process_item(article(url, "地铁十四号线东段月底开通", STORY))
    p.store = None  # killed: close_spider never runs (the connection dies with the process)
    p = runs.start("run2", JOBDIR=str(tmp_path / "job"))
    again = as_dict(p.process_item(article(url, "地铁十四号线东段月底开通", STORY)))
    assert again["revision"] == 1  # run1 never confirmed: exported again, not "unchanged"
    p.crawler.crawling = False  # Ctrl-C with JOBDIR: paused, will be resumed under run2
    runs.finish()
    p = runs.start("run3")
    exported = p.process_item(article(url, "地铁十四号线东段月底开通", STORY))
    assert as_dict(exported)["revision"] == 1
    runs.finish()
    p = runs.start("run4")
    with pytest.raises(DropItem):
        p.process_item(article(url, "地铁十四号线东段月底开通", STORY))


def test_unrelated_same_topic_articles_stay_apart(runs: Runs) -> None:
    p = runs.start("run1")
    a = as_dict(p.process_item(article("http://a.test/1.html", "地铁十四号线东段月底开通", STORY)))
    b = as_dict(p.process_item(article("http://a.test/2.html", "共享单车投放实行动态调控", OTHER_STORY)))
    c = as_dict(p.process_item(article("http://b.test/3.html", "地铁十四号线东段本月底开通", edited(STORY))))
    assert a["cluster_id"] != b["cluster_id"] and b["duplicate_of"] is None
    assert (c["cluster_id"], c["duplicate_of"], c["duplicate_kind"]) == (a["cluster_id"], a["url"], "near")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"SNAPCRAWL_DUP_POLICY": "keep"}, "SNAPCRAWL_DUP_POLICY='keep'"),
        ({"SNAPCRAWL_NEAR_DUP_THRESHOLD": "high"}, "SNAPCRAWL_NEAR_DUP_THRESHOLD='high'"),
        ({"SNAPCRAWL_NEAR_DUP_THRESHOLD": "1.5"}, "SNAPCRAWL_NEAR_DUP_THRESHOLD=1.5"),
    ],
)
def test_bad_settings_raise_a_named_error(settings: dict[str, str], message: str) -> None:
    with pytest.raises(SettingError) as err:
        DedupPipeline.from_crawler(get_crawler(settings_dict=settings))
    assert message in str(err.value)


def test_priority_newest_first_and_variant_counting() -> None:
    from datetime import datetime, timezone

    crawler = get_crawler()
    prio = RequestPriority(crawler, now=datetime(2026, 1, 10, tzinfo=timezone.utc))
    dates = {
        "http://a.test/new.html": "2026-01-09T08:00:00+08:00",
        "http://a.test/old.html": "2025-01-09T08:00:00+08:00",
        "http://a.test/ancient.html": "2001-01-01T00:00:00+08:00",
    }
    new, old = (
        prio.for_link("http://a.test/new.html", None, dates),
        prio.for_link("http://a.test/old.html", None, dates),
    )
    assert HORIZON_DAYS >= new > old > 1
    assert prio.for_link("http://a.test/ancient.html", None, dates) == 1
    assert prio.for_link("http://a.test/list/", None, dates) == 0
    assert crawler.stats.get_value("snapcrawl/dedup/url_variant") is None
    # a tracking variant of a URL already requested is counted once, a new variant of an unseen URL not at all
    prio.for_link("http://a.test/new.html", "http://a.test/new.html?utm_source=x", dates)
    prio.for_link("http://a.test/new.html", "http://a.test/new.html?utm_source=x", dates)
    prio.for_link("http://a.test/new.html", "http://a.test/new.html#top", dates)
    prio.for_link("http://a.test/other.html", "http://a.test/other.html?from=feed", dates)
    assert crawler.stats.get_value("snapcrawl/dedup/url_variant") == 2
