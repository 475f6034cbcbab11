"""Run monitors (spidermon) and exit codes: drift against the previous run, limits, finish reason."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from scrapy.utils.test import get_crawler
from spidermon import MonitorRunner

from snapcrawl.commands.crawl import EXIT_FAILED, EXIT_OK, exit_code_for
from snapcrawl.extensions.report import ALL_FILL_FIELDS
from snapcrawl.monitors import Baseline, Limits, RunMonitor, RunMonitorSuite, _results, load_baseline
from snapcrawl.sample.server import SampleServer
from snapcrawl.sample.site import Site, build_site
from snapcrawl.spiders.snapshots import SnapshotsSpider
from tests.conftest import run_crawl

# ------------------------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_no_dates_run_fails_the_drift_monitor(tmp_path: Path, site: Site) -> None:
    undated = build_site(variant="no-dates")
    # the variant only takes the 发布时间 off most article pages; every other byte is the same
    changed = {p for p, page in undated.pages.items() if page.body != site.pages[p].body}
    assert changed == set(undated.undated_paths()) and len(changed) == 53
    assert set(undated.pages) == set(site.pages)
    with SampleServer(site) as srv:
        # full exports both times: with SNAPCRAWL_INCREMENTAL on, pages whose title and body did not
        # change are not exported again, so the re-dated pages would not be in the second run at all
        full = {"SNAPCRAWL_INCREMENTAL": "0"}
        first = run_crawl(tmp_path, start_urls=srv.url + "/", settings=full)
        assert first.returncode == 0, first.stderr[-2000:]
        first_report = first.report()
        skipped = {s["monitor"]: s["reason"] for s in first_report["monitors"]["skipped"]}
        assert skipped["fill_drift"].startswith("no previous run")

        srv.set_site(undated)
        second = run_crawl(tmp_path, start_urls=srv.url + "/", settings=full)
    assert second.returncode == 1, second.stderr[-3000:]

    # the pages really lost their dates, and only those
    articles = {a["url"]: a for a in second.records("articles")}
    assert len(articles) == len(site.article_paths())
    assert {u for u, a in articles.items() if a["published_at"] is None} == {
        srv.url + p for p in undated.undated_paths()
    }
    kept = len(articles) - len(undated.undated_paths())
    assert kept == 18

    report = second.report()
    monitors = report["monitors"]
    assert monitors["status"] == "failed"
    assert monitors["baseline"] == {
        "report": str(first.spider_dir / first_report["run_id"] / "report.json"),
        "note": f"run {first_report['run_id']}",
        "runs": {"127.0.0.1": first_report["run_id"]},
    }
    current = round(kept / len(articles), 4)
    assert monitors["fill_drift"] == [
        {
            "site": "127.0.0.1",
            "field": "published_at",
            "previous": 1.0,
            "current": current,
            "drop": round(1.0 - current, 4),
            "previous_run": first_report["run_id"],
        }
    ]
    assert [f["monitor"] for f in monitors["failed"]] == ["fill_drift"]
    message = monitors["failed"][0]["message"]
    assert message.startswith(
        f"127.0.0.1: published_at fill rate fell from 100.0% to {current * 100:.1f}% "
        f"(-{round(1.0 - current, 4) * 100:.1f} points) since run {first_report['run_id']}"
    )
    assert message.endswith("; max drop 20 points (SNAPCRAWL_MONITOR_MAX_FILL_DROP)")
    assert report["fill_rate"]["published_at"] == current
    assert second.stderr.count("published_at fill rate fell from 100.0%") == 1  # in the WARNING summary
    # the flagged run is still published: its files are whole, and report.json says what is wrong
    assert second.run_dir.name == report["run_id"]


def test_limits_fail_the_run_and_say_why(tmp_path: Path, server: SampleServer) -> None:
    result = run_crawl(
        tmp_path,
        start_urls=server.url + "/",
        settings={"SNAPCRAWL_MONITOR_MIN_ARTICLES": "100", "SNAPCRAWL_MONITOR_MAX_ERROR_RATE": "0.02"},
    )
    assert result.returncode == 1
    report = result.report()
    failed = {f["monitor"]: f["message"] for f in report["monitors"]["failed"]}
    assert failed["min_articles"] == "71 articles exported, at least 100 expected (SNAPCRAWL_MONITOR_MIN_ARTICLES)"
    fetched = report["pages"]["fetched"]
    assert failed["error_rate"] == (
        f"3 errors for {fetched} pages fetched ({round(3 / fetched, 4) * 100:.1f}%), more than 2.0% "
        "(SNAPCRAWL_MONITOR_MAX_ERROR_RATE): empty_page 1, http_404 1, http_500 1"
    )
    assert set(report["monitors"]["passed"]) == {"rejected_rate", "finish_reason"}
    assert result.stderr.count("monitors: 2 FAILED, 2 passed, 1 skipped") == 1


def test_finish_reason_monitor_and_exit_code(tmp_path: Path, server: SampleServer) -> None:
    limited = {"CLOSESPIDER_PAGECOUNT": "3", "CONCURRENT_REQUESTS_PER_DOMAIN": "1"}
    cut = run_crawl(tmp_path / "a", start_urls=server.url + "/", settings=limited)
    assert cut.returncode == 1
    report = cut.report()  # closed by a limit: published, and flagged
    assert report["finish_reason"] == "closespider_pagecount"
    assert report["monitors"]["failed"] == [
        {
            "monitor": "finish_reason",
            "message": "finish reason 'closespider_pagecount', expected 'finished' (SNAPCRAWL_MONITOR_FINISH_REASONS)",
        }
    ]
    allowed = run_crawl(
        tmp_path / "b",
        start_urls=server.url + "/",
        settings={**limited, "SNAPCRAWL_MONITOR_FINISH_REASONS": "finished,closespider_pagecount"},
    )
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert "finish_reason" in allowed.report()["monitors"]["passed"]


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("SNAPCRAWL_MONITOR_MAX_FILL_DROP", "2", "must be between 0 and 1"),
        ("SNAPCRAWL_MONITOR_MIN_ARTICLES", "many", "expected int"),
        ("SNAPCRAWL_MONITOR_SUITE", "snapcrawl.monitors.Limits", "not a spidermon MonitorSuite"),
    ],
)
def test_bad_monitor_setting_exits_2(tmp_path: Path, server: SampleServer, name: str, value: str, says: str) -> None:
    result = run_crawl(tmp_path, start_urls=server.url + "/", settings={name: value})
    assert result.returncode == 2
    assert name in result.stderr and says in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "exports" / "snapshots" / "LATEST").exists()


# ------------------------------------------------------------------------------------ the suite


def _report(articles: int = 50, fill: dict[str, float] | None = None, site: str = "a.example", **over: Any) -> dict:
    rates = {f: 1.0 for f in ALL_FILL_FIELDS} | (fill or {})
    report = {
        "finish_reason": "finished",
        "pages": {"fetched": 100},
        "records": {"articles": articles, "links": 10 * articles, "rejected_by_type": {}},
        "errors": {"total": 0, "rate": 0.0, "by_type": {}},
        "fill_rate": rates,
        "fill_rate_by_site": {site: {"articles": articles, "fill_rate": rates}},
    }
    report.update(over)
    return report


def _run(report: dict, baseline: dict | None = None, suite: type = RunMonitorSuite, **limits: Any) -> dict:
    base = Baseline.none("no previous run")
    if baseline is not None:
        base = Baseline({}, "prev/report.json", "run prev")
        base.add({**baseline, "run_id": "prev"}, 1)
    findings: dict[str, Any] = {}
    result = MonitorRunner().run(
        suite(), report=report, limits=Limits(**limits), baseline=base, findings=findings, meta={}, stats={}
    )
    return _results(result, findings, base)


def test_drift_compares_sites_with_enough_articles_and_only_drops() -> None:
    before = _report(fill={"published_at": 0.99, "source": 0.5, "category": 0.9})
    now = _report(fill={"published_at": 0.4, "source": 0.9, "category": 0.7})
    section = _run(now, before)
    assert section["fill_drift"] == [
        {
            "site": "a.example",
            "field": "published_at",
            "previous": 0.99,
            "current": 0.4,
            "drop": 0.59,
            "previous_run": "prev",
        }
    ]  # source rose, category fell exactly 20 points: the limit is not exceeded
    assert [f["monitor"] for f in section["failed"]] == ["fill_drift"]
    assert (
        "a.example: published_at fill rate fell from 99.0% to 40.0% (-59.0 points) since run prev"
        in (section["failed"][0]["message"])
    )
    # a looser limit passes; too few articles, or another site, is not compared
    assert _run(now, before, max_fill_drop=0.6)["status"] == "passed"
    small = _run(_report(articles=5, fill={"published_at": 0.0}), before)
    assert {
        "monitor": "fill_drift",
        "reason": "no site with at least 20 articles in both this run and an earlier run",
    } in (small["skipped"])
    other = _run(_report(site="b.example", fill={"published_at": 0.0}), before)
    assert other["status"] == "passed" and other["fill_drift"] == []
    assert {"monitor": "fill_drift", "reason": "no previous run"} in _run(now)["skipped"]


def test_rejected_rate_is_per_record_type() -> None:
    report = _report(articles=95)
    report["records"]["rejected_by_type"] = {"article": 5, "link": 10}
    section = _run(report)  # 5 of 100 articles (5.0 %) is at the default limit; 10 of 960 links 1 %
    assert "rejected_rate" in section["passed"]
    report["records"]["rejected_by_type"] = {"article": 6}
    failed = _run(report)["failed"]
    assert failed == [
        {
            "monitor": "rejected_rate",
            "message": "6 of 101 article records rejected (5.9%), more than "
            "5.0% (SNAPCRAWL_MONITOR_MAX_REJECTED_RATE); see rejected.jsonl",
        }
    ]


class _Broken(RunMonitor):
    __test__ = False  # a spidermon monitor (a unittest.TestCase): not for pytest to collect

    def test_broken(self) -> None:
        raise KeyError("fill_rate")


class _SuiteWithBrokenMonitor(RunMonitorSuite):
    monitors = [*RunMonitorSuite.monitors, _Broken]  # noqa: RUF012


def test_a_crashing_monitor_counts_as_failed() -> None:
    section = _run(_report(), suite=_SuiteWithBrokenMonitor)
    assert section["status"] == "failed"
    assert section["failed"] == [{"monitor": "_Broken", "message": "monitor crashed: KeyError: 'fill_rate'"}]


# ------------------------------------------------------------------------------------ baseline, exit codes


def _crawler(tmp_path: Path, **settings: Any) -> Any:
    return get_crawler(SnapshotsSpider, {"SNAPCRAWL_EXPORT_URI": str(tmp_path), **settings})


def test_baseline_is_the_report_latest_names_or_an_earlier_one_per_site(tmp_path: Path) -> None:
    assert load_baseline(_crawler(tmp_path)).note.startswith("no previous run")
    spider_dir = tmp_path / "snapshots"

    def publish(run_id: str, **sites: int) -> None:
        (spider_dir / run_id).mkdir(parents=True)
        report = _report(run_id=run_id)
        report["fill_rate_by_site"] = {s: {"articles": n, "fill_rate": {"title": 1.0}} for s, n in sites.items()}
        (spider_dir / run_id / "report.json").write_text(json.dumps(report))
        (spider_dir / "LATEST").write_text(run_id + "\n")

    (spider_dir / "r0").mkdir(parents=True)
    (spider_dir / "LATEST").write_text("r0\n")
    broken = load_baseline(_crawler(tmp_path))
    assert broken.sites == {} and "unusable" in broken.note and "r0/report.json" in broken.note
    publish("r1", **{"a.example": 50, "b.example": 30})
    publish("r2", **{"a.example": 40, "b.example": 3})  # an incremental run: few of b's articles changed
    (spider_dir / ".r3.partial").mkdir()  # a run in progress is never a baseline
    found = load_baseline(_crawler(tmp_path), min_articles=20)
    assert found.note == "run r2" and found.source == str(spider_dir / "r2" / "report.json")
    assert {site: f["run_id"] for site, f in found.sites.items()} == {"a.example": "r2", "b.example": "r1"}
    assert found.sites["b.example"]["articles"] == 30

    explicit = tmp_path / "golden.json"
    explicit.write_text(json.dumps(_report(run_id="golden")))
    golden = load_baseline(_crawler(tmp_path, SNAPCRAWL_MONITOR_BASELINE=str(explicit)), min_articles=20)
    assert golden.note == "run golden" and set(golden.sites) == {"a.example"}
    explicit.write_text("{not json")
    assert load_baseline(_crawler(tmp_path, SNAPCRAWL_MONITOR_BASELINE=str(explicit))).sites == {}


def _ran(stats: dict[str, Any]) -> Any:
    return SimpleNamespace(spider=object(), stats=SimpleNamespace(get_stats=lambda: stats))


def test_exit_codes() -> None:
    assert exit_code_for(_ran({"finish_reason": "finished", "snapcrawl/monitors/passed": 5})) == EXIT_OK
    assert exit_code_for(_ran({"finish_reason": "finished", "snapcrawl/monitors/failed": 1})) == EXIT_FAILED
    assert exit_code_for(_ran({"finish_reason": "finished", "snapcrawl/publish/failed": 1})) == EXIT_FAILED
    # monitors off: only "finished" is success
    assert exit_code_for(_ran({"finish_reason": "finished"})) == EXIT_OK
    assert exit_code_for(_ran({"finish_reason": "shutdown"})) == EXIT_FAILED
    # an accepted finish reason (the finish_reason monitor passed) is success
    reason_ok = {
        "finish_reason": "closespider_pagecount",
        "snapcrawl/monitors/passed": 4,
        "snapcrawl/monitors/failed": 0,
    }
    assert exit_code_for(_ran(reason_ok)) == EXIT_OK
    assert exit_code_for(SimpleNamespace(spider=None, stats=None)) == EXIT_FAILED
