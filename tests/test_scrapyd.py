"""Deploying to scrapyd: the egg scrapyd-deploy builds, and a job scheduled through schedule.json."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from urllib.request import urlopen

import pytest

from snapcrawl.sample.server import SampleServer
from snapcrawl.sample.site import Site
from tests.conftest import ROOT, CrawlResult

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> dict[str, Any]:
    with urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def post_json(url: str, fields: list[tuple[str, str]]) -> dict[str, Any]:
    with urlopen(url, data=urlencode(fields).encode(), timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


@dataclass
class Scrapyd:
    url: str
    home: Path


@pytest.fixture(scope="module")
def scrapyd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scrapyd]:
    """A real scrapyd on a free 127.0.0.1 port, with its own eggs/logs/dbs folders."""
    home = tmp_path_factory.mktemp("scrapyd")
    port = free_port()
    (home / "scrapyd.conf").write_text(
        "[scrapyd]\n"
        "bind_address = 127.0.0.1\n"
        f"http_port = {port}\n"
        f"eggs_dir = {home / 'eggs'}\n"
        f"logs_dir = {home / 'logs'}\n"
        f"dbs_dir = {home / 'dbs'}\n"
        "items_dir =\n"
        "max_proc = 2\n"
        "poll_interval = 0.2\n",
        encoding="utf-8",
    )
    with (home / "scrapyd.out").open("wb") as out:
        proc = subprocess.Popen([str(BIN / "scrapyd")], cwd=home, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if get_json(url + "daemonstatus.json")["status"] == "ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("scrapyd did not start:\n" + (home / "scrapyd.out").read_text()[-3000:])
            time.sleep(0.1)
        yield Scrapyd(url, home)
    finally:
        proc.terminate()  # the scrapyd this fixture started
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, scrapyd: Scrapyd) -> Path:
    """A copy of the project (what a checkout on the deploy host holds), its deploy target pointed at
    the test's scrapyd; building the egg there keeps build/ and *.egg-info out of the repository."""
    dst = tmp_path_factory.mktemp("checkout")
    shutil.copytree(ROOT / "snapcrawl", dst / "snapcrawl", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "scrapy.cfg"):
        shutil.copy2(ROOT / name, dst / name)
    cfg = (dst / "scrapy.cfg").read_text(encoding="utf-8")
    cfg, n = re.subn(r"(?m)^url = http://127\.0\.0\.1:6800/$", f"url = {scrapyd.url}", cfg)
    assert n == 1, "scrapy.cfg has no [deploy:local] url to point at the test's scrapyd"
    (dst / "scrapy.cfg").write_text(cfg, encoding="utf-8")
    return dst


def test_egg_carries_the_package_data(project: Path, tmp_path: Path) -> None:
    egg = tmp_path / "snapcrawl.egg"
    built = subprocess.run(
        [str(BIN / "scrapyd-deploy"), "--build-egg", str(egg)], cwd=project, capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr[-3000:]
    with zipfile.ZipFile(egg) as z:
        names = set(z.namelist())
        entry_points = z.read("EGG-INFO/entry_points.txt").decode()
    assert {"snapcrawl/schemas/article.schema.json", "snapcrawl/schemas/link.schema.json"} <= names
    assert {p.relative_to(ROOT).as_posix() for p in (ROOT / "snapcrawl" / "profiles").glob("*.toml")} <= names
    assert "snapcrawl/spiders/snapshots.py" in names and "snapcrawl/render.py" in names
    assert re.search(r"\[scrapy\]\s*settings = snapcrawl\.settings", entry_points)


def test_scheduled_job_crawls_and_exports(
    scrapyd: Scrapyd, project: Path, site: Site, server: SampleServer, tmp_path: Path
) -> None:
    deployed = subprocess.run(
        [str(BIN / "scrapyd-deploy"), "local", "-p", "snapcrawl", "-v", "r1"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    answer = json.loads(deployed.stdout)
    assert (answer["status"], answer["project"], answer["version"], answer["spiders"]) == ("ok", "snapcrawl", "r1", 1)
    assert get_json(scrapyd.url + "listspiders.json?project=snapcrawl")["spiders"] == ["snapshots"]

    exports = tmp_path / "exports"
    job = post_json(
        scrapyd.url + "schedule.json",
        [
            ("project", "snapcrawl"),
            ("spider", "snapshots"),
            ("start_urls", server.url + "/"),  # a spider argument (-a)
            ("setting", f"SNAPCRAWL_EXPORT_URI={exports}"),  # settings (-s): absolute paths for a daemon
            ("setting", f"SNAPCRAWL_STATE_PATH={tmp_path / 'state' / 'state.sqlite'}"),
            ("setting", "AUTOTHROTTLE_ENABLED=0"),
            ("setting", "CONCURRENT_REQUESTS_PER_DOMAIN=16"),
        ],
    )
    assert job["status"] == "ok", job
    deadline = time.monotonic() + 180
    while True:
        jobs = get_json(scrapyd.url + "listjobs.json?project=snapcrawl")
        done = [j for j in jobs["finished"] if j["id"] == job["jobid"]]
        if done:
            break
        assert time.monotonic() < deadline, jobs
        time.sleep(0.3)
    log = (scrapyd.home / "logs" / "snapcrawl" / "snapshots" / f"{job['jobid']}.log").read_text(encoding="utf-8")

    result = CrawlResult(0, "", log, exports)
    report = result.report()
    assert report["finish_reason"] == "finished", log[-3000:]
    articles = {a["url"]: a for a in result.records("articles")}
    assert set(articles) == {server.url + p for p in site.article_paths()}
    for path in site.article_paths()[:10]:
        want = site.expected(path, server.url)
        assert articles[server.url + path]["title"] == want["title"]
        assert articles[server.url + path]["body"] == "\n\n".join(want["body"])
    assert result.records("rejected") == []
    # the job runs the deployed egg (not this checkout): its modules are loaded from scrapyd's eggs folder
    assert "Traceback" not in log
