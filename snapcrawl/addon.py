"""snapcrawl's Scrapy add-on: turns the few ``SNAPCRAWL_*`` settings into Scrapy's own.

Scrapy add-ons run before settings freeze and see command-line ``-s`` values, so derived
settings (FEEDS from the export location, the User-Agent from the contact, scrapy-redis
when a Redis URL is given) follow whatever the operator set, with no second config system.
Values set explicitly at a higher priority (e.g. ``-O out.jsonl`` sets FEEDS) win.
"""

from __future__ import annotations

from typing import Any

from scrapy.settings import BaseSettings

from snapcrawl import __version__

PROJECT_URL = "https://github.com/snapcrawl/snapcrawl"
# (file, item class, exporter options). Links come first: the links exporter writes (and
# flushes) an article's link records before the articles feed writes the article, which the
# crawl journal relies on after a kill (snapcrawl/exporters.py).
FEED_FILES: tuple[tuple[str, str, dict[str, bool]], ...] = (
    ("links", "snapcrawl.items.ArticleItem", {"articles": False, "links": True}),
    ("articles", "snapcrawl.items.ArticleItem", {"articles": True, "links": False}),
    ("rejected", "snapcrawl.items.RejectedItem", {}),
)


def check_setting(settings: BaseSettings, name: str, kind: type, **bounds: Any) -> None:
    """Fail at start with a clear message naming a bad SNAPCRAWL_* value."""
    raw = settings.get(name)
    if raw is None:
        return
    try:
        value = settings.getbool(name) if kind is bool else kind(raw)
    except (TypeError, ValueError):
        raise SettingError(f"setting {name}={raw!r}: expected {kind.__name__}") from None
    lo, hi = bounds.get("lo"), bounds.get("hi")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if hi is None:
            raise SettingError(f"setting {name}={raw!r}: must be {lo} or more")
        raise SettingError(f"setting {name}={raw!r}: must be between {lo} and {hi}")


class SettingError(ValueError):
    """A setting with a value snapcrawl cannot use."""


class SnapcrawlAddon:
    """Derives FEEDS, USER_AGENT and friends from ``SNAPCRAWL_*`` settings."""

    def update_settings(self, settings: BaseSettings) -> None:
        check_setting(settings, "SNAPCRAWL_EXPORT_GZIP", bool)
        check_setting(settings, "SNAPCRAWL_PROGRESS_INTERVAL", float, lo=0)
        check_setting(settings, "SNAPCRAWL_NEAR_DUP_THRESHOLD", float, lo=0.05, hi=1.0)
        check_setting(settings, "SNAPCRAWL_RETRY_AFTER_MAX", float, lo=0)
        check_setting(settings, "SNAPCRAWL_RENDER_WAIT", float, lo=0)
        check_setting(settings, "SNAPCRAWL_RENDER_TIMEOUT", float, lo=1)
        check_setting(settings, "SNAPCRAWL_MONITORS_ENABLED", bool)
        check_setting(settings, "SNAPCRAWL_MONITOR_MIN_ARTICLES", int, lo=0)
        check_setting(settings, "SNAPCRAWL_MONITOR_FILL_MIN_ARTICLES", int, lo=1)
        for rate in ("MAX_ERROR_RATE", "MAX_REJECTED_RATE", "MAX_FILL_DROP"):
            check_setting(settings, f"SNAPCRAWL_MONITOR_{rate}", float, lo=0, hi=1)
        self._feeds(settings)
        self._user_agent(settings)
        self._profile_slots(settings)
        self._render(settings)
        self._redis(settings)

    def _feeds(self, settings: BaseSettings) -> None:
        if not settings.getbool("SNAPCRAWL_EXPORT_ENABLED", True):
            return
        if (settings.getpriority("FEEDS") or 0) >= 20 and settings.getdict("FEEDS"):
            return  # the operator chose feeds (-O/-o or -s FEEDS); keep Scrapy's meaning
        base = str(settings.get("SNAPCRAWL_EXPORT_URI") or "exports").rstrip("/")
        gzip = settings.getbool("SNAPCRAWL_EXPORT_GZIP")
        ext = ".jsonl.gz" if gzip else ".jsonl"
        feeds: dict[str, dict[str, Any]] = {}
        for name, cls, export_kwargs in FEED_FILES:
            opts: dict[str, Any] = {
                "format": "jsonlines",
                "encoding": "utf-8",
                "item_classes": [cls],
                "item_export_kwargs": export_kwargs,
                "overwrite": False,  # append: a resumed JOBDIR run continues its files
                "store_empty": True,
            }
            if gzip:
                opts["postprocessing"] = ["scrapy.extensions.postprocessing.GzipPlugin"]
            feeds[f"{base}/%(name)s/%(run_dir)s/{name}{ext}"] = opts
        settings.set("FEEDS", feeds, priority="addon")

    def _profile_slots(self, settings: BaseSettings) -> None:
        """DOWNLOAD_SLOTS for the profiles' ``[crawl]`` delay/concurrency (operator entries win)."""
        from snapcrawl.middlewares.politeness import profile_download_slots
        from snapcrawl.profiles import ProfileRegistry

        slots = profile_download_slots(ProfileRegistry.from_dirs(settings.getlist("SNAPCRAWL_PROFILES_DIRS")))
        if slots:
            merged = {**slots, **settings.getdict("DOWNLOAD_SLOTS")}
            settings.set("DOWNLOAD_SLOTS", merged, priority=max(settings.getpriority("DOWNLOAD_SLOTS") or 0, 15))

    def _redis(self, settings: BaseSettings) -> None:
        """Distributed mode (docs/distributed.md): scrapy-redis queue and dupefilter, a run id per worker."""
        from snapcrawl.distributed import (
            DistributedCrawl,
            DomainScopeMiddleware,
            is_distributed,
            scrapy_redis_settings,
            worker_id,
        )
        from snapcrawl.run import _new_run_id

        if not is_distributed(settings):
            return
        check_setting(settings, "SNAPCRAWL_REDIS_IDLE_TIMEOUT", float, lo=0)
        for name, value in scrapy_redis_settings(settings).items():
            if (settings.getpriority(name) or 0) < 20:
                settings.set(name, value, priority="addon")
        settings["EXTENSIONS"][DistributedCrawl] = 100
        settings["DOWNLOADER_MIDDLEWARES"][DomainScopeMiddleware] = 40  # before OffsiteMiddleware (50)
        worker = worker_id(settings)
        run_id = f"{settings.get('SNAPCRAWL_RUN_ID') or _new_run_id()}-{worker}"  # one export folder per worker
        settings.set("SNAPCRAWL_RUN_ID", run_id, priority=max(settings.getpriority("SNAPCRAWL_RUN_ID") or 0, 15))
        if not settings.get("SNAPCRAWL_JOB_NAME"):  # the job lock guards this worker, not the whole crawl
            settings.set("SNAPCRAWL_JOB_NAME", f"redis-{worker}", priority="addon")

    def _render(self, settings: BaseSettings) -> None:
        """scrapy-playwright for pages that ask for rendering; its driver and browser start on first use."""
        if not settings.getbool("SNAPCRAWL_RENDER_ENABLED", True):
            return
        from snapcrawl.render import playwright_settings

        for name, value in playwright_settings(settings).items():
            if name == "DOWNLOAD_HANDLERS":  # keep the operator's handlers for other schemes
                value = {**value, **settings.getdict("DOWNLOAD_HANDLERS")}
                settings.set(name, value, priority=max(settings.getpriority(name) or 0, 15))
            elif (settings.getpriority(name) or 0) < 20:
                settings.set(name, value, priority="addon")

    def _user_agent(self, settings: BaseSettings) -> None:
        if (settings.getpriority("USER_AGENT") or 0) >= 20:
            return
        contact = settings.get("SNAPCRAWL_CONTACT") or PROJECT_URL
        settings.set("USER_AGENT", f"snapcrawl/{__version__} (+{contact})", priority="addon")
