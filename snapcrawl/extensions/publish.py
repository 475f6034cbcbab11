"""Publish a run's files when the run closes, then move the ``latest`` pointer.

Local exports: while a run is going its files live in ``<spider>/.<run-id>.partial/``; nothing
there looks final. When the engine stops (feeds flushed and closed) ``report.json`` is written
into that folder (temp file + rename), the folder is renamed to ``<run-id>/`` (one atomic
rename on a POSIX file system) and ``LATEST`` / ``latest`` are replaced, each by an atomic
rename, in that order. A reader following ``latest`` only ever sees complete runs, and a run
killed mid-way leaves only its hidden partial folder behind.

Remote exports (any other Scrapy feed URI, e.g. ``s3://``): Scrapy's remote storages upload
each feed as one object when the run closes, under the final ``<run-id>/`` name; then this
extension uploads ``report.json`` and, last, ``LATEST`` through the same Scrapy storage, so
``LATEST`` is the commit marker there.

Runs stopped with ``JOBDIR`` set and reason ``shutdown`` are paused, not published: resuming
with the same ``JOBDIR`` completes the same partial folder. Runs whose ``FEEDS`` the operator
set (``-O``/``-o``) have no run folder, so there is nothing to publish.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.misc import build_from_crawler, load_object

from snapcrawl.run import RUN_ID_FILE, RunInfo, get_run

logger = logging.getLogger(__name__)

REPORT_FILE = "report.json"


def _replace_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename, so readers see old or new, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def report_text(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2) + "\n"


def add_files(report: dict[str, Any], names: list[str]) -> None:
    """List the run's published files in the report (before the Scrapy stats, which stay last)."""
    stats = report.pop("scrapy_stats", None)
    report["files"] = sorted({*names, REPORT_FILE})
    if stats is not None:
        report["scrapy_stats"] = stats


def publish(run: RunInfo, report: dict[str, Any] | None = None) -> Path | None:
    """Write ``report.json`` into the partial folder, rename it to its final name and point
    ``LATEST`` / ``latest`` at it. None when there is no partial folder to publish."""
    src, dst = run.partial_dir, run.final_dir
    if not src.is_dir():
        return None
    if dst.exists():
        raise FileExistsError(f"cannot publish run {run.run_id}: {dst} already exists (run id reused?)")
    if report is not None:
        add_files(report, [p.name for p in src.iterdir() if not p.name.startswith(".")])
        _replace_file(src / REPORT_FILE, report_text(report))
    os.replace(src, dst)
    _fsync_dir(run.spider_dir)
    _replace_file(run.spider_dir / "LATEST", run.run_id + "\n")
    link_tmp = run.spider_dir / ".latest.tmp"
    try:
        if link_tmp.is_symlink() or link_tmp.exists():
            link_tmp.unlink()
        link_tmp.symlink_to(run.run_id, target_is_directory=True)
        os.replace(link_tmp, run.spider_dir / "latest")
    except OSError as exc:  # e.g. a file system without symlinks: LATEST is enough
        logger.debug("could not update the latest symlink: %s", exc)
    _fsync_dir(run.spider_dir)
    return dst


def managed_feeds(crawler: Crawler) -> list[str]:
    """The feed URIs snapcrawl derived (they contain ``%(run_dir)s``); empty when the operator set FEEDS."""
    return [uri for uri in crawler.settings.getdict("FEEDS") if "%(run_dir)s" in str(uri)]


class RunPublisher:
    """Publishes the run folder (local) or report + ``LATEST`` (remote) at engine stop."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.reason: str | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunPublisher:
        if not crawler.settings.getbool("SNAPCRAWL_EXPORT_ENABLED", True):
            raise NotConfigured("SNAPCRAWL_EXPORT_ENABLED is off")
        if not managed_feeds(crawler):
            raise NotConfigured("FEEDS set by the operator (-O/-o): no run folder to publish")
        run = get_run(crawler)
        if run.local and run.final_dir.exists():
            from snapcrawl.addon import SettingError

            raise SettingError(
                f"run id {run.run_id!r} is already published at {run.final_dir}; "
                "set another SNAPCRAWL_RUN_ID (or none) or use a fresh JOBDIR"
            )
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.engine_stopped, signal=signals.engine_stopped)
        return ext

    def spider_closed(self, spider: Any, reason: str) -> None:
        self.reason = reason

    def _report(self) -> dict[str, Any] | None:
        ext = getattr(self.crawler, "_snapcrawl_report", None)
        return ext.finish() if ext is not None else None

    async def engine_stopped(self) -> None:
        if self.reason is None:
            return  # the spider never opened: nothing was written
        run = get_run(self.crawler)
        if self.reason == "shutdown" and self.crawler.settings.get("JOBDIR"):
            logger.info("run %s paused; resume with the same JOBDIR to complete %s", run.run_id, run.partial_dir)
            return
        report = self._report()
        try:
            if run.local:
                final = publish(run, report)
                if final is None:
                    raise FileNotFoundError(f"no partial folder {run.partial_dir} to publish")
                where = str(final)
            else:
                where = await self._publish_remote(run, report)
        except Exception as exc:
            assert self.crawler.stats is not None
            self.crawler.stats.set_value("snapcrawl/publish/failed", 1)
            logger.error("exports of run %s NOT published: %s: %s", run.run_id, type(exc).__name__, exc)
            return
        self._forget_run_id()
        logger.info("exports published: %s", where)

    async def _publish_remote(self, run: RunInfo, report: dict[str, Any] | None) -> str:
        """Upload report.json, then LATEST, with the Scrapy feed storage of the export URI's scheme."""
        base = f"{run.export_uri}/{run.spider}"
        if report is not None:
            ext = ".jsonl.gz" if self.crawler.settings.getbool("SNAPCRAWL_EXPORT_GZIP") else ".jsonl"
            add_files(report, [f"{name}{ext}" for name in ("articles", "links", "rejected")])
            await self._upload(f"{base}/{run.run_id}/{REPORT_FILE}", report_text(report))
        await self._upload(f"{base}/LATEST", run.run_id + "\n")
        return f"{base}/{run.run_id}/"

    async def _upload(self, uri: str, text: str) -> None:
        storages = self.crawler.settings.getwithbase("FEED_STORAGES")
        scheme = urlparse(uri).scheme
        if scheme not in storages or storages[scheme] is None:
            raise ValueError(f"no Scrapy feed storage for {scheme!r} URIs (FEED_STORAGES)")
        cls = load_object(storages[scheme])
        storage = build_from_crawler(cls, self.crawler, uri, feed_options={"overwrite": True})
        file = storage.open(self.crawler.spider)
        file.write(text.encode("utf-8"))
        stored = storage.store(file)
        if stored is not None:
            await maybe_deferred_to_future(stored)

    def _forget_run_id(self) -> None:
        """A published run id is never reused: the next run with this JOBDIR gets a new one."""
        jobdir = self.crawler.settings.get("JOBDIR")
        if jobdir:
            (Path(jobdir) / RUN_ID_FILE).unlink(missing_ok=True)
