"""Pause and resume with JOBDIR: real ``scrapy crawl`` processes stopped by a signal and restarted.

The sample site is served slowly (every GET held back a little) so a crawl lasts a few
seconds and can be stopped mid-way. An uninterrupted JOBDIR crawl of the same server is the
reference: an interrupted-and-resumed crawl must publish exactly its records, once each,
and (for a clean pause) fetch no page more often than it did.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from snapcrawl.extensions.journal import JOURNAL_NAME, record_key
from snapcrawl.sample.server import SampleServer
from snapcrawl.sample.site import build_site
from tests.conftest import FAST, ROOT, SCRAPY, SlowServer

# Timing: ~87 requests, 4 at a time, DELAY seconds each -> a crawl of ~2-3 s after start-up.
DELAY = 0.1
CRAWL = {**FAST, "CONCURRENT_REQUESTS_PER_DOMAIN": "4", "CONCURRENT_REQUESTS": "4"}
VOLATILE = frozenset({"fetched_at"})
# Which copy of a story is "first seen" depends on crawl order, which an interruption changes.
DEDUP_FIELDS = frozenset({"cluster_id", "duplicate_of", "duplicate_kind"})
FEEDS = ("articles", "links", "rejected")


@dataclass
class Session:
    returncode: int
    log: str
    requests: list[tuple[str, str, int]]  # what the server served during this session
    interrupted: bool  # the signal was sent while the crawl was still running


def crawl_command(workdir: Path, url: str, settings: dict[str, str] | None = None) -> list[str]:
    """``scrapy crawl snapshots`` with a JOBDIR, exports, state and locks all under ``workdir``."""
    merged = {
        **CRAWL,
        "JOBDIR": str(workdir / "job"),
        "SNAPCRAWL_EXPORT_URI": str(workdir / "exports"),
        "SNAPCRAWL_STATE_PATH": str(workdir / "state.sqlite"),
        **(settings or {}),
    }
    cmd = [*SCRAPY, "crawl", "snapshots", "-a", f"start_urls={url}/"]
    for key, value in merged.items():
        cmd += ["-s", f"{key}={value}"]
    return cmd


def run_session(
    workdir: Path,
    server: SampleServer,
    *,
    stop_after: int | None = None,
    sig: int = signal.SIGINT,
    settings: dict[str, str] | None = None,
    timeout: float = 120,
) -> Session:
    """One crawl process; with ``stop_after``, send ``sig`` once the server has served that many pages."""
    start = len(server.request_log)
    logs = sorted(workdir.glob("session-*.log"))
    log_path = workdir / f"session-{len(logs) + 1}.log"
    interrupted = False
    workdir.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(crawl_command(workdir, server.url, settings), cwd=ROOT, stdout=log, stderr=log)
        try:
            if stop_after is not None:
                deadline = time.monotonic() + timeout
                while proc.poll() is None and _pages(server.request_log[start:]) < stop_after:
                    assert time.monotonic() < deadline, f"crawl did not reach {stop_after} pages in {timeout}s"
                    time.sleep(0.002)
                if proc.poll() is None:
                    proc.send_signal(sig)
                    interrupted = True
            proc.wait(timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return Session(proc.returncode, log_path.read_text(encoding="utf-8"), server.request_log[start:], interrupted)


def _pages(log: list[tuple[str, str, int]]) -> int:
    return sum(1 for _, path, _ in log if path != "/robots.txt")


def spider_dir(workdir: Path) -> Path:
    return workdir / "exports" / "snapshots"


def published_dir(workdir: Path) -> Path:
    latest = spider_dir(workdir) / "LATEST"
    assert latest.exists(), f"nothing published under {spider_dir(workdir)}"
    return spider_dir(workdir) / latest.read_text(encoding="utf-8").strip()


def partial_dirs(workdir: Path) -> list[Path]:
    return sorted(spider_dir(workdir).glob(".*.partial"))


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSON-lines file, parsed; fails on a line that is not one JSON object."""
    if path.name.endswith(".gz"):
        import gzip

        text = gzip.decompress(path.read_bytes()).decode("utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"{path} ends in a torn line"
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        record = json.loads(line)
        assert isinstance(record, dict), f"{path}:{n} is not a JSON object"
        records.append(record)
    return records


def exported(folder: Path, ext: str = ".jsonl") -> dict[str, list[dict[str, Any]]]:
    return {name: read_lines(folder / f"{name}{ext}") for name in FEEDS}


def assert_same_records(got: dict[str, list[dict[str, Any]]], want: dict[str, list[dict[str, Any]]]) -> None:
    """Same records as the reference, each exactly once (fetch times and first-seen choice aside)."""
    for name in FEEDS:
        keys = [record_key(r) for r in got[name]]
        dupes = [k for k, n in Counter(keys).items() if n > 1]
        assert not dupes, f"{name}: exported twice: {dupes[:5]}"

        def comparable(r: dict[str, Any]) -> str:
            return json.dumps({k: v for k, v in r.items() if k not in VOLATILE | DEDUP_FIELDS}, sort_keys=True)

        missing = sorted(set(map(comparable, want[name])) - set(map(comparable, got[name])))
        extra = sorted(set(map(comparable, got[name])) - set(map(comparable, want[name])))
        assert not missing and not extra, f"{name}: {len(missing)} missing, {len(extra)} unexpected: {missing[:1]}"
        assert len(got[name]) == len(want[name]), name
    # dedup: the same clusters, and no record is a "copy" of itself (a re-exported record
    # after a resume is the same record, not a duplicate of the one exported before)
    assert clusters(got["articles"]) == clusters(want["articles"])
    for article in got["articles"]:
        assert article.get("duplicate_of") != article["url"], article["url"]


def clusters(articles: list[dict[str, Any]]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for a in articles:
        groups.setdefault(a["cluster_id"], set()).add(a["url"])
    return {frozenset(g) for g in groups.values()}


def fetch_counts(log: list[tuple[str, str, int]]) -> Counter[str]:
    return Counter(path for method, path, _ in log if method == "GET")


@dataclass
class Reference:
    records: dict[str, list[dict[str, Any]]]
    fetches: Counter[str]
    workdir: Path


@pytest.fixture(scope="module")
def slow_server() -> Iterator[SlowServer]:
    with SlowServer(build_site()) as srv:
        yield srv


@pytest.fixture(scope="module")
def reference(slow_server: SlowServer, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """One uninterrupted JOBDIR crawl of the slow server (at full speed)."""
    workdir = tmp_path_factory.mktemp("reference")
    slow_server.delay = 0.0
    session = run_session(workdir, slow_server)
    assert session.returncode == 0, session.log[-3000:]
    records = exported(published_dir(workdir))
    assert len(records["articles"]) == 71 and len(records["links"]) > 1000
    return Reference(records, fetch_counts(session.requests), workdir)


@pytest.fixture
def slowed(slow_server: SlowServer) -> Iterator[SlowServer]:
    slow_server.delay = DELAY
    yield slow_server
    slow_server.delay = 0.0


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_pause_then_resume_exports_every_record_once(
    sig: int, reference: Reference, slowed: SlowServer, tmp_path: Path
) -> None:
    first = run_session(tmp_path, slowed, stop_after=30, sig=sig)
    assert first.interrupted, "the crawl ended before it could be paused"
    assert first.returncode == 1, first.log[-3000:]  # did not finish
    assert "paused; resume with the same JOBDIR" in first.log
    assert not (spider_dir(tmp_path) / "LATEST").exists()  # a paused run is not published
    [partial] = partial_dirs(tmp_path)
    paused = exported(partial)  # every line complete and valid JSON at the pause
    assert 0 < len(paused["articles"]) < len(reference.records["articles"])
    assert "\nC\t" in (tmp_path / "job" / JOURNAL_NAME).read_text(encoding="utf-8")  # clean close recorded

    second = run_session(tmp_path, slowed)
    assert second.returncode == 0, second.log[-3000:]
    assert "after a clean pause" in second.log and "did not stop cleanly" not in second.log
    final = published_dir(tmp_path)
    assert final.name == partial.name.removeprefix(".").removesuffix(".partial")  # same run continued
    assert partial_dirs(tmp_path) == []
    assert_same_records(exported(final), reference.records)
    # records written before the pause are still the first lines of the published files
    for name in FEEDS:
        assert exported(final)[name][: len(paused[name])] == paused[name]

    # a clean pause loses no request and repeats none: no page is fetched more often than
    # in the uninterrupted crawl (robots.txt is fetched once per process)
    both = fetch_counts(first.requests) + fetch_counts(second.requests)
    assert set(both) == set(reference.fetches)
    repeated = {p: n for p, n in both.items() if p != "/robots.txt" and n > reference.fetches[p]}
    assert repeated == {}
    assert both["/robots.txt"] == 2

    report = json.loads((final / "report.json").read_text(encoding="utf-8"))
    assert report["resume"]["session"] == 2 and report["resume"]["recovered_from_crash"] is False
    assert report["records"]["articles"] == len(reference.records["articles"])
    # page counters span both sessions: the uninterrupted crawl's figures, plus the second
    # session's robots.txt
    pages = report["pages"]
    want = json.loads((published_dir(reference.workdir) / "report.json").read_text(encoding="utf-8"))["pages"]
    assert pages["fetched"] == want["fetched"] + 1, (pages, want)
    assert pages["by_status"] == {**want["by_status"], "200": want["by_status"]["200"] + 1}
    for kind in ("article", "listing", "empty", "failed"):
        assert pages[kind] == want[kind] > 0 or kind == "empty", (kind, pages, want)
    assert report["duration_s"] >= 30 * DELAY  # both sessions' time


@pytest.mark.slow
def test_second_process_on_a_running_jobdir_is_refused(slowed: SlowServer, tmp_path: Path) -> None:
    """Two processes on one JOBDIR would take the live job for a crashed one and "repair" it."""
    slowed.delay = 0.3  # the first crawl must outlast the second one's start-up
    proc = subprocess.Popen(
        crawl_command(tmp_path, slowed.url), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "job" / JOURNAL_NAME).exists():
            assert proc.poll() is None and time.monotonic() < deadline, "first crawl did not start"
            time.sleep(0.01)
        journal_before = (tmp_path / "job" / JOURNAL_NAME).stat().st_size
        other = subprocess.run(
            crawl_command(tmp_path, slowed.url, {"SNAPCRAWL_LOCK_ENABLED": "0"}),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.poll() is None, "the first crawl should still be running"
        assert other.returncode == 3, other.stderr[-2000:]
        assert f"JOBDIR {tmp_path / 'job'}" in other.stderr and "already running" in other.stderr
        assert (tmp_path / "job" / JOURNAL_NAME).stat().st_size >= journal_before
        proc.send_signal(signal.SIGTERM)  # the first crawl, untouched, still pauses cleanly
        assert proc.wait(120) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    [partial] = partial_dirs(tmp_path)
    assert exported(partial)["articles"] != []
    assert '\nC\t{"reason": "shutdown"}\n' in (tmp_path / "job" / JOURNAL_NAME).read_text(encoding="utf-8")


def test_finished_jobdir_starts_a_new_job(reference: Reference, slow_server: SlowServer) -> None:
    """A JOBDIR whose run finished and was published is reused for a new run, not resumed as empty.

    Runs a second crawl in the reference crawl's folder (its records are already read). Plain
    Scrapy would find every request "seen" and fetch nothing; the new job fetches every page
    again (conditionally, since the state store knows them: what it exports is dedup's call).
    """
    workdir = reference.workdir
    first_run = published_dir(workdir).name
    slow_server.delay = 0.0
    second = run_session(workdir, slow_server)
    assert second.returncode == 0, second.log[-3000:]
    assert "finished (finished); starting a new job in it" in second.log
    second_run = published_dir(workdir).name
    assert second_run != first_run
    assert set(fetch_counts(second.requests)) == set(reference.fetches)
    assert len(exported(spider_dir(workdir) / first_run)["articles"]) == len(reference.records["articles"])
