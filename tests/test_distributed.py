"""Distributed crawl: two real ``scrapy crawl`` workers sharing one real redis-server (scrapy-redis)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from snapcrawl.distributed import Keys, enqueue
from snapcrawl.sample.server import SampleServer
from snapcrawl.sample.site import Site
from tests.conftest import FAST, ROOT, SCRAPY, SlowServer
from tests.dedup_helpers import redis_server


@pytest.fixture
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def start_worker(tmp_path: Path, redis_url: str, worker: str, **settings: str) -> subprocess.Popen[str]:
    """One worker: ``scrapy crawl snapshots`` with no start URLs, only the Redis URL."""
    merged = {
        **FAST,
        "SNAPCRAWL_EXPORT_URI": str(tmp_path / "exports"),
        "SNAPCRAWL_STATE_PATH": str(tmp_path / worker / "state.sqlite"),  # unused: Redis holds the state
        "SNAPCRAWL_REDIS_URL": redis_url,
        "SNAPCRAWL_REDIS_IDLE_TIMEOUT": "3",
        "SNAPCRAWL_RUN_ID": "crawl1",
        # the sample site is on 127.0.0.1; enqueued hosts are exempt once the worker has read them from
        # Redis, but a worker's very first request can race that read, so the test allows private
        # networks outright (docs/distributed.md, "Private networks")
        "SNAPCRAWL_ALLOW_PRIVATE_NETWORKS": "1",
        **settings,
    }
    cmd = [*SCRAPY, "crawl", "snapshots"]
    for key, value in merged.items():
        cmd += ["-s", f"{key}={value}"]
    log = open(tmp_path / f"{worker}.log", "w", encoding="utf-8")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SNAPCRAWL_WORKER_ID": worker},
    )


@pytest.fixture(scope="module")
def server(site: Site) -> Iterator[SampleServer]:
    """The sample site answering each request after 0.3 s: at full speed one worker crawls all 87
    pages before the other has finished starting, and the split this test checks never happens."""
    with SlowServer(site, delay=0.3) as srv:
        yield srv


def records(run_dir: Path, name: str) -> list[dict[str, Any]]:
    text = (run_dir / f"{name}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_two_workers_crawl_the_sample_site_once(
    tmp_path: Path, redis_url: str, site: Site, server: SampleServer
) -> None:
    client = redis.Redis.from_url(redis_url)
    memory_before = int(client.info("memory")["used_memory"])
    # a tracking-parameter variant: canonicalised before it reaches Redis
    result = enqueue(client, Keys("snapcrawl:", "snapshots"), [server.url + "/?utm_source=feed"])
    assert result.pushed == [server.url + "/"] and result.domains == ["127.0.0.1"]

    started = time.monotonic()
    workers = {name: start_worker(tmp_path, redis_url, name) for name in ("w1", "w2")}
    for name, proc in workers.items():
        code = proc.wait(timeout=90)
        assert code == 0, f"worker {name} failed:\n{(tmp_path / f'{name}.log').read_text()[-4000:]}"
    elapsed = time.monotonic() - started

    # every page fetched exactly once over both workers (robots.txt is per worker, by design)
    gets = Counter(path for method, path, _ in server.request_log if method == "GET" and path != "/robots.txt")
    # (the page answering 500 is fetched 1 + RETRY_TIMES times, by the one worker that took it)
    want = {p: 2 if site.broken_paths().get(p) == "500" else 1 for p in gets}
    assert gets and gets == want, {p: n for p, n in gets.items() if n != want[p]}
    assert set(site.article_paths()) <= set(gets)

    # one export folder per worker; no article in both; together exactly the site's articles
    spider_dir = tmp_path / "exports" / "snapshots"
    per_worker = {name: records(spider_dir / f"crawl1-{name}", "articles") for name in workers}
    urls = {name: [r["url"] for r in recs] for name, recs in per_worker.items()}
    assert not set(urls["w1"]) & set(urls["w2"])
    union = urls["w1"] + urls["w2"]
    assert len(union) == len(set(union))
    assert set(union) == {server.url + p for p in site.article_paths()}
    assert all(urls.values()), f"one worker crawled nothing: { {n: len(u) for n, u in urls.items()} }"

    # clusters agree across workers: one of the pair is the root, the other points at it, marked once
    by_url = {r["url"]: r for recs in per_worker.values() for r in recs}
    for original, copy in site.near_duplicate_pairs():
        first, second = by_url[server.url + original], by_url[server.url + copy]
        # whichever worker saw one of the pair first made it the cluster's root: the other is the copy
        root, copy_rec = (first, second) if first["duplicate_of"] is None else (second, first)
        assert root["duplicate_of"] is None
        assert copy_rec["duplicate_of"] == root["url"] and copy_rec["cluster_id"] == root["cluster_id"]
    marked = [r for r in by_url.values() if r["duplicate_of"]]
    assert len(marked) == len(site.near_duplicate_pairs())

    # each worker's report counts only its own pages; the crawl left its fingerprints in Redis
    pages = [json.loads((spider_dir / f"crawl1-{n}" / "report.json").read_text())["pages"] for n in workers]
    assert pages
    keys = Keys("snapcrawl:", "snapshots")
    assert client.scard(keys.dupefilter) >= len(gets) and client.zcard(keys.requests) == 0
    assert client.llen(keys.start_urls) == 0
    memory_after = int(client.info("memory")["used_memory"])
    print(
        f"\ndistributed: {len(gets)} pages in {elapsed:.1f}s, w1 {len(urls['w1'])} / w2 {len(urls['w2'])} articles; "
        f"redis used_memory +{memory_after - memory_before} B, {client.dbsize()} keys",
        file=sys.stderr,
    )


def test_worker_without_redis_still_needs_start_urls(tmp_path: Path) -> None:
    """The single-process default is unchanged: no Redis URL and no start URLs is an error."""
    cmd = [*SCRAPY, "crawl", "snapshots", "-s", f"SNAPCRAWL_EXPORT_URI={tmp_path}", "-s", "SNAPCRAWL_REDIS_URL="]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "no start URLs" in proc.stderr


def test_enqueue_command_and_reset(redis_url: str) -> None:
    cmd = [sys.executable, "-m", "snapcrawl", "enqueue", "--redis-url", redis_url]
    out = subprocess.run(
        [*cmd, "https://a.example/x?utm_medium=1#top", "http://b.example/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert (
        "enqueued 2 start URL(s) on snapcrawl:snapshots:start_urls; allowed domains: a.example, b.example" in out.stdout
    )
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = Keys("snapcrawl:", "snapshots")
    assert client.lrange(keys.start_urls, 0, -1) == ["https://a.example/x", "http://b.example/"]
    client.sadd(keys.dupefilter, "ab" * 20)  # as left by an earlier crawl
    again = subprocess.run([*cmd, "http://c.example/"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "already holds 1 fingerprints" in again.stderr
    subprocess.run([*cmd, "--reset", "http://c.example/"], cwd=ROOT, check=True, capture_output=True, timeout=60)
    assert client.lrange(keys.start_urls, 0, -1) == ["http://c.example/"]
    assert client.smembers(keys.domains) == {"c.example"} and not client.exists(keys.dupefilter)
    bad = subprocess.run([*cmd, "ftp://x/"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "'ftp://x/' is not an absolute http(s) URL" in bad.stderr
