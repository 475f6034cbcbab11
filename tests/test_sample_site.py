"""The sample aggregator site: determinism, ground truth vs. markup, encodings, server, CLI."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import lxml.html
import pytest

from snapcrawl.sample import SampleServer, Site, build_site
from snapcrawl.sample.content import SEED_PATH

REPO = Path(__file__).resolve().parents[1]
SEED_TEXT_TITLE = "工行北京分行:科技赋能与共建共治,筑牢反诈防线"


@pytest.fixture(scope="module")
def site() -> Site:
    return build_site()


@pytest.fixture(scope="module")
def site2() -> Site:
    return build_site(edition=2)


def _decode(site: Site, path: str) -> str:
    enc = "gbk" if path in site.gbk_paths() else "utf-8"
    return site.pages[path].body.decode(enc)


def _doc(site: Site, path: str) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(_decode(site, path))


def _text(el: lxml.html.HtmlElement) -> str:
    return el.text_content().strip()


def _links(doc: lxml.html.HtmlElement) -> list[str]:
    return [str(href) for href in doc.xpath("//a/@href")]


# ---- determinism and size -------------------------------------------------------------------


def test_build_is_deterministic() -> None:
    for edition in (1, 2):
        a, b = build_site(edition), build_site(edition)
        assert a.pages.keys() == b.pages.keys()
        for path in a.pages:
            assert a.pages[path] == b.pages[path], path


def test_counts_and_structure(site: Site) -> None:
    articles = site.article_paths()
    assert len(articles) >= 60
    assert len(site.categories) >= 3
    assert site.seed_path == SEED_PATH == "/keji/20240924/a5123a2fe4da1fb3.html"
    assert all(
        re.fullmatch(r"/(keji|caijing|shehui|tiyu)/\d{8}/[0-9a-f]{16}\.html", p)
        for p in articles
        if not p.startswith("/zhuanzai/")
    )
    for path in articles:
        assert site.pages[path].status == 200
    titles = [site.expected(p)["title"] for p in articles]
    assert len(set(titles)) == len(titles)
    for path in articles:
        exp = site.expected(path)
        paragraphs = exp["body"]
        assert 3 <= len(paragraphs) <= 9  # 3-8 blocks; the re-published copy adds 责任编辑
        assert exp["published_at"] < exp["snapshot"]["captured_at"]
        assert exp["published_at"][:4] in {"2023", "2024", "2025"}
        assert exp["published_at"].endswith("+08:00")
    # sub-headings come in both styles
    assert any("<p><strong>" in _decode(site, p) for p in articles if p.startswith("/keji/"))
    assert any(
        re.search(r'<div class="content">.*<h3>', _decode(site, p), re.S) for p in articles if p.startswith("/caijing/")
    )


def test_listings_are_paginated_and_are_not_articles(site: Site) -> None:
    listings = site.listing_paths()
    assert "/keji/" in listings and "/keji/index_2.html" in listings
    first = _doc(site, "/keji/")
    assert [_text(a) for a in first.xpath('//div[@class="pager"]/a[@class="next"]')] == ["下一页"]
    assert first.xpath('//div[@class="pager"]/a[@class="next"]/@href') == ["/keji/index_2.html"]
    second = _doc(site, "/keji/index_2.html")
    assert second.xpath('//a[@class="prev"]/@href') == ["/keji/"]
    for path in listings:
        html = _decode(site, path)
        assert "快照生成时间" not in html and "disclaimer" not in html and 'class="info"' not in html
        assert "<h1" not in html
        entries = _doc(site, path).xpath('//ul[@class="list"]/li')
        assert 1 <= len(entries) <= 10
        for li in entries:
            assert li.xpath("./a/@href") and _text(li.xpath("./a")[0]) and li.xpath("./p")
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", _text(li.xpath("./span")[0]))
    # every exported article and every broken page is reachable from some listing
    linked = {href for path in listings for href in _links(_doc(site, path))}
    assert set(site.article_paths()) <= linked
    assert set(site.broken_paths()) <= linked
    home = _doc(site, "/")
    assert {f"/{slug}/" for slug in site.categories} <= set(_links(home))
    for path in ["/", "/subscribe/", *listings[:2], SEED_PATH]:
        nav = [_text(a) for a in _doc(site, path).xpath('//ul[@class="nav"]/li/a')]
        assert nav[:2] == ["首页", "我的订阅"] and set(site.categories.values()) <= set(nav)


# ---- the seed page ---------------------------------------------------------------------------


def test_seed_page_reproduces_capture(site: Site) -> None:
    doc = _doc(site, SEED_PATH)
    assert doc.findtext(".//title") == SEED_TEXT_TITLE + " - 快照资讯网"
    assert _text(doc.xpath('//h1[@class="title"]')[0]) == SEED_TEXT_TITLE
    assert _text(doc.xpath('//div[@class="info"]')[0]) == ("类别:科技\xa0发布时间:2024-09-24 15:46:00\xa0来源:人民资讯")
    content = [_text(p) for p in doc.xpath('//div[@class="content"]/*')]
    assert content[0] == "本文转自:人民网-北京频道"
    assert content[2] == "深化科技赋能,智控模型精准护航"
    assert content[4] == "强化管理创新,人机融合高效防控"
    assert content[6] == "坚持共建共治,联防联控合力防诈"
    assert content[-1].startswith("下一步,工行北京分行将始终坚持客户至上")
    assert "精准识别、及时管控对公风险账户7000个,有强化涉诈风险识别和风险阻断。" in content[3]
    assert len(content) == 9
    disclaimer = [_text(p) for p in doc.xpath('//div[@class="disclaimer"]/p')]
    assert disclaimer == [
        "以上内容为资讯信息快照,由td.fyun.cc爬虫进行采集并收录,本站未对信息做任何修改,信息内容不代表本站立场。",
        "快照生成时间:2024-09-24 17:45:08",
        "本站信息快照查询为非营利公共服务,如有侵权请联系我们进行删除。",
        "信息原文地址:",
    ]
    related = doc.xpath('//div[@class="related"]/ul/li')
    assert len(related) == 9
    assert _text(related[7].xpath('./a[@class="t"]')[0]) == ""
    assert _text(related[7].xpath('./p[@class="s"]')[0]).startswith("...道为更好地满足老年人")
    snippets = [_text(li.xpath('./p[@class="s"]')[0]) for li in related]
    assert [i for i, s in enumerate(snippets) if s.startswith("本文转自:")] == [0, 5]
    assert all(s.startswith("...") for i, s in enumerate(snippets) if i not in (0, 5))
    more = doc.xpath('//div[@class="more"]/ul/li')
    assert _text(doc.xpath('//div[@class="more"]/h3')[0]) == "更多关于科技的资讯:"
    assert len(more) == 15
    titled = [_text(li.xpath('./a[@class="t"]')[0]) for li in more]
    assert [t for t in titled if t] == [
        "新闻纵深丨绿色“充电宝”上线,“捕电之网”更加坚韧",
        "京东联合中纺协制定软壳冲锋衣团体标准",
        "一线见闻|异构机器人雄安进“课堂”",
        "《2025加盟投资人群洞察报告》:“80后”仍是主力、“00后”快速崛起",
        "“哭哭马”凭啥“马倒成功”",
        "苏州工业园区创新协同机制 激发共建研发机构新活力",
    ]
    first_more = _text(more[0].xpath('./p[@class="s"]')[0])
    assert first_more.startswith("从“装满”到“装对” 让“上下楼”变“上下游”杭州日报讯")
    assert "中国特许加盟展&盟享加" in _text(more[11].xpath('./p[@class="s"]')[0])

    exp = site.expected(SEED_PATH, base_url="http://h:1")
    assert exp["url"] == "http://h:1" + SEED_PATH
    assert exp["category"] == "科技" and exp["source"] == "人民资讯"
    assert exp["published_at"] == "2024-09-24T15:46:00+08:00"
    assert exp["reposted_from"] == "人民网-北京频道"
    assert exp["snapshot"]["collector"] == "td.fyun.cc"
    assert exp["snapshot"]["captured_at"] == "2024-09-24T17:45:08+08:00"
    assert exp["snapshot"]["original_url"] is None
    assert len(exp["body"]) == 8
    assert exp["related"][1]["url"].startswith("http://h:1/caijing/") and "?" not in exp["related"][1]["url"]
    assert exp["related"][1]["href"].endswith("?from=related")
    assert exp["related"][2]["url"].startswith("http://www.people.com.cn/")
    assert exp["related"][7]["title"] is None
    assert exp["more_in_category"][0]["published_at"] == "2026-01-14T08:22:00+08:00"


# ---- ground truth agrees with the markup, for every article ---------------------------------


def test_expected_matches_markup(site: Site) -> None:
    for path in site.article_paths():
        exp = site.expected(path)
        doc = _doc(site, path)
        assert _text(doc.xpath('//h1[@class="title"]')[0]) == exp["title"], path
        info = _text(doc.xpath('//div[@class="info"]')[0])
        assert f"类别:{exp['category']}" in info and f"发布时间:{exp['published_at_raw']}" in info
        assert f"来源:{exp['source']}" in info
        blocks = [_text(el) for el in doc.xpath('//div[@class="content"]/*')]
        if exp["reposted_from"]:
            assert blocks.pop(0) == f"本文转自:{exp['reposted_from']}"
        assert blocks == exp["body"], path
        disclaimer = [_text(p) for p in doc.xpath('//div[@class="disclaimer"]/p')]
        snap = exp["snapshot"]
        assert disclaimer[0] == snap["disclaimer"] and snap["collector"] in disclaimer[0]
        assert disclaimer[1] == f"快照生成时间:{snap['captured_at_raw']}"
        assert disclaimer[2] == snap["notice"]
        hrefs = doc.xpath('//div[@class="disclaimer"]/p[4]/a/@href')
        if snap["original_url"]:
            assert hrefs == [snap["original_url"]] and snap["original_url"].startswith("http")
        else:
            assert hrefs in ([], [""])
        for css, key in (("related", "related"), ("more", "more_in_category")):
            items = doc.xpath(f'//div[@class="{css}"]/ul/li')
            assert len(items) == len(exp[key])
            for li, link in zip(items, exp[key], strict=True):
                anchor = li.xpath('./a[@class="t"]')[0]
                assert anchor.get("href") == link["href"]
                assert (_text(anchor) or None) == link["title"]
                assert _text(li.xpath('./p[@class="s"]')[0]) == link["snippet"]


def test_link_lists(site: Site) -> None:
    articles = set(site.article_paths())
    hrefs: list[str] = []
    untitled_related = untitled_more = 0
    for path in articles:
        exp = site.expected(path)
        assert 4 <= len(exp["related"]) <= 9
        if path != SEED_PATH:
            assert 8 <= len(exp["more_in_category"]) <= 15
        for link in exp["related"] + exp["more_in_category"]:
            hrefs.append(link["href"])
            if link["url"].startswith("/"):
                assert link["url"] in articles  # internal links never point at broken pages
                assert link["href"].startswith(link["url"])
            else:
                assert re.match(r"https?://", link["url"]) and "127.0.0.1" not in link["url"]
        for link in exp["more_in_category"]:
            assert link["published_at"] > exp["snapshot"]["captured_at"], path
        untitled_related += sum(link["title"] is None for link in exp["related"])
        untitled_more += sum(link["title"] is None for link in exp["more_in_category"])
        assert any(link["snippet"].startswith("...") for link in exp["related"]) or path == SEED_PATH
    assert untitled_related > 10 and untitled_more > 10
    for marker in ("?from=related", "?utm_source=feed&utm_medium=rel", "#comments"):
        assert any(h.endswith(marker) for h in hrefs), marker
    assert any(h.startswith("http://www.people.com.cn/") for h in hrefs)
    assert any(h.startswith("https://news.example-outlet.cn/") for h in hrefs)


def test_internal_snippets_quote_their_target(site: Site) -> None:
    """A related snippet is an excerpt of the linked page, as on the real aggregator."""
    for path in site.article_paths():
        for link in site.expected(path)["related"]:
            if not link["url"].startswith("/"):
                continue
            target = site.article(link["url"])
            snippet = link["snippet"]
            if snippet.startswith("..."):
                assert snippet[3:] in target.text, (path, link["url"])
            else:
                assert ("本文转自:" + (target.reposted_from or "") + target.text).startswith(snippet)


def _shingles(text: str, n: int = 4) -> set[str]:
    return {text[i : i + n] for i in range(len(text) - n + 1)}


def test_only_the_planted_pair_is_a_near_duplicate(site: Site) -> None:
    ((original, copy),) = site.near_duplicate_pairs()
    assert copy.startswith("/zhuanzai/") and original in site.article_paths() and copy in site.article_paths()
    a, b = site.expected(original), site.expected(copy)
    assert a["title"] != b["title"]
    assert b["body"][-1] == "责任编辑:王某" and "责任编辑" not in "".join(a["body"])
    differing = [i for i, (x, y) in enumerate(zip(a["body"], b["body"][:-1], strict=True)) if x != y]
    assert len(differing) == 1
    old_sentences = set(a["body"][differing[0]].split("。"))
    new_sentences = set(b["body"][differing[0]].split("。"))
    assert len(old_sentences - new_sentences) == 1 and len(new_sentences - old_sentences) == 1
    assert b["near_duplicate_of"] == original and a["near_duplicate_of"] is None
    assert copy in _links(_doc(site, "/shehui/")) + _links(_doc(site, "/shehui/index_2.html"))

    texts = {p: "".join(site.expected(p)["body"]) for p in site.article_paths()}
    sh = {p: _shingles(t) for p, t in texts.items()}
    pair_sim = len(sh[original] & sh[copy]) / len(sh[original] | sh[copy])
    assert pair_sim > 0.82
    for p, q in itertools.combinations(sorted(texts), 2):
        if {p, q} == {original, copy}:
            continue
        sim = len(sh[p] & sh[q]) / len(sh[p] | sh[q])
        assert sim < 0.45, (p, q, sim)


# ---- encodings and broken pages -------------------------------------------------------------


def test_gbk_section(site: Site) -> None:
    gbk = site.gbk_paths()
    assert "/tiyu/" in gbk and len([p for p in gbk if p in site.article_paths()]) >= 10
    for path in gbk:
        page = site.pages[path]
        text = page.body.decode("gbk")
        with pytest.raises(UnicodeDecodeError):
            page.body.decode("utf-8")
        assert "体育" in text
        if path in site.undeclared_charset_paths():
            continue
        assert page.headers["Content-Type"] == "text/html; charset=gbk"
        assert '<meta charset="gbk">' in text
    (undeclared,) = site.undeclared_charset_paths()
    page = site.pages[undeclared]
    assert undeclared.startswith("/tiyu/") and undeclared in site.article_paths()
    assert page.headers["Content-Type"] == "text/html"
    assert b"charset" not in page.body.lower()
    assert site.expected(undeclared)["title"] in page.body.decode("gbk")
    for path in site.pages:
        if path not in gbk and site.pages[path].body:
            site.pages[path].body.decode("utf-8")


def test_broken_pages(site: Site) -> None:
    broken = site.broken_paths()
    assert sorted(broken.values()) == ["404", "500", "empty"]
    for path, kind in broken.items():
        assert path not in site.article_paths()
        if kind == "404":
            assert path not in site.pages
        elif kind == "500":
            assert site.pages[path].status == 500
        else:
            assert site.pages[path].status == 200 and site.pages[path].body == b""


def test_robots_and_headers(site: Site) -> None:
    robots = site.pages["/robots.txt"]
    assert robots.headers["Content-Type"].startswith("text/plain")
    assert robots.body == b"User-agent: *\nDisallow:\n"
    for path, page in site.pages.items():
        if page.status == 200:
            assert re.fullmatch(r'"[0-9a-f]{24}"', page.headers["ETag"]), path
            assert page.headers["Last-Modified"].endswith(" GMT")
    with pytest.raises(ValueError):
        build_site(edition=3)
    with pytest.raises(ValueError):
        build_site(variant="no-such-variant")


# ---- edition 2 -------------------------------------------------------------------------------


def test_edition_two(site: Site, site2: Site) -> None:
    changed = [p for p in site.pages if p in site2.pages and site.pages[p] != site2.pages[p]]
    new = sorted(set(site2.pages) - set(site.pages))
    assert set(site.pages) <= set(site2.pages)
    (changed_article,) = site2.changed_paths()
    assert sorted(changed) == sorted([changed_article, "/keji/"])
    assert new == sorted(site2.new_article_paths()) and len(new) == 2
    assert sorted(site2.article_paths()) == sorted(site.article_paths() + new)

    old, cur = site.expected(changed_article), site2.expected(changed_article)
    assert old["title"] == cur["title"] and old["body"] != cur["body"]
    assert sum(x != y for x, y in zip(old["body"], cur["body"], strict=True)) == 1
    assert site.pages[changed_article].headers["ETag"] != site2.pages[changed_article].headers["ETag"]
    assert site2.pages[changed_article].headers["Last-Modified"] == "Sat, 10 Jan 2026 00:00:00 GMT"

    listing = [str(h) for h in _doc(site2, "/keji/").xpath('//ul[@class="list"]/li/a/@href')]
    newest_first = sorted(new, key=lambda p: site2.expected(p)["published_at"], reverse=True)
    assert listing[:2] == newest_first
    old_listing = [str(h) for h in _doc(site, "/keji/").xpath('//ul[@class="list"]/li/a/@href')]
    assert listing[2:] == old_listing
    for path in new:
        exp = site2.expected(path)
        assert exp["category"] == "科技" and exp["published_at"] < "2026"


# ---- the HTTP server -------------------------------------------------------------------------


def _get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_server_serves_pages_and_conditional_requests(site: Site, site2: Site) -> None:
    with SampleServer(site) as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
        status, headers, body = _get(server.url + SEED_PATH)
        assert status == 200 and body == site.pages[SEED_PATH].body
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert int(headers["Content-Length"]) == len(body)
        etag, modified = headers["ETag"], headers["Last-Modified"]

        status, headers, body = _get(server.url + SEED_PATH, {"If-None-Match": etag})
        assert (status, body) == (304, b"") and headers["ETag"] == etag
        assert _get(server.url + SEED_PATH, {"If-Modified-Since": modified})[0] == 304
        # If-None-Match takes precedence over If-Modified-Since
        both = {"If-None-Match": '"other"', "If-Modified-Since": modified}
        assert _get(server.url + SEED_PATH, both)[0] == 200
        assert _get(server.url + SEED_PATH, {"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"})[0] == 200

        status, headers, body = _get(server.url + SEED_PATH, method="HEAD")
        assert status == 200 and body == b""
        assert int(headers["Content-Length"]) == len(site.pages[SEED_PATH].body)

        assert _get(server.url + SEED_PATH + "?from=related")[2] == site.pages[SEED_PATH].body
        assert _get(server.url + "/no/such/page.html")[0] == 404
        kinds = {kind: path for path, kind in site.broken_paths().items()}
        assert _get(server.url + kinds["404"])[0] == 404
        assert _get(server.url + kinds["500"])[0] == 500
        assert _get(server.url + kinds["empty"])[:3:2] == (200, b"")
        status, headers, body = _get(server.url + site.undeclared_charset_paths()[0])
        assert status == 200 and headers["Content-Type"] == "text/html"
        status, headers, _ = _get(server.url + "/robots.txt")
        assert status == 200 and headers["Content-Type"].startswith("text/plain")

        log = server.request_log
        assert log[0] == ("GET", SEED_PATH, 200) and log[1] == ("GET", SEED_PATH, 304)
        assert ("HEAD", SEED_PATH, 200) in log and ("GET", SEED_PATH + "?from=related", 200) in log
        assert ("GET", "/no/such/page.html", 404) in log

        # swap to edition 2: the edited page no longer matches the old validators
        (changed,) = site2.changed_paths()
        old_etag = site.pages[changed].headers["ETag"]
        server.set_site(site2)
        status, _, body = _get(server.url + changed, {"If-None-Match": old_etag})
        assert status == 200 and body == site2.pages[changed].body
        unchanged = site.pages[SEED_PATH].headers["ETag"]
        assert _get(server.url + SEED_PATH, {"If-None-Match": unchanged})[0] == 304
        server.clear_log()
        assert server.request_log == []
    with pytest.raises(OSError):
        _get(server.url + "/")


def test_server_accepts_a_factory() -> None:
    server = SampleServer(lambda: build_site(2))
    try:
        assert server.site.edition == 2
        assert _get(server.url + "/")[0] == 200
    finally:
        server.stop()
        server.stop()  # idempotent


# ---- command line ----------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def test_cli_serve_prints_one_line_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "snapcrawl.sample", "serve", "--port", "0", "--edition", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"serving (http://127\.0\.0\.1:\d+/)\n", line)
        assert match, line
        status, _, body = _get(match.group(1))
        assert status == 200 and "资讯频道" in body.decode()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0 and out == "" and err == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_build_and_bad_arguments(tmp_path: Path, site: Site) -> None:
    run = [sys.executable, "-m", "snapcrawl.sample"]
    result = subprocess.run(
        [*run, "build", str(tmp_path / "out")], capture_output=True, text=True, env=_env(), cwd=REPO, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "index.html").read_bytes() == site.pages["/"].body
    assert (tmp_path / "out" / SEED_PATH.lstrip("/")).read_bytes() == site.pages[SEED_PATH].body
    assert (tmp_path / "out" / "_manifest.json").exists()
    for args in (["serve", "--edition", "9"], ["serve", "--port", "99999"], ["frobnicate"], []):
        bad = subprocess.run([*run, *args], capture_output=True, text=True, env=_env(), cwd=REPO, timeout=60)
        assert bad.returncode == 2 and "usage:" in bad.stderr, args
