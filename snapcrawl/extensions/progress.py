"""A progress line on long crawls: pages, articles, queue, rate, errors, every N seconds."""

from __future__ import annotations

import logging
import time
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.internet import task

logger = logging.getLogger("snapcrawl.progress")


class ProgressLine:
    """Logs ``progress: ...`` (stderr, INFO) every ``SNAPCRAWL_PROGRESS_INTERVAL`` seconds; 0 turns it off."""

    def __init__(self, crawler: Crawler, interval: float) -> None:
        self.crawler = crawler
        self.interval = interval
        self.task: task.LoopingCall | None = None
        self.started = time.monotonic()

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
        self.started = time.monotonic()
        self.task = task.LoopingCall(self.log)
        self.task.start(self.interval, now=False)

    def line(self) -> str:
        stats = self.crawler.stats
        assert stats is not None
        pages = stats.get_value("response_received_count", 0)
        articles = stats.get_value("snapcrawl/exported/article", 0)
        errors = stats.get_value("snapcrawl/failed_pages", 0) + stats.get_value("spider_exceptions/count", 0)
        engine = self.crawler.engine
        queued = 0
        if engine is not None and getattr(engine, "_slot", None) is not None:
            scheduler = engine._slot.scheduler  # type: ignore[union-attr]
            queued = len(scheduler) if hasattr(scheduler, "__len__") else 0
        minutes = max((time.monotonic() - self.started) / 60, 1e-9)
        return (
            f"progress: {pages} pages ({pages / minutes:.0f}/min), {articles} articles, "
            f"{queued} queued, {errors} errors"
        )

    def log(self) -> None:
        logger.info(self.line())

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()
