"""The snapshot page class on saved sample-site pages, with and without the site profile,
plus profile loading, per-field override and the operator's ``extract --explain`` tool."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from scrapy.http import HtmlResponse

from snapcrawl.evaluate import pages_in, score_page
from snapcrawl.middlewares.encoding import EncodingMiddleware
from snapcrawl.pages.snapshot import SnapshotPage
from snapcrawl.profiles import ProfileError, ProfileRegistry, load_profile, parse_profile
from snapcrawl.sample.site import Site

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_FIXTURES = pages_in([ROOT / "tests" / "fixtures" / "sample"])
REGISTRY = ProfileRegistry.from_dirs()


@pytest.mark.parametrize("profile", [None, "sample"])
@pytest.mark.parametrize("page", SAMPLE_FIXTURES, ids=lambda p: p.stem)
def test_saved_sample_page(page: Path, profile: str | None) -> None:
    score = score_page(page, REGISTRY.get(profile) if profile else None)
    assert score.wrong == [], "\n".join(score.wrong)


def _response(site: Site, path: str) -> HtmlResponse:
    page = site.pages[path]
    resp = HtmlResponse(url="http://127.0.0.1:9" + path, body=page.body, headers=page.headers)
    return EncodingMiddleware().process_response(None, resp)  # type: ignore[arg-type,return-value]


@pytest.mark.parametrize("profile", [None, "sample"])
def test_every_sample_article_in_process(site: Site, profile: str | None) -> None:
    """All 71 articles of the generated site, every field, generic extractor and profile alike."""
    prof = REGISTRY.get(profile) if profile else None
    for path in site.article_paths():
        result = SnapshotPage(_response(site, path), prof).result()
        assert result.kind == "article", path
        got = asdict(result.article)  # type: ignore[arg-type]
        want = site.expected(path, "http://127.0.0.1:9")
        for f in ("title", "category", "published_at", "source", "reposted_from"):
            assert got[f] == want[f], (path, f)
        assert got["body"] == "\n\n".join(want["body"]), path
        assert got["snapshot"] == want["snapshot"], path
        assert [e["url"] for e in got["related"]] == [e["url"] for e in want["related"]], path
    for path in site.listing_paths():
        assert SnapshotPage(_response(site, path), prof).result().kind == "listing", path


def test_profile_picked_by_meta_and_overrides_field_by_field(site: Site) -> None:
    resp = _response(site, site.seed_path)
    generic = SnapshotPage(resp)
    assert REGISTRY.for_meta(generic.meta) is REGISTRY.get("sample")
    only_title = parse_profile({"name": "t", "fields": {"title": "div.info"}}, Path("t.toml"))
    page = SnapshotPage(_response(site, site.seed_path), only_title)
    item = page.to_item()
    explain = page.explain()
    assert item.title.startswith("类别:科技")  # the profile's (deliberately odd) selector wins for title
    assert explain["title"] == "profile:t:css:div.info"
    assert item.source == "人民资讯" and explain["source"] == "label:来源"  # the rest stays generic
    missing = parse_profile({"name": "m", "fields": {"source": "span.nothing-here"}}, Path("m.toml"))
    page = SnapshotPage(_response(site, site.seed_path), missing)
    assert page.to_item().source == "人民资讯"  # selector matched nothing: the generic rule filled it
    assert page.explain()["profile_miss.source"] == "css:span.nothing-here"


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('name = "x"\nunknown = 1\n', "key 'unknown'"),
        ('name = "x"\n[fields]\ntitel = "h1"\n', "key 'fields.titel'"),
        ('name = "x"\n[fields]\ntitle = "h1[["\n', "key 'fields.title.css'"),
        ('name = "x"\n[fields]\ntitle = { xpath = "//h1[" }\n', "key 'fields.title.xpath'"),
        ('name = "x"\n[fields]\ntitle = { css = "h1", regex = "(" }\n', "key 'fields.title.regex'"),
        ('name = "x"\ntimezone = "Mars/Base"\n', "key 'timezone'"),
        ('name = "x"\nrender_js = "yes"\n', "key 'render_js'"),
        ('name = "x"\n[links]\narticle = "(["\n', "key 'links.article'"),
        ('name = "x"\n[crawl]\ndownload_delay = -1\n', "key 'crawl.download_delay'"),
        ('name = "x"\n[lists.related]\ntitle = "a"\n', "key 'lists.related.entries'"),
        ('name = "x"\n[fields\n', "not valid TOML"),
    ],
)
def test_malformed_profile_names_file_and_key(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert str(path) in str(err.value) and key in str(err.value)


def test_malformed_profile_fails_the_crawl_at_start(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('name = "bad"\n[fields]\ntitle = 3\n', encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scrapy",
            "crawl",
            "snapshots",
            "-a",
            "start_urls=http://127.0.0.1:9/",
            "-s",
            f"SNAPCRAWL_PROFILES_DIRS={tmp_path}",
            "-s",
            f"SNAPCRAWL_EXPORT_URI={tmp_path / 'ex'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "bad.toml" in proc.stderr and "fields.title" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_profile_argument(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scrapy",
            "crawl",
            "snapshots",
            "-a",
            "start_urls=http://127.0.0.1:9/",
            "-a",
            "profile=nosuch",
            "-s",
            f"SNAPCRAWL_EXPORT_URI={tmp_path / 'ex'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "nosuch" in proc.stderr and "sample" in proc.stderr


def test_extract_explain_cli() -> None:
    page = ROOT / "tests" / "fixtures" / "sample" / "seed_keji.html"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snapcrawl",
            "extract",
            str(page),
            "--url",
            "http://news.example.cn/keji/20240924/a5123a2fe4da1fb3.html?utm_source=x",
            "--explain",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["kind"] == "article" and out["profile"] == "sample"
    assert out["record"]["url"] == "http://news.example.cn/keji/20240924/a5123a2fe4da1fb3.html"
    assert out["record"]["source"] == "人民资讯"
    assert out["explain"]["title"].startswith("profile:sample:css:")
    assert out["explain"]["reposted_from"].startswith("profile:sample")
    generic = subprocess.run(
        [
            sys.executable,
            "-m",
            "snapcrawl",
            "extract",
            str(ROOT / "tests/fixtures/templates/tmpl03_dl_fullwidth/article_1.html"),
            "--explain",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    explain = json.loads(generic.stdout)["explain"]
    assert explain["category"] == "label:栏目" and explain["snapshot.collector"] == "host-in-disclaimer"
    missing = subprocess.run(
        [sys.executable, "-m", "snapcrawl", "extract", "/no/such/page.html"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "/no/such/page.html" in missing.stderr
