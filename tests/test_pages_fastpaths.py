"""The extraction shortcuts give what the long way gives: ``SnapshotPage.with_profile``, the
per-page memos, the one-pass list-field selection, the fast canonical URL and the direct loader."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itemloaders import ItemLoader
from lxml import html as lxml_html
from scrapy.http import HtmlResponse

from snapcrawl import processors as P
from snapcrawl.evaluate import load_page, pages_in
from snapcrawl.loaders import ArticleLoader, FastLoader, SnapshotLoader
from snapcrawl.pages.dom import element_text, linearize
from snapcrawl.pages.snapshot import SnapshotPage, _labels_for, _one_step, _select, _select_in_each
from snapcrawl.profiles import ProfileRegistry

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = pages_in([ROOT / "tests" / "fixtures" / d for d in ("sample", "templates", "blind")])
REGISTRY = ProfileRegistry.from_dirs()
FETCHED = datetime(2026, 1, 20, 8, 0, 0, tzinfo=timezone.utc)


def _record(page: SnapshotPage) -> dict[str, Any]:
    r = page.result()
    return {
        "kind": r.kind,
        "url": r.url,
        "article": asdict(r.article) if r.article else None,
        "links": [asdict(x) for x in r.links],
        "explain": r.explain,
        "problems": r.problems,
    }


# ---------------------------------------------------------------------- with_profile


@pytest.mark.parametrize("page_path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_with_profile_equals_a_fresh_page(page_path: Path) -> None:
    _, resp = load_page(page_path)
    sample = REGISTRY.get("sample")
    first = SnapshotPage(resp, None, fetched_at=FETCHED, tracking=("ref",))
    assert first.meta is not None and first.lines is not None  # what the spider reads first
    switched = first.with_profile(sample)
    fresh = SnapshotPage(resp, sample, fetched_at=FETCHED, tracking=("ref",))
    assert switched.profile is sample and switched.tracking == fresh.tracking and switched.url == fresh.url
    assert _record(switched) == _record(fresh)
    assert switched.dated_links() == fresh.dated_links()
    # the parsed document and its lines are shared, not rebuilt
    assert switched.root is first.root and switched.lines is first.lines and switched.meta is first.meta
    # and the first page still reads as the profile-less page it is
    assert _record(first) == _record(SnapshotPage(resp, None, fetched_at=FETCHED, tracking=("ref",)))
    # back to no profile works the same way
    assert _record(switched.with_profile(None)) == _record(first)


def test_with_profile_before_anything_is_computed() -> None:
    _, resp = load_page(ROOT / "tests" / "fixtures" / "sample" / "caijing_h3.html")
    page = SnapshotPage(resp, fetched_at=FETCHED).with_profile(REGISTRY.get("sample"))
    assert _record(page) == _record(SnapshotPage(resp, REGISTRY.get("sample"), fetched_at=FETCHED))


@pytest.mark.parametrize("page_path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_dated_links_same_before_and_after_result(page_path: Path) -> None:
    _, resp = load_page(page_path)
    for profile in (None, REGISTRY.get("sample")):
        after = SnapshotPage(resp, profile, fetched_at=FETCHED)
        after.result()
        assert after.dated_links() == SnapshotPage(resp, profile, fetched_at=FETCHED).dated_links()


def test_labels_built_once_per_profile() -> None:
    sample = REGISTRY.get("sample")
    assert _labels_for(sample) is _labels_for(sample)
    assert _labels_for(None) is _labels_for(None)


# ---------------------------------------------------------------------- list fields in one pass

_LIST_HTML = """<html><body><div class="related"><ul>
<li><a class="t" href="/a.html">First <b>bold</b> tail</a><p class="s">one</p><span class="d">2024-01-02</span></li>
<li><a class="t" href="/b.html"></a>loose text<p class="s">two <i>x</i> more</p></li>
<li><div><a class="t" href="/c.html">Nested</a></div><ul><li><a class="t" href="/d.html">Inner</a></li></ul></li>
<li>no link <span class="d">2024-01-05</span></li>
</ul><p class="s">outside</p></div><div class="more"><li><a class="t">elsewhere</a></li></div></body></html>"""


@pytest.mark.parametrize(
    ("entries", "css"),
    [
        ("div.related li", "a.t::text"),
        ("div.related li", "a.t::attr(href)"),
        ("div.related li", "p.s::text"),
        ("div.related li", "p.s"),
        ("div.related li", "span.d::text"),
        ("div.related li", "*::text"),
        ("div.related li", "a"),
        ("div.related li", "li::text"),
        ("div.related li", "div > a::text"),  # a combinator: entry by entry
        ("div.related li, div.more li", "a.t::text"),  # entries under different parents
        ("li", "a.t::text"),
    ],
)
def test_select_in_each_matches_per_entry_selection(entries: str, css: str) -> None:
    root = lxml_html.fromstring(_LIST_HTML)
    els = [e for e in _select(root, entries, None) if not isinstance(e, str)]
    assert _select_in_each(els, css) == [_select(el, css, None) for el in els]


@pytest.mark.parametrize(
    ("css", "one"),
    [
        ("a.t::text", True),
        ("a::attr(href)", True),
        ("a[title='x|y/z']::text", True),
        ("a:not(.x)", True),
        ("div > a", False),
        ("li a::text", False),
        ("a, b", False),
    ],
)
def test_one_step_selectors(css: str, one: bool) -> None:
    assert _one_step(css) is one


@pytest.mark.parametrize(
    "markup",
    ["<p>a\u3000 b\u200b</p>", "<p></p>", "<script>x</script>", "<br>", "<p>a<b>b</b>c</p>", "<span> x </span>"],
)
def test_element_text_of_a_leaf_is_its_line(markup: str) -> None:
    el = lxml_html.fragment_fromstring(markup, create_parent="div")[0]
    assert element_text(el) == " ".join(line.text for line in linearize(el))


# ---------------------------------------------------------------------- canonical_url


@pytest.mark.parametrize(
    "url",
    [
        "/a/b.html",
        "/a//b",
        "/./a",
        "/a/../b",
        "/x/index.html",
        "/~u/",
        "//h.com/a",
        "http://S.cn/a",
        "HTTPS://s.cn:443/a",
        "http://s.cn:8080",
        "http://s.cn:99999/a",
        "http://a..b/x",
        "http://a.com./x",
        "http://127.000.0.1/x",
        "http://0x7f.1/x",
        "http://" + "x" * 70 + ".com/a",
        "http://s.cn/a?b=1",
        "http://s.cn/中文",
        "2.html",
    ],
)
@pytest.mark.parametrize(
    "base", [None, "", "http://x.test/a/", "http://[::1", "ftp://f/", "http:foo", "HTTP://A.cn:80/k?q"]
)
@pytest.mark.parametrize("strip_index", [False, True])
def test_canonical_url_fast_path_equals_the_long_way(url: str, base: str | None, strip_index: bool) -> None:
    want = P._canonical_full.__wrapped__(url, base or None, P.DEFAULT_TRACKING_PARAMS, strip_index)
    assert P.canonical_url(url, base, strip_index=strip_index) == want


_URL_CHARS = st.sampled_from([*"aZ09.-_~/%?#&=:;@[]\\ é中", "/", "/", "a", "index.html", "..", "http://", "h.cn"])


@settings(max_examples=400, deadline=None)
@given(
    st.lists(_URL_CHARS, max_size=10).map("".join),
    st.sampled_from([None, "http://x.test/a/", "https://S.cn:443/k/1.html", "http://[::1", "mailto:x"]),
    st.booleans(),
)
def test_canonical_url_fast_path_fuzzed(url: str, base: str | None, strip_index: bool) -> None:
    stripped = url.strip()
    want = (
        None
        if not stripped or stripped.startswith("#")
        else P._canonical_full.__wrapped__(stripped, base, P.DEFAULT_TRACKING_PARAMS, strip_index)
    )
    assert P.canonical_url(url, base, strip_index=strip_index) == want
    for prefix in ("http://h.cn", "HTTPS://H.cn:8443"):
        full = prefix + url
        want = P._canonical_full.__wrapped__(full.strip(), base, P.DEFAULT_TRACKING_PARAMS, strip_index)
        assert P.canonical_url(full, base, strip_index=strip_index) == want


# ---------------------------------------------------------------------- FastLoader


def _filled(loader: Any) -> Any:
    loader.add_value("url", "http://S.cn/a.html?utm_source=x")
    loader.add_value("title", "  标题\u3000一 ")
    loader.add_value("title", "second")
    loader.add_value("category", "【科技】")
    loader.add_value("source", None)
    loader.add_value("published_at", "2024-09-24 15:46")
    loader.add_value("published_at_raw", "")
    loader.add_value("body", ["p1 ", "", None, "p2"])
    loader.add_value("language", "zh")
    loader.add_value("related", [{"url": "x"}])
    return loader


def test_fast_loader_equals_item_loader() -> None:
    ctx = {"tz": "Asia/Shanghai", "base_url": "http://s.cn/", "tracking": P.DEFAULT_TRACKING_PARAMS}
    ref = datetime(2024, 9, 25, tzinfo=timezone.utc)
    slow: ItemLoader = _filled(ArticleLoader(**ctx, reference=ref))  # type: ignore[arg-type]
    fast: FastLoader = _filled(FastLoader(ArticleLoader, **ctx, reference=ref))
    for name in ("title", "body", "category", "source", "nothing_here"):
        if name != "nothing_here":
            assert fast.get_output_value(name) == slow.get_output_value(name)
    assert asdict(fast.load_item()) == asdict(slow.load_item())

    snap_slow: ItemLoader = SnapshotLoader(**ctx, reference=ref)  # type: ignore[arg-type]
    snap_fast = FastLoader(SnapshotLoader, **ctx, reference=ref)
    for loader in (snap_slow, snap_fast):
        loader.add_value("collector", " TD.Fyun.CC ")
        loader.add_value("original_url", "暂无")
        loader.add_value("notice", None)
    assert snap_fast.get_output_value("disclaimer") == snap_slow.get_output_value("disclaimer") == ""
    assert asdict(snap_fast.load_item()) == asdict(snap_slow.load_item())


def test_sample_page_record_unchanged_by_profile_switch() -> None:
    """The spider's way (profile-less page, then with_profile) gives the records evaluate scores."""
    _, resp = load_page(ROOT / "tests" / "fixtures" / "sample" / "gbk_tiyu.html")
    assert isinstance(resp, HtmlResponse)
    page = SnapshotPage(resp, fetched_at=FETCHED)
    profile = REGISTRY.for_meta(page.meta)
    assert profile is REGISTRY.get("sample")
    assert _record(page.with_profile(profile)) == _record(SnapshotPage(resp, profile, fetched_at=FETCHED))
