"""End to end: ``scrapy crawl snapshots`` over the real sample site on 127.0.0.1."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from snapcrawl.sample.server import SampleServer
from snapcrawl.sample.site import Site
from snapcrawl.schemas import load_schema
from tests.conftest import CrawlResult, run_crawl


def _by_url(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["url"]: r for r in records}


def test_exact_article_set_and_every_field(full_crawl: tuple[CrawlResult, SampleServer], site: Site) -> None:
    result, srv = full_crawl
    assert result.returncode == 0, result.stderr[-3000:]
    articles = _by_url(result.records("articles"))
    assert set(articles) == {srv.url + p for p in site.article_paths()}
    for path in site.article_paths():
        want = site.expected(path, srv.url)
        got = articles[srv.url + path]
        for f in ("title", "category", "published_at", "published_at_raw", "source", "reposted_from", "language"):
            assert got[f] == want[f], (path, f)
        assert got["body"] == "\n\n".join(want["body"]), path
        assert got["snapshot"] == want["snapshot"], path
        for lname in ("related", "more_in_category"):
            assert [{k: e[k] for k in ("title", "url", "snippet", "published_at")} for e in got[lname]] == [
                {k: e[k] for k in ("title", "url", "snippet", "published_at")} for e in want[lname]
            ], (path, lname)
        assert got["type"] == "article" and got["schema_version"] == 1
        assert len(got["content_hash"]) == 64 and got["cluster_id"]


def _link_records(article: dict) -> list[dict]:
    """The link records the contract derives from an article's two lists, in order."""
    return [
        {"type": "link", "schema_version": 1, "from_url": article["url"], "list": lname, "position": i, **entry}
        for lname in ("related", "more_in_category")
        for i, entry in enumerate(article[lname])
    ]


def test_link_records_mirror_the_lists(full_crawl: tuple[CrawlResult, SampleServer]) -> None:
    result, _ = full_crawl
    articles = result.records("articles")
    links = result.records("links")
    expected = [record for a in articles for record in _link_records(a)]
    key = lambda r: (r["from_url"], r["list"], r["position"])  # noqa: E731
    assert sorted(links, key=key) == sorted(expected, key=key)
    lists = Counter(r["list"] for r in links)
    assert lists["related"] > 0 and lists["more_in_category"] > 0
    # off-site links are recorded (as link records) but never fetched
    assert any(not r["url"].startswith("http://127.0.0.1") for r in links if r["url"])


def test_every_record_validates_and_cjk_is_unescaped(full_crawl: tuple[CrawlResult, SampleServer]) -> None:
    result, _ = full_crawl
    for name, schema in (("articles", "article"), ("links", "link")):
        validator = Draft202012Validator(load_schema(schema))
        raw = (result.run_dir / f"{name}.jsonl").read_text(encoding="utf-8")
        assert "\\u" not in raw  # CJK written as UTF-8, not ASCII escapes
        for line in raw.splitlines():
            errors = list(validator.iter_errors(json.loads(line)))
            assert errors == [], (name, errors[:2])
    assert result.records("rejected") == []


def test_broken_pages_counted_logged_not_exported(full_crawl: tuple[CrawlResult, SampleServer], site: Site) -> None:
    result, srv = full_crawl
    report = result.report()
    failed = {f["url"]: f["error"] for f in report["errors"]["failed_pages"]}
    want = {
        srv.url + p: {"404": "http_404", "500": "http_500", "empty": "empty_page"}[kind]
        for p, kind in site.broken_paths().items()
    }
    assert failed == want
    exported = {a["url"] for a in result.records("articles")}
    for url in want:
        assert url not in exported
        assert url in result.stderr  # logged with its URL
    assert report["errors"]["by_type"]["http_404"] == 1
    assert report["pages"]["failed"] == len(want)


def test_each_page_fetched_once_despite_tracking_variants(
    full_crawl: tuple[CrawlResult, SampleServer], site: Site
) -> None:
    _, srv = full_crawl
    gets = Counter(path for method, path, _ in srv.request_log if method == "GET")
    assert all("?" not in p and "#" not in p for p in gets), [p for p in gets if "?" in p]
    for path in site.article_paths():
        assert gets[path] == 1, path
    # the listing pages are fetched too, but listing pages give no article record
    assert all(gets[p] == 1 for p in site.listing_paths())


def test_seed_page_reproduced(full_crawl: tuple[CrawlResult, SampleServer], site: Site) -> None:
    result, srv = full_crawl
    seed = _by_url(result.records("articles"))[srv.url + site.seed_path]
    assert seed["title"] == "工行北京分行:科技赋能与共建共治,筑牢反诈防线"
    assert seed["category"] == "科技"
    assert seed["published_at"] == "2024-09-24T15:46:00+08:00"
    assert seed["source"] == "人民资讯"
    assert seed["reposted_from"] == "人民网-北京频道"
    assert seed["snapshot"]["collector"] == "td.fyun.cc"
    assert seed["snapshot"]["captured_at"] == "2024-09-24T17:45:08+08:00"
    assert seed["snapshot"]["original_url"] is None
    assert len(seed["related"]) == 9
    assert [e["title"] is None for e in seed["related"]].count(True) == 1
    assert len(seed["more_in_category"]) == 15
    # two related snippets carry 本文转自:, which must not leak into the article's fields
    assert sum(1 for e in seed["related"] if e["snippet"].startswith("本文转自:")) == 2
    assert "本文转自" not in seed["body"]
    assert seed["body"].startswith("面对电信网络诈骗持续高发的态势")
    assert "深化科技赋能,智控模型精准护航" in seed["body"].split("\n\n")
    assert seed["snapshot"]["disclaimer"].startswith("以上内容为资讯信息快照,由td.fyun.cc爬虫")
    assert seed["snapshot"]["notice"] == "本站信息快照查询为非营利公共服务,如有侵权请联系我们进行删除。"


def test_dash_O_writes_every_record_with_its_type(tmp_path: Path, server: SampleServer, site: Site) -> None:
    out = tmp_path / "all.jsonl"
    result = run_crawl(tmp_path, "-O", str(out), start_urls=server.url + "/")
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    types = Counter(r["type"] for r in records)
    assert types["article"] == len(site.article_paths())
    assert types["link"] > types["article"]
    # each article comes right after its own link records, which mirror its lists
    pending: list[dict] = []
    for record in records:
        if record["type"] == "link":
            pending.append(record)
            continue
        assert record["type"] == "article"
        assert pending == _link_records(record)
        pending = []
    assert pending == []
    # a JSON array feed carries the same records
    out_json = tmp_path / "all.json"
    again = run_crawl(tmp_path / "json", "-O", str(out_json), start_urls=server.url + "/")
    assert again.returncode == 0, again.stderr[-2000:]
    as_array = json.loads(out_json.read_text(encoding="utf-8"))
    key = lambda r: (r["type"], r.get("url"), r.get("from_url"), r.get("list"), r.get("position"))  # noqa: E731
    assert sorted(map(key, as_array)) == sorted(map(key, records))


def test_depth_limit_is_honoured(tmp_path: Path, server: SampleServer) -> None:
    result = run_crawl(tmp_path, start_urls=server.url + "/", settings={"DEPTH_LIMIT": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    report = result.report()
    # depth 0: the home page; depth 1: what it links to (category listings), nothing deeper
    fetched = {p for m, p, _ in server.request_log if m == "GET" and p != "/robots.txt"}
    assert "/" in fetched
    assert all(p.count("/") <= 2 for p in fetched), sorted(fetched)
    assert report["records"]["articles"] == 0


def test_urls_file_and_bad_start_url(tmp_path: Path, server: SampleServer, site: Site) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(f"# seed only\n{server.url}{site.seed_path}?from=feed\n", encoding="utf-8")
    ok = run_crawl(tmp_path, "-a", f"urls_file={urls}", settings={"DEPTH_LIMIT": "0"})
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert [a["url"] for a in ok.records("articles")][:1] == [server.url + site.seed_path]

    bad = run_crawl(tmp_path / "bad", start_urls="htp:/nowhere")
    assert bad.returncode == 2
    assert "htp:/nowhere" in bad.stderr and "Traceback" not in bad.stderr

    missing = run_crawl(tmp_path / "missing", "-a", f"urls_file={tmp_path / 'nope.txt'}")
    assert missing.returncode == 2 and "nope.txt" in missing.stderr


@pytest.mark.parametrize("value", ["maybe", "-3"])
def test_bad_setting_is_named(tmp_path: Path, server: SampleServer, value: str) -> None:
    result = run_crawl(tmp_path, start_urls=server.url + "/", settings={"SNAPCRAWL_PROGRESS_INTERVAL": value})
    assert result.returncode == 2
    assert "SNAPCRAWL_PROGRESS_INTERVAL" in result.stderr and "Traceback" not in result.stderr
