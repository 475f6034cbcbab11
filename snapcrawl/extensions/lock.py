"""One run per job at a time: a second run of the same job exits at once instead of overlapping.

Cron and timers start a job on the clock, whether or not the previous run is done; two runs
of one job would crawl the same site twice as hard and race on the same state and exports.
The job's lock is an ``flock`` on ``<lock dir>/<spider>--<job>.lock``: the kernel drops it
when the process ends in any way (even ``kill -9``), so a crashed run never leaves a stale
lock behind, and the file's content (pid, start time) only serves the error message.

The lock is taken while the crawler is built, before the engine opens anything, so a refused
run writes no exports, report or state; ``scrapy crawl`` then exits non-zero with
``snapcrawl: error: ... job ... is already running (pid N, since T)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.settings import BaseSettings

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

#: Exit status of a run refused because its job is already running (see snapcrawl.commands.crawl).
EXIT_LOCKED = 3


class JobLockedError(RuntimeError):
    """Another run of the same job holds the lock; the message names the job, holder and lock file."""

    exit_code = EXIT_LOCKED

    def __init__(self, job: str, path: Path, holder: dict[str, Any]) -> None:
        who = f"pid {holder.get('pid', '?')}"
        if holder.get("host") and holder.get("host") != socket.gethostname():
            who += f" on {holder['host']}"
        since = f", since {holder['started_at']}" if holder.get("started_at") else ""
        super().__init__(
            f"job {job!r} is already running ({who}{since}); this run stops without crawling. Lock file: {path}"
        )
        self.job, self.path, self.holder = job, path, holder


def default_job_name(spider: Any) -> str:
    """The job a run belongs to when ``SNAPCRAWL_JOB_NAME`` is not set: its start URLs.

    Two runs of one spider over the same start URLs are the same job; over other URLs they
    are different jobs and may run side by side.
    """
    urls = sorted(getattr(spider, "start_urls", None) or [])
    if not urls:
        return "default"
    return "urls-" + hashlib.sha256("\n".join(urls).encode("utf-8")).hexdigest()[:12]


def lock_dir(settings: BaseSettings) -> Path:
    """``SNAPCRAWL_LOCK_DIR``, else ``locks/`` beside the state database (``SNAPCRAWL_STATE_PATH``)."""
    explicit = settings.get("SNAPCRAWL_LOCK_DIR")
    if explicit:
        return Path(str(explicit))
    state = Path(str(settings.get("SNAPCRAWL_STATE_PATH") or ".snapcrawl/state.sqlite"))
    return state.parent / "locks"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "job"


class JobLock:
    """An exclusive, non-blocking ``flock`` held for as long as the file stays open."""

    def __init__(self, path: Path, job: str) -> None:
        self.path = path
        self.job = job
        self.handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`JobLockedError` naming the run that holds it."""
        assert fcntl is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the whole run
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                holder = json.loads(handle.read() or "{}")
            except ValueError:
                holder = {}
            handle.close()
            raise JobLockedError(self.job, self.path, holder if isinstance(holder, dict) else {}) from None
        handle.seek(0)
        handle.truncate()
        info = {
            "job": self.job,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        }
        handle.write(json.dumps(info) + "\n")
        handle.flush()
        self.handle = handle

    def release(self) -> None:
        if self.handle is None:
            return
        # empty the file before unlocking, so a reader never sees a finished run as the holder
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.flush()
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
        self.handle.close()
        self.handle = None


class JobLockExtension:
    """Holds the job lock from crawler start to engine stop (after exports are published)."""

    def __init__(self, lock: JobLock) -> None:
        self.lock = lock

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> JobLockExtension:
        settings = crawler.settings
        if not settings.getbool("SNAPCRAWL_LOCK_ENABLED", True):
            raise NotConfigured("SNAPCRAWL_LOCK_ENABLED is off")
        if fcntl is None:  # pragma: no cover - not POSIX
            raise NotConfigured("job lock needs fcntl.flock (POSIX)")
        spider_name = crawler.spidercls.name if crawler.spidercls else "spider"
        job = str(settings.get("SNAPCRAWL_JOB_NAME") or default_job_name(crawler.spider))
        path = lock_dir(settings) / f"{_safe(spider_name)}--{_safe(job)}.lock"
        lock = JobLock(path, f"{spider_name}/{job}")
        try:
            lock.acquire()
        except JobLockedError as exc:
            if settings.get("LOG_FILE"):  # e.g. under scrapyd: stderr is not the job's log, say it there too
                logger.error("%s", exc)
            raise  # the crawl does not start; `scrapy crawl` prints it and exits with EXIT_LOCKED
        logger.info("job lock %s taken (%s)", lock.job, path)
        ext = cls(lock)
        crawler.signals.connect(ext.engine_stopped, signal=signals.engine_stopped)
        return ext

    def engine_stopped(self) -> None:
        self.lock.release()
