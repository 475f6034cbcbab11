"""Request priorities for followed links: newest articles first; URL-variant accounting.

A page's lists show a date beside most article links (``SnapshotPage.dated_links()``); a link
dated today gets the highest priority and each day of age lowers it by one, so a crawl (and a
recrawl after a listing page gained new stories) fetches the newest stories first. Undated
links (pagination, category pages) keep priority 0. Priorities are whole days within a ten-year
horizon, which keeps the number of distinct priorities (one scheduler queue each) bounded.

It also counts ``snapcrawl/dedup/url_variant``: links whose raw href differs from their
canonical URL (tracking parameters, fragment, default port, ``index.html``) when that
canonical URL was already requested, i.e. fetches that canonicalisation saved (a raw variant
met again is counted once: the duplicate filter would have caught the repeat anyway).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone

from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector

from snapcrawl.pages.snapshot import LISTING, PageResult, SnapshotPage

#: Days of age over which priorities fall; older (and undated) links get the lowest ones.
HORIZON_DAYS = 3650


class RequestPriority:
    """Priority of a request for a followed link, from the date shown beside the link."""

    def __init__(self, crawler: Crawler | None = None, now: datetime | None = None) -> None:
        self.crawler = crawler
        self.now = now or datetime.now(timezone.utc)
        self._seen: set[int] = set()  # hashes of canonical URLs requested so far
        self._variants: set[int] = set()  # hashes of raw variant URLs met so far (a repeat is no new variant)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RequestPriority:
        return cls(crawler)  # built with the spider, before the crawler has its stats: read them on use

    @property
    def stats(self) -> StatsCollector | None:
        return self.crawler.stats if self.crawler is not None else None

    @staticmethod
    def dates_for(page: SnapshotPage, result: PageResult) -> Mapping[str, str]:
        """Canonical URL -> ISO date of the links a page shows dated.

        An article's own lists already carry the dates (no second pass over the page); a
        listing page is read with ``dated_links()`` (a few ms per listing page).
        """
        if result.article is not None:
            return {
                e["url"]: e["published_at"]
                for entries in (result.article.related, result.article.more_in_category)
                for e in entries
                if e.get("url") and e.get("published_at")
            }
        if result.kind == LISTING:
            return page.dated_links()
        return {}

    def recency(self, date_iso: str | None) -> int:
        """``HORIZON_DAYS`` for a link dated today (or in the future), 1 for the oldest, 0 undated."""
        if not date_iso:
            return 0
        try:
            when = datetime.fromisoformat(date_iso)
        except ValueError:
            return 0
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        age = max(0, (self.now - when).days)
        return max(1, HORIZON_DAYS - age)

    def for_link(self, url: str, href: str | None = None, dates: Mapping[str, str] | None = None) -> int:
        """Priority for following ``url`` (canonical), found as ``href``; counts URL variants."""
        key = hash(url)
        if href is not None and href != url:
            raw = hash(href)
            if key in self._seen and raw not in self._variants and self.stats is not None:
                self.stats.inc_value("snapcrawl/dedup/url_variant")
            self._variants.add(raw)
        self._seen.add(key)
        return self.recency((dates or {}).get(url))

    def seen(self, url: str) -> None:
        """Record a URL requested by other means (start URLs)."""
        self._seen.add(hash(url))
