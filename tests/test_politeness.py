"""Politeness by default, end to end: robots.txt, Retry-After, the User-Agent, per-profile knobs."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from scrapy.settings import Settings
from scrapy.signalmanager import SignalManager
from scrapy.utils.project import get_project_settings

from snapcrawl import __version__
from snapcrawl.addon import SnapcrawlAddon
from snapcrawl.middlewares.politeness import ProfileAutoThrottle, parse_retry_after
from snapcrawl.sample.server import SampleServer
from snapcrawl.sample.site import Site, build_site
from tests.conftest import CrawlResult, run_crawl

SAMPLE_PROFILE = Path(__file__).resolve().parent.parent / "snapcrawl" / "profiles" / "sample.toml"


def scrapy_stats(result: CrawlResult) -> dict[str, Any]:
    """The run's Scrapy stats, as report.json keeps them."""
    return result.report()["scrapy_stats"]  # type: ignore[no-any-return]


# ------------------------------------------------------------------ a server that can say 429


Scripted = Callable[[], tuple[int, dict[str, str]]]


@dataclass
class Hit:
    at: float  # time.monotonic() when the request arrived
    path: str
    status: int
    user_agent: str


@dataclass
class ScriptedServer:
    """The sample site over HTTP, except that listed paths first answer from a script (e.g. 429s)."""

    site: Site
    scripts: dict[str, list[Scripted]] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                with lock:
                    script = owner.scripts.get(path)
                    scripted = script.pop(0)() if script else None
                if scripted is not None:
                    status, headers, body = scripted[0], scripted[1], b"slow down"
                else:
                    page = owner.site.pages.get(path)
                    status, headers, body = (page.status, page.headers, page.body) if page else (404, {}, b"")
                with lock:
                    owner.hits.append(Hit(time.monotonic(), path, status, self.headers.get("User-Agent", "")))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def gets(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted(site: Site) -> Iterator[ScriptedServer]:
    srv = ScriptedServer(site)
    yield srv
    srv.close()


# ------------------------------------------------------------------ robots.txt


def test_robots_disallow_is_obeyed_and_counted(tmp_path: Path) -> None:
    site = build_site(variant="robots-disallow")
    disallowed = set(site.robots_disallowed_paths())
    assert "/caijing/" in disallowed and len(disallowed) > 10
    with SampleServer(site) as srv:
        result = run_crawl(tmp_path, start_urls=srv.url + "/")
        gets = [p for m, p, _ in srv.request_log if m == "GET"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert gets.count("/robots.txt") == 1
    assert not [p for p in gets if p.startswith("/caijing/")]  # never requested, not even once
    exported = {a["url"] for a in result.records("articles")}
    assert exported == {srv.url + p for p in site.article_paths() if p not in disallowed}
    # skipped pages are counted and logged, and are not reported as failed pages
    skipped = set(re.findall(r"robots\.txt disallows it: (\S+)", result.stderr))
    assert srv.url + "/caijing/" in skipped
    assert {urlsplit(u).path for u in skipped} <= disallowed
    stats = scrapy_stats(result)
    assert stats["snapcrawl/pages/robots_forbidden"] == stats["robotstxt/forbidden"] == len(skipped)
    failed = {f["url"] for f in result.report()["errors"]["failed_pages"]}
    assert not failed & skipped


def _local_profile(tmp_path: Path, crawl: str, render_js: bool = False) -> Path:
    """A copy of the sample profile that covers 127.0.0.1 by domain, with its own ``[crawl]`` table."""
    text = SAMPLE_PROFILE.read_text(encoding="utf-8")
    text = text.replace('name = "sample"', 'name = "sample-local"\ndomains = ["127.0.0.1"]')
    text = text.replace("render_js = false", f"render_js = {str(render_js).lower()}")
    text = text.split("[crawl]")[0] + "[crawl]\n" + crawl
    text = re.sub(r"\[match\.meta\]\n[^\n]+\n", "", text)
    folder = tmp_path / "profiles"
    folder.mkdir(exist_ok=True)
    (folder / "local.toml").write_text(text, encoding="utf-8")
    return folder


def test_profile_crawl_table_sets_delay_concurrency_and_robots(tmp_path: Path) -> None:
    site = build_site(variant="robots-disallow")
    profiles = _local_profile(tmp_path, "download_delay = 0.3\nconcurrency = 1\nobey_robots = false\n")
    start = next(p for p in site.article_paths() if p.startswith("/caijing/"))
    srv = ScriptedServer(site)
    try:
        result = run_crawl(
            tmp_path,
            start_urls=srv.url + start,
            settings={"SNAPCRAWL_PROFILES_DIRS": str(profiles), "DEPTH_LIMIT": "1", "DOWNLOAD_DELAY_JITTER": "0"},
        )
    finally:
        srv.close()
    assert result.returncode == 0, result.stderr[-3000:]
    gets = [h.path for h in srv.hits]
    # obey_robots = false: the disallowed section was crawled, and robots.txt not even asked for
    assert start in gets and "/robots.txt" not in gets
    assert sum(p.startswith("/caijing/") for p in gets) >= 3
    assert srv.url + start in {a["url"] for a in result.records("articles")}
    assert scrapy_stats(result)["snapcrawl/robots/not_obeyed_by_profile"] == len(gets)
    # download_delay = 0.3, one request at a time (FAST settings alone would send 16 at once)
    arrivals = [h.at for h in srv.hits]
    assert len(arrivals) >= 5
    assert min(b - a for a, b in itertools.pairwise(arrivals)) >= 0.28


def test_profile_download_slots_and_autothrottle_policy(tmp_path: Path) -> None:
    profiles = _local_profile(
        tmp_path, "download_delay = 2.0\nconcurrency = 2\nautothrottle_target_concurrency = 0.5\n"
    )
    settings = Settings({"SNAPCRAWL_PROFILES_DIRS": str(profiles), "AUTOTHROTTLE_ENABLED": True})
    SnapcrawlAddon().update_settings(settings)
    slots = settings.getdict("DOWNLOAD_SLOTS")
    assert slots["127.0.0.1"] == {"delay": 2.0, "concurrency": 2}
    assert slots["profile:sample-local"] == {"delay": 2.0, "concurrency": 2}

    crawler = SimpleNamespace(settings=settings, signals=SignalManager())  # no reactor needed for the policy
    throttle = ProfileAutoThrottle(crawler)  # type: ignore[arg-type]
    throttle.mindelay, throttle.maxdelay = 0.0, 60.0

    def adjusted(slot_key: str, delay: float, latency: float) -> float:
        slot = SimpleNamespace(delay=delay)
        response = SimpleNamespace(status=200, request=SimpleNamespace(meta={"download_slot": slot_key}))
        throttle._adjust_delay(slot, latency, response)  # type: ignore[arg-type]
        return float(slot.delay)

    # the profile's floor holds however fast the site answers; its target concurrency is used
    assert adjusted("127.0.0.1", 2.0, 0.01) == 2.0
    assert adjusted("127.0.0.1", 2.0, 3.0) == 6.0  # latency / 0.5
    # another site: Scrapy's rule with AUTOTHROTTLE_TARGET_CONCURRENCY (2.0 in settings.py)
    throttle.target_concurrency = 2.0
    assert adjusted("other.example", 0.0, 0.01) == 0.005


def test_defaults_are_polite_and_honest() -> None:
    settings = get_project_settings()
    settings.set("SNAPCRAWL_CONTACT", "mailto:crawler-ops@example.org", priority="cmdline")
    SnapcrawlAddon().update_settings(settings)
    assert settings.getbool("ROBOTSTXT_OBEY") is True
    assert settings.getbool("AUTOTHROTTLE_ENABLED") is True
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") <= 4
    assert settings["USER_AGENT"] == f"snapcrawl/{__version__} (+mailto:crawler-ops@example.org)"
    extensions = settings.getdict("EXTENSIONS")
    assert extensions["scrapy.extensions.throttle.AutoThrottle"] is None
    assert "snapcrawl.middlewares.politeness.ProfileAutoThrottle" in extensions
    middlewares = settings.getdict("DOWNLOADER_MIDDLEWARES")
    # Retry-After must see 429/503 before RetryMiddleware (550); profiles must act before robots.txt (100)
    assert middlewares["snapcrawl.middlewares.politeness.RetryAfterMiddleware"] > 550
    assert middlewares["snapcrawl.middlewares.politeness.ProfilePolitenessMiddleware"] < 100


# ------------------------------------------------------------------ Retry-After


def test_retry_after_seconds_delays_the_retry(scripted: ScriptedServer, site: Site, tmp_path: Path) -> None:
    path = site.seed_path
    scripted.scripts[path] = [lambda: (429, {"Retry-After": "2", "Content-Type": "text/plain"})]
    result = run_crawl(
        tmp_path,
        start_urls=scripted.url + path,
        settings={"DEPTH_LIMIT": "1", "SNAPCRAWL_CONTACT": "mailto:crawler-ops@example.org"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    first, retry = scripted.gets(path)
    assert (first.status, retry.status) == (429, 200)
    assert retry.at - first.at >= 2.0
    assert retry.at - first.at < 4.0  # and not much longer: the wait is the header's
    assert scripted.url + path in {a["url"] for a in result.records("articles")}
    assert "Retry-After: 2" in result.stderr
    stats = scrapy_stats(result)
    assert stats["snapcrawl/retry_after/count"] == 1
    assert stats["snapcrawl/retry_after/held_requests"] >= 1
    # every request (robots.txt included) names the project and the operator's contact
    assert {h.user_agent for h in scripted.hits} == {f"snapcrawl/{__version__} (+mailto:crawler-ops@example.org)"}


def test_retry_after_http_date_is_capped(scripted: ScriptedServer, site: Site, tmp_path: Path) -> None:
    path = site.seed_path

    def busy() -> tuple[int, dict[str, str]]:
        later = datetime.now(timezone.utc) + timedelta(seconds=600)
        return 503, {"Retry-After": format_datetime(later, usegmt=True), "Content-Type": "text/plain"}

    scripted.scripts[path] = [busy]
    result = run_crawl(
        tmp_path,
        start_urls=scripted.url + path,
        settings={"DEPTH_LIMIT": "1", "SNAPCRAWL_RETRY_AFTER_MAX": "1.5"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    first, retry = scripted.gets(path)
    assert (first.status, retry.status) == (503, 200)
    assert 1.5 <= retry.at - first.at < 4.0  # the server asked for 10 minutes; the cap won
    assert re.search(r"asks to wait (599|600)s; waiting SNAPCRAWL_RETRY_AFTER_MAX=1.5s instead", result.stderr)
    assert scrapy_stats(result)["snapcrawl/retry_after/capped"] == 1


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 1, 10, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(b" 7 ", now) == 7.0
    assert parse_retry_after("Sat, 10 Jan 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Sat, 10 Jan 2026 11:00:00 GMT", now) == 0.0  # already past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) is None
    assert parse_retry_after("", now) is None
    assert parse_retry_after(None, now) is None
