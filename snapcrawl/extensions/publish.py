"""Publish a run's folder atomically when the run closes, then move the ``latest`` pointer.

While a run is going, its files live in ``.<run-id>.partial/``; nothing there looks final.
When the engine stops (feeds flushed, report written) the folder is renamed to ``<run-id>/``
(one atomic rename on a POSIX file system) and ``LATEST`` / ``latest`` are updated, in that
order, so a reader following ``latest`` only ever sees complete runs. A run stopped with
``JOBDIR`` set and reason ``shutdown`` is left partial: it will be resumed, not published.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from snapcrawl.run import RunInfo, get_run

logger = logging.getLogger(__name__)


def publish(run: RunInfo) -> Path | None:
    """Rename the partial folder to its final name and point ``latest`` at it."""
    src, dst = run.partial_dir, run.final_dir
    if not src.is_dir():
        return None
    os.replace(src, dst)
    tmp = run.spider_dir / ".LATEST.tmp"
    tmp.write_text(run.run_id + "\n", encoding="utf-8")
    os.replace(tmp, run.spider_dir / "LATEST")
    link_tmp = run.spider_dir / ".latest.tmp"
    try:
        if link_tmp.is_symlink() or link_tmp.exists():
            link_tmp.unlink()
        link_tmp.symlink_to(run.run_id, target_is_directory=True)
        os.replace(link_tmp, run.spider_dir / "latest")
    except OSError as exc:  # e.g. a file system without symlinks: LATEST is enough
        logger.debug("could not update the latest symlink: %s", exc)
    return dst


class RunPublisher:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.reason: str | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunPublisher:
        if not crawler.settings.getbool("SNAPCRAWL_EXPORT_ENABLED", True):
            raise NotConfigured("SNAPCRAWL_EXPORT_ENABLED is off")
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.engine_stopped, signal=signals.engine_stopped)
        return ext

    def spider_closed(self, spider: Any, reason: str) -> None:
        self.reason = reason

    def engine_stopped(self) -> None:
        if self.reason is None:
            return
        run = get_run(self.crawler)
        if not run.local:
            return
        if self.reason == "shutdown" and self.crawler.settings.get("JOBDIR"):
            logger.info("run %s paused; resume with the same JOBDIR to complete %s", run.run_id, run.partial_dir)
            return
        final = publish(run)
        if final is not None:
            logger.info("exports published: %s", final)
