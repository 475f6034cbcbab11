"""``report.json`` and a short human summary at the end of every run.

Record figures (articles, links, rejected, exported duplicates by kind, fill rates) are
counted from the records as the feeds receive them (``item_scraped``), and records already in
a resumed run's partial folder are counted in when the run opens, so the report agrees line
for line with the published files. ``duplicates`` is what deduplication decided (its stats),
including copies and unchanged pages that were not exported. Page figures come from the responses the engine received
(``response_received``), so ``pages.by_status`` adds up to ``pages.fetched``; retried
attempts are counted apart (``pages.retried``). Scrapy's whole stats dump is kept under
``scrapy_stats`` (and logged at DEBUG) instead of being printed at INFO.

The report is built when the spider closes (monitors read it then) and finished at engine
stop: other components' sections (``extra``, e.g. ``monitors``) are merged in and the summary
is logged. Writing and publishing ``report.json`` is :mod:`snapcrawl.extensions.publish`'s job.
"""

from __future__ import annotations

import gzip
import json
import logging
import pprint
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.http import Request, Response

from snapcrawl.exporters import article_written, count_link_records
from snapcrawl.run import get_run

logger = logging.getLogger("snapcrawl.report")

FILL_FIELDS = ("title", "category", "published_at", "source", "reposted_from", "body", "language")
SNAPSHOT_FILL_FIELDS = ("collector", "captured_at", "original_url", "disclaimer", "notice")
LIST_FILL_FIELDS = ("related", "more_in_category")
ALL_FILL_FIELDS = (*FILL_FIELDS, *(f"snapshot.{x}" for x in SNAPSHOT_FILL_FIELDS), *LIST_FILL_FIELDS)
DEDUP_KINDS = ("exact", "near", "url_variant", "unchanged", "revised")
#: failures that are the crawler's choice (robots.txt, offsite, a middleware's skip), not errors
NOT_ERRORS = frozenset({"IgnoreRequest"})
MAX_FAILED_LISTED = 1000  # report.json lists at most this many failed pages (all are counted)


def site_of(url: str | None) -> str:
    """The site a record belongs to: its URL's host name (ports and schemes do not split a site)."""
    return (urlsplit(url or "").hostname or "unknown").lower()


def filled_fields(adapter: Mapping[str, Any]) -> Iterator[str]:
    """The fill-rate fields an article record has a non-empty value for."""
    for f in FILL_FIELDS:
        if adapter.get(f):
            yield f
    snap = adapter.get("snapshot") or {}
    for f in SNAPSHOT_FILL_FIELDS:
        if snap.get(f):
            yield f"snapshot.{f}"
    for f in LIST_FILL_FIELDS:
        if adapter.get(f):
            yield f


def rates(filled: Mapping[str, int], articles: int) -> dict[str, float | None]:
    """Fill rate per field, 4 decimals; None when there is no article to measure."""
    return {f: round(filled.get(f, 0) / articles, 4) if articles else None for f in ALL_FILL_FIELDS}


def uncounted_spider_exceptions(stats: Mapping[str, Any]) -> int:
    """Callback exceptions not already listed as failed pages (``parse_error``), so none counts twice."""
    return max(0, int(stats.get("spider_exceptions/count", 0)) - int(stats.get("snapcrawl/failed/parse_error", 0)))


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


#: Counters a paused / killed JOBDIR run carries into its next session (file in the JOBDIR).
CARRY_FILE = "snapcrawl.report-counters.json"
#: Scrapy / snapcrawl stats the report reads whose values a resumed run adds up over its sessions.
CARRIED_STATS = (
    "retry/count",
    "scheduler/dequeued",
    "snapcrawl/pages/article",
    "snapcrawl/pages/listing",
    "snapcrawl/pages/empty",
    "snapcrawl/pages/robots_forbidden",
    *(f"snapcrawl/dedup/{kind}" for kind in DEDUP_KINDS),
)
CARRY_EVERY_S = 30.0  # a killed session loses at most this much of its page counters


class RunReport:
    """Collects per-record and per-page figures while the crawl runs; builds the report at the end.

    A run resumed from a ``JOBDIR`` spans several processes: its records are counted from the
    feed files, its failed pages come from the failure log, and its page counters (statuses,
    page kinds, retries, duplicates, duration) from :data:`CARRY_FILE`, written at each
    session's close and every :data:`CARRY_EVERY_S` seconds.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.counts: Counter[str] = Counter()  # exported records by type
        self.rejected_by_type: Counter[str] = Counter()
        self.duplicates: Counter[str] = Counter()
        self.site_articles: Counter[str] = Counter()
        self.site_filled: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.status: Counter[str] = Counter()
        self.item_errors: Counter[str] = Counter()
        self.resumed_records = 0
        self.started = time.monotonic()
        self.started_at = datetime.now(timezone.utc)
        self.report: dict[str, Any] | None = None
        self.extra: dict[str, Any] = {}  # sections other components add (monitors, ...)
        self.finished = False
        self.carried_status: Counter[str] = Counter()  # from earlier sessions of a resumed run
        self.carried_stats: Counter[str] = Counter()
        self.carried_duration = 0.0
        self.carry_path: Path | None = None
        self.carried_at = 0.0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunReport:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.response_received, signal=signals.response_received)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(ext.item_error, signal=signals.item_error)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.engine_stopped, signal=signals.engine_stopped)
        crawler._snapcrawl_report = ext  # type: ignore[attr-defined]
        return ext

    # ------------------------------------------------------------------ collecting

    def spider_opened(self, spider: Any) -> None:
        self.started = time.monotonic()
        self.started_at = datetime.now(timezone.utc)
        run = get_run(self.crawler, spider.name)
        if run.local and run.partial_dir.is_dir():
            self._count_existing(run.partial_dir)
        jobdir = self.crawler.settings.get("JOBDIR")
        if jobdir:
            self.carry_path = Path(jobdir) / CARRY_FILE
            self._load_carried(run.run_id)

    def _load_carried(self, run_id: str) -> None:
        assert self.carry_path is not None
        try:
            state = json.loads(self.carry_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            logger.warning("resumed run: cannot read %s (%s); page counters start afresh", self.carry_path, exc)
            return
        if not isinstance(state, dict) or state.get("run_id") != run_id:
            return  # an earlier, published run's counters
        self.carried_status.update({str(k): int(v) for k, v in (state.get("by_status") or {}).items()})
        self.carried_stats.update({str(k): int(v) for k, v in (state.get("stats") or {}).items()})
        self.carried_duration = float(state.get("duration_s") or 0.0)
        self.started_at = datetime.fromisoformat(state.get("started_at") or self.started_at.isoformat())

    def save_carried(self, force: bool = False) -> None:
        """Write this run's page counters so far to the JOBDIR (atomically), for the next session."""
        if self.carry_path is None or not self.carry_path.parent.is_dir():
            return
        now = time.monotonic()
        if not force and now - self.carried_at < CARRY_EVERY_S:
            return
        self.carried_at = now
        stats = self.crawler.stats
        assert stats is not None
        s = stats.get_stats()
        state = {
            "run_id": get_run(self.crawler).run_id,
            "started_at": self.started_at.isoformat(),
            "duration_s": self.carried_duration + (now - self.started),
            "by_status": dict(self.carried_status + self.status),
            "stats": {k: int(s.get(k, 0)) + self.carried_stats[k] for k in CARRIED_STATS},
        }
        tmp = self.carry_path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(state), encoding="utf-8")
            tmp.replace(self.carry_path)
        except OSError as exc:
            logger.warning("cannot save the run's page counters to %s: %s", self.carry_path, exc)

    def _count_existing(self, folder: Path) -> None:
        """A resumed run appends to its partial folder: count what is already there, so the
        report keeps matching the files (an unterminated last line is not a record yet)."""
        for path in sorted(folder.glob("*.jsonl*")):
            opener = gzip.open if path.suffix == ".gz" else open
            try:
                with opener(path, "rt", encoding="utf-8") as fh:
                    for line in fh:
                        if not line.endswith("\n"):
                            break
                        try:
                            record = json.loads(line)
                        except ValueError:
                            continue
                        self.record(record)
                        self.resumed_records += 1
            except (OSError, EOFError) as exc:  # a gzip member cut by a kill: count what was readable
                logger.warning("resumed run: could not read all of %s (%s); its counts may be short", path, exc)
        if self.resumed_records:
            logger.info("resumed run: %d records already exported in %s", self.resumed_records, folder)

    def response_received(self, response: Response, request: Request, spider: Any = None) -> None:
        self.status[str(response.status)] += 1
        if self.carry_path is not None:
            self.save_carried()

    def item_scraped(self, item: Any, response: Any = None, spider: Any = None) -> None:
        adapter = ItemAdapter(item)
        if not article_written(item):  # else its line is in the feed since before a crash, counted then
            self.record(adapter)
        self.counts["link"] += count_link_records(item, adapter)  # written from the article (exporters.py)

    def record(self, adapter: Mapping[str, Any]) -> None:
        """Count one exported record (an item or a line read back from a feed file)."""
        kind = adapter.get("type") or "unknown"
        self.counts[kind] += 1
        if kind == "rejected":
            self.rejected_by_type[adapter.get("record_type") or "unknown"] += 1
            return
        if kind != "article":
            return
        if adapter.get("duplicate_kind"):
            self.duplicates[adapter["duplicate_kind"]] += 1
        site = site_of(adapter.get("url"))
        self.site_articles[site] += 1
        self.site_filled[site].update(filled_fields(adapter))

    def item_error(self, item: Any, response: Any = None, spider: Any = None, failure: Any = None) -> None:
        exc = getattr(failure, "value", None)
        self.item_errors[type(exc).__name__ if exc is not None else "unknown"] += 1

    # ------------------------------------------------------------------ figures

    def fill_rates(self) -> dict[str, float | None]:
        total: Counter[str] = Counter()
        for filled in self.site_filled.values():
            total.update(filled)
        return rates(total, self.counts["article"])

    def fill_rates_by_site(self) -> dict[str, dict[str, Any]]:
        return {
            site: {"articles": n, "fill_rate": rates(self.site_filled[site], n)}
            for site, n in sorted(self.site_articles.items())
        }

    def spider_closed(self, spider: Any, reason: str) -> None:
        self.close(spider, reason)
        self.save_carried(force=True)

    def close(self, spider: Any, reason: str) -> dict[str, Any]:
        """The report as of the spider's close (built once; monitors call this too)."""
        if self.report is None:
            self.report = self.build(spider, reason)
        return self.report

    def build(self, spider: Any, reason: str) -> dict[str, Any]:
        stats = self.crawler.stats
        assert stats is not None
        s = dict(stats.get_stats())
        for key, value in self.carried_stats.items():  # earlier sessions of a resumed run
            s[key] = int(s.get(key, 0)) + value
        status = self.status + self.carried_status
        duration = max(time.monotonic() - self.started + self.carried_duration, 1e-6)
        fetched = sum(status.values())
        failures = sorted(getattr(spider, "failures", {}).values(), key=lambda f: f["url"])
        by_type: Counter[str] = Counter(f["error"] for f in failures)
        spider_exceptions = {
            k.rsplit("/", 1)[1]: int(v)
            for k, v in s.items()
            if k.startswith("spider_exceptions/") and k != "spider_exceptions/count"
        }
        # a callback that raised is usually listed as a failed page already (parse_error)
        uncovered = uncounted_spider_exceptions(s)
        if uncovered:
            by_type["spider_exception"] += uncovered
        for name, n in self.item_errors.items():
            by_type["item:" + name] += n
        total_errors = sum(n for kind, n in by_type.items() if kind not in NOT_ERRORS)
        skipped = sum(n for kind, n in by_type.items() if kind in NOT_ERRORS)
        dropped = {
            k[len("item_dropped_reasons_count/") :]: int(v)
            for k, v in s.items()
            if k.startswith("item_dropped_reasons_count/")
        }
        run = get_run(self.crawler, spider.name)
        return {
            "run_id": run.run_id,
            "spider": spider.name,
            "start_urls": list(getattr(spider, "start_urls", [])),
            "sites": sorted(self.site_articles),
            "started_at": self.started_at.replace(microsecond=0).isoformat(),
            "finished_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
            "duration_s": round(duration, 3),
            "finish_reason": reason,
            "pages": {
                "fetched": fetched,
                "by_status": dict(sorted(status.items())),
                "retried": int(s.get("retry/count", 0)),
                "article": int(s.get("snapcrawl/pages/article", 0)),
                "listing": int(s.get("snapcrawl/pages/listing", 0)),
                "empty": int(s.get("snapcrawl/pages/empty", 0)),
                "failed": len(failures),
                "robots_forbidden": int(s.get("snapcrawl/pages/robots_forbidden", 0)),
                "pages_per_min": round(fetched / duration * 60, 1),
            },
            "records": {
                "articles": self.counts["article"],
                "links": self.counts["link"],
                "rejected": self.counts["rejected"],
                "rejected_by_type": dict(sorted(self.rejected_by_type.items())),
                "dropped": dict(sorted(dropped.items())),
                "resumed": self.resumed_records,
            },
            "duplicates": {k: int(s.get(f"snapcrawl/dedup/{k}", 0)) for k in DEDUP_KINDS},
            "duplicates_exported": dict(sorted(self.duplicates.items())),
            "errors": {
                "total": total_errors,
                # per page the crawl set out to get (a timeout or DNS failure has no response, so
                # `fetched` alone would undercount and let the rate pass 100 %)
                # (and a resumed run's articles and failures span its earlier sessions too)
                "rate": round(
                    min(
                        1.0,
                        total_errors
                        / max(fetched, int(s.get("scheduler/dequeued", 0)), self.counts["article"] + len(failures), 1),
                    ),
                    4,
                ),
                "skipped": skipped,
                "by_type": dict(sorted(by_type.items())),
                "spider_exceptions": dict(sorted(spider_exceptions.items())),
                "failed_pages": failures[:MAX_FAILED_LISTED],
            },
            "fill_rate": self.fill_rates(),
            "fill_rate_by_site": self.fill_rates_by_site(),
            "scrapy_stats": {k: _json_safe(v) for k, v in sorted(s.items())},
        }

    def finish(self) -> dict[str, Any] | None:
        """Merge the other sections in and log the summary, once; the final report (None if the
        spider never closed, e.g. the crawl did not start)."""
        if self.report is None:
            return None
        if not self.finished:
            self.finished = True
            stats = self.report.pop("scrapy_stats")
            self.report.update(self.extra)
            self.report["scrapy_stats"] = stats  # the long tail goes last
            logger.debug("Scrapy stats:\n%s", pprint.pformat(self.report["scrapy_stats"]))
            logger.log(logging.WARNING if needs_attention(self.report) else logging.INFO, summary(self.report))
        return self.report

    def engine_stopped(self) -> None:
        self.finish()


def needs_attention(r: dict[str, Any]) -> bool:
    """A run an operator must look at: a monitor failed, or (without monitors) it did not finish."""
    monitors = r.get("monitors")
    if monitors:
        return bool(monitors.get("failed"))
    return r["finish_reason"] != "finished"


def summary(r: dict[str, Any]) -> str:
    """The few lines an operator reads at the end of a run."""
    p, rec, d, e = r["pages"], r["records"], r["duplicates"], r["errors"]
    statuses = ", ".join(f"{k}: {v}" for k, v in p["by_status"].items()) or "none"
    lines = [
        f"run {r['run_id']} {r['finish_reason']} in {r['duration_s']:.1f}s: "
        f"{p['fetched']} pages ({p['pages_per_min']:.0f}/min; {statuses}), {p['article']} articles, "
        f"{p['listing']} listings, {p['failed']} failed",
        f"records: {rec['articles']} articles, {rec['links']} links, {rec['rejected']} rejected; "
        "duplicates: " + (", ".join(f"{k} {v}" for k, v in d.items() if v) or "none"),
    ]
    if rec.get("dropped"):
        lines.append("dropped: " + ", ".join(f"{k} {v}" for k, v in rec["dropped"].items()))
    if e["by_type"]:
        kinds = ", ".join(f"{k} {v}" for k, v in e["by_type"].items())
        lines.append(f"errors: {e['total']} ({e['total'] / max(p['fetched'], 1):.1%} of pages): {kinds}")
    low = {k: v for k, v in r["fill_rate"].items() if v is not None and v < 0.9}
    if low:
        lines.append("fill rates under 90%: " + ", ".join(f"{k} {v:.0%}" for k, v in low.items()))
    monitors = r.get("monitors")
    if monitors:
        failed, passed, skipped = (monitors.get(k) or [] for k in ("failed", "passed", "skipped"))
        counts = f"{len(passed)} passed, {len(skipped)} skipped"
        if failed:
            lines.append(f"monitors: {len(failed)} FAILED, {counts}")
            lines.extend(f"  - {m['monitor']}: {m['message']}" for m in failed)
        else:
            lines.append(f"monitors: {counts}, none failed")
    return "\n".join(lines)
