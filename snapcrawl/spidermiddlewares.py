"""Spider middlewares that keep a crawl finite and its accounting whole.

* :class:`UrlPatternLimitMiddleware` cuts link traps: endless calendars
  (``/calendar/2024/09/24`` -> next day -> ...), session ids in paths, ``?page=N`` without end.
  URLs are grouped by host and *pattern* (the path and query with every run of digits
  collapsed, so ``/calendar/2024/09/24`` and ``/calendar/2031/01/02`` are one pattern); once a
  pattern has ``SNAPCRAWL_MAX_URLS_PER_PATTERN`` distinct URLs, further ones are not followed.
  Links cut by ``DEPTH_LIMIT`` are counted here too, since Scrapy drops those without a count.
* :class:`PageFailureMiddleware` records a page whose callback raised as failed
  (``parse_error``), so a parser bug costs one page that is listed in ``report.json``, not
  a page that silently vanishes.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.spidermiddlewares.base import BaseSpiderMiddleware
from scrapy.spiders import Spider
from scrapy.utils.httpobj import urlparse_cached

from snapcrawl.middlewares.safety import report_section

logger = logging.getLogger(__name__)

_DIGITS = re.compile(r"\d+")


def url_pattern(request: Request) -> str:
    """``host/path?query`` with digit runs collapsed to ``0``: the shape a trap repeats."""
    parts = urlparse_cached(request)
    tail = parts.path + ("?" + parts.query if parts.query else "")
    return f"{(parts.hostname or '').lower()}{_DIGITS.sub('0', tail)}"


class UrlPatternLimitMiddleware(BaseSpiderMiddleware):
    """Caps distinct URLs per URL pattern and counts depth-limited links (module docstring).

    Sits spider-side of DepthMiddleware (900), so it sees every link before the depth cut.
    Counts live in memory: a resumed (``JOBDIR``) crawl starts them afresh.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        self.limit = settings.getint("SNAPCRAWL_MAX_URLS_PER_PATTERN", 1000)
        self.max_depth = settings.getint("DEPTH_LIMIT")
        if self.limit < 0:
            raise ValueError(f"setting SNAPCRAWL_MAX_URLS_PER_PATTERN={self.limit}: must be 0 (off) or more")
        self.stats = crawler.stats
        self.seen: dict[str, set[bytes]] = {}
        self.cut: Counter[str] = Counter()
        self.too_deep: set[bytes] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> UrlPatternLimitMiddleware:
        mw = cls(crawler)
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    def get_processed_request(self, request: Request, response: Response | None) -> Request | None:
        if response is None or request.dont_filter:
            return request  # start requests and deliberate re-fetches are the operator's / spider's call
        fp = self.crawler.request_fingerprinter.fingerprint(request)
        depth = int(response.meta.get("depth", 0)) + 1
        if self.max_depth and depth > self.max_depth:
            if fp not in self.too_deep:
                self.too_deep.add(fp)
                self._inc("snapcrawl/traps/depth_limited")
            return None  # DepthMiddleware would drop it too; here it is counted
        if not self.limit:
            return request
        pattern = url_pattern(request)
        urls = self.seen.setdefault(pattern, set())
        if fp in urls:
            return request
        if len(urls) >= self.limit:
            if not self.cut[pattern]:
                logger.warning(
                    "URL pattern %s reached SNAPCRAWL_MAX_URLS_PER_PATTERN=%d: further URLs like %s are not "
                    "followed (a link trap?)",
                    pattern,
                    self.limit,
                    request.url,
                )
            self.cut[pattern] += 1
            self._inc("snapcrawl/traps/pattern_limited")
            return None
        urls.add(fp)
        return request

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(key)

    def spider_closed(self, spider: Spider) -> None:
        report_section(
            self.crawler,
            "traps",
            {
                "max_urls_per_pattern": self.limit,
                "depth_limit": self.max_depth,
                "links_cut_by_pattern": sum(self.cut.values()),
                "links_cut_by_depth": len(self.too_deep),
                "capped_patterns": dict(self.cut.most_common(20)),
            },
        )


class PageFailureMiddleware:
    """Lists a page whose callback raised in ``report.json`` (``parse_error``); Scrapy still logs the
    traceback and counts it under ``spider_exceptions/*``."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageFailureMiddleware:
        return cls(crawler)

    def process_spider_exception(
        self, response: Response, exception: Exception, spider: Spider | None = None
    ) -> Iterable[Any] | None:
        if isinstance(exception, IgnoreRequest):
            return None
        fail = getattr(self.crawler.spider, "_fail", None)
        if fail is not None:
            fail(response.url, "parse_error", f"{type(exception).__name__}: {exception}")
        return None


__all__ = ["PageFailureMiddleware", "UrlPatternLimitMiddleware", "url_pattern"]
