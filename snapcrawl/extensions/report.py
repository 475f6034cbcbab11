"""``report.json`` and a short human summary at the end of every run.

The figures come from the crawl's stats and from the records as they were exported
(``item_scraped``), so the report agrees with the files: articles, links and rejected
counts are counted where the feeds receive them.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.crawler import Crawler

from snapcrawl.run import get_run

logger = logging.getLogger("snapcrawl.report")

FILL_FIELDS = ("title", "category", "published_at", "source", "reposted_from", "body", "language")
SNAPSHOT_FILL_FIELDS = ("collector", "captured_at", "original_url", "disclaimer", "notice")
DEDUP_KINDS = ("exact", "near", "url_variant", "unchanged", "revised")


class RunReport:
    """Collects per-record figures while the crawl runs and writes ``report.json`` at the end."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.counts: Counter[str] = Counter()
        self.filled: Counter[str] = Counter()
        self.related_total = 0
        self.more_total = 0
        self.started = time.monotonic()
        self.started_at = datetime.now(timezone.utc)
        self.reason: str | None = None
        self.report: dict[str, Any] | None = None
        self.extra: dict[str, Any] = {}  # sections other components add (monitors, ...)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunReport:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.engine_stopped, signal=signals.engine_stopped)
        crawler._snapcrawl_report = ext  # type: ignore[attr-defined]
        return ext

    def spider_opened(self, spider: Any) -> None:
        self.started = time.monotonic()
        self.started_at = datetime.now(timezone.utc)

    def item_scraped(self, item: Any, response: Any = None, spider: Any = None) -> None:
        adapter = ItemAdapter(item)
        kind = adapter.get("type") or "unknown"
        self.counts[kind] += 1
        if kind != "article":
            return
        for f in FILL_FIELDS:
            if adapter.get(f):
                self.filled[f] += 1
        snap = adapter.get("snapshot") or {}
        for f in SNAPSHOT_FILL_FIELDS:
            if snap.get(f):
                self.filled[f"snapshot.{f}"] += 1
        if adapter.get("related"):
            self.filled["related"] += 1
        if adapter.get("more_in_category"):
            self.filled["more_in_category"] += 1

    def spider_closed(self, spider: Any, reason: str) -> None:
        self.reason = reason
        self.report = self.build(spider, reason)

    def build(self, spider: Any, reason: str) -> dict[str, Any]:
        stats = self.crawler.stats
        assert stats is not None
        s = stats.get_stats()
        duration = max(time.monotonic() - self.started, 1e-6)
        by_status = {k.rsplit("/", 1)[1]: v for k, v in s.items() if k.startswith("downloader/response_status_count/")}
        fetched = int(s.get("response_received_count", 0))
        articles = self.counts["article"]
        fill = {
            f: round(self.filled[f] / articles, 4) if articles else None
            for f in (*FILL_FIELDS, *(f"snapshot.{x}" for x in SNAPSHOT_FILL_FIELDS), "related", "more_in_category")
        }
        errors = {k[len("snapcrawl/failed/") :]: v for k, v in s.items() if k.startswith("snapcrawl/failed/")}
        for k, v in s.items():
            if k.startswith("downloader/exception_type_count/"):
                errors.setdefault("download:" + k.rsplit("/", 1)[1].rsplit(".", 1)[-1], v)
            if k.startswith("spider_exceptions/") and k != "spider_exceptions/count":
                errors["spider:" + k.rsplit("/", 1)[1]] = v
        failures = sorted(getattr(spider, "failures", {}).values(), key=lambda f: f["url"])
        run = get_run(self.crawler, spider.name)
        return {
            "run_id": run.run_id,
            "spider": spider.name,
            "start_urls": list(getattr(spider, "start_urls", [])),
            "started_at": self.started_at.replace(microsecond=0).isoformat(),
            "finished_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
            "duration_s": round(duration, 3),
            "finish_reason": reason,
            "pages": {
                "fetched": fetched,
                "by_status": dict(sorted(by_status.items())),
                "article": int(s.get("snapcrawl/pages/article", 0)),
                "listing": int(s.get("snapcrawl/pages/listing", 0)),
                "empty": int(s.get("snapcrawl/pages/empty", 0)),
                "failed": len(failures),
                "pages_per_min": round(fetched / duration * 60, 1),
            },
            "records": {"articles": articles, "links": self.counts["link"], "rejected": self.counts["rejected"]},
            "duplicates": {k: int(s.get(f"snapcrawl/dedup/{k}", 0)) for k in DEDUP_KINDS},
            "errors": {"by_type": dict(sorted(errors.items())), "failed_pages": failures},
            "fill_rate": fill,
        }

    def engine_stopped(self) -> None:
        if self.report is None:
            return
        self.report.update(self.extra)
        run = get_run(self.crawler)
        if run.local and self.crawler.settings.getbool("SNAPCRAWL_EXPORT_ENABLED", True):
            folder = run.partial_dir if run.partial_dir.exists() or not run.final_dir.exists() else run.final_dir
            write_json_atomic(folder / "report.json", self.report)
        logger.info(summary(self.report))


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def summary(r: dict[str, Any]) -> str:
    """The few lines an operator reads at the end of a run."""
    p, rec, d = r["pages"], r["records"], r["duplicates"]
    lines = [
        f"run {r['run_id']} {r['finish_reason']} in {r['duration_s']:.1f}s: "
        f"{p['fetched']} pages ({p['pages_per_min']:.0f}/min), {p['article']} articles, {p['listing']} listings, "
        f"{p['failed']} failed",
        f"records: {rec['articles']} articles, {rec['links']} links, {rec['rejected']} rejected; "
        f"duplicates: " + ", ".join(f"{k} {v}" for k, v in d.items()),
    ]
    if r["errors"]["by_type"]:
        lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in r["errors"]["by_type"].items()))
    low = {k: v for k, v in r["fill_rate"].items() if v is not None and v < 0.9}
    if low:
        lines.append("low fill rates: " + ", ".join(f"{k} {v:.0%}" for k, v in low.items()))
    monitors = r.get("monitors")
    if monitors:
        lines.append(
            f"monitors: {'FAILED' if monitors.get('failed') else 'passed'}"
            + "".join(f"\n  - {m}" for m in monitors.get("failures", []))
        )
    return "\n".join(lines)
