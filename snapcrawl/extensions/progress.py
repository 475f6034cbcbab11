"""A progress line on long crawls: pages, articles, queue, rate, errors, every N seconds.

Replaces Scrapy's LogStats ("Crawled N pages (at N pages/min), scraped N items"), which counts
links and rejected records as items and says nothing of the queue or errors.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from snapcrawl.extensions.report import NOT_ERRORS, uncounted_spider_exceptions

logger = logging.getLogger("snapcrawl.progress")


class ProgressLine:
    """Logs ``progress: ...`` (INFO, to stderr unless LOG_FILE is set) every
    ``SNAPCRAWL_PROGRESS_INTERVAL`` seconds (default 10); 0 turns it off."""

    def __init__(self, crawler: Crawler, interval: float) -> None:
        self.crawler = crawler
        self.interval = interval
        self.task: task.LoopingCall | None = None
        self.last_pages = 0
        self.last_time = time.monotonic()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProgressLine:
        interval = crawler.settings.getfloat("SNAPCRAWL_PROGRESS_INTERVAL", 10.0)
        if interval <= 0:
            raise NotConfigured("SNAPCRAWL_PROGRESS_INTERVAL is 0")
        ext = cls(crawler, interval)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Any) -> None:
        self.last_pages, self.last_time = 0, time.monotonic()
        self.task = task.LoopingCall(self.log)
        self.task.start(self.interval, now=False)

    def line(self) -> str:
        """One line of current figures; the rate is over the last interval, like Scrapy's LogStats."""
        stats = self.crawler.stats
        assert stats is not None
        pages = int(stats.get_value("response_received_count", 0))
        articles = stats.get_value("snapcrawl/exported/article", 0)
        rejected = stats.get_value("snapcrawl/rejected", 0)
        failed = stats.get_value("snapcrawl/failed_pages", 0) - sum(
            stats.get_value(f"snapcrawl/failed/{kind}", 0) for kind in NOT_ERRORS
        )
        errors = failed + uncounted_spider_exceptions(stats.get_stats())
        engine = self.crawler.engine
        scheduler = engine.scheduler if engine is not None else None
        queued = len(scheduler) if scheduler is not None and hasattr(scheduler, "__len__") else 0
        in_flight = len(engine.downloader.active) if engine is not None else 0
        now = time.monotonic()
        per_min = (pages - self.last_pages) / max(now - self.last_time, 1e-9) * 60
        self.last_pages, self.last_time = pages, now
        return (
            f"progress: {pages} pages ({per_min:.0f}/min), {articles} articles, {rejected} rejected, "
            f"{queued} queued, {in_flight} in flight, {errors} errors"
        )

    def log(self) -> None:
        logger.info(self.line())

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()
