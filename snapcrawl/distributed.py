"""Several crawl workers sharing one crawl through Redis (scrapy-redis), on by ``SNAPCRAWL_REDIS_URL``.

scrapy-redis keeps the request queue and the request dupefilter in Redis, so any number of
``scrapy crawl snapshots`` workers (on any machines) pull from one queue and no page is
fetched twice. This module adds what scrapy-redis leaves to the project:

* :class:`CanonicalRFPDupeFilter`: scrapy-redis 0.9.1 fingerprints with its own hash of
  ``w3lib.canonicalize_url``; ours uses the crawler's ``REQUEST_FINGERPRINTER_CLASS`` so
  tracking-parameter variants are one page, as in a single-process crawl.
* :func:`enqueue`: start URLs and their domains pushed to Redis (``python -m snapcrawl enqueue``).
* :class:`DistributedCrawl`: feeds the enqueued start URLs to the worker, shares the allowed
  domains, and stops the worker once the queue stayed empty ``SNAPCRAWL_REDIS_IDLE_TIMEOUT``
  seconds (other workers may still be fetching pages whose links refill the queue).
* :class:`DomainScopeMiddleware`: a request popped for a domain enqueued after this worker
  started reloads the shared domain list before Scrapy's OffsiteMiddleware judges it.

Keys (``<prefix>`` is ``SNAPCRAWL_REDIS_QUEUE_PREFIX``, default ``snapcrawl:``; one set per spider)::

    <prefix><spider>:requests     zset: scheduled requests (scrapy-redis PriorityQueue)
    <prefix><spider>:dupefilter   set: fingerprints of every request ever scheduled
    <prefix><spider>:start_urls   list: enqueued start URLs not yet taken by a worker
    <prefix><spider>:domains      set: allowed domains (hosts of every start URL)
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy.settings import BaseSettings
from scrapy_redis.dupefilter import RFPDupeFilter
from twisted.internet import task

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_PREFIX = "snapcrawl:"
DEFAULT_IDLE_TIMEOUT = 30.0
#: How often an idle worker looks at the shared queue (Scrapy's own idle heartbeat is 5 s).
IDLE_POLL = 0.5
#: Start URLs one worker takes from Redis at a time (the rest stay for the other workers).
START_BATCH = 16


def is_distributed(settings: BaseSettings) -> bool:
    return bool(settings.get("SNAPCRAWL_REDIS_URL"))


@dataclass(frozen=True)
class Keys:
    """The Redis keys of one spider's distributed crawl."""

    prefix: str
    spider: str

    @property
    def requests(self) -> str:
        return f"{self.prefix}{self.spider}:requests"

    @property
    def dupefilter(self) -> str:
        return f"{self.prefix}{self.spider}:dupefilter"

    @property
    def start_urls(self) -> str:
        return f"{self.prefix}{self.spider}:start_urls"

    @property
    def domains(self) -> str:
        return f"{self.prefix}{self.spider}:domains"

    @classmethod
    def from_settings(cls, settings: BaseSettings, spider: str) -> Keys:
        return cls(str(settings.get("SNAPCRAWL_REDIS_QUEUE_PREFIX") or DEFAULT_QUEUE_PREFIX), spider)


def worker_id(settings: BaseSettings) -> str:
    """``SNAPCRAWL_WORKER_ID``, else ``<hostname>-<pid>``; made safe for a folder name."""
    raw = str(settings.get("SNAPCRAWL_WORKER_ID") or f"{socket.gethostname()}-{os.getpid()}")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("._")
    if not safe:
        raise ValueError(f"setting SNAPCRAWL_WORKER_ID={raw!r}: needs letters or digits")
    return safe


def scrapy_redis_settings(settings: BaseSettings) -> dict[str, Any]:
    """The scrapy-redis settings of distributed mode (the add-on applies them; operator values win)."""
    prefix = str(settings.get("SNAPCRAWL_REDIS_QUEUE_PREFIX") or DEFAULT_QUEUE_PREFIX)
    return {
        "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
        "DUPEFILTER_CLASS": "snapcrawl.distributed.CanonicalRFPDupeFilter",
        "SCHEDULER_PERSIST": True,  # one worker finishing must not wipe the queue of the others
        "SCHEDULER_QUEUE_KEY": f"{prefix}%(spider)s:requests",
        "SCHEDULER_DUPEFILTER_KEY": f"{prefix}%(spider)s:dupefilter",
        "REDIS_URL": settings.get("SNAPCRAWL_REDIS_URL"),
    }


def connect(url: str) -> redis.Redis:
    """A Redis client; the error names the URL (password hidden) when the server is unreachable."""
    from snapcrawl.dedup.redis import _redacted

    try:
        client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10)
        client.ping()
    except (ValueError, redis.RedisError) as exc:
        raise ConnectionError(f"SNAPCRAWL_REDIS_URL {_redacted(url)}: {exc}") from exc
    return client


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def shared_domains(client: redis.Redis, keys: Keys) -> list[str]:
    return sorted(_text(d) for d in client.smembers(keys.domains))


@dataclass(frozen=True)
class EnqueueResult:
    pushed: list[str]
    domains: list[str]
    already_seen: int  # fingerprints in the dupefilter before this enqueue


def enqueue(client: redis.Redis, keys: Keys, urls: Iterable[str], *, reset: bool = False) -> EnqueueResult:
    """Push canonical start URLs (their domains first, so a worker popping one already knows its scope).

    ``reset`` deletes the queue, dupefilter, start URLs and domains of an earlier crawl first
    (the dedup state is kept: copies found later still join clusters of earlier runs).
    """
    from snapcrawl.spiders.snapshots import parse_start_urls

    canonical = parse_start_urls(list(urls), None)
    if reset:
        client.delete(keys.requests, keys.dupefilter, keys.start_urls, keys.domains)
    seen = int(client.scard(keys.dupefilter))
    domains = sorted({urlsplit(u).hostname or "" for u in canonical})
    client.sadd(keys.domains, *domains)
    client.rpush(keys.start_urls, *canonical)
    return EnqueueResult(canonical, domains, seen)


class CanonicalRFPDupeFilter(RFPDupeFilter):
    """scrapy-redis' shared dupefilter, fingerprinting with the crawler's REQUEST_FINGERPRINTER_CLASS."""

    fingerprinter: Any = None

    @classmethod
    def from_spider(cls, spider: Spider) -> CanonicalRFPDupeFilter:
        df: CanonicalRFPDupeFilter = super().from_spider(spider)
        df.fingerprinter = spider.crawler.request_fingerprinter
        return df

    def request_fingerprint(self, request: Request) -> str:
        fp: bytes = self.fingerprinter.fingerprint(request)
        return fp.hex()


class DistributedCrawl:
    """Feeds enqueued start URLs to this worker, shares domains, stops after the idle timeout."""

    def __init__(self, crawler: Crawler, client: redis.Redis, keys: Keys, idle_timeout: float) -> None:
        self.crawler = crawler
        self.client = client
        self.keys = keys
        self.idle_timeout = idle_timeout
        self.last_activity = time.monotonic()
        self.poll: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DistributedCrawl:
        settings = crawler.settings
        if not is_distributed(settings):
            raise NotConfigured("SNAPCRAWL_REDIS_URL is empty: single-process crawl")
        try:
            idle = settings.getfloat("SNAPCRAWL_REDIS_IDLE_TIMEOUT", DEFAULT_IDLE_TIMEOUT)
        except ValueError:
            raise ValueError(
                f"setting SNAPCRAWL_REDIS_IDLE_TIMEOUT={settings.get('SNAPCRAWL_REDIS_IDLE_TIMEOUT')!r}: expected float"
            ) from None
        spider = crawler.spidercls.name if crawler.spidercls else "spider"
        client = connect(str(settings.get("SNAPCRAWL_REDIS_URL")))
        ext = cls(crawler, client, Keys.from_settings(settings, spider), idle)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(ext.activity, signal=signals.response_received)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        own = list(getattr(spider, "allowed_domains", None) or [])
        if getattr(spider, "start_urls", None) and own:  # URLs given to this worker: share their scope
            self.client.sadd(self.keys.domains, *own)
        self.last_activity = time.monotonic()
        logger.info(
            "distributed crawl: queue %s, worker stops after %.0f s without work", self.keys.requests, self.idle_timeout
        )

    def activity(self) -> None:
        self.last_activity = time.monotonic()

    def take_start_urls(self, spider: Spider) -> int:
        """Schedule up to START_BATCH enqueued start URLs (LPOP is atomic: each goes to one worker)."""
        raw = self.client.lpop(self.keys.start_urls, START_BATCH)
        if not raw:
            return 0
        urls = [_text(u) for u in raw if isinstance(u, (bytes, str))]
        refresh_domains(spider, self.client, self.keys)
        assert self.crawler.engine is not None and self.crawler.stats is not None
        for url in urls:
            self.crawler.engine.crawl(spider.start_request(url))  # type: ignore[attr-defined]
        self.crawler.stats.inc_value("snapcrawl/distributed/start_urls_taken", len(urls))
        logger.info("took %d start URL(s) from %s", len(urls), self.keys.start_urls)
        return len(urls)

    def spider_idle(self, spider: Spider) -> None:
        if self.take_start_urls(spider):
            self.last_activity = time.monotonic()
            raise DontCloseSpider
        idle_for = time.monotonic() - self.last_activity
        if idle_for < self.idle_timeout:
            if self.poll is None:
                self.poll = task.LoopingCall(self._wake_if_work, spider)
                self.poll.start(IDLE_POLL, now=False)
            raise DontCloseSpider
        logger.info("queue %s empty for %.1f s: this worker stops", self.keys.requests, idle_for)
        self._stop_poll()

    def _wake_if_work(self, spider: Spider) -> None:
        """While idle, look at the shared queue often and wake the engine when it has work (or time is up).

        Scrapy re-checks an idle spider only every 5 s; the engine has no public "wake up", so
        this schedules its next-request call (``_slot.nextcall``) itself when the slot exists.
        """
        timed_out = time.monotonic() - self.last_activity >= self.idle_timeout
        if timed_out or self.client.zcard(self.keys.requests) or self.client.llen(self.keys.start_urls):
            self._stop_poll()
            slot = getattr(self.crawler.engine, "_slot", None)
            if slot is not None:
                slot.nextcall.schedule()

    def _stop_poll(self) -> None:
        if self.poll is not None and self.poll.running:
            self.poll.stop()
        self.poll = None

    def spider_closed(self) -> None:
        self._stop_poll()
        self.client.close()


def refresh_domains(spider: Spider, client: redis.Redis, keys: Keys) -> bool:
    """Reload the spider's allowed domains from Redis; True when the list grew."""
    shared = shared_domains(client, keys)
    current = list(getattr(spider, "allowed_domains", None) or [])
    merged = sorted(set(current) | set(shared))
    if merged == sorted(current):
        return False
    spider.allowed_domains = merged  # type: ignore[attr-defined]
    return True


class DomainScopeMiddleware:
    """Downloader middleware (before OffsiteMiddleware): an out-of-scope request reloads the shared domains.

    A worker learns domains at start; a start URL enqueued later can reach it as a queued
    request first. One SMEMBERS per miss (misses are rare: links off-site are never queued).
    """

    def __init__(self, crawler: Crawler, client: redis.Redis, keys: Keys) -> None:
        self.crawler = crawler
        self.client = client
        self.keys = keys

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DomainScopeMiddleware:
        settings = crawler.settings
        if not is_distributed(settings):
            raise NotConfigured("SNAPCRAWL_REDIS_URL is empty")
        spider = crawler.spidercls.name if crawler.spidercls else "spider"
        mw = cls(crawler, connect(str(settings.get("SNAPCRAWL_REDIS_URL"))), Keys.from_settings(settings, spider))
        crawler.signals.connect(mw.client.close, signal=signals.spider_closed)
        return mw

    def process_request(self, request: Request) -> None:
        spider = self.crawler.spider
        if spider is None:
            return None
        host = urlsplit(request.url).hostname or ""
        domains = list(getattr(spider, "allowed_domains", None) or [])
        if not domains or any(host == d or host.endswith("." + d) for d in domains):
            return None
        if refresh_domains(spider, self.client, self.keys):
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("snapcrawl/distributed/domains_reloaded")
        return None
