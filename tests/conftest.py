"""Shared test helpers: the real sample site on 127.0.0.1 and real ``scrapy crawl`` runs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from snapcrawl.sample.server import SampleServer, _Handler
from snapcrawl.sample.site import Site, build_site

ROOT = Path(__file__).resolve().parent.parent
SCRAPY = [sys.executable, "-m", "scrapy"]
# fast, deterministic crawls of a local site: politeness is tested on its own
FAST = {
    "AUTOTHROTTLE_ENABLED": "0",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
    "SNAPCRAWL_PROGRESS_INTERVAL": "0",
    "RETRY_TIMES": "1",
    "LOG_LEVEL": "INFO",
}


@dataclass
class CrawlResult:
    returncode: int
    stdout: str
    stderr: str
    export_dir: Path
    extra_files: dict[str, Path] = field(default_factory=dict)

    @property
    def spider_dir(self) -> Path:
        return self.export_dir / "snapshots"

    @property
    def run_dir(self) -> Path:
        latest = self.spider_dir / "LATEST"
        assert latest.exists(), f"no published run in {self.spider_dir}\n{self.stderr[-3000:]}"
        return self.spider_dir / latest.read_text(encoding="utf-8").strip()

    def records(self, name: str) -> list[dict[str, Any]]:
        path = self.run_dir / f"{name}.jsonl"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def report(self) -> dict[str, Any]:
        return json.loads((self.run_dir / "report.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def run_crawl(
    tmp_path: Path,
    *args: str,
    settings: dict[str, str] | None = None,
    start_urls: str | None = None,
    timeout: float = 240,
    env: dict[str, str] | None = None,
) -> CrawlResult:
    """``scrapy crawl snapshots`` in a real subprocess, from the project root, exports in tmp_path."""
    export_dir = tmp_path / "exports"
    cmd = [*SCRAPY, "crawl", "snapshots"]
    if start_urls is not None:
        cmd += ["-a", f"start_urls={start_urls}"]
    merged = {
        **FAST,
        "SNAPCRAWL_EXPORT_URI": str(export_dir),
        "SNAPCRAWL_STATE_PATH": str(tmp_path / "state.sqlite"),
        **(settings or {}),
    }
    for key, value in merged.items():
        cmd += ["-s", f"{key}={value}"]
    cmd += list(args)
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    return CrawlResult(proc.returncode, proc.stdout, proc.stderr, export_dir)


@pytest.fixture(scope="session")
def site() -> Site:
    return build_site()


@pytest.fixture
def server(site: Site) -> Iterator[SampleServer]:
    with SampleServer(site) as srv:
        yield srv


@pytest.fixture(scope="session")
def full_crawl(tmp_path_factory: pytest.TempPathFactory, site: Site) -> Iterator[tuple[CrawlResult, SampleServer]]:
    """One crawl of the whole sample site, shared by the tests that only read its outputs."""
    tmp = tmp_path_factory.mktemp("full-crawl")
    with SampleServer(site) as srv:
        result = run_crawl(tmp, start_urls=srv.url + "/")
        yield result, srv


class _SlowHandler(_Handler):
    def _respond(self, send_body: bool) -> None:
        delay = float(getattr(self.server.owner, "delay", 0.0))  # type: ignore[attr-defined]
        if delay:
            time.sleep(delay)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the crawler was killed mid-response
            super()._respond(send_body)


class SlowServer(SampleServer):
    """The sample site answering every request after ``delay`` seconds (0: full speed; settable
    while it runs), so a crawl can be caught mid-way or shared by several workers."""

    handler_class = _SlowHandler

    def __init__(self, site: Site, delay: float = 0.0) -> None:
        self.delay = delay
        super().__init__(site)
