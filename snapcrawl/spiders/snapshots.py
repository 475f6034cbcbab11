"""The ``snapshots`` spider: decides what to crawl, nothing else.

It starts from the given URLs, follows in-domain links (listing pages, pagination, article
links, related links), canonicalises every URL before requesting it so tracking variants
are fetched once, and hands each page to :class:`~snapcrawl.pages.snapshot.SnapshotPage`.
Off-site links are recorded (in the link records and the stats) and never fetched.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import scrapy
from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response, TextResponse
from scrapy.linkextractors import LinkExtractor
from twisted.python.failure import Failure

from snapcrawl.failures import FailureLog
from snapcrawl.middlewares.backoff import describe_failure
from snapcrawl.pages.snapshot import ARTICLE, EMPTY, LISTING, PageResult, SnapshotPage
from snapcrawl.processors import DEFAULT_TRACKING_PARAMS, canonical_url
from snapcrawl.profiles import Profile, ProfileError, ProfileRegistry
from snapcrawl.render import RENDERED, render_meta
from snapcrawl.spiders.priority import RequestPriority

logger = logging.getLogger(__name__)
ROBOTS_FORBIDDEN = "Forbidden by robots.txt"  # the IgnoreRequest message of Scrapy's RobotsTxtMiddleware


class SpiderArgumentError(ValueError):
    """A spider argument snapcrawl cannot use; the message names the argument and value."""


def parse_start_urls(
    start_urls: str | Iterable[str] | None, urls_file: str | None, *, required: bool = True
) -> list[str]:
    """The start URLs from ``-a start_urls=A,B`` and/or ``-a urls_file=PATH`` (one per line, # comments).

    ``required=False``: none is fine (a distributed worker takes its start URLs from Redis).
    """
    raw: list[str] = []
    if isinstance(start_urls, str):
        raw.extend(u for u in start_urls.replace("\n", ",").split(","))
    elif start_urls:
        raw.extend(start_urls)
    if urls_file:
        path = Path(urls_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpiderArgumentError(f"urls_file={urls_file!r}: cannot read: {exc.strerror or exc}") from exc
        raw.extend(line.split("#", 1)[0] for line in text.splitlines())
    urls: list[str] = []
    for u in (x.strip() for x in raw):
        if not u:
            continue
        cu = canonical_url(u)
        if cu is None:
            raise SpiderArgumentError(f"start URL {u!r} is not an absolute http(s) URL")
        if cu not in urls:
            urls.append(cu)
    if not urls and required:
        raise SpiderArgumentError("no start URLs: pass -a start_urls=URL[,URL...] or -a urls_file=PATH")
    return urls


class SnapshotsSpider(scrapy.Spider):
    name = "snapshots"
    tracking: tuple[str, ...] = DEFAULT_TRACKING_PARAMS
    registry: ProfileRegistry
    forced_profile: Profile | None = None
    link_extractor: LinkExtractor
    priorities: RequestPriority
    render_wait: float = 0.0

    def __init__(
        self,
        start_urls: str | None = None,
        urls_file: str | None = None,
        profile: str | None = None,
        render: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.start_urls = parse_start_urls(start_urls, urls_file, required=False)  # checked in from_crawler
        self.allowed_domains = sorted({urlsplit(u).hostname or "" for u in self.start_urls})
        self.profile_name = profile
        self.render = str(render or "").lower() in ("1", "true", "yes", "on")
        self.page_counts: dict[str, int] = {}
        self.failures: FailureLog = FailureLog()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> SnapshotsSpider:
        spider: SnapshotsSpider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        if not spider.start_urls:
            if not settings.get("SNAPCRAWL_REDIS_URL"):
                parse_start_urls(None, None)  # raises the "no start URLs" error
            # a distributed worker (docs/distributed.md): start URLs and their domains come from Redis
            from snapcrawl.distributed import Keys, connect, shared_domains

            client = connect(str(settings.get("SNAPCRAWL_REDIS_URL")))
            spider.allowed_domains = shared_domains(client, Keys.from_settings(settings, spider.name))
            client.close()
        spider.tracking = tuple(settings.getlist("SNAPCRAWL_TRACKING_PARAMS") or DEFAULT_TRACKING_PARAMS)
        spider.render_wait = settings.getfloat("SNAPCRAWL_RENDER_WAIT", 0.0)
        if spider.render and not settings.getbool("SNAPCRAWL_RENDER_ENABLED", True):
            raise SpiderArgumentError("render=1: rendering is off (SNAPCRAWL_RENDER_ENABLED=false)")
        try:
            spider.registry = ProfileRegistry.from_dirs(settings.getlist("SNAPCRAWL_PROFILES_DIRS"))
            spider.forced_profile = spider.registry.get(spider.profile_name) if spider.profile_name else None
        except ProfileError as exc:
            raise SpiderArgumentError(f"profile: {exc}") from exc
        spider.link_extractor = LinkExtractor(
            allow_domains=(), tags=("a", "area"), attrs=("href",), unique=True, canonicalize=False
        )
        spider.priorities = RequestPriority.from_crawler(crawler)
        if settings.get("JOBDIR"):  # a resumed run reports the failures of its earlier sessions too
            spider.failures = FailureLog(settings.get("JOBDIR"))
        crawler.signals.connect(spider.failures.close, signal=signals.spider_closed)
        return spider

    # ------------------------------------------------------------------ requests

    async def start(self) -> AsyncIterator[Request]:
        for url in self.start_urls:
            yield self.start_request(url)

    def start_request(self, url: str) -> Request:
        """The request for a start URL (given here or, in distributed mode, taken from Redis)."""
        self.priorities.seen(url)
        return self.request_for(url, priority=100)

    def request_for(
        self,
        url: str,
        *,
        priority: int = 0,
        depth_hint: str = "",
        render: float | None = None,
        dont_filter: bool = False,
    ) -> Request:
        """A request for ``url``; ``render`` (seconds to wait after load) sends it through Chromium."""
        meta: dict[str, Any] = {"snapcrawl_found_as": depth_hint} if depth_hint else {}
        if render is not None:
            meta.update(render_meta(render))
        return Request(
            url,
            callback=self.parse,
            errback=self.on_error,
            priority=priority,
            meta=meta or None,
            dont_filter=dont_filter,
        )

    def rendering(self, profile: Profile | None) -> float | None:
        """Seconds to wait after load when pages under ``profile`` are rendered, None when they are not."""
        if not (self.render or (profile is not None and profile.render_js)):
            return None
        wait = profile.crawl.get("render_js_wait") if profile is not None else None
        return float(wait) if wait is not None else self.render_wait

    def render_for(self, url: str, profile: Profile | None) -> float | None:
        """Render article pages (by the profile's ``links.article`` pattern); other pages go plain.

        A page of unknown kind is fetched plain and re-fetched through Chromium only if it turns
        out to be an article without body (see :meth:`parse`).
        """
        wait = self.rendering(profile)
        if wait is None or profile is None or profile.article_url is None:
            return None
        return wait if profile.article_url.search(url) else None

    def in_scope(self, host: str) -> bool:
        return any(host == d or host.endswith("." + d) for d in self.allowed_domains)

    def profile_for(self, response: TextResponse, page: SnapshotPage) -> Profile | None:
        if self.forced_profile is not None:
            return self.forced_profile
        host = urlsplit(response.url).hostname or ""
        return self.registry.for_host(host) or self.registry.for_meta(page.meta)

    def follow_links(
        self, response: TextResponse, profile: Profile | None, dates: Mapping[str, str] | None = None
    ) -> Iterator[Request]:
        stats = self.crawler.stats
        assert stats is not None
        tracking = self.tracking + (profile.tracking_params if profile else ())
        strip_index = bool(profile and profile.strip_index_html)
        try:
            links = self.link_extractor.extract_links(response)
        except ValueError:
            # a <base href> that is not a URL (Scrapy resolves it): follow the links against the page URL
            stats.inc_value("snapcrawl/links/bad_base_href")
            without_base = re.sub(rb"<base\b[^>]*>", b"", response.body, count=1, flags=re.I)
            links = self.link_extractor.extract_links(response.replace(body=without_base))
        for link in links:
            url = canonical_url(link.url, tracking=tracking, strip_index=strip_index)
            if url is None:
                continue
            host = urlsplit(url).hostname or ""
            if not self.in_scope(host):
                stats.inc_value("snapcrawl/links/offsite")
                continue
            if profile and profile.deny and any(rx.search(url) for rx in profile.deny):
                stats.inc_value("snapcrawl/links/denied_by_profile")
                continue
            if profile and profile.follow and not any(rx.search(url) for rx in profile.follow):
                stats.inc_value("snapcrawl/links/not_followed_by_profile")
                continue
            priority = self.priorities.for_link(url, link.url, dates)  # newest first; counts URL variants
            yield self.request_for(url, priority=priority, render=self.render_for(url, profile))

    # ------------------------------------------------------------------ callbacks

    def page_for(self, response: TextResponse) -> tuple[SnapshotPage, Profile | None]:
        fetched = response.meta.get("snapcrawl_fetched_at") or datetime.now(timezone.utc)
        page = SnapshotPage(response, self.forced_profile, fetched_at=fetched, tracking=self.tracking)
        profile = self.profile_for(response, page)
        if profile is not None and profile is not self.forced_profile:
            page = page.with_profile(profile)  # reuses the parsed document
        return page, profile

    def parse(self, response: Response) -> Iterator[Any]:
        stats = self.crawler.stats
        assert stats is not None
        if response.status == 304:
            return  # unchanged since the last run: counted by IncrementalMiddleware, nothing to parse
        if not isinstance(response, TextResponse):
            self._fail(
                response.url,
                "not_html",
                f"not an HTML page ({(response.headers.get('Content-Type') or b'').decode('latin-1')})",
            )
            return
        self.failures.resolve(response.url)  # fetched now: an earlier failure of this page no longer holds
        page, profile = self.page_for(response)
        result: PageResult = page.result()
        incomplete = (
            result.kind == ARTICLE
            and result.article is not None
            and not str(ItemAdapter(result.article).get("body") or "").strip()
        )
        wait = self.rendering(profile)
        if incomplete and wait is not None and not response.meta.get(RENDERED):
            # body missing from the HTML (built by a script?): fetch the page once more through Chromium
            stats.inc_value("snapcrawl/render/refetched_incomplete")
            yield self.request_for(response.url, render=wait, dont_filter=True)
            yield from self.follow_links(response, profile)
            return
        stats.inc_value(f"snapcrawl/pages/{'incomplete' if incomplete else result.kind}")
        if incomplete:
            hint = "" if response.meta.get(RENDERED) else "; built by JavaScript? crawl with -a render=1"
            self._fail(response.url, "incomplete_no_body", f"article page without body text{hint}")
        elif result.kind == ARTICLE and result.article is not None:
            yield result.article  # its link records are written from it by the feeds (snapcrawl/exporters.py)
        elif result.kind == EMPTY:
            self._fail(response.url, "empty_page", "empty page: no visible text")
        elif result.kind not in (LISTING,):
            self._fail(response.url, "unparseable", "; ".join(result.problems) or "page could not be parsed")
        yield from self.follow_links(response, profile, self.priorities.dates_for(page, result))

    def on_error(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        if failure.check(IgnoreRequest) and str(failure.value) == ROBOTS_FORBIDDEN:
            # the site asked not to be crawled there: a choice honoured, not a failed page
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("snapcrawl/pages/robots_forbidden")
            logger.info("not fetched, robots.txt disallows it: %s", request.url)
        else:
            # a stable name per cause (timeout, truncated, offsite_redirect...; docs/faults.md), and the
            # URL the crawl asked for: a redirect that failed is reported under the page that redirected
            kind, message = describe_failure(failure, request)
            self._fail((request.meta.get("redirect_urls") or [request.url])[0], kind, message)

    def _fail(self, url: str, kind: str, message: str) -> None:
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value("snapcrawl/failed_pages")
        stats.inc_value(f"snapcrawl/failed/{kind}")
        self.failures.record(url, kind, message)
        logger.warning("page failed: %s (%s: %s)", url, kind, message)
