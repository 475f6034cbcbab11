"""Incremental recrawls: conditional requests for articles the last run already exported.

For a URL the project's state store knows as an article with an ``ETag`` or
``Last-Modified`` from the last confirmed run, the request carries ``If-None-Match`` /
``If-Modified-Since``. A ``304 Not Modified`` answer is counted as unchanged
(``snapcrawl/dedup/unchanged``) and handed to the spider, which ignores it: nothing is parsed
or exported. Listing pages and every other non-article page are always fetched in full, so
new articles are found. Servers without validators are handled by the dedup pipeline, which
compares content hashes instead.

Why not Scrapy's HttpCacheMiddleware with RFC2616Policy: it stores every response body
(gigabytes for a large site, kept forever) to revalidate it, and on a 304 it hands the spider
the *cached* page, which would then be parsed and exported again as if new. Here a URL costs
one small row (kind, content hash, validators) and a 304 ends the page's processing.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.statscollectors import StatsCollector

from snapcrawl.dedup import is_persistent, open_store
from snapcrawl.dedup.store import StateStore
from snapcrawl.processors import DEFAULT_TRACKING_PARAMS, canonical_url
from snapcrawl.run import get_run

logger = logging.getLogger(__name__)

#: Request meta key: set to True to always fetch a URL in full.
UNCONDITIONAL = "snapcrawl_unconditional"
CONDITIONAL = "snapcrawl_conditional"


class IncrementalMiddleware:
    """Adds validators to requests for known articles; counts 304s; records this run's validators."""

    def __init__(self, crawler: Crawler) -> None:
        assert crawler.stats is not None
        self.crawler = crawler
        self.stats: StatsCollector = crawler.stats
        self.tracking = tuple(crawler.settings.getlist("SNAPCRAWL_TRACKING_PARAMS") or DEFAULT_TRACKING_PARAMS)
        self.store: StateStore | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IncrementalMiddleware:
        settings = crawler.settings
        if not settings.getbool("SNAPCRAWL_INCREMENTAL", True):
            raise NotConfigured("SNAPCRAWL_INCREMENTAL is off")
        if not is_persistent(settings):
            raise NotConfigured("no persistent state (SNAPCRAWL_STATE_PATH is empty and no SNAPCRAWL_REDIS_URL)")
        mw = cls(crawler)
        crawler.signals.connect(mw.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    def spider_opened(self, spider: Spider) -> None:
        self.store = open_store(self.crawler.settings, get_run(self.crawler).run_id)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def _url(self, request: Request) -> str:
        return canonical_url(request.url, tracking=self.tracking) or request.url

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if self.store is None or request.method != "GET" or request.meta.get(UNCONDITIONAL):
            return None
        if b"If-None-Match" in request.headers or b"If-Modified-Since" in request.headers:
            return None  # set by someone else on purpose
        state = self.store.page(self._url(request))
        if state is None or not state.conditional:
            return None
        if state.etag:
            request.headers[b"If-None-Match"] = state.etag
        if state.last_modified:
            request.headers[b"If-Modified-Since"] = state.last_modified
        request.meta[CONDITIONAL] = True
        allowed = list(request.meta.get("handle_httpstatus_list") or [])
        if 304 not in allowed:  # let the 304 reach the spider instead of HttpErrorMiddleware's errback
            request.meta["handle_httpstatus_list"] = [*allowed, 304]
        self.stats.inc_value("snapcrawl/incremental/conditional_requests")
        return None

    def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Any:
        if self.store is None:
            return response
        if response.status == 304 and request.meta.get(CONDITIONAL):
            self.stats.inc_value("snapcrawl/dedup/unchanged")
            self.stats.inc_value("snapcrawl/incremental/not_modified")
            logger.debug("not modified since the last run: %s", request.url)
        elif 200 <= response.status < 300:
            etag = response.headers.get(b"ETag")
            modified = response.headers.get(b"Last-Modified")
            self.store.note_fetch(
                self._url(request),
                etag.decode("latin-1") if etag else None,
                modified.decode("latin-1") if modified else None,
            )
        return response
