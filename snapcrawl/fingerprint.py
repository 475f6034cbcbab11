"""Request fingerprints on canonical URLs, so URL variants of one page are fetched once."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from scrapy.crawler import Crawler
from scrapy.http import Request
from scrapy.utils.request import fingerprint

from snapcrawl.processors import DEFAULT_TRACKING_PARAMS, canonical_url


class CanonicalRequestFingerprinter:
    """Scrapy's fingerprint of the request with its URL canonicalised (tracking params,
    fragment, default port, query order). Requests built by the spider are already
    canonical; this catches redirects and URLs from other sources (start URLs, Redis)."""

    def __init__(self, tracking: tuple[str, ...] = DEFAULT_TRACKING_PARAMS) -> None:
        self.tracking = tracking
        self._cache: WeakKeyDictionary[Request, bytes] = WeakKeyDictionary()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CanonicalRequestFingerprinter:
        tracking = tuple(crawler.settings.getlist("SNAPCRAWL_TRACKING_PARAMS") or DEFAULT_TRACKING_PARAMS)
        return cls(tracking)

    def fingerprint(self, request: Request) -> bytes:
        cached = self._cache.get(request)
        if cached is not None:
            return cached
        url = canonical_url(request.url, tracking=self.tracking)
        target = request if url is None or url == request.url else request.replace(url=url)
        fp = fingerprint(target)
        self._cache[request] = fp
        return fp
