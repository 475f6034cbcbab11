"""Run monitors (spidermon): is this run's output good enough to use?

Five checks, each a spidermon :class:`~spidermon.Monitor` with thresholds from ``SNAPCRAWL_MONITOR_*``
settings: minimum article count, maximum error rate, maximum rejected (invalid) record rate per
record type, expected finish reason, and field fill-rate drift per site against the previous
published run's ``report.json`` (``<export>/<spider>/LATEST``, read when this run opens, i.e.
before it publishes). The results go into ``report.json`` (``monitors``) and the stat
``snapcrawl/monitors/failed``, which makes ``scrapy crawl`` exit with status 1.

The suite runs from :class:`RunMonitors` through spidermon's plain :class:`~spidermon.MonitorRunner`
rather than spidermon's Scrapy extension: that extension logs every monitor at INFO and each
failure's traceback at ERROR, while operators here read the run summary and ``report.json``.
To add spidermon actions (e-mail, Slack, ...), subclass :class:`RunMonitorSuite`, set
``monitors_failed_actions`` and name the subclass in ``SNAPCRAWL_MONITOR_SUITE``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.utils.misc import load_object
from spidermon import Monitor, MonitorRunner, MonitorSuite, monitors
from spidermon import settings as spidermon_settings

from snapcrawl.run import get_run

logger = logging.getLogger(__name__)

DEFAULT_SUITE = "snapcrawl.monitors.RunMonitorSuite"


@dataclass(frozen=True)
class Limits:
    """The thresholds, from settings (defaults documented in docs/outputs.md)."""

    min_articles: int = 0
    max_error_rate: float = 0.1
    max_rejected_rate: float = 0.05
    max_fill_drop: float = 0.2
    fill_min_articles: int = 20
    finish_reasons: tuple[str, ...] = ("finished",)

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        d = cls()
        return cls(
            min_articles=settings.getint("SNAPCRAWL_MONITOR_MIN_ARTICLES", d.min_articles),
            max_error_rate=settings.getfloat("SNAPCRAWL_MONITOR_MAX_ERROR_RATE", d.max_error_rate),
            max_rejected_rate=settings.getfloat("SNAPCRAWL_MONITOR_MAX_REJECTED_RATE", d.max_rejected_rate),
            max_fill_drop=settings.getfloat("SNAPCRAWL_MONITOR_MAX_FILL_DROP", d.max_fill_drop),
            fill_min_articles=settings.getint("SNAPCRAWL_MONITOR_FILL_MIN_ARTICLES", d.fill_min_articles),
            finish_reasons=tuple(settings.getlist("SNAPCRAWL_MONITOR_FINISH_REASONS") or d.finish_reasons),
        )


#: how many earlier published runs the drift monitor may look through for a site's baseline
MAX_BASELINE_RUNS = 30


@dataclass(frozen=True)
class Baseline:
    """Per site, the fill rates of the newest earlier run with enough of its articles to compare."""

    sites: dict[str, dict[str, Any]]  # site -> {"run_id", "articles", "fill_rate"}
    source: str | None  # the report.json the search started from
    note: str  # which run it is, or why there is none

    @classmethod
    def none(cls, note: str, source: str | None = None) -> Baseline:
        return cls({}, source, note)

    def add(self, report: dict[str, Any], min_articles: int) -> None:
        """Take the sites of ``report`` that have no baseline yet and enough articles."""
        for site, figures in (report.get("fill_rate_by_site") or {}).items():
            if site not in self.sites and isinstance(figures, dict) and figures.get("articles", 0) >= min_articles:
                self.sites[site] = {**figures, "run_id": report.get("run_id")}


def _read_report(path: Path) -> dict[str, Any]:
    report = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(report, dict) or not isinstance(report.get("fill_rate_by_site"), dict):
        raise ValueError("no fill_rate_by_site")
    return report


def load_baseline(crawler: Crawler, min_articles: int = 1) -> Baseline:
    """Per-site fill rates to compare this run with, read when the run opens (before it publishes).

    ``SNAPCRAWL_MONITOR_BASELINE`` (a report.json path) when set; else the run ``LATEST`` names
    and, for sites it has too few articles of (an incremental run re-exports only what changed),
    the newest earlier published run that has enough (at most :data:`MAX_BASELINE_RUNS` back).
    """
    explicit = crawler.settings.get("SNAPCRAWL_MONITOR_BASELINE")
    if explicit:
        path = Path(str(explicit))
        try:
            report = _read_report(path)
        except (OSError, ValueError) as exc:
            logger.warning("fill-rate drift: baseline report %s unusable (%s); drift not checked", path, exc)
            return Baseline.none(f"baseline report {path} unusable: {exc}", str(path))
        baseline = Baseline({}, str(path), f"run {report.get('run_id')}")
        baseline.add(report, min_articles)
        return baseline
    run = get_run(crawler)
    if not run.local:
        return Baseline.none("remote exports: set SNAPCRAWL_MONITOR_BASELINE to a local report.json")
    latest = run.spider_dir / "LATEST"
    try:
        previous = latest.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return Baseline.none(f"no previous run ({latest} does not exist)")
    except OSError as exc:
        return Baseline.none(f"cannot read {latest}: {exc.strerror or exc}")
    path = run.spider_dir / previous / "report.json"
    try:
        report = _read_report(path)
    except (OSError, ValueError) as exc:
        logger.warning("fill-rate drift: previous report %s unusable (%s); drift not checked", path, exc)
        return Baseline.none(f"previous report {path} unusable: {exc}", str(path))
    baseline = Baseline({}, str(path), f"run {previous}")
    baseline.add(report, min_articles)
    # run ids start with their UTC start time: name order is age order
    older = sorted(
        (d for d in run.spider_dir.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name < previous),
        key=lambda d: d.name,
        reverse=True,
    )
    for folder in older[:MAX_BASELINE_RUNS]:
        try:
            baseline.add(_read_report(folder / "report.json"), min_articles)
        except (OSError, ValueError) as exc:
            logger.debug("fill-rate drift: skipping %s (%s)", folder, exc)
    return baseline


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


class RunMonitor(Monitor):
    """Base: the run's report, limits and baseline, as :class:`RunMonitors` passes them in ``data``."""

    @property
    def report(self) -> dict[str, Any]:
        return self.data.report

    @property
    def limits(self) -> Limits:
        return self.data.limits


@monitors.name("min_articles")
class MinArticlesMonitor(RunMonitor):
    """At least SNAPCRAWL_MONITOR_MIN_ARTICLES articles exported."""

    def test_min_articles(self) -> None:
        want = self.limits.min_articles
        if want <= 0:
            self.skipTest("SNAPCRAWL_MONITOR_MIN_ARTICLES is 0")
        got = self.report["records"]["articles"]
        if got < want:
            self.fail(f"{got} articles exported, at least {want} expected (SNAPCRAWL_MONITOR_MIN_ARTICLES)")


@monitors.name("error_rate")
class ErrorRateMonitor(RunMonitor):
    """Errors (failed pages, spider and pipeline exceptions) per page fetched, at most the limit."""

    def test_error_rate(self) -> None:
        e, fetched = self.report["errors"], self.report["pages"]["fetched"]
        if e["rate"] > self.limits.max_error_rate:
            kinds = ", ".join(f"{k} {v}" for k, v in e["by_type"].items())
            self.fail(
                f"{e['total']} errors for {fetched} pages fetched ({_pct(e['rate'])}), "
                f"more than {_pct(self.limits.max_error_rate)} (SNAPCRAWL_MONITOR_MAX_ERROR_RATE): {kinds}"
            )


@monitors.name("rejected_rate")
class RejectedRateMonitor(RunMonitor):
    """Per record type, records rejected by schema validation / records produced, at most the limit."""

    def test_rejected_rate(self) -> None:
        rec = self.report["records"]
        exported = {"article": rec["articles"], "link": rec["links"]}
        problems = []
        for kind, rejected in rec["rejected_by_type"].items():
            produced = exported.get(kind, 0) + rejected
            rate = rejected / produced if produced else 0.0
            if rate > self.limits.max_rejected_rate:
                problems.append(f"{rejected} of {produced} {kind} records rejected ({_pct(rate)})")
        if problems:
            self.fail(
                "; ".join(problems)
                + f", more than {_pct(self.limits.max_rejected_rate)} (SNAPCRAWL_MONITOR_MAX_REJECTED_RATE);"
                " see rejected.jsonl"
            )


@monitors.name("finish_reason")
class FinishReasonMonitor(RunMonitor):
    """The run closed for an expected reason (SNAPCRAWL_MONITOR_FINISH_REASONS, default ``finished``)."""

    def test_finish_reason(self) -> None:
        reason = self.report["finish_reason"]
        if reason not in self.limits.finish_reasons:
            self.fail(
                f"finish reason {reason!r}, expected {' or '.join(map(repr, self.limits.finish_reasons))} "
                "(SNAPCRAWL_MONITOR_FINISH_REASONS)"
            )


@monitors.name("fill_drift")
class FillDriftMonitor(RunMonitor):
    """Per site and field, the fill rate fell by at most SNAPCRAWL_MONITOR_MAX_FILL_DROP since the previous run."""

    def test_fill_drift(self) -> None:
        baseline: Baseline = self.data.baseline
        limit, min_n = self.limits.max_fill_drop, self.limits.fill_min_articles
        now: dict[str, Any] = self.report["fill_rate_by_site"]
        compared, drops = [], []
        for site, cur in sorted(now.items()):
            prev = baseline.sites.get(site)
            if prev is None or cur["articles"] < min_n or prev.get("articles", 0) < min_n:
                continue
            compared.append(site)
            for field, rate in cur["fill_rate"].items():
                old = prev.get("fill_rate", {}).get(field)
                if rate is None or old is None:
                    continue
                drop = round(old - rate, 4)
                if drop > limit:
                    drops.append(
                        {
                            "site": site,
                            "field": field,
                            "previous": old,
                            "current": rate,
                            "drop": drop,
                            "previous_run": prev.get("run_id"),
                        }
                    )
        self.data.findings["fill_drift"] = drops
        if not compared:
            if not baseline.note.startswith("run "):
                self.skipTest(baseline.note)  # no earlier report at all
            self.skipTest(f"no site with at least {min_n} articles in both this run and an earlier run")
        if drops:
            self.fail(
                "; ".join(
                    f"{d['site']}: {d['field']} fill rate fell from {_pct(d['previous'])} to {_pct(d['current'])} "
                    f"(-{d['drop'] * 100:.1f} points) since run {d['previous_run']}"
                    for d in drops
                )
                + f"; max drop {limit * 100:.0f} points (SNAPCRAWL_MONITOR_MAX_FILL_DROP)"
            )


class RunMonitorSuite(MonitorSuite):
    """The checks every run gets; subclass to add monitors or spidermon actions."""

    monitors = [  # noqa: RUF012 - spidermon's declarative API
        MinArticlesMonitor,
        ErrorRateMonitor,
        RejectedRateMonitor,
        FinishReasonMonitor,
        FillDriftMonitor,
    ]


def _results(result: Any, findings: dict[str, Any], baseline: Baseline) -> dict[str, Any]:
    """The ``monitors`` section of report.json from spidermon's result object."""
    status = spidermon_settings.MONITOR.STATUS
    passed: list[str] = []
    failed: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    for item in result.monitor_results:
        name = item.item.monitor_name
        if item.status == status.SKIPPED:
            skipped.append({"monitor": name, "reason": str(item.reason)})
        elif item.status == status.FAILURE:
            failed.append({"monitor": name, "message": str(item.reason)})
        elif item.status in spidermon_settings.MONITOR.STATUSES.ERROR:  # a monitor that crashed: failed check
            last = (item.error or "").strip().splitlines()[-1:] or ["error"]
            failed.append({"monitor": name, "message": f"monitor crashed: {last[0]}"})
        else:
            passed.append(name)
    return {
        "status": "failed" if failed else "passed",
        "passed": passed,
        "failed": failed,
        "skipped": skipped,
        "fill_drift": findings.get("fill_drift", []),
        "baseline": {
            "report": baseline.source,
            "note": baseline.note,
            "runs": {site: figures.get("run_id") for site, figures in sorted(baseline.sites.items())},
        },
    }


class RunMonitors:
    """Runs the monitor suite when the spider closes; results into report.json and stats."""

    def __init__(self, crawler: Crawler, limits: Limits, suite_path: str) -> None:
        self.crawler = crawler
        self.limits = limits
        self.suite_path = suite_path
        self.baseline = Baseline.none("not loaded")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunMonitors:
        settings = crawler.settings
        if not settings.getbool("SNAPCRAWL_MONITORS_ENABLED", True):
            raise NotConfigured("SNAPCRAWL_MONITORS_ENABLED is off")
        suite_path = str(settings.get("SNAPCRAWL_MONITOR_SUITE") or DEFAULT_SUITE)
        suite_cls = load_object(suite_path)
        if not (isinstance(suite_cls, type) and issubclass(suite_cls, MonitorSuite)):
            from snapcrawl.addon import SettingError

            raise SettingError(f"setting SNAPCRAWL_MONITOR_SUITE={suite_path!r}: not a spidermon MonitorSuite")
        ext = cls(crawler, Limits.from_settings(settings), suite_path)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Any) -> None:
        self.baseline = load_baseline(self.crawler, self.limits.fill_min_articles)

    def spider_closed(self, spider: Any, reason: str) -> None:
        report_ext = getattr(self.crawler, "_snapcrawl_report", None)
        if report_ext is None:
            logger.warning("monitors not run: the RunReport extension is off")
            return
        report = report_ext.close(spider, reason)
        stats = self.crawler.stats
        assert stats is not None
        suite = load_object(self.suite_path)(crawler=self.crawler)
        findings: dict[str, Any] = {}
        result = MonitorRunner().run(
            suite,
            stats={**stats.get_stats(), "finish_reason": reason},
            crawler=self.crawler,
            spider=spider,
            report=report,
            limits=self.limits,
            baseline=self.baseline,
            findings=findings,
            meta={},
        )
        section = _results(result, findings, self.baseline)
        section["limits"] = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.limits).items()}
        report_ext.extra["monitors"] = section
        stats.set_value("snapcrawl/monitors/passed", len(section["passed"]))
        stats.set_value("snapcrawl/monitors/failed", len(section["failed"]))
