"""Politeness beyond Scrapy's defaults: ``Retry-After`` honoured, and per-site knobs from profiles.

* :class:`RetryAfterMiddleware` - a 429/503 answer with ``Retry-After`` pauses that site's
  requests (the retry included) for the time the server asked, capped by
  ``SNAPCRAWL_RETRY_AFTER_MAX``.
* :class:`ProfilePolitenessMiddleware` - a profile's ``[crawl]`` table (``download_delay``,
  ``concurrency``, ``obey_robots``) applies to the hosts the profile covers, through Scrapy's
  own ``DOWNLOAD_SLOTS`` (computed by the add-on with :func:`profile_download_slots`) and the
  ``download_slot`` / ``dont_obey_robotstxt`` request meta keys.
* :class:`ProfileAutoThrottle` - Scrapy's AutoThrottle with a profile's
  ``autothrottle_target_concurrency`` and ``download_delay`` (as the floor) per site.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.extensions.throttle import AutoThrottle
from scrapy.http import Request, Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.task import deferLater

from snapcrawl.profiles import Profile, ProfileError, ProfileRegistry

logger = logging.getLogger(__name__)

PROFILE_SLOT_PREFIX = "profile:"


# ---------------------------------------------------------------------------------- Retry-After


def parse_retry_after(value: str | bytes | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP-date (RFC 9110 10.2.3).

    None when the value is missing or unreadable; a date in the past gives 0.
    """
    if value is None:
        return None
    text = (value.decode("latin-1") if isinstance(value, bytes) else value).strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; email.utils leaves "-0000" naive
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


async def _sleep(seconds: float) -> None:
    from twisted.internet import reactor  # imported late: importing it installs a reactor

    await maybe_deferred_to_future(deferLater(reactor, seconds, lambda: None))


class RetryAfterMiddleware:
    """Waits as long as a 429/503 response's ``Retry-After`` says before that site gets another request.

    Scrapy's RetryMiddleware retries 429 and 503 at once and ignores ``Retry-After``, so a
    throttled crawl keeps knocking on a server that asked it to wait. This middleware sits
    just outside RetryMiddleware (it sees the response first), records a pause for the
    response's download slot (its site), and holds every later request of that slot - the
    retry included - in ``process_request`` until the pause is over. Waits longer than
    ``SNAPCRAWL_RETRY_AFTER_MAX`` seconds are cut to it (and logged), so one header cannot
    stall a scheduled run for hours. Other sites are not paused, but held requests count
    toward ``CONCURRENT_REQUESTS``, as requests waiting on a download delay do.
    """

    def __init__(self, crawler: Crawler, max_wait: float, codes: frozenset[int]) -> None:
        self.crawler = crawler
        self.max_wait = max_wait
        self.codes = codes
        self.paused_until: dict[str, float] = {}  # slot key -> time.monotonic() deadline

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        settings = crawler.settings
        max_wait = settings.getfloat("SNAPCRAWL_RETRY_AFTER_MAX", 120.0)
        if max_wait <= 0:
            raise NotConfigured("SNAPCRAWL_RETRY_AFTER_MAX is 0")
        codes = frozenset(int(c) for c in settings.getlist("SNAPCRAWL_RETRY_AFTER_CODES", [429, 503]))
        return cls(crawler, max_wait, codes)

    def _slot_key(self, request: Request) -> str:
        engine = self.crawler.engine
        if engine is not None:
            return engine.downloader.get_slot_key(request)
        return urlsplit(request.url).hostname or ""

    def _inc(self, key: str) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(key)

    async def process_request(self, request: Request) -> None:
        key = self._slot_key(request)
        deadline = self.paused_until.get(key)
        if deadline is None:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            self.paused_until.pop(key, None)
            return
        self._inc("snapcrawl/retry_after/held_requests")
        logger.debug("holding %s for %.1fs (Retry-After from %s)", request.url, remaining, key)
        await _sleep(remaining)

    def process_response(self, request: Request, response: Response) -> Response:
        if response.status not in self.codes:
            return response
        raw = response.headers.get(b"Retry-After")
        if raw is None:
            return response
        wait = parse_retry_after(raw)
        if wait is None:
            self._inc("snapcrawl/retry_after/unreadable")
            logger.warning("HTTP %d from %s: unreadable Retry-After %r ignored", response.status, request.url, raw)
            return response
        if wait > self.max_wait:
            self._inc("snapcrawl/retry_after/capped")
            logger.warning(
                "HTTP %d from %s asks to wait %.0fs; waiting SNAPCRAWL_RETRY_AFTER_MAX=%gs instead",
                response.status,
                request.url,
                wait,
                self.max_wait,
            )
            wait = self.max_wait
        key = self._slot_key(request)
        deadline = time.monotonic() + wait
        self.paused_until[key] = max(deadline, self.paused_until.get(key, 0.0))
        self._inc("snapcrawl/retry_after/count")
        logger.info(
            "HTTP %d from %s with Retry-After: %s; no requests to %s for %.1fs",
            response.status,
            request.url,
            raw.decode("latin-1"),
            key,
            wait,
        )
        return response


# ---------------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class CrawlPolicy:
    """A profile's ``[crawl]`` table, typed; None means "the global setting"."""

    download_delay: float | None = None
    concurrency: int | None = None
    target_concurrency: float | None = None
    obey_robots: bool | None = None
    render_js_wait: float | None = None

    @classmethod
    def of(cls, profile: Profile) -> CrawlPolicy:
        crawl: Mapping[str, Any] = profile.crawl
        conc = crawl.get("concurrency")
        if conc is not None and int(conc) < 1:
            raise ProfileError(f"{profile.path}: key 'crawl.concurrency': must be at least 1, got {conc!r}")
        target = crawl.get("autothrottle_target_concurrency")
        if target is not None and float(target) <= 0:
            raise ProfileError(
                f"{profile.path}: key 'crawl.autothrottle_target_concurrency': must be above 0, got {target!r}"
            )
        return cls(
            download_delay=float(crawl["download_delay"]) if "download_delay" in crawl else None,
            concurrency=int(conc) if conc is not None else None,
            target_concurrency=float(target) if target is not None else None,
            obey_robots=bool(crawl["obey_robots"]) if "obey_robots" in crawl else None,
            render_js_wait=float(crawl["render_js_wait"]) if "render_js_wait" in crawl else None,
        )

    @property
    def shapes_slot(self) -> bool:
        """Whether requests need their own download slot (a delay or concurrency of their own)."""
        return self.download_delay is not None or self.concurrency is not None


def profile_slot(profile: Profile, host: str) -> str:
    """The download slot of ``host`` under ``profile``: the profile domain it falls under (so
    ``www.x.cn`` and ``m.x.cn`` share ``x.cn``'s limits), else one slot for the whole profile
    (a profile forced with ``-a profile=NAME`` on hosts it does not list)."""
    host = host.lower()
    matches = [d for d in profile.domains if host == d or host.endswith("." + d)]
    return max(matches, key=len) if matches else PROFILE_SLOT_PREFIX + profile.name


def profile_download_slots(registry: ProfileRegistry) -> dict[str, dict[str, Any]]:
    """``DOWNLOAD_SLOTS`` entries for every profile whose ``[crawl]`` sets a delay or concurrency."""
    slots: dict[str, dict[str, Any]] = {}
    for profile in registry.profiles.values():
        policy = CrawlPolicy.of(profile)
        if not policy.shapes_slot:
            continue
        entry: dict[str, Any] = {}
        if policy.download_delay is not None:
            entry["delay"] = policy.download_delay
        if policy.concurrency is not None:
            entry["concurrency"] = policy.concurrency
        for key in (*profile.domains, PROFILE_SLOT_PREFIX + profile.name):
            slots.setdefault(key, entry)
    return slots


def _registry(crawler: Crawler) -> ProfileRegistry:
    spider_registry = getattr(crawler.spider, "registry", None)
    if isinstance(spider_registry, ProfileRegistry):
        return spider_registry
    return ProfileRegistry.from_dirs(crawler.settings.getlist("SNAPCRAWL_PROFILES_DIRS"))


class ProfilePolitenessMiddleware:
    """Routes each request to its profile's download slot and applies the profile's robots.txt choice.

    The profile of a request is the one forced with ``-a profile=NAME``, else the one whose
    ``domains`` cover the host. (A profile picked by ``[match.meta]`` is only known once a
    page has been parsed; its ``[crawl]`` knobs need ``domains`` to apply.) Runs before
    RobotsTxtMiddleware, which reads ``dont_obey_robotstxt``.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.registry: ProfileRegistry | None = None
        self.policies: dict[str, CrawlPolicy] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProfilePolitenessMiddleware:
        return cls(crawler)

    def _profile(self, host: str) -> Profile | None:
        forced = getattr(self.crawler.spider, "forced_profile", None)
        if isinstance(forced, Profile):
            return forced
        if self.registry is None:
            self.registry = _registry(self.crawler)
        return self.registry.for_host(host)

    def policy(self, profile: Profile) -> CrawlPolicy:
        policy = self.policies.get(profile.name)
        if policy is None:
            policy = self.policies[profile.name] = CrawlPolicy.of(profile)
        return policy

    def process_request(self, request: Request) -> None:
        host = urlsplit(request.url).hostname or ""
        profile = self._profile(host)
        if profile is None or not profile.crawl:
            return
        policy = self.policy(profile)
        if policy.shapes_slot and "download_slot" not in request.meta:
            request.meta["download_slot"] = profile_slot(profile, host)
        if policy.obey_robots is False and not request.meta.get("dont_obey_robotstxt"):
            request.meta["dont_obey_robotstxt"] = True
            if self.crawler.stats is not None:
                self.crawler.stats.inc_value("snapcrawl/robots/not_obeyed_by_profile")


class ProfileAutoThrottle(AutoThrottle):
    """AutoThrottle whose target concurrency and minimum delay may differ per site.

    Scrapy's AutoThrottle has one ``AUTOTHROTTLE_TARGET_CONCURRENCY`` and uses
    ``DOWNLOAD_DELAY`` as the floor for every slot, so it would undercut a profile's own
    ``download_delay``. This applies the same adjustment rule (the mean of the old delay and
    latency / target, never below the target delay, between the floor and
    ``AUTOTHROTTLE_MAX_DELAY``) with the profile's values for the profile's slots.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.slot_policies: dict[str, CrawlPolicy] = {}
        registry = ProfileRegistry.from_dirs(crawler.settings.getlist("SNAPCRAWL_PROFILES_DIRS"))
        for profile in registry.profiles.values():
            policy = CrawlPolicy.of(profile)
            if policy.download_delay is None and policy.target_concurrency is None:
                continue
            for key in (*profile.domains, PROFILE_SLOT_PREFIX + profile.name):
                self.slot_policies.setdefault(key, policy)

    def _adjust_delay(self, slot: Any, latency: float, response: Response) -> None:
        key = response.request.meta.get("download_slot") if response.request is not None else None
        policy = self.slot_policies.get(key or "")
        if policy is None:
            super()._adjust_delay(slot, latency, response)
            return
        target = policy.target_concurrency or self.target_concurrency
        floor = max(self.mindelay, policy.download_delay or 0.0)
        target_delay = latency / target
        new_delay = max(target_delay, (slot.delay + target_delay) / 2.0)
        new_delay = min(max(floor, new_delay), max(self.maxdelay, floor))
        if response.status != 200 and new_delay <= slot.delay:
            return
        slot.delay = new_delay
