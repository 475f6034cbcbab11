"""The sample site as served bytes plus the ground truth tests assert against.

:func:`build_site` renders the corpus into :class:`Page` objects keyed by URL path.  The
result is byte-for-byte deterministic, so crawls, exports and dedup decisions can be compared
with exact expectations.  Edition 2 models the same site a while later: one article edited in
place and two new ones, with every other page (headers included) unchanged, so incremental
crawling and conditional requests can be tested.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

from snapcrawl.sample import render
from snapcrawl.sample.content import (
    JS_CATEGORY,
    NOTICE,
    TIME_FMT,
    Article,
    Category,
    Corpus,
    Link,
    build_corpus,
    build_js_articles,
)

SITE_ZONE = timezone(timedelta(hours=8), "Asia/Shanghai")
PAGE_SIZE = 10
ROBOTS_TXT = "User-agent: *\nDisallow:\n"
# When each edition was "published"; pages first seen in an edition get it as Last-Modified.
RELEASES: dict[int, datetime] = {
    1: datetime(2025, 12, 20, 0, 0, 0, tzinfo=UTC),
    2: datetime(2026, 1, 10, 0, 0, 0, tzinfo=UTC),
}


@dataclass(frozen=True)
class Page:
    """One response: status, headers (without Content-Length) and exact body bytes."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class _Rendered:
    status: int
    content_type: str
    body: bytes
    modified: datetime | None  # None: no validators (error responses)


def iso(raw: str) -> str:
    """Site-local ``YYYY-MM-DD HH:MM:SS`` as ISO 8601 with the +08:00 offset."""
    return datetime.strptime(raw, TIME_FMT).replace(tzinfo=SITE_ZONE).isoformat()


class Site:
    """Served pages (``pages``) plus ground truth about them.

    Paths are site-relative (``/keji/…``).  Internal link URLs in :meth:`expected` are paths
    too unless ``base_url`` is given, because the server's port is only known at runtime.
    """

    def __init__(self, corpus: Corpus, edition: int, variant: str | None) -> None:
        self.corpus = corpus
        self.edition = edition
        self.variant = variant
        self.seed_path = corpus.seed_path
        self.categories: dict[str, str] = {c.slug: c.label for c in corpus.categories}
        self._articles = _articles_for(corpus, edition)
        rendered, self._listings = _render_all(corpus, self._articles, edition)
        if edition > 1:
            base, _ = _render_all(corpus, _articles_for(corpus, 1), 1)
            for path, page in rendered.items():
                old = base.get(path)
                if page.modified is None:
                    continue
                if old is not None and (old.status, old.body) == (page.status, page.body):
                    rendered[path] = replace(page, modified=old.modified)
                else:
                    rendered[path] = replace(page, modified=RELEASES[edition])
        self.pages: dict[str, Page] = {path: _finish(r) for path, r in rendered.items()}
        self._js_paths: list[str] = []  # set by the "js" variant
        self._disallowed: tuple[str, ...] = ()  # path prefixes robots.txt disallows ("robots-disallow")
        self._undated: set[str] = set()  # article paths without their 发布时间 ("no-dates")

    # ---- ground truth ------------------------------------------------------------------

    def article_paths(self) -> list[str]:
        """Canonical paths of every article page a crawler should export (copy included)."""
        return sorted(self._articles)

    def listing_paths(self) -> list[str]:
        """Category listing pages, all pagination pages included (not the home page)."""
        return list(self._listings)

    def other_paths(self) -> dict[str, str]:
        """Pages that are neither article nor listing: path -> ``home``/``subscribe``/``robots``."""
        return {"/": "home", render.SUBSCRIBE_PATH: "subscribe", "/robots.txt": "robots"}

    def broken_paths(self) -> dict[str, str]:
        """Linked-but-broken pages: path -> ``"404"`` (absent), ``"500"`` or ``"empty"`` (200, no body)."""
        return {b.path: b.kind for b in self.corpus.broken}

    def near_duplicate_pairs(self) -> list[tuple[str, str]]:
        """(original_path, copy_path) for each re-published near-duplicate."""
        return [(self.corpus.near_duplicate_of, self.corpus.near_duplicate.path)]

    def gbk_paths(self) -> list[str]:
        """Pages whose bytes are GBK (the 体育 section), declared or not."""
        return sorted(p for p in self.pages if p.startswith("/tiyu/"))

    def undeclared_charset_paths(self) -> list[str]:
        """GBK pages that declare no charset in either the header or a meta tag."""
        return sorted(p for p, a in self._articles.items() if not a.declare_charset)

    def changed_paths(self) -> list[str]:
        """Article paths whose body differs from edition 1 (same URL)."""
        return [self.corpus.edition2_changed.path] if self.edition >= 2 else []

    def new_article_paths(self) -> list[str]:
        """Article paths that do not exist in edition 1."""
        return [a.path for a in self.corpus.edition2_new] if self.edition >= 2 else []

    def js_article_paths(self) -> list[str]:
        """Article paths whose body a script inserts (variant ``"js"``); also in :meth:`article_paths`."""
        return list(self._js_paths)

    def robots_disallowed_paths(self) -> list[str]:
        """Every served or linked path robots.txt disallows (variant ``"robots-disallow"``)."""
        linked = [*self.pages, *self.broken_paths()]
        return sorted({p for p in linked if any(p.startswith(d) for d in self._disallowed)})

    def undated_paths(self) -> list[str]:
        """Article paths whose page shows no 发布时间 (variant ``"no-dates"``): ``published_at`` is null."""
        return sorted(self._undated)

    def article(self, path: str) -> Article:
        """The content record behind an article page (KeyError for other paths)."""
        return self._articles[path]

    def expected(self, path: str, base_url: str | None = None) -> dict[str, Any]:
        """What a correct extractor yields for the article at ``path`` (record-contract shape).

        ``body`` is the list of paragraphs (sub-headings included, the 本文转自 line excluded,
        indentation stripped); the contract's ``body`` string is ``"\\n\\n".join(body)``.
        """
        a = self._articles[path]
        cat = self.corpus.category(a.cat)
        prefix = base_url.rstrip("/") if base_url else ""
        dup_of = self.corpus.near_duplicate_of if path == self.corpus.near_duplicate.path else None

        def link(entry: Link) -> dict[str, Any]:
            return {
                "title": entry.title,
                "url": prefix + entry.url if entry.internal else entry.url,
                "snippet": entry.snippet,
                "published_at": iso(entry.date),
                "href": entry.href,
            }

        return {
            "path": path,
            "url": prefix + path,
            "title": a.title,
            "category": cat.label,
            "published_at": None if path in self._undated else iso(a.published),
            "published_at_raw": None if path in self._undated else a.published,
            "source": a.source,
            "reposted_from": a.reposted_from,
            "body": [b.text for b in a.blocks],
            "language": "zh",
            "snapshot": {
                "collector": a.collector,
                "captured_at": iso(a.captured),
                "captured_at_raw": a.captured,
                "original_url": a.original_url,
                "disclaimer": a.disclaimer,
                "notice": NOTICE,
            },
            "related": [link(x) for x in a.related],
            "more_in_category": [link(x) for x in a.more],
            "encoding": cat.encoding,
            "charset_declared": a.declare_charset,
            "near_duplicate_of": (prefix + dup_of) if dup_of else None,
        }


def _articles_for(corpus: Corpus, edition: int) -> dict[str, Article]:
    articles = {a.path: a for a in corpus.articles}
    articles[corpus.near_duplicate.path] = corpus.near_duplicate
    if edition >= 2:
        articles[corpus.edition2_changed.path] = corpus.edition2_changed
        articles.update((a.path, a) for a in corpus.edition2_new)
    return articles


def _listing_entries(corpus: Corpus, cat: Category) -> list[tuple[str, str, str, str]]:
    """Edition-1 listing of a category, newest first; the copy sits right after its original."""
    rows: list[tuple[str, int, str, str, str]] = []  # (date, tie, href, title, snippet)
    for a in corpus.articles:
        if a.cat == cat.slug:
            rows.append((a.published, 0, a.path, a.title, _teaser(a)))
    dup = corpus.near_duplicate
    if dup.cat == cat.slug:
        rows.append((dup.published, 1, dup.path, dup.title, _teaser(dup)))
    rows += [(b.date, 0, b.path, b.title, b.snippet) for b in corpus.broken if b.cat == cat.slug]
    rows.sort(key=lambda r: (r[0], -r[1], r[2]), reverse=True)
    return [(href, title, snippet, date) for date, _, href, title, snippet in rows]


def _teaser(a: Article) -> str:
    return a.lead[:48] + "..."


def _render_all(
    corpus: Corpus, articles: dict[str, Article], edition: int
) -> tuple[dict[str, _Rendered], list[str]]:
    cats = corpus.categories
    release = RELEASES[1]
    out: dict[str, _Rendered] = {
        "/": _Rendered(200, "text/html; charset=utf-8", render.home_html(cats).encode(), release),
        render.SUBSCRIBE_PATH: _Rendered(
            200, "text/html; charset=utf-8", render.subscribe_html(cats).encode(), release
        ),
        "/robots.txt": _Rendered(200, "text/plain; charset=utf-8", ROBOTS_TXT.encode(), release),
    }
    for a in articles.values():
        cat = corpus.category(a.cat)
        ctype = f"text/html; charset={cat.encoding}" if a.declare_charset else "text/html"
        body = render.article_html(a, cat, cats).encode(cat.encoding)
        captured = datetime.strptime(a.captured, TIME_FMT).replace(tzinfo=SITE_ZONE).astimezone(UTC)
        out[a.path] = _Rendered(200, ctype, body, captured)

    new_by_cat: dict[str, list[Article]] = {}
    if edition >= 2:
        for a in sorted(corpus.edition2_new, key=lambda x: x.published, reverse=True):
            new_by_cat.setdefault(a.cat, []).append(a)
    listings: list[str] = []
    for cat in cats:
        entries = _listing_entries(corpus, cat)
        chunks = [entries[i:i + PAGE_SIZE] for i in range(0, len(entries), PAGE_SIZE)] or [[]]
        fresh = [(a.path, a.title, _teaser(a), a.published) for a in new_by_cat.get(cat.slug, [])]
        chunks[0] = fresh + chunks[0]  # new stories go on top of page 1; later pages stay put
        for n, chunk in enumerate(chunks, start=1):
            path = render.listing_path(cat, n)
            html = render.listing_html(cat, cats, chunk, n, len(chunks))
            ctype = f"text/html; charset={cat.encoding}"
            out[path] = _Rendered(200, ctype, html.encode(cat.encoding), release)
            listings.append(path)

    for b in corpus.broken:
        if b.kind == "500":
            body = render.error_html(500, "Internal Server Error").encode()
            out[b.path] = _Rendered(500, "text/html; charset=utf-8", body, None)
        elif b.kind == "empty":
            out[b.path] = _Rendered(200, "text/html; charset=utf-8", b"", release)
        # "404": deliberately absent; the server answers 404 for unknown paths.
    return out, listings


def _finish(r: _Rendered) -> Page:
    headers = {"Content-Type": r.content_type}
    if r.modified is not None:
        headers["Last-Modified"] = format_datetime(r.modified, usegmt=True)
        headers["ETag"] = '"' + hashlib.sha256(r.body).hexdigest()[:24] + '"'
    return Page(r.status, headers, r.body)


def _js_section(site: Site) -> None:
    """Add the 专题 section (``/js/``, linked from the home page) whose article bodies are inserted
    by JavaScript from inline JSON: without a browser those pages have metadata but no body."""
    articles = build_js_articles(site.corpus)
    cats = (*site.corpus.categories, JS_CATEGORY)
    site.corpus = replace(site.corpus, categories=cats)
    site.categories[JS_CATEGORY.slug] = JS_CATEGORY.label
    release = RELEASES[1]
    html = "text/html; charset=utf-8"
    for a in articles:
        body = render.article_html(a, JS_CATEGORY, cats, body_script=True).encode()
        captured = datetime.strptime(a.captured, TIME_FMT).replace(tzinfo=SITE_ZONE).astimezone(UTC)
        site.pages[a.path] = _finish(_Rendered(200, html, body, captured))
        site._articles[a.path] = a
        site._js_paths.append(a.path)
    entries = [(a.path, a.title, _teaser(a), a.published) for a in sorted(articles, key=lambda x: x.published)]
    listing = render.listing_path(JS_CATEGORY, 1)
    page = render.listing_html(JS_CATEGORY, cats, entries[::-1], 1, 1)
    site.pages[listing] = _finish(_Rendered(200, html, page.encode(), release))
    site._listings.append(listing)
    site.pages["/"] = _finish(_Rendered(200, html, render.home_html(cats).encode(), release))
    site._js_paths.sort()


ROBOTS_DISALLOW = ("/caijing/",)


def _robots_disallow(site: Site) -> None:
    """robots.txt disallows the 财经 section for every agent (the rest stays allowed)."""
    text = "User-agent: *\n" + "".join(f"Disallow: {p}\n" for p in ROBOTS_DISALLOW)
    site.pages["/robots.txt"] = _finish(_Rendered(200, "text/plain; charset=utf-8", text.encode(), RELEASES[1]))
    site._disallowed = ROBOTS_DISALLOW


def _no_dates(site: Site) -> None:
    """A redesign that drops the 发布时间 from most article pages (every fourth keeps it); all else,
    listings and link-list dates included, is unchanged. Drives the fill-rate drift monitor."""
    for i, path in enumerate(site.article_paths()):
        if i % 4 == 0:
            continue
        a, page = site.article(path), site.pages[path]
        encoding = site.corpus.category(a.cat).encoding
        html = page.body.decode(encoding)
        label = f"发布时间:{a.published}"
        stripped = html.replace(f"<span>{label}</span> ", "").replace(f"{label}&nbsp;", "").replace(f"{label} ", "")
        if stripped == html:
            raise RuntimeError(f"no-dates variant: no {label!r} on {path}")
        body = stripped.encode(encoding)
        headers = {**page.headers, "ETag": '"' + hashlib.sha256(body).hexdigest()[:24] + '"'}
        site.pages[path] = Page(page.status, headers, body)
        site._undated.add(path)


# Named variants of the site; each edits the built site in place.  Unknown names are rejected.
VARIANTS: dict[str, Callable[[Site], None]] = {
    "js": _js_section,
    "robots-disallow": _robots_disallow,
    "no-dates": _no_dates,
}


def build_site(edition: int = 1, variant: str | None = None) -> Site:
    """Render the whole sample site.  Deterministic: equal arguments give identical bytes."""
    if edition not in RELEASES:
        raise ValueError(f"unknown edition {edition!r}; available: {sorted(RELEASES)}")
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; available: {sorted(VARIANTS) or 'none'}")
    site = Site(build_corpus(), edition, variant)
    if variant is not None:
        VARIANTS[variant](site)
    return site
