"""Deduplication and incremental-crawl state: MinHash near-duplicates, exact content hashes,
and per-URL state that outlives a run (SQLite file by default, Redis for shared crawls).

``open_store`` picks the backend from the settings; the pipeline
(:mod:`snapcrawl.pipelines.dedup`) and the incremental middleware
(:mod:`snapcrawl.middlewares.incremental`) each open their own connection to it.
"""

from __future__ import annotations

from scrapy.settings import BaseSettings

from snapcrawl.dedup.store import StateError, StateStore

DEFAULT_STATE_PATH = ".snapcrawl/state.sqlite"
DEFAULT_REDIS_PREFIX = "snapcrawl:state:"
#: Tuned on tests/fixtures/neardup with ``python -m snapcrawl.dedup.evaluate`` (docs/dedup.md).
DEFAULT_NEAR_DUP_THRESHOLD = 0.45

__all__ = ["DEFAULT_NEAR_DUP_THRESHOLD", "StateError", "StateStore", "is_persistent", "open_store"]


def is_persistent(settings: BaseSettings) -> bool:
    """Whether state survives the run (a Redis URL, or a state file rather than ``:memory:``/empty)."""
    if settings.get("SNAPCRAWL_REDIS_URL"):
        return True
    path = str(settings.get("SNAPCRAWL_STATE_PATH", DEFAULT_STATE_PATH) or "")
    return path not in ("", ":memory:")


def open_store(settings: BaseSettings, run_id: str) -> StateStore:
    """The project's state store: Redis when ``SNAPCRAWL_REDIS_URL`` is set, else the SQLite file."""
    redis_url = settings.get("SNAPCRAWL_REDIS_URL")
    if redis_url:
        from snapcrawl.dedup.redis import RedisStore

        prefix = str(settings.get("SNAPCRAWL_REDIS_STATE_PREFIX") or DEFAULT_REDIS_PREFIX)
        return RedisStore.from_url(str(redis_url), run_id, prefix=prefix)
    from snapcrawl.dedup.sqlite import SQLiteStore

    path = str(settings.get("SNAPCRAWL_STATE_PATH", DEFAULT_STATE_PATH) or "") or ":memory:"
    return SQLiteStore(path, run_id)
