"""Exports consumers can trust: invalid records in rejected.jsonl, atomic publishing, gzip, remote URIs."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import pytest
from scrapy.extensions.feedexport import BlockingFeedStorage

from snapcrawl.sample.server import SampleServer
from snapcrawl.sample.site import Page, Site, build_site
from tests.conftest import FAST, ROOT, SCRAPY, CrawlResult, SlowServer, run_crawl


def _jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _untitled(site: Site, path: str) -> None:
    """Take every trace of the title off one article page (h1 and <title>): a page a redesign broke."""
    page = site.pages[path]
    html = page.body.decode("utf-8")
    stripped = re.sub(r'<h1 class="title">.*?</h1>', '<h1 class="title"></h1>', html)
    stripped = re.sub(r"<title>.*?</title>", "<title></title>", stripped)
    assert stripped != html
    site.pages[path] = Page(page.status, {"Content-Type": page.headers["Content-Type"]}, stripped.encode("utf-8"))


# ---------------------------------------------------------------------------------------- rejected


@pytest.fixture(scope="module")
def broken_crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CrawlResult, str, Site]]:
    """One crawl of the sample site whose seed article lost its title everywhere (1 % rejected allowed)."""
    site = build_site()
    _untitled(site, site.seed_path)
    with SampleServer(site) as srv:
        result = run_crawl(
            tmp_path_factory.mktemp("broken"),
            start_urls=srv.url + "/",
            settings={"SNAPCRAWL_MONITOR_MAX_REJECTED_RATE": "0.01"},
        )
        yield result, srv.url + site.seed_path, site


def test_invalid_record_lands_in_rejected_with_reason(broken_crawl: tuple[CrawlResult, str, Site]) -> None:
    result, seed_url, site = broken_crawl
    rejected = result.records("rejected")
    articles = [r for r in rejected if r["record_type"] == "article"]
    assert len(articles) == 1
    bad = articles[0]
    assert bad["type"] == "rejected" and bad["page_url"] == seed_url
    assert bad["errors"] == ["title: '' should be non-empty"]
    assert bad["record"]["url"] == seed_url and bad["record"]["title"] == ""
    assert bad["record"]["body"].startswith("面对电信网络诈骗持续高发的态势")  # the whole record is kept
    # never silently dropped, and kept out of the clean export
    exported = {a["url"] for a in result.records("articles")}
    assert seed_url not in exported
    assert len(exported) == len(site.article_paths()) - 1
    # its links go with it (inside the rejected record), so every exported link points at an exported article
    assert len(bad["record"]["related"]) == 9 and len(bad["record"]["more_in_category"]) == 15
    assert bad["record"]["related"][0]["url"].startswith("http")
    assert seed_url not in {link["from_url"] for link in result.records("links")}
    assert {link["from_url"] for link in result.records("links")} <= exported
    assert not [r for r in rejected if r["record_type"] != "article"]
    # counted, and logged once with the page URL
    report = result.report()
    assert report["records"]["rejected"] == len(rejected) == 1
    assert report["records"]["rejected_by_type"] == {"article": 1}
    assert report["records"]["links"] == len(result.records("links"))
    assert result.stderr.count("invalid article record from") == 1
    assert f"invalid article record from {seed_url} rejected: title: '' should be non-empty" in result.stderr


def test_rejected_rate_monitor_fails_the_run(broken_crawl: tuple[CrawlResult, str, Site]) -> None:
    result, _, _ = broken_crawl
    assert result.returncode == 1
    failed = result.report()["monitors"]["failed"]
    assert failed == [
        {
            "monitor": "rejected_rate",
            "message": "1 of 71 article records rejected (1.4%), "
            "more than 1.0% (SNAPCRAWL_MONITOR_MAX_REJECTED_RATE); see rejected.jsonl",
        }
    ]
    assert "  - rejected_rate: 1 of 71 article records rejected (1.4%)" in result.stderr
    assert "WARNING: run " in result.stderr  # a run that needs attention ends with a WARNING summary


# ---------------------------------------------------------------------------------------- atomicity


def _visible(spider_dir: Path) -> set[str]:
    return {p.name for p in spider_dir.iterdir() if not p.name.startswith(".")}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.slow
def test_killed_run_leaves_nothing_final_and_latest_intact(tmp_path: Path, site: Site) -> None:
    with SampleServer(site) as fast:
        first = run_crawl(tmp_path, start_urls=fast.url + "/")
    assert first.returncode == 0, first.stderr[-2000:]
    spider_dir = first.spider_dir
    previous = first.run_dir
    before = _snapshot(previous)
    assert set(before) == {"articles.jsonl", "links.jsonl", "rejected.jsonl", "report.json"}

    with SlowServer(site, delay=0.4) as slow:
        settings = {
            **FAST,
            "CONCURRENT_REQUESTS_PER_DOMAIN": "2",
            "SNAPCRAWL_EXPORT_URI": str(first.export_dir),
            "SNAPCRAWL_STATE_PATH": str(tmp_path / "state2.sqlite"),
        }
        cmd = [*SCRAPY, "crawl", "snapshots", "-a", f"start_urls={slow.url}/"]
        for key, value in settings.items():
            cmd += ["-s", f"{key}={value}"]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            # mid-run: a good part of the site fetched, records written, far from the end (87 pages)
            while len(slow.request_log) < 25 and time.monotonic() < deadline:
                assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
                time.sleep(0.05)
            assert len(slow.request_log) >= 25
            partials = [p for p in spider_dir.iterdir() if p.name.endswith(".partial")]
            assert len(partials) == 1
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert len(slow.request_log) < 80  # it really was killed mid-way

    # nothing new looks final: the only visible entries are the previous run and its pointers
    assert _visible(spider_dir) == {previous.name, "LATEST", "latest"}
    assert (spider_dir / "LATEST").read_text(encoding="utf-8") == previous.name + "\n"
    assert os.readlink(spider_dir / "latest") == previous.name
    assert _snapshot(previous) == before
    partial = partials[0]
    assert partial.name.startswith(".") and partial.is_dir()
    assert "report.json" not in {p.name for p in partial.iterdir()}
    assert not list(spider_dir.glob(".*.tmp"))

    # the next run publishes normally; the killed run's folder is still not published
    with SampleServer(site) as fast:
        third = run_crawl(tmp_path, start_urls=fast.url + "/", settings={"SNAPCRAWL_STATE_PATH": str(tmp_path / "s3")})
    assert third.returncode == 0, third.stderr[-2000:]
    assert third.run_dir.name not in (previous.name, partial.name)
    assert _visible(spider_dir) == {previous.name, third.run_dir.name, "LATEST", "latest"}
    assert os.readlink(spider_dir / "latest") == third.run_dir.name


def test_gzip_end_to_end_and_run_id_never_reused(tmp_path: Path, server: SampleServer, site: Site) -> None:
    result = run_crawl(tmp_path, start_urls=server.url + "/", settings={"SNAPCRAWL_EXPORT_GZIP": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = result.run_dir
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == ["articles.jsonl.gz", "links.jsonl.gz", "rejected.jsonl.gz", "report.json"]
    articles = _jsonl(run_dir / "articles.jsonl.gz")
    links = _jsonl(run_dir / "links.jsonl.gz")
    assert {a["url"] for a in articles} == {server.url + p for p in site.article_paths()}
    assert _jsonl(run_dir / "rejected.jsonl.gz") == []
    report = result.report()
    assert report["files"] == names
    assert report["records"]["articles"] == len(articles) and report["records"]["links"] == len(links)
    assert not [p for p in result.spider_dir.iterdir() if p.name.endswith(".partial")]

    again = run_crawl(tmp_path, start_urls=server.url + "/", settings={"SNAPCRAWL_RUN_ID": run_dir.name})
    assert again.returncode == 2
    assert f"run id '{run_dir.name}' is already published at {run_dir}" in again.stderr
    assert "Traceback" not in again.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == names  # untouched


# ---------------------------------------------------------------------------------------- remote URI


class DirUploadStorage(BlockingFeedStorage):
    """A stand-in for S3 in tests: ``testremote:///dir/key`` objects appear whole when uploaded
    (written aside, then renamed), and every upload is appended to ``<dir>/uploads.log``."""

    def __init__(self, uri: str, *, feed_options: dict[str, Any] | None = None) -> None:
        self.path = Path(urlparse(uri).path)

    def _store_in_thread(self, file: IO[bytes]) -> None:
        file.seek(0)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".upload")
        with tmp.open("wb") as out:
            shutil.copyfileobj(file, out)
        os.replace(tmp, self.path)
        file.close()
        root = next(p for p in self.path.parents if p.name == "bucket")
        with (root / "uploads.log").open("a", encoding="utf-8") as log:
            log.write(str(self.path.relative_to(root)) + "\n")


def test_remote_export_uri_uploads_feeds_then_report_then_latest(tmp_path: Path, server: SampleServer) -> None:
    bucket = tmp_path / "bucket"
    result = run_crawl(
        tmp_path,
        start_urls=server.url + "/",
        settings={
            "SNAPCRAWL_EXPORT_URI": f"testremote://{bucket}/crawls",
            "FEED_STORAGES": json.dumps({"testremote": "tests.test_exports.DirUploadStorage"}),
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_id = (bucket / "crawls/snapshots/LATEST").read_text(encoding="utf-8").strip()
    uploads = (bucket / "uploads.log").read_text(encoding="utf-8").splitlines()
    feeds = {f"crawls/snapshots/{run_id}/{n}.jsonl" for n in ("articles", "links", "rejected")}
    assert set(uploads[:3]) == feeds  # each feed uploaded once, whole, when the run closed
    assert uploads[3:] == [f"crawls/snapshots/{run_id}/report.json", "crawls/snapshots/LATEST"]
    report = json.loads((bucket / f"crawls/snapshots/{run_id}/report.json").read_text(encoding="utf-8"))
    articles = _jsonl(bucket / f"crawls/snapshots/{run_id}/articles.jsonl")
    assert report["records"]["articles"] == len(articles) == 71
    assert report["files"] == ["articles.jsonl", "links.jsonl", "rejected.jsonl", "report.json"]
    assert not list(bucket.rglob("*.partial")) and not list(bucket.rglob("*.upload"))
    skipped = {s["monitor"]: s["reason"] for s in report["monitors"]["skipped"]}
    assert "SNAPCRAWL_MONITOR_BASELINE" in skipped["fill_drift"]
    assert not (tmp_path / "exports").exists() and not (ROOT / "testremote:").exists()
